package checker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/services/health-checker/internal/lease"
	"bosun.dev/services/health-checker/internal/nodestatus"
)

// heartbeat renews the agent's Lease every interval on the real clock until
// ctx ends.
func (a *agent) heartbeat(ctx context.Context, interval time.Duration) {
	leases := client.For[*coordinationv1.Lease](a.w.conn)
	for {
		_ = client.RetryOnConflict(ctx, client.DefaultRetry, func() error {
			l, err := leases.Get(ctx, lease.DefaultNamespace, a.name)
			if err != nil {
				return err
			}
			l.Spec.RenewTime = timestamppb.Now()
			_, err = leases.Update(ctx, l)
			return err
		})
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// Two replicas run for real, with leader election and the real clock, and
// short settings: a killed node-agent's node becomes Unknown, its pod is
// evicted, and when the agent comes back the node is Ready and untainted.
// The detection and eviction times are logged; they are not asserted, only
// that detection never comes before the grace period.
func TestRunWithLeaderElection(t *testing.T) {
	opts := DefaultOptions()
	opts.GracePeriod = time.Second
	opts.MonitorPeriod = 100 * time.Millisecond
	opts.ProbeInterval = 200 * time.Millisecond
	opts.ProbeTimeout = 200 * time.Millisecond
	opts.DefaultTolerationSeconds = 1
	opts.LeaseDuration, opts.RenewDeadline, opts.RetryPeriod = 2*time.Second, 1500*time.Millisecond, 200*time.Millisecond
	runKillAndRestart(t, opts, 200*time.Millisecond, true)
}

// The same with every default, the node-agent renewing each second: the
// figures logged are those docs/benchmarks.md reports for detection and
// eviction (replacement adds the controller, scheduler and new node).
func TestRunWithDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 10 s of real time")
	}
	runKillAndRestart(t, DefaultOptions(), time.Second, false)
}

// runKillAndRestart runs two replicas, kills a node and brings it back; with
// failover it then stops the leading replica and kills the node again, which
// the other replica must notice.
func runKillAndRestart(t *testing.T, opts Options, renewEvery time.Duration, failover bool) {
	w := newWorld(t, testOptions()) // the world's own checker is not run here
	ctx, cancel := context.WithCancel(w.ctx)
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	stopReplica := map[string]context.CancelFunc{}
	for _, id := range []string{"replica-a", "replica-b"} {
		chk, err := New(Config{Conn: w.conn, Options: opts, Identity: id, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		rctx, stop := context.WithCancel(ctx)
		stopReplica[id] = stop
		wg.Add(1)
		go func() { defer wg.Done(); _ = chk.Run(rctx) }()
	}
	n1, n2 := w.addNode("n1"), w.addNode("n2")
	hbCtx, stopN1 := context.WithCancel(ctx)
	wg.Add(2)
	go func() { defer wg.Done(); n1.heartbeat(hbCtx, renewEvery) }()
	go func() { defer wg.Done(); n2.heartbeat(ctx, renewEvery) }()
	w.podOn("n1", "web-1", "ReplicaSet")

	waitReady := func(node, want string) {
		t.Helper()
		eventually(t, node+" Ready="+want, func() error {
			if got := w.ready(node); got != want {
				return fmt.Errorf("Ready=%s", got)
			}
			return nil
		})
	}
	waitReady("n1", nodestatus.StatusTrue)
	waitReady("n2", nodestatus.StatusTrue)

	stopN1()
	n1.stop()
	killed := time.Now()
	waitReady("n1", nodestatus.StatusUnknown)
	detected := time.Since(killed)
	eventually(t, "pod evicted", func() error {
		if s := w.podState("web-1"); s != "gone" {
			return errors.New(s)
		}
		return nil
	})
	evicted := time.Since(killed)
	t.Logf("grace %v, toleration %ds: Unknown after %v, pod evicted after %v", opts.GracePeriod, opts.DefaultTolerationSeconds, detected, evicted)
	// The last renewal was at most one interval (plus a write's latency)
	// before the kill: Unknown earlier than that would be before the grace
	// period ran out.
	if floor := opts.GracePeriod - renewEvery - 250*time.Millisecond; detected < floor {
		t.Errorf("node Unknown %v after the kill, before the grace period %v could have run out (%v)", detected, opts.GracePeriod, floor)
	}
	if !taintKeys(w.node("n1"))[unreachableNoExecute] {
		t.Errorf("n1 taints = %v, want unreachable", taintKeys(w.node("n1")))
	}
	if w.ready("n2") != nodestatus.StatusTrue {
		t.Errorf("n2 Ready=%s while its agent kept running", w.ready("n2"))
	}

	n1.restart()
	hbCtx, stopN1 = context.WithCancel(ctx)
	defer stopN1()
	wg.Add(1)
	go func() { defer wg.Done(); n1.heartbeat(hbCtx, renewEvery) }()
	waitReady("n1", nodestatus.StatusTrue)
	eventually(t, "taint removed", func() error {
		if keys := taintKeys(w.node("n1")); len(keys) != 0 {
			return fmt.Errorf("taints %v", keys)
		}
		return nil
	})
	instances := map[string]bool{}
	for _, reason := range []string{ReasonNodeUnreachable, ReasonEvicted} {
		ns := EventsNamespace
		for _, e := range w.eventsWith(ns, reason) {
			instances[e.GetReportingInstance()] = true
		}
	}
	if len(instances) != 1 {
		t.Fatalf("events reported by %v, want one leader", instances)
	}
	if !failover {
		return
	}
	var leader string
	for id := range instances {
		leader = id
	}
	stopReplica[leader]()
	before := len(w.eventsWith(EventsNamespace, ReasonNodeUnreachable))
	stopN1()
	n1.stop()
	waitReady("n1", nodestatus.StatusUnknown)
	var evs []*corev1.Event
	eventually(t, "event of the second failure", func() error { // written just after the condition
		if evs = w.eventsWith(EventsNamespace, ReasonNodeUnreachable); len(evs) != before+1 {
			return fmt.Errorf("%d %s events, want %d", len(evs), ReasonNodeUnreachable, before+1)
		}
		return nil
	})
	newest := evs[0]
	for _, e := range evs {
		if e.GetLastTimestamp().AsTime().After(newest.GetLastTimestamp().AsTime()) {
			newest = e
		}
	}
	if newest.GetReportingInstance() == leader {
		t.Errorf("the second failure was reported by %s, the replica that was stopped", leader)
	}
}
