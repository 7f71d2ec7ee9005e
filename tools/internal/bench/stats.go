package bench

import (
	"math"
	"slices"
	"time"
)

// Median returns the median of xs (the mean of the middle two for an even
// count), or 0 for none. xs is not modified.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	mid := len(s) / 2
	if len(s)%2 == 1 {
		return s[mid]
	}
	return (s[mid-1] + s[mid]) / 2
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted durations: the smallest value with at least p% of the values at or
// below it. It returns 0 for none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

// Latencies summarises per-operation latencies.
type Latencies struct {
	P50, P99 time.Duration
}

// Summarize sorts ds in place and returns its p50 and p99.
func Summarize(ds []time.Duration) Latencies {
	slices.Sort(ds)
	return Latencies{P50: Percentile(ds, 50), P99: Percentile(ds, 99)}
}
