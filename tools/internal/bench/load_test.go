package bench

import (
	"context"
	"errors"
	"sync"
	"testing"
)

func TestRunLoadCallsEveryIndexOnce(t *testing.T) {
	var mu sync.Mutex
	seen := map[int]int{}
	l, err := RunLoad(context.Background(), 100, 7, func(_ context.Context, i int) error {
		mu.Lock()
		defer mu.Unlock()
		seen[i]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if l.Ops != 100 || len(l.Latencies) != 100 {
		t.Errorf("ops %d, latencies %d; want 100", l.Ops, len(l.Latencies))
	}
	for i := range 100 {
		if seen[i] != 1 {
			t.Errorf("index %d called %d times", i, seen[i])
		}
	}
}

func TestRunLoadStopsAtFirstError(t *testing.T) {
	boom := errors.New("boom")
	_, err := RunLoad(context.Background(), 1000, 4, func(ctx context.Context, i int) error {
		if i == 10 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
}

func TestRunLoadStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := RunLoad(ctx, 10, 2, func(context.Context, int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
