package controlplane_test

import (
	"bytes"
	"context"
	"fmt"

	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	grpcxds "google.golang.org/grpc/xds"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/services/apiserver/apiserver"
	"bosun.dev/services/service-proxy/internal/bootstrap"
	"bosun.dev/services/service-proxy/internal/controlplane"
)

// startAPIServer runs a real apiserver on embedded etcd for the test.
func startAPIServer(t testing.TB) *grpc.ClientConn {
	t.Helper()
	if testing.Short() {
		t.Skip("starts an apiserver on embedded etcd")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := apiserver.New(ctx, apiserver.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Insecure: true,
		CompactionInterval: -1, BookmarkInterval: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); cancel(); <-done })
	eventually(t, 30*time.Second, func() error {
		_, err := client.For[*corev1.Namespace](conn).Get(ctx, "", "default")
		return err
	})
	return conn
}

// lockedBuffer collects logs written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proxy is a running service-proxy control plane.
type proxy struct {
	addr string
	cp   *controlplane.ControlPlane
	reg  *prometheus.Registry
	logs *lockedBuffer
}

func startProxy(t testing.TB, apiConn *grpc.ClientConn, opts ...grpc.ServerOption) *proxy {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &proxy{reg: prometheus.NewRegistry(), logs: &lockedBuffer{}}
	log := slog.New(slog.NewJSONHandler(p.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	p.cp = controlplane.New(ctx, controlplane.Config{APIServer: apiConn, Logger: log, Registry: p.reg, PhaseTimeout: 2 * time.Second})
	g := grpc.NewServer(opts...)
	p.cp.Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	p.addr = lis.Addr().String()
	served := make(chan struct{})
	go func() { defer close(served); _ = g.Serve(lis) }()
	ran := make(chan struct{})
	go func() { defer close(ran); _ = p.cp.Run(ctx) }()
	t.Cleanup(func() { cancel(); g.Stop(); <-served; <-ran })
	select {
	case <-p.cp.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("control plane did not serve its first configuration")
	}
	return p
}

// counter returns the sum of the metric's samples whose labels include
// the given ones.
func (p *proxy) counter(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := p.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				if !hasLabel(m, k, v) {
					continue metric
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

func hasLabel(m *dto.Metric, k, v string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == k && l.GetValue() == v {
			return true
		}
	}
	return false
}

// backend is a gRPC server on loopback that answers UnaryCall with its name.
type backend struct {
	name string
	port int32
	srv  *grpc.Server
	done chan struct{}
}

type echoServer struct {
	testgrpc.UnimplementedTestServiceServer
	name string
}

func (e echoServer) UnaryCall(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{ServerId: e.name}, nil
}

func startBackend(t *testing.T, name string) *backend {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{name: name, port: int32(lis.Addr().(*net.TCPAddr).Port), srv: grpc.NewServer(), done: make(chan struct{})}
	testgrpc.RegisterTestServiceServer(b.srv, echoServer{name: name})
	go func() { defer close(b.done); _ = b.srv.Serve(lis) }()
	t.Cleanup(b.stop)
	return b
}

func (b *backend) stop() { b.srv.GracefulStop(); <-b.done }

// onNodes puts each backend's address of ep on the Node named by nodeOf.
func onNodes(ep *corev1.Endpoints, nodeOf map[string]string) *corev1.Endpoints {
	for _, ss := range ep.Subsets {
		for _, a := range append(ss.Addresses, ss.NotReadyAddresses...) {
			if n, ok := nodeOf[a.GetTargetRef().GetName()]; ok {
				a.NodeName = &n
			}
		}
	}
	return ep
}

// endpoints lists ready and not-ready backends, each in a subset of its
// own since each listens on its own port of 127.0.0.1.
func endpoints(name, portName string, ready, notReady []*backend) *corev1.Endpoints {
	ep := &corev1.Endpoints{Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default"}}
	add := func(b *backend, isReady bool) {
		ss := &corev1.EndpointSubset{Ports: []*corev1.EndpointPort{{Name: portName, Port: b.port, Protocol: "TCP"}}}
		addr := []*corev1.EndpointAddress{{Ip: "127.0.0.1", TargetRef: &metav1.ObjectReference{Kind: "Pod", Name: b.name, Namespace: "default"}}}
		if isReady {
			ss.Addresses = addr
		} else {
			ss.NotReadyAddresses = addr
		}
		ep.Subsets = append(ep.Subsets, ss)
	}
	for _, b := range ready {
		add(b, true)
	}
	for _, b := range notReady {
		add(b, false)
	}
	return ep
}

func service(name string, annotations map[string]string, ports ...*corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default", Annotations: annotations},
		Spec:     &corev1.ServiceSpec{Ports: ports},
	}
}

// dialXDS dials target through grpc-go's xDS resolver, with a bootstrap
// for node id nodeID written by the bootstrap package.
func dialXDS(t *testing.T, xdsAddr, nodeID, target string) *grpc.ClientConn {
	t.Helper()
	return dialXDSFrom(t, xdsAddr, nodeID, "", target)
}

// dialXDSFrom is dialXDS for a client that says it runs on Node nodeName.
func dialXDSFrom(t *testing.T, xdsAddr, nodeID, nodeName, target string) *grpc.ClientConn {
	t.Helper()
	return dialXDSWith(t, bootstrap.Options{NodeID: nodeID, NodeName: nodeName, XDSAddress: xdsAddr}, target)
}

// dialXDSWith dials target with the gRPC bootstrap written from o.
func dialXDSWith(t *testing.T, o bootstrap.Options, target string) *grpc.ClientConn {
	t.Helper()
	cfg, err := bootstrap.GRPCJSON(o)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := grpcxds.NewXDSResolverWithConfigForTesting(cfg)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("xds:///"+target, grpc.WithResolvers(rb), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// batch sends n RPCs one after the other and counts the answers by backend.
func batch(ctx context.Context, conn *grpc.ClientConn, n int) (map[string]int, error) {
	c := testgrpc.NewTestServiceClient(conn)
	got := map[string]int{}
	for i := 0; i < n; i++ {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := c.UnaryCall(rctx, &testpb.SimpleRequest{}, grpc.WaitForReady(true))
		cancel()
		if err != nil {
			return got, err
		}
		got[resp.GetServerId()]++
	}
	return got, nil
}

// load sends RPCs without pause until stopped, and counts failures.
type load struct {
	cancel   context.CancelFunc
	done     chan struct{}
	mu       sync.Mutex
	ok       int
	failures []error
}

func startLoad(conn *grpc.ClientConn) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel, done: make(chan struct{})}
	c := testgrpc.NewTestServiceClient(conn)
	go func() {
		defer close(l.done)
		for ctx.Err() == nil {
			rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := c.UnaryCall(rctx, &testpb.SimpleRequest{})
			rcancel()
			l.mu.Lock()
			if err != nil {
				l.failures = append(l.failures, err)
			} else {
				l.ok++
			}
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *load) stop() (ok int, failures []error) {
	l.cancel()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok, l.failures
}

func eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func names(m map[string]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	return strings.Join(parts, " ")
}
