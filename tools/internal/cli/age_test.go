package cli

import (
	"testing"
	"time"
)

func TestHumanDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-5 * time.Second, "<invalid>"},
		{-500 * time.Millisecond, "0s"},
		{0, "0s"},
		{5 * time.Second, "5s"},
		{119 * time.Second, "119s"},
		{2 * time.Minute, "2m"},
		{3*time.Minute + 20*time.Second, "3m20s"},
		{17 * time.Minute, "17m"},
		{179 * time.Minute, "179m"},
		{3 * time.Hour, "3h"},
		{5*time.Hour + 3*time.Minute, "5h3m"},
		{30 * time.Hour, "30h"},
		{50 * time.Hour, "2d2h"},
		{4 * 24 * time.Hour, "4d"},
		{40 * 24 * time.Hour, "40d"},
		{(2*365 + 30) * 24 * time.Hour, "2y30d"},
		{9 * 365 * 24 * time.Hour, "9y"},
	}
	for _, tt := range tests {
		if got := humanDuration(tt.d); got != tt.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	if got := age(nil, time.Now()); got != "<unknown>" {
		t.Errorf("age(nil) = %q", got)
	}
}
