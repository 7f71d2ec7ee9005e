package scheduler_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/scheduler/internal/scheduler"
)

// replica is one scheduler process: its own connection, which the test
// can cut, and a count of the binds it made.
type replica struct {
	s       *scheduler.Scheduler
	cut     atomic.Bool
	cancel  context.CancelFunc
	done    chan error
	binds   *bindLog
	replica string
}

type bindLog struct {
	mu sync.Mutex
	by map[string][]string // pod -> replicas that bound it
}

func (l *bindLog) add(pod, replica string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.by[pod] = append(l.by[pod], replica)
}

func (c *cluster) startReplica(name string, log *bindLog) *replica {
	c.t.Helper()
	r := &replica{done: make(chan error, 1), binds: log, replica: name}
	conn, err := grpc.NewClient(c.api.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			if r.cut.Load() {
				return status.Error(codes.Unavailable, "replica cut off by the test")
			}
			err := invoker(ctx, method, req, reply, cc, opts...)
			if err == nil && method == corev1.PodService_BindPod_FullMethodName {
				log.add(req.(*corev1.BindPodRequest).GetName(), name)
			}
			return err
		}),
		grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			if r.cut.Load() {
				return nil, status.Error(codes.Unavailable, "replica cut off by the test")
			}
			return streamer(ctx, desc, cc, method, opts...)
		}))
	if err != nil {
		c.t.Fatal(err)
	}
	s, err := scheduler.New(scheduler.Config{
		Conn: conn, Logger: slog.New(slog.DiscardHandler), InitialBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		LeaderElection: scheduler.LeaderElection{Enabled: true, Identity: name,
			LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 200 * time.Millisecond},
	})
	if err != nil {
		c.t.Fatal(err)
	}
	r.s = s
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- s.Run(ctx) }()
	c.t.Cleanup(func() {
		cancel()
		<-r.done
		conn.Close()
	})
	return r
}

// The leader is cut off from the apiserver in the middle of a stream of
// pods, as if it crashed: the standby takes over when the lease expires,
// every pod is bound, and no pod is bound twice.
func TestLeaderFailoverBindsEveryPodOnce(t *testing.T) {
	// The apiserver counts the binds it carries out, per pod.
	served := &bindLog{by: map[string][]string{}}
	c := startCluster(t, func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err == nil && info.FullMethod == corev1.PodService_BindPod_FullMethodName {
			b := req.(*corev1.BindPodRequest)
			served.add(b.GetName(), b.GetNodeName())
		}
		return resp, err
	})
	for i := 0; i < 10; i++ {
		c.addNode(fmt.Sprintf("n%d", i), "64", "256Gi")
	}
	log := &bindLog{by: map[string][]string{}}
	a := c.startReplica("a", log)
	eventually(t, 30*time.Second, func() error {
		if !a.s.Leading() {
			return fmt.Errorf("a does not lead yet")
		}
		return nil
	})
	b := c.startReplica("b", log)

	const total = 300
	ctx := context.Background()
	created := make(chan struct{})
	go func() {
		defer close(created)
		for i := 0; i < total; i++ {
			c.addPod(fmt.Sprintf("p%03d", i), requests("10m", "10Mi"))
		}
	}()
	eventually(t, 30*time.Second, func() error {
		if n := c.boundCount(ctx); n < total/4 {
			return fmt.Errorf("%d pods bound", n)
		}
		return nil
	})
	a.cut.Store(true)
	eventually(t, 30*time.Second, func() error {
		select {
		case err := <-a.done:
			a.done <- err // for the cleanup
			t.Fatalf("the cut-off leader stopped instead of standing again: %v", err)
		default:
		}
		if a.s.Leading() {
			return fmt.Errorf("the cut-off leader has not stepped down")
		}
		return nil
	})
	<-created
	eventually(t, 60*time.Second, func() error {
		select {
		case err := <-b.done:
			b.done <- err
			t.Fatalf("the new leader stopped: %v", err)
		default:
		}
		if n := c.boundCount(ctx); n != total {
			return fmt.Errorf("%d of %d pods bound", n, total)
		}
		return nil
	})
	if !b.s.Leading() {
		t.Fatal("the standby does not lead")
	}
	// A bind's reply may trail the watch event that shows the pod bound.
	eventually(t, 30*time.Second, func() error {
		served.mu.Lock()
		defer served.mu.Unlock()
		if len(served.by) < total {
			return fmt.Errorf("the apiserver has answered %d binds", len(served.by))
		}
		return nil
	})
	served.mu.Lock()
	defer served.mu.Unlock()
	for pod, nodes := range served.by {
		if len(nodes) != 1 {
			t.Errorf("pod %s bound %d times, to %v", pod, len(nodes), nodes)
		}
	}
	if len(served.by) != total {
		t.Errorf("the apiserver bound %d pods, want %d", len(served.by), total)
	}
	// Binds as the replicas saw them succeed (a bind in flight when the
	// leader was cut off may have succeeded unseen).
	log.mu.Lock()
	defer log.mu.Unlock()
	byReplica := map[string]int{}
	for _, who := range log.by {
		for _, r := range who {
			byReplica[r]++
		}
	}
	if byReplica["a"] == 0 || byReplica["b"] == 0 {
		t.Fatalf("binds by replica %v; want both to have bound pods", byReplica)
	}
	log.mu.Unlock()

	// The deposed leader stood for election again: once it can reach the
	// apiserver and the other replica is gone, it leads and binds anew.
	a.cut.Store(false)
	b.cancel()
	err := <-b.done
	b.done <- err // for the cleanup
	for i := 0; i < 20; i++ {
		c.addPod(fmt.Sprintf("q%02d", i), requests("10m", "10Mi"))
	}
	eventually(t, 60*time.Second, func() error {
		if !a.s.Leading() {
			return fmt.Errorf("the first replica does not lead again")
		}
		if n := c.boundCount(ctx); n != total+20 {
			return fmt.Errorf("%d of %d pods bound", n, total+20)
		}
		return nil
	})
	log.mu.Lock()
}

func (c *cluster) boundCount(ctx context.Context) int {
	pods, _, err := c.pods.ListAll(ctx, clientListAll)
	if err != nil {
		c.t.Fatal(err)
	}
	n := 0
	for _, p := range pods {
		if p.GetSpec().GetNodeName() != "" {
			n++
		}
	}
	return n
}
