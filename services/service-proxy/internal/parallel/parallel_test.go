package parallel_test

import (
	"sync/atomic"
	"testing"

	"bosun.dev/services/service-proxy/internal/parallel"
)

// Every index is visited exactly once, whatever the number of items.
func TestForVisitsEachIndexOnce(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 1000} {
		visits := make([]atomic.Int32, n)
		parallel.For(n, func(i int) { visits[i].Add(1) })
		for i := range visits {
			if got := visits[i].Load(); got != 1 {
				t.Errorf("n=%d: index %d visited %d times", n, i, got)
			}
		}
	}
}
