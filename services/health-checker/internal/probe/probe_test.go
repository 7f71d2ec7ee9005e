package probe

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
)

// agentServer is a gRPC health server on loopback that counts the checks
// in flight.
type agentServer struct {
	addr     string
	health   *health.Server
	srv      *grpc.Server
	calls    atomic.Int32
	inFlight atomic.Int32
	maxSeen  atomic.Int32
}

func startAgent(t *testing.T, delay time.Duration) *agentServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &agentServer{addr: lis.Addr().String(), health: health.NewServer()}
	a.srv = grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		a.calls.Add(1)
		n := a.inFlight.Add(1)
		defer a.inFlight.Add(-1)
		for {
			m := a.maxSeen.Load()
			if n <= m || a.maxSeen.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(delay)
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(a.srv, a.health)
	go func() { _ = a.srv.Serve(lis) }()
	t.Cleanup(a.srv.Stop)
	return a
}

func TestProbeAllResults(t *testing.T) {
	ok, sick, dead := startAgent(t, 0), startAgent(t, 0), startAgent(t, 0)
	sick.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	dead.srv.Stop()
	p := New(Config{Timeout: time.Second})
	defer p.Close()
	for name, a := range map[string]*agentServer{"ok": ok, "sick": sick, "dead": dead} {
		if err := p.Set(name, a.addr); err != nil {
			t.Fatal(err)
		}
	}
	p.ProbeAll(context.Background())
	if r, _ := p.Result("ok"); !r.Serving() || !r.Answered() {
		t.Errorf("ok: %+v, want SERVING", r)
	}
	if r, _ := p.Result("sick"); r.Serving() || !r.Answered() || r.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("sick: %+v, want an answer of NOT_SERVING", r)
	}
	if r, _ := p.Result("dead"); r.Answered() || r.Err == nil {
		t.Errorf("dead: %+v, want an error and no answer", r)
	}
	p.Remove("ok")
	if _, known := p.Result("ok"); known {
		t.Error("a removed node still has results")
	}
}

// A shared counter over all agents shows the bound: never more than
// Concurrency checks in flight in total.
func TestConcurrencyBoundAcrossNodes(t *testing.T) {
	const nodes, limit = 10, 2
	var mu sync.Mutex
	inFlight, peak := 0, 0
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		inFlight--
		mu.Unlock()
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	p := New(Config{Concurrency: limit, Timeout: 5 * time.Second})
	defer p.Close()
	for i := 0; i < nodes; i++ { // every node's endpoint is the same server
		if err := p.Set(fmt.Sprintf("n%d", i), lis.Addr().String()); err != nil {
			t.Fatal(err)
		}
	}
	p.ProbeAll(context.Background())
	if peak > limit || peak < 1 {
		t.Errorf("peak checks in flight %d, want between 1 and %d", peak, limit)
	}
}

func TestRunProbesEveryNodeRepeatedly(t *testing.T) {
	a, b := startAgent(t, 0), startAgent(t, 0)
	p := New(Config{Interval: 20 * time.Millisecond, Jitter: 0.5, Timeout: time.Second})
	_ = p.Set("a", a.addr)
	_ = p.Set("b", b.addr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	deadline := time.Now().Add(20 * time.Second)
	for a.calls.Load() < 3 || b.calls.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("checks: a %d, b %d; want at least 3 each", a.calls.Load(), b.calls.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if err := p.Set("c", a.addr); err == nil {
		t.Error("Set after Run ended succeeded; want an error for a closed prober")
	}
}

func TestEndpointOf(t *testing.T) {
	node := func(ann string, port int32, addrs ...*corev1.NodeAddress) *corev1.Node {
		n := &corev1.Node{Metadata: &metav1.ObjectMeta{Name: "n"}, Status: &corev1.NodeStatus{Addresses: addrs}}
		if ann != "" {
			n.Metadata.Annotations = map[string]string{EndpointAnnotation: ann}
		}
		if port != 0 {
			n.Status.DaemonEndpoints = &corev1.NodeDaemonEndpoints{KubeletEndpoint: &corev1.DaemonEndpoint{Port: port}}
		}
		return n
	}
	host := &corev1.NodeAddress{Type: "Hostname", Address: "node-1"}
	ip := &corev1.NodeAddress{Type: "InternalIP", Address: "10.0.0.7"}
	v6 := &corev1.NodeAddress{Type: "InternalIP", Address: "fd00::7"}
	for _, tt := range []struct {
		n    *corev1.Node
		want string
	}{
		{node("", 10250, host, ip), "10.0.0.7:10250"},
		{node("", 10250, host), "node-1:10250"},
		{node("", 10250, v6), "[fd00::7]:10250"},
		{node("", 0, ip), ""},
		{node("", 10250), ""},
		{node("127.0.0.1:9999", 10250, ip), "127.0.0.1:9999"},
	} {
		if got := EndpointOf(tt.n); got != tt.want {
			t.Errorf("EndpointOf(%v) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
