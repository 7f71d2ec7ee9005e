package leaderelection_test

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	clocktesting "k8s.io/utils/clock/testing"

	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	"bosun.dev/pkg/apitest"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/leaderelection"
)

const (
	leaseDuration = 4 * time.Second
	renewDeadline = 3 * time.Second
	retryPeriod   = 500 * time.Millisecond
	step          = 50 * time.Millisecond
)

var lock = leaderelection.Lock{Namespace: "bosun-system", Name: "scheduler"}

// world is an apiserver, a fake clock every candidate shares, and a monitor
// of how many candidates are leading at once.
type world struct {
	t       *testing.T
	srv     *apitest.Server
	clock   *clocktesting.FakeClock
	leading atomic.Int32
	maxLead atomic.Int32
}

func newWorld(t *testing.T) *world {
	return &world{t: t, srv: apitest.NewServer(t), clock: clocktesting.NewFakeClock(time.Unix(1_000_000, 0))}
}

type candidate struct {
	id       string
	el       *leaderelection.Elector
	cancel   context.CancelFunc
	done     chan struct{}
	blocked  atomic.Bool // partitions the candidate from the apiserver
	mu       sync.Mutex
	fences   []leaderelection.Fence
	started  []time.Time // fake time of each OnStartedLeading
	stopped  []time.Time // fake time each leader context was seen cancelled
	lastPut  time.Time   // fake time a successful UpdateLease/CreateLease was sent
	stoppedN atomic.Int32
}

func (w *world) start(id string) *candidate {
	w.t.Helper()
	c := &candidate{id: id, done: make(chan struct{})}
	conn, err := grpc.NewClient(w.srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			if c.blocked.Load() {
				return status.Error(codes.Unavailable, "partitioned by the test")
			}
			sent := w.clock.Now()
			err := invoker(ctx, method, req, reply, cc, opts...)
			if err == nil && (method == coordinationv1.LeaseService_UpdateLease_FullMethodName || method == coordinationv1.LeaseService_CreateLease_FullMethodName) {
				c.mu.Lock()
				c.lastPut = sent
				c.mu.Unlock()
			}
			return err
		}))
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { _ = conn.Close() })
	c.el, err = leaderelection.New(leaderelection.Config{
		Conn: conn, Lock: lock, Identity: id, Clock: w.clock, Logger: slog.New(slog.DiscardHandler),
		LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod,
		Callbacks: leaderelection.Callbacks{
			OnStartedLeading: func(ctx context.Context, f leaderelection.Fence) {
				if n := w.leading.Add(1); n > w.maxLead.Load() {
					w.maxLead.Store(n)
				}
				c.mu.Lock()
				c.fences = append(c.fences, f)
				c.started = append(c.started, w.clock.Now())
				c.mu.Unlock()
				<-ctx.Done()
				c.mu.Lock()
				c.stopped = append(c.stopped, w.clock.Now())
				c.mu.Unlock()
				w.leading.Add(-1)
			},
			OnStoppedLeading: func() { c.stoppedN.Add(1) },
		},
	})
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() { _ = c.el.Run(ctx); close(c.done) }()
	w.t.Cleanup(func() { cancel(); <-c.done })
	return c
}

// advance steps the fake clock until cond holds, failing after limit of fake time.
func (w *world) advance(limit time.Duration, what string, cond func() bool) time.Duration {
	w.t.Helper()
	var elapsed time.Duration
	for !cond() {
		if elapsed > limit {
			w.t.Fatalf("%s: not within %v of fake time", what, limit)
		}
		time.Sleep(2 * time.Millisecond) // let RPCs and timers run
		if cond() {
			break
		}
		w.clock.Step(step)
		elapsed += step
	}
	return elapsed
}

func leaders(cs ...*candidate) []*candidate {
	var out []*candidate
	for _, c := range cs {
		if c.el.IsLeader() {
			out = append(out, c)
		}
	}
	return out
}

func (c *candidate) snapshot() (fences []leaderelection.Fence, started, stopped []time.Time, lastPut time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]leaderelection.Fence(nil), c.fences...), append([]time.Time(nil), c.started...), append([]time.Time(nil), c.stopped...), c.lastPut
}

func (c *candidate) leadingNow() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.started) > len(c.stopped)
}

func TestOneLeaderAmongThree(t *testing.T) {
	w := newWorld(t)
	a, b, c := w.start("a"), w.start("b"), w.start("c")
	w.advance(10*time.Second, "a leader", func() bool { return len(leaders(a, b, c)) == 1 })
	leader := leaders(a, b, c)[0]
	w.advance(10*time.Second, "everyone sees the leader", func() bool {
		return a.el.Leader() == leader.id && b.el.Leader() == leader.id && c.el.Leader() == leader.id
	})
	// Well past several lease durations, nothing changes.
	end := w.clock.Now().Add(3 * leaseDuration)
	w.advance(4*leaseDuration, "time to pass", func() bool { return !w.clock.Now().Before(end) })
	if got := leaders(a, b, c); len(got) != 1 || got[0] != leader {
		t.Fatalf("leaders changed to %v", got)
	}
	if m := w.maxLead.Load(); m != 1 {
		t.Fatalf("%d candidates led at once", m)
	}
	if fences, _, _, _ := leader.snapshot(); len(fences) != 1 || fences[0].Token != 1 {
		t.Fatalf("leader's fences %v, want one with token 1", fences)
	}
}

func TestTakeoverOnlyAfterLeaseDuration(t *testing.T) {
	w := newWorld(t)
	a := w.start("a")
	w.advance(5*time.Second, "a leads", a.el.IsLeader)
	b := w.start("b")
	w.advance(5*time.Second, "b observes a", func() bool { return b.el.Leader() == "a" })
	// Let a renew a few times, then cut it off from the apiserver.
	before := w.clock.Now().Add(2 * time.Second)
	w.advance(3*time.Second, "renewals", func() bool { return !w.clock.Now().Before(before) })
	a.blocked.Store(true)

	w.advance(3*leaseDuration, "b takes over", b.leadingNow)
	_, aStarted, aStopped, lastRenew := a.snapshot()
	_, bStarted, _, _ := b.snapshot()
	if len(aStopped) != 1 || len(aStarted) != 1 {
		t.Fatalf("a started %v and stopped %v, want once each", aStarted, aStopped)
	}
	if took := bStarted[0].Sub(lastRenew); took < leaseDuration {
		t.Fatalf("b took over %v after a's last renewal, before the lease duration %v", took, leaseDuration)
	} else if took > leaseDuration+2*retryPeriod+2*step {
		t.Fatalf("b took over only %v after a's last renewal", took)
	}
	if stop := aStopped[0].Sub(lastRenew); stop > renewDeadline+step {
		t.Fatalf("a stopped leading %v after its last renewal, after the renew deadline %v", stop, renewDeadline)
	}
	if !aStopped[0].Before(bStarted[0]) {
		t.Fatalf("a stopped at %v, not before b started at %v", aStopped[0], bStarted[0])
	}
	if m := w.maxLead.Load(); m != 1 {
		t.Fatalf("%d candidates led at once", m)
	}
	if a.stoppedN.Load() != 1 {
		t.Fatal("OnStoppedLeading not called on a")
	}
}

func TestReleaseOnCancelLetsStandbyTakeOver(t *testing.T) {
	w := newWorld(t)
	a := w.start("a")
	w.advance(5*time.Second, "a leads", a.el.IsLeader)
	b := w.start("b")
	w.advance(5*time.Second, "b observes a", func() bool { return b.el.Leader() == "a" })
	a.cancel()
	<-a.done // Run returns after the release; no fake time needed
	if a.stoppedN.Load() != 1 {
		t.Fatal("OnStoppedLeading not called on a")
	}
	leases := client.For[*coordinationv1.Lease](w.srv.Conn())
	l, err := leases.Get(context.Background(), lock.Namespace, lock.Name)
	if err != nil {
		t.Fatal(err)
	}
	if h := l.GetSpec().GetHolderIdentity(); h != "" && h != "b" {
		t.Fatalf("after release the holder is %q", h)
	}
	took := w.advance(leaseDuration, "b takes over", b.el.IsLeader)
	if took > retryPeriod*6/5+step {
		t.Fatalf("b took %v of fake time to take over a released lease", took)
	}
}

func TestFenceTokensStrictlyIncrease(t *testing.T) {
	w := newWorld(t)
	cs := []*candidate{w.start("a"), w.start("b"), w.start("c")}
	var all []leaderelection.Fence
	for round := range 5 {
		var leader *candidate
		w.advance(10*time.Second, "a leader", func() bool {
			for _, c := range cs {
				if c.leadingNow() {
					leader = c
					return true
				}
			}
			return false
		})
		fences, _, _, _ := leader.snapshot()
		all = append(all, fences[len(fences)-1])
		leader.cancel()
		<-leader.done
		// Replace the stopped candidate with a fresh one of the same name.
		for i, c := range cs {
			if c == leader {
				cs[i] = w.start(fmt.Sprintf("%s-%d", c.id, round))
			}
		}
	}
	for i := 1; i < len(all); i++ {
		if all[i].Token <= all[i-1].Token {
			t.Fatalf("fence tokens not strictly increasing: %v", all)
		}
		if rv(t, all[i].ResourceVersion) <= rv(t, all[i-1].ResourceVersion) {
			t.Fatalf("fence revisions not increasing: %v", all)
		}
	}
	if m := w.maxLead.Load(); m != 1 {
		t.Fatalf("%d candidates led at once", m)
	}
}

func rv(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("resource_version %q: %v", s, err)
	}
	return n
}

func TestLeaderThatCannotRenewStepsDownFirst(t *testing.T) {
	w := newWorld(t)
	a := w.start("a")
	w.advance(5*time.Second, "a leads", a.el.IsLeader)
	b := w.start("b")
	w.advance(5*time.Second, "b observes a", func() bool { return b.el.Leader() == "a" })
	// The apiserver refuses a's writes; a can still read.
	w.srv.SetFault(func(method string, req any) error {
		if r, ok := req.(*coordinationv1.UpdateLeaseRequest); ok && r.GetLease().GetSpec().GetHolderIdentity() == "a" {
			return status.Error(codes.Unavailable, "etcd is unhappy")
		}
		return nil
	})
	w.advance(3*leaseDuration, "b leads", b.leadingNow)
	_, _, aStopped, lastRenew := a.snapshot()
	_, bStarted, _, _ := b.snapshot()
	if len(aStopped) != 1 {
		t.Fatalf("a stopped %d times", len(aStopped))
	}
	if d := aStopped[0].Sub(lastRenew); d > renewDeadline+step {
		t.Fatalf("a led for %v without renewing (renew deadline %v)", d, renewDeadline)
	}
	if !aStopped[0].Before(bStarted[0]) || bStarted[0].Sub(lastRenew) < leaseDuration {
		t.Fatalf("a's last renewal %v, a stopped %v, b started %v", lastRenew, aStopped[0], bStarted[0])
	}
	if a.el.IsLeader() {
		t.Fatal("a still claims leadership")
	}
	if m := w.maxLead.Load(); m != 1 {
		t.Fatalf("%d candidates led at once", m)
	}
}

func TestFenceStamp(t *testing.T) {
	f := leaderelection.Fence{Token: 7, ResourceVersion: "1234"}
	l := &coordinationv1.Lease{}
	f.Stamp(l)
	got, ok := leaderelection.FenceOf(l)
	if !ok || got != f {
		t.Fatalf("FenceOf = %v, %v; want %v", got, ok, f)
	}
	if _, ok := leaderelection.FenceOf(&coordinationv1.Lease{}); ok {
		t.Fatal("FenceOf found a fence on an unstamped object")
	}
}

func TestConfigValidation(t *testing.T) {
	srv := apitest.NewServer(t)
	for _, cfg := range []leaderelection.Config{
		{Lock: lock, Identity: "a"},
		{Conn: srv.Conn(), Identity: "a"},
		{Conn: srv.Conn(), Lock: lock},
		{Conn: srv.Conn(), Lock: lock, Identity: "a", LeaseDuration: time.Second, RenewDeadline: 2 * time.Second},
	} {
		if _, err := leaderelection.New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}
