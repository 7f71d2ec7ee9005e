package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Load is the outcome of one run of operations.
type Load struct {
	Ops       int
	Elapsed   time.Duration
	Latencies []time.Duration // one per operation, in issue order
}

// OpsPerSec is the throughput of the run.
func (l Load) OpsPerSec() float64 {
	if l.Elapsed <= 0 {
		return 0
	}
	return float64(l.Ops) / l.Elapsed.Seconds()
}

// RunLoad calls op(ctx, i) for i in [0, n) from c goroutines, each taking
// the next index as soon as its previous call returns, and times every call.
// The first error stops the run and is returned.
func RunLoad(ctx context.Context, n, c int, op func(ctx context.Context, i int) error) (Load, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				t := time.Now()
				if err := op(ctx, i); err != nil {
					cancel(fmt.Errorf("operation %d: %w", i, err))
					return
				}
				lat[i] = time.Since(t)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return Load{}, err
	}
	return Load{Ops: n, Elapsed: elapsed, Latencies: lat}, nil
}
