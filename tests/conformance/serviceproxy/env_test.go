package serviceproxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	grpcxds "google.golang.org/grpc/xds"
	"google.golang.org/protobuf/proto"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/tests/conformance/harness"
)

// env is one case's cluster: a fresh apiserver, the API seen by an
// administrator, and the implementation under test, started as
// bosun-service-proxy as many times as the case needs replicas.
type env struct {
	t         *testing.T
	ctx       context.Context
	impl      harness.Implementation
	cluster   *harness.Cluster
	services  *client.Resource[*corev1.Service]
	endpoints *client.Resource[*corev1.Endpoints]
}

func newEnv(t *testing.T, impl harness.Implementation) *env {
	t.Helper()
	c := harness.StartCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, impl: impl, cluster: c,
		services: client.For[*corev1.Service](c.Admin), endpoints: client.For[*corev1.Endpoints](c.Admin)}
	for _, ns := range []string{namespace, otherNamespace} {
		if _, err := client.For[*corev1.Namespace](c.Admin).Create(ctx, &corev1.Namespace{Metadata: &metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatalf("creating namespace %s: %v", ns, err)
		}
	}
	return e
}

// replica starts one replica of the implementation; it serves xDS on its
// --listen address (Process.Listen).
func (e *env) replica() *harness.Process {
	e.t.Helper()
	return e.cluster.Start(e.t, e.impl, serviceProxyUser)
}

// servicePort is a port of a Service and the port its pods listen on.
type servicePort struct {
	name   string
	port   int32
	target int32
	app    string // appProtocol, "" for none
}

// createService creates Service name in ns with ports; clusterIP may be "".
func (e *env) createService(ns, name, clusterIP string, ports ...servicePort) *corev1.Service {
	e.t.Helper()
	svc := &corev1.Service{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:     &corev1.ServiceSpec{ClusterIp: clusterIP},
	}
	for _, p := range ports {
		sp := &corev1.ServicePort{Name: p.name, Port: p.port, Protocol: "TCP",
			TargetPort: &metav1.IntOrString{IntVal: p.target}}
		if p.app != "" {
			sp.AppProtocol = proto.String(p.app)
		}
		svc.Spec.Ports = append(svc.Spec.Ports, sp)
	}
	created, err := e.services.Create(e.ctx, svc)
	if err != nil {
		e.t.Fatalf("creating service %s/%s: %v", ns, name, err)
	}
	return created
}

func (e *env) deleteService(ns, name string) {
	e.t.Helper()
	if _, err := e.services.Delete(e.ctx, ns, name, client.DeleteOptions{}); err != nil {
		e.t.Fatalf("deleting service %s/%s: %v", ns, name, err)
	}
}

// endpoint is one backend address as the Endpoints controller lists it.
type endpoint struct {
	ip    string
	ports map[string]int32 // port name -> port
	pod   string
}

// setEndpoints creates or replaces the Endpoints of Service ns/name: each
// backend is a subset of its own, since backends on 127.0.0.1 differ by
// port.
func (e *env) setEndpoints(ns, name string, ready, notReady []endpoint) {
	e.t.Helper()
	ep := &corev1.Endpoints{Metadata: &metav1.ObjectMeta{Name: name, Namespace: ns}}
	add := func(b endpoint, isReady bool) {
		ss := &corev1.EndpointSubset{}
		names := make([]string, 0, len(b.ports))
		for n := range b.ports {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			ss.Ports = append(ss.Ports, &corev1.EndpointPort{Name: n, Port: b.ports[n], Protocol: "TCP"})
		}
		a := []*corev1.EndpointAddress{{Ip: b.ip, TargetRef: &metav1.ObjectReference{Kind: "Pod", Name: b.pod, Namespace: ns}}}
		if isReady {
			ss.Addresses = a
		} else {
			ss.NotReadyAddresses = a
		}
		ep.Subsets = append(ep.Subsets, ss)
	}
	for _, b := range ready {
		add(b, true)
	}
	for _, b := range notReady {
		add(b, false)
	}
	err := client.RetryOnConflict(e.ctx, client.DefaultRetry, func() error {
		old, err := e.endpoints.Get(e.ctx, ns, name)
		if err != nil {
			_, err = e.endpoints.Create(e.ctx, ep)
			return err
		}
		old.Subsets = ep.Subsets
		_, err = e.endpoints.Update(e.ctx, old)
		return err
	})
	if err != nil {
		e.t.Fatalf("writing endpoints %s/%s: %v", ns, name, err)
	}
}

// backend is a gRPC server on 127.0.0.1 that answers
// grpc.testing.TestService/UnaryCall with its name.
type backend struct {
	name string
	port int32
	srv  *grpc.Server
	done chan struct{}
	once sync.Once
}

type echoServer struct {
	testgrpc.UnimplementedTestServiceServer
	name string
}

func (s echoServer) UnaryCall(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{ServerId: s.name}, nil
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

func (b *backend) stop() { b.once.Do(func() { b.srv.Stop(); <-b.done }) }

// endpoint lists the backend under port name portName.
func (b *backend) endpoint(portName string) endpoint {
	return endpoint{ip: "127.0.0.1", ports: map[string]int32{portName: b.port}, pod: b.name}
}

func backendEndpoints(portName string, bs ...*backend) []endpoint {
	out := make([]endpoint, len(bs))
	for i, b := range bs {
		out[i] = b.endpoint(portName)
	}
	return out
}

// grpcBootstrap is a gRPC xDS bootstrap for a proxyless client with node
// id nodeID, talking xDS v3 to xdsAddr: over mutual TLS with the admin's
// certificate (grpc-go's "tls" channel credentials), or in plaintext when
// the cluster is insecure.
func grpcBootstrap(c *harness.Cluster, xdsAddr, nodeID string) []byte {
	creds := map[string]any{"type": "insecure"}
	if c.Secure {
		ca, cert, key := c.AdminFiles()
		creds = map[string]any{"type": "tls", "config": map[string]string{
			"ca_certificate_file": ca, "certificate_file": cert, "private_key_file": key}}
	}
	b, err := json.Marshal(map[string]any{
		"xds_servers": []any{map[string]any{
			"server_uri":      xdsAddr,
			"channel_creds":   []any{creds},
			"server_features": []string{"xds_v3"},
		}},
		"node": map[string]any{"id": nodeID},
	})
	if err != nil {
		panic(err) // only maps of strings
	}
	return b
}

// dialXDS dials xds:///target with grpc-go's own xDS client (its own
// client, not shared with other channels), configured for the
// implementation at xdsAddr.
func dialXDS(t *testing.T, c *harness.Cluster, xdsAddr, nodeID, target string) *grpc.ClientConn {
	t.Helper()
	rb, err := grpcxds.NewXDSResolverWithConfigForTesting(grpcBootstrap(c, xdsAddr, nodeID))
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

// batch sends n RPCs one after the other, each waiting for a ready
// backend, and counts the answers by backend.
func batch(ctx context.Context, conn *grpc.ClientConn, n int) (map[string]int, error) {
	c := testgrpc.NewTestServiceClient(conn)
	got := map[string]int{}
	for i := 0; i < n; i++ {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := c.UnaryCall(rctx, &testpb.SimpleRequest{}, grpc.WaitForReady(true))
		cancel()
		if err != nil {
			return got, err
		}
		got[resp.GetServerId()]++
	}
	return got, nil
}

func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// load sends RPCs on one channel without pause, without waiting for a
// ready backend, until stopped, and records failures.
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
			rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := c.UnaryCall(rctx, &testpb.SimpleRequest{})
			rcancel()
			if ctx.Err() != nil {
				return
			}
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

// forwarder relays TCP connections on a loopback port to an upstream that
// can be switched: a proxy whose control plane address stays the same
// while the replica behind it changes.
type forwarder struct {
	lis      net.Listener
	mu       sync.Mutex
	upstream string
	conns    map[net.Conn]bool
	wg       sync.WaitGroup
}

func startForwarder(t *testing.T, upstream string) *forwarder {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{lis: lis, upstream: upstream, conns: map[net.Conn]bool{}}
	f.wg.Add(1)
	go f.serve()
	t.Cleanup(f.close)
	return f
}

func (f *forwarder) addr() string { return f.lis.Addr().String() }

func (f *forwarder) serve() {
	defer f.wg.Done()
	for {
		in, err := f.lis.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		up := f.upstream
		f.mu.Unlock()
		out, err := net.Dial("tcp", up)
		if err != nil {
			in.Close()
			continue
		}
		if !f.track(in, out) {
			return
		}
		for _, pair := range [][2]net.Conn{{in, out}, {out, in}} {
			f.wg.Add(1)
			go func(dst, src net.Conn) {
				defer f.wg.Done()
				_, _ = io.Copy(dst, src)
				dst.Close()
				src.Close()
			}(pair[0], pair[1])
		}
	}
}

// track remembers a relayed pair; false when the forwarder is closed.
func (f *forwarder) track(conns ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conns == nil {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		f.conns[c] = true
	}
	return true
}

// switchTo sends new connections to upstream and cuts the current ones, so
// the clients reconnect there.
func (f *forwarder) switchTo(upstream string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.upstream = upstream
	for c := range f.conns {
		c.Close()
	}
	f.conns = map[net.Conn]bool{}
}

func (f *forwarder) close() {
	f.lis.Close()
	f.mu.Lock()
	for c := range f.conns {
		c.Close()
	}
	f.conns = nil
	f.mu.Unlock()
	f.wg.Wait()
}
