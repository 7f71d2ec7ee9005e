package cli

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
)

// humanDuration formats d as kubectl's AGE column does: "45s", "3m20s",
// "17m", "5h3m", "30h", "4d5h", "40d", "2y30d", "9y".
func humanDuration(d time.Duration) string {
	if d < -time.Second {
		return "<invalid>"
	}
	if d < 0 {
		return "0s"
	}
	if s := int(d.Round(time.Second) / time.Second); s < 60*2 {
		return fmt.Sprintf("%ds", s)
	}
	minutes := int(d / time.Minute)
	if minutes < 10 {
		s := int(d/time.Second) % 60
		if s == 0 {
			return fmt.Sprintf("%dm", minutes)
		}
		return fmt.Sprintf("%dm%ds", minutes, s)
	}
	if minutes < 60*3 {
		return fmt.Sprintf("%dm", minutes)
	}
	hours := int(d / time.Hour)
	if hours < 8 {
		m := minutes % 60
		if m == 0 {
			return fmt.Sprintf("%dh", hours)
		}
		return fmt.Sprintf("%dh%dm", hours, m)
	}
	if hours < 48 {
		return fmt.Sprintf("%dh", hours)
	}
	if hours < 24*8 {
		h := hours % 24
		if h == 0 {
			return fmt.Sprintf("%dd", hours/24)
		}
		return fmt.Sprintf("%dd%dh", hours/24, h)
	}
	if hours < 24*365*2 {
		return fmt.Sprintf("%dd", hours/24)
	}
	if hours < 24*365*8 {
		dy := (hours / 24) % 365
		if dy == 0 {
			return fmt.Sprintf("%dy", hours/24/365)
		}
		return fmt.Sprintf("%dy%dd", hours/24/365, dy)
	}
	return fmt.Sprintf("%dy", hours/24/365)
}

// age is the AGE of something that happened at ts, or "<unknown>".
func age(ts *timestamppb.Timestamp, now time.Time) string {
	if ts == nil {
		return "<unknown>"
	}
	return humanDuration(now.Sub(ts.AsTime()))
}
