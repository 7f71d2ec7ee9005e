package serviceproxy

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	"bosun.dev/tests/conformance/harness"
)

type testCase struct {
	name string
	run  func(t *testing.T, e *env, caps harness.Capabilities)
}

var cases = []testCase{
	{"ProxylessClient", testProxylessClient},
	{"Configuration", testConfiguration},
	{"NACK", testNACK},
	{"Replicas", testReplicas},
}

// grpcPort is the one port of the gRPC Services the cases create.
var grpcPort = servicePort{name: "grpc", port: 50051, target: 50051, app: "grpc"}

// reaches waits until RPCs on conn reach exactly the backends want, then
// sends a fresh batch and fails unless it reaches every one of them and no
// other. It returns how long the first wait took.
func reaches(t *testing.T, ctx context.Context, conn *grpc.ClientConn, want ...*backend) time.Duration {
	t.Helper()
	names := make([]string, len(want))
	for i, b := range want {
		names[i] = b.name
	}
	slices.Sort(names)
	exactly := func(got map[string]int) error {
		keys := make([]string, 0, len(got))
		for k := range got {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, names) {
			return fmt.Errorf("reached %s, want each of %v and no other", counts(got), names)
		}
		return nil
	}
	start := time.Now()
	harness.Eventually(t, waitFor, fmt.Sprintf("RPCs reaching exactly %v", names), func() error {
		got, err := batch(ctx, conn, 10*len(want))
		if err != nil {
			return err
		}
		return exactly(got)
	})
	took := time.Since(start)
	got, err := batch(ctx, conn, 10*len(want))
	if err != nil {
		t.Fatalf("RPCs after reaching %v: %v", names, err)
	}
	if err := exactly(got); err != nil {
		t.Fatalf("a fresh batch of %d RPCs %v", 10*len(want), err)
	}
	t.Logf("%d RPCs spread over %v as %s; that took %v to happen", 10*len(want), names, counts(got), took.Round(time.Millisecond))
	return took
}

// A proxyless gRPC client dialing xds:///echo.shop reaches every ready
// backend and no not-ready one; follows readiness changes, a new backend
// and a removed one without a failed request; and fails cleanly once the
// Service is deleted.
func testProxylessClient(t *testing.T, e *env, _ harness.Capabilities) {
	xdsAddr := e.replica().Listen
	b1, b2, b3 := startBackend(t, "b1"), startBackend(t, "b2"), startBackend(t, "b3")
	// nr is up and answering but never ready: reaching it is a failure.
	nr := startBackend(t, "not-ready")
	e.createService(namespace, "echo", "", grpcPort)
	e.setEndpoints(namespace, "echo", backendEndpoints("grpc", b1, b2, b3), backendEndpoints("grpc", nr))
	target := "echo." + namespace
	conn := dialXDS(t, e.cluster, xdsAddr, "conformance-client-1", target)
	reaches(t, e.ctx, conn, b1, b2, b3)

	// A second client sends RPCs without pause through every change that
	// follows; none may fail.
	conn2 := dialXDS(t, e.cluster, xdsAddr, "conformance-client-2", target)
	reaches(t, e.ctx, conn2, b1, b2, b3)
	l := startLoad(conn2)

	t.Log("b3 turns not ready")
	e.setEndpoints(namespace, "echo", backendEndpoints("grpc", b1, b2), backendEndpoints("grpc", nr, b3))
	reaches(t, e.ctx, conn, b1, b2)

	t.Log("b4 starts, ready")
	b4 := startBackend(t, "b4")
	e.setEndpoints(namespace, "echo", backendEndpoints("grpc", b1, b2, b4), backendEndpoints("grpc", nr, b3))
	reaches(t, e.ctx, conn, b1, b2, b4)

	t.Log("b1 leaves the Endpoints")
	e.setEndpoints(namespace, "echo", backendEndpoints("grpc", b2, b4), backendEndpoints("grpc", nr, b3))
	reaches(t, e.ctx, conn, b2, b4)

	ok, failures := l.stop()
	if len(failures) > 0 {
		t.Errorf("%d of %d RPCs of a second client failed during the changes; first: %v", len(failures), ok+len(failures), failures[0])
	} else if ok == 0 {
		t.Error("the second client sent no RPC")
	} else {
		t.Logf("%d RPCs of a second client during the changes, none failed", ok)
	}

	t.Log("the Service is deleted")
	start := time.Now()
	e.deleteService(namespace, "echo")
	harness.Eventually(t, waitFor, "RPCs to a deleted Service failing with UNAVAILABLE", func() error {
		ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
		defer cancel()
		_, err := testgrpc.NewTestServiceClient(conn).UnaryCall(ctx, &testpb.SimpleRequest{})
		switch status.Code(err) {
		case codes.Unavailable:
			return nil
		case codes.OK:
			return fmt.Errorf("RPCs still succeed")
		default:
			return fmt.Errorf("RPC failed with %v, want UNAVAILABLE at once", err)
		}
	})
	t.Logf("RPCs fail with UNAVAILABLE %v after the Service was deleted", time.Since(start).Round(time.Millisecond))
}

// domains are the virtual host names a port of Service ns/name must carry.
func domains(ns, name string, port int32) []string {
	p := ":" + strconv.Itoa(int(port))
	var out []string
	for _, h := range []string{name, name + "." + ns, name + "." + ns + ".svc." + clusterDomain} {
		out = append(out, h, h+p)
	}
	return out
}

func addrs(ip string, port int32, more ...string) []string {
	out := []string{net.JoinHostPort(ip, strconv.Itoa(int(port)))}
	for _, m := range more {
		out = append(out, net.JoinHostPort(m, strconv.Itoa(int(port))))
	}
	slices.Sort(out)
	return out
}

// expect is a check of a configuration: the endpoints a client reaches
// by some route, against the ready ones.
type expect struct {
	what string
	got  func(config) ([]string, error)
	want []string
}

func expectAll(cfg config, checks []expect, never []string) error {
	for _, c := range checks {
		got, err := c.got(cfg)
		if err != nil {
			return fmt.Errorf("%s: %w", c.what, err)
		}
		if !slices.Equal(got, c.want) {
			return fmt.Errorf("%s: endpoints %v, want the ready ones %v", c.what, got, c.want)
		}
	}
	all := cfg.allEndpoints()
	for _, n := range never {
		for a := range all {
			if strings.HasPrefix(a, n+":") {
				return fmt.Errorf("address %s is served; it is not ready or gone", a)
			}
		}
	}
	return nil
}

func viaListener(target string) func(config) ([]string, error) {
	return func(c config) ([]string, error) { return c.proxyless(target) }
}

func viaDomains(ns, name string, port int32) func(config) ([]string, error) {
	return func(c config) ([]string, error) { return c.byDomains(domains(ns, name, port)) }
}

// Envoy's view: every resource validates, the configuration is consistent
// (await checks both), Services become listeners, virtual hosts, clusters
// and assignments holding only ready endpoints; the delta variant serves
// the same resources; changes and deletions follow.
func testConfiguration(t *testing.T, e *env, caps harness.Capabilities) {
	xdsAddr := e.replica().Listen
	httpPort := servicePort{name: "http", port: 80, target: 8080, app: "http"}
	e.createService(namespace, "web", "10.96.10.10", httpPort, grpcPort)
	ep := func(ip string, ports ...int32) endpoint {
		p := endpoint{ip: ip, ports: map[string]int32{"http": ports[0]}, pod: "pod-" + ip}
		if len(ports) > 1 {
			p.ports["grpc"] = ports[1]
		}
		return p
	}
	e.setEndpoints(namespace, "web",
		[]endpoint{ep("10.244.1.1", 8080, 50051), ep("10.244.2.1", 8080, 50051)},
		[]endpoint{ep("10.244.3.1", 8080, 50051)})
	// The same name in another namespace is another Service.
	e.createService(otherNamespace, "web", "", httpPort)
	e.setEndpoints(otherNamespace, "web", []endpoint{ep("10.245.1.1", 8080)}, nil)
	e.createService(namespace, "db", "10.96.10.11", servicePort{name: "tcp-postgres", port: 5432, target: 5432})
	e.setEndpoints(namespace, "db", []endpoint{{ip: "10.244.1.2", ports: map[string]int32{"tcp-postgres": 5432}, pod: "db-0"}}, nil)
	// A Service without Endpoints yet.
	e.createService(namespace, "empty", "", grpcPort)

	checks := []expect{
		{"xds:///web." + namespace, viaListener("web." + namespace), addrs("10.244.1.1", 8080, "10.244.2.1")},
		{"virtual host of web." + namespace + " port 80", viaDomains(namespace, "web", 80), addrs("10.244.1.1", 8080, "10.244.2.1")},
		{"virtual host of web." + namespace + " port 50051", viaDomains(namespace, "web", 50051), addrs("10.244.1.1", 50051, "10.244.2.1")},
		{"xds:///web." + otherNamespace, viaListener("web." + otherNamespace), addrs("10.245.1.1", 8080)},
		{"virtual host of web." + otherNamespace + " port 80", viaDomains(otherNamespace, "web", 80), addrs("10.245.1.1", 8080)},
		{"xds:///empty." + namespace, viaListener("empty." + namespace), []string{}},
		{"any assignment of db." + namespace, func(c config) ([]string, error) {
			if c.allEndpoints()["10.244.1.2:5432"] {
				return []string{"10.244.1.2:5432"}, nil
			}
			return nil, nil
		}, []string{"10.244.1.2:5432"}},
	}
	never := []string{"10.244.3.1"}
	want := func(c config) error { return expectAll(c, checks, never) }

	proxies := []*proxy{startProxy(t, e.cluster, e.ctx, xdsAddr, "conformance-proxy", false)}
	if caps[CapDelta] {
		proxies = append(proxies, startProxy(t, e.cluster, e.ctx, xdsAddr, "conformance-proxy", true))
	} else {
		t.Logf("the delta variant is not checked: the implementation does not claim capability %q", CapDelta)
	}
	var cfgs []config
	for _, p := range proxies {
		cfgs = append(cfgs, p.await("the Services' configuration", want))
	}
	for _, typ := range allTypes {
		t.Logf("%s: %v", shortType(typ), cfgs[0].names(typ))
	}
	sameVariants := func(what string) {
		t.Helper()
		if len(proxies) < 2 {
			return
		}
		harness.Eventually(t, waitFor, what+": SotW and delta serve the same resources", func() error {
			a, _, _ := proxies[0].snapshot()
			b, _, _ := proxies[1].snapshot()
			return diff(a, b)
		})
	}
	sameVariants("initial configuration")

	t.Log("10.244.3.1 turns ready, 10.244.1.1 leaves; web." + otherNamespace + " is deleted")
	e.setEndpoints(namespace, "web", []endpoint{ep("10.244.2.1", 8080, 50051), ep("10.244.3.1", 8080, 50051)}, nil)
	e.deleteService(otherNamespace, "web")
	checks = []expect{
		{"xds:///web." + namespace, viaListener("web." + namespace), addrs("10.244.2.1", 8080, "10.244.3.1")},
		{"virtual host of web." + namespace + " port 50051", viaDomains(namespace, "web", 50051), addrs("10.244.2.1", 50051, "10.244.3.1")},
	}
	never = []string{"10.244.1.1", "10.245.1.1"}
	gone := func(c config) error {
		if err := expectAll(c, checks, never); err != nil {
			return err
		}
		if _, ok := c[listenerType]["web."+otherNamespace]; ok {
			return fmt.Errorf("listener web.%s is still served after its Service was deleted", otherNamespace)
		}
		if _, err := c.byDomains(domains(otherNamespace, "web", 80)); err == nil {
			return fmt.Errorf("a virtual host of web.%s is still served after its Service was deleted", otherNamespace)
		}
		return nil
	}
	for _, p := range proxies {
		p.await("the configuration after the changes", gone)
	}
	sameVariants("after the changes")
}

// rawStream is a SotW or delta ADS stream read in the background.
type rawStream[Resp any] struct {
	t     *testing.T
	resps chan Resp
}

func readStream[Resp any](t *testing.T, recv func() (Resp, error)) *rawStream[Resp] {
	s := &rawStream[Resp]{t: t, resps: make(chan Resp, 256)}
	go func() {
		defer close(s.resps)
		for {
			r, err := recv()
			if err != nil {
				return
			}
			s.resps <- r
		}
	}()
	return s
}

// next returns the next response, failing the test when the stream ends
// or nothing arrives within waitFor.
func (s *rawStream[Resp]) next() Resp {
	s.t.Helper()
	select {
	case r, ok := <-s.resps:
		if !ok {
			s.t.Fatal("the ADS stream ended")
		}
		return r
	case <-time.After(waitFor):
		s.t.Fatalf("no response within %v", waitFor)
	}
	panic("unreachable")
}

// during collects the responses that arrive within d.
func (s *rawStream[Resp]) during(d time.Duration) []Resp {
	var out []Resp
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case r, ok := <-s.resps:
			if !ok {
				return out
			}
			out = append(out, r)
		case <-timer.C:
			return out
		}
	}
}

var rejection = &rpcstatus.Status{Code: int32(codes.InvalidArgument), Message: "rejected by the conformance suite on purpose"}

// nackSotW subscribes to names of type typ (nil: wildcard) on a fresh SotW
// stream, rejects the first response holding resources, and checks that
// the rejected version is not sent again while nothing changes; then
// change makes a change, and the next response must be a new version
// that arrived accepts.
func nackSotW(t *testing.T, e *env, addr, typ string, names []string, change func(), arrived func(*discoveryv3.DiscoveryResponse) bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(e.cluster.DialService(t, addr)).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rs := readStream(t, s.Recv)
	send := func(r *discoveryv3.DiscoveryRequest) {
		t.Helper()
		if err := s.Send(r); err != nil {
			t.Fatal(err)
		}
	}
	send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "conformance-nack-" + shortType(typ)}, TypeUrl: typ, ResourceNames: names})
	accepted := ""
	var rejected *discoveryv3.DiscoveryResponse
	for rejected == nil {
		r := rs.next()
		if len(r.GetResources()) == 0 {
			accepted = r.GetVersionInfo()
			send(&discoveryv3.DiscoveryRequest{TypeUrl: typ, ResourceNames: names, VersionInfo: accepted, ResponseNonce: r.GetNonce()})
			continue
		}
		rejected = r
	}
	send(&discoveryv3.DiscoveryRequest{TypeUrl: typ, ResourceNames: names, VersionInfo: accepted,
		ResponseNonce: rejected.GetNonce(), ErrorDetail: rejection})
	quiet := rs.during(quietPeriod)
	resent := 0
	for _, r := range quiet {
		if r.GetVersionInfo() == rejected.GetVersionInfo() {
			resent++
		}
	}
	if resent > 0 || len(quiet) > 1 {
		t.Fatalf("after rejecting %s version %q, %d responses arrived within %v with nothing changed, %d of them the rejected version again: a proxy that rejects every resend loops",
			shortType(typ), rejected.GetVersionInfo(), len(quiet), quietPeriod, resent)
	}
	t.Logf("SotW %s version %q rejected: %d responses in the next %v", shortType(typ), rejected.GetVersionInfo(), len(quiet), quietPeriod)
	change()
	for {
		r := rs.next()
		if r.GetVersionInfo() == rejected.GetVersionInfo() {
			t.Fatalf("the rejected %s version %q was sent again after a change", shortType(typ), r.GetVersionInfo())
		}
		send(&discoveryv3.DiscoveryRequest{TypeUrl: typ, ResourceNames: names, VersionInfo: r.GetVersionInfo(), ResponseNonce: r.GetNonce()})
		if arrived(r) {
			return
		}
	}
}

// nackDelta is nackSotW for the delta variant, subscribed to names of
// type typ (nil: every one): the rejected resource versions are not sent
// again, and the change arrives.
func nackDelta(t *testing.T, e *env, addr, typ string, names []string, change func(), arrived func(*discoveryv3.DeltaDiscoveryResponse) bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(e.cluster.DialService(t, addr)).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rs := readStream(t, s.Recv)
	send := func(r *discoveryv3.DeltaDiscoveryRequest) {
		t.Helper()
		if err := s.Send(r); err != nil {
			t.Fatal(err)
		}
	}
	send(&discoveryv3.DeltaDiscoveryRequest{Node: &corev3.Node{Id: "conformance-nack-delta-" + shortType(typ)}, TypeUrl: typ, ResourceNamesSubscribe: names})
	var rejected *discoveryv3.DeltaDiscoveryResponse
	for rejected == nil {
		r := rs.next()
		if len(r.GetResources()) == 0 {
			send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: typ, ResponseNonce: r.GetNonce()})
			continue
		}
		rejected = r
	}
	versions := map[string]string{}
	for _, r := range rejected.GetResources() {
		versions[r.GetName()] = r.GetVersion()
	}
	send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: typ, ResponseNonce: rejected.GetNonce(), ErrorDetail: rejection})
	isResend := func(r *discoveryv3.DeltaDiscoveryResponse) bool {
		for _, res := range r.GetResources() {
			if v, ok := versions[res.GetName()]; ok && v == res.GetVersion() {
				return true
			}
		}
		return false
	}
	quiet := rs.during(quietPeriod)
	resent := 0
	for _, r := range quiet {
		if isResend(r) {
			resent++
		}
	}
	if resent > 0 || len(quiet) > 1 {
		t.Fatalf("after rejecting delta %s %v, %d responses arrived within %v with nothing changed, %d of them resending a rejected resource version: a proxy that rejects every resend loops",
			shortType(typ), versions, len(quiet), quietPeriod, resent)
	}
	t.Logf("delta %s %v rejected: %d responses in the next %v", shortType(typ), sortedKeys(versions), len(quiet), quietPeriod)
	change()
	for {
		r := rs.next()
		send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: typ, ResponseNonce: r.GetNonce()})
		if arrived(r) {
			return
		}
	}
}

// A proxy that rejects a response keeps its last good configuration and is
// not sent the rejected version again (no resend loop); the next change
// reaches it. Checked for Listeners and ClusterLoadAssignments over SotW,
// and Listeners over delta.
func testNACK(t *testing.T, e *env, caps harness.Capabilities) {
	xdsAddr := e.replica().Listen
	e.createService(namespace, "echo", "", grpcPort)
	e.setEndpoints(namespace, "echo", echoPods(1), nil)
	cfg := startProxy(t, e.cluster, e.ctx, xdsAddr, "conformance-proxy", false).await("the configuration of echo."+namespace, func(c config) error {
		got, err := c.proxyless("echo." + namespace)
		if err == nil && !slices.Equal(got, []string{"10.244.1.1:50051"}) {
			err = fmt.Errorf("endpoints %v", got)
		}
		return err
	})
	hasListener := func(name string) func(*discoveryv3.DiscoveryResponse) bool {
		return func(r *discoveryv3.DiscoveryResponse) bool {
			for _, a := range r.GetResources() {
				if m, err := a.UnmarshalNew(); err == nil && resourceName(m) == name {
					return true
				}
			}
			return false
		}
	}

	t.Run("SotWListener", func(t *testing.T) {
		nackSotW(t, e, xdsAddr, listenerType, nil, func() { e.createService(namespace, "late", "", grpcPort) }, hasListener("late."+namespace))
	})

	t.Run("SotWClusterLoadAssignment", func(t *testing.T) {
		names := cfg.names(endpointType)
		nackSotW(t, e, xdsAddr, endpointType, names, func() { e.setEndpoints(namespace, "echo", echoPods(2), nil) },
			func(r *discoveryv3.DiscoveryResponse) bool { return holdsEndpoints(r.GetResources(), 2) })
	})

	t.Run("DeltaListener", func(t *testing.T) {
		caps.Require(t, CapDelta)
		nackDelta(t, e, xdsAddr, listenerType, nil, func() { e.createService(namespace, "later", "", grpcPort) },
			func(r *discoveryv3.DeltaDiscoveryResponse) bool {
				for _, res := range r.GetResources() {
					if res.GetName() == "later."+namespace {
						return true
					}
				}
				return false
			})
	})

	t.Run("DeltaClusterLoadAssignment", func(t *testing.T) {
		caps.Require(t, CapDelta)
		nackDelta(t, e, xdsAddr, endpointType, cfg.names(endpointType), func() { e.setEndpoints(namespace, "echo", echoPods(3), nil) },
			func(r *discoveryv3.DeltaDiscoveryResponse) bool {
				var as []*anypb.Any
				for _, res := range r.GetResources() {
					as = append(as, res.GetResource())
				}
				return holdsEndpoints(as, 3)
			})
	})
}

// echoPods are n ready endpoints of Service echo.
func echoPods(n int) []endpoint {
	out := make([]endpoint, n)
	for i := range out {
		out[i] = endpoint{ip: fmt.Sprintf("10.244.1.%d", i+1), ports: map[string]int32{"grpc": 50051}, pod: fmt.Sprintf("echo-%d", i)}
	}
	return out
}

// holdsEndpoints reports whether one of the resources is an assignment of
// n endpoints.
func holdsEndpoints(resources []*anypb.Any, n int) bool {
	for _, a := range resources {
		cla := &endpointv3.ClusterLoadAssignment{}
		if a.UnmarshalTo(cla) != nil {
			continue
		}
		got := 0
		for _, l := range cla.GetEndpoints() {
			got += len(l.GetLbEndpoints())
		}
		if got == n {
			return true
		}
	}
	return false
}

// Two replicas serve the same resources; a proxyless client whose control
// plane connection moves from one replica to the other keeps working
// without a failed RPC and follows the changes made after the move, served
// by the second replica alone.
func testReplicas(t *testing.T, e *env, _ harness.Capabilities) {
	a, b := e.replica(), e.replica()
	b1, b2, b3 := startBackend(t, "b1"), startBackend(t, "b2"), startBackend(t, "b3")
	e.createService(namespace, "echo", "", grpcPort)
	e.setEndpoints(namespace, "echo", backendEndpoints("grpc", b1, b2), nil)
	target := "echo." + namespace
	want := addrs("127.0.0.1", b1.port)
	want = append(want, addrs("127.0.0.1", b2.port)...)
	slices.Sort(want)
	ready := func(c config) error {
		got, err := c.proxyless(target)
		if err == nil && !slices.Equal(got, want) {
			err = fmt.Errorf("endpoints %v, want %v", got, want)
		}
		return err
	}
	// The same node id on both: one proxy as each replica sees it.
	pa := startProxy(t, e.cluster, e.ctx, a.Listen, "conformance-proxy", false)
	pb := startProxy(t, e.cluster, e.ctx, b.Listen, "conformance-proxy", false)
	pa.await("replica A's configuration", ready)
	pb.await("replica B's configuration", ready)
	harness.Eventually(t, waitFor, "both replicas serving the same resources", func() error {
		ca, _, _ := pa.snapshot()
		cb, _, _ := pb.snapshot()
		return diff(ca, cb)
	})
	pa.mu.Lock()
	pb.mu.Lock()
	for _, typ := range allTypes {
		t.Logf("%s version: replica A %q, replica B %q", shortType(typ), pa.versions[typ], pb.versions[typ])
	}
	pb.mu.Unlock()
	pa.mu.Unlock()

	// The clients reach the control plane through a forwarder, first to A.
	fw := startForwarder(t, a.Listen)
	conn := dialXDS(t, e.cluster, fw.addr(), "conformance-client-1", target)
	reaches(t, e.ctx, conn, b1, b2)
	conn2 := dialXDS(t, e.cluster, fw.addr(), "conformance-client-2", target)
	reaches(t, e.ctx, conn2, b1, b2)
	l := startLoad(conn2)

	t.Log("the clients' control plane connections move to replica B; replica A stops")
	fw.switchTo(b.Listen)
	a.Stop()
	// Moving served the same configuration: the channel still reaches the
	// same backends.
	reaches(t, e.ctx, conn, b1, b2)

	t.Log("b3 becomes ready")
	e.setEndpoints(namespace, "echo", backendEndpoints("grpc", b1, b2, b3), nil)
	reaches(t, e.ctx, conn, b1, b2, b3)
	ok, failures := l.stop()
	if len(failures) > 0 {
		t.Errorf("%d of %d RPCs failed while the client moved between replicas; first: %v", len(failures), ok+len(failures), failures[0])
	} else {
		t.Logf("%d RPCs while the client moved between replicas, none failed", ok)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
