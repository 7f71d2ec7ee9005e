package xds_test

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/services/service-proxy/internal/translate"
	"bosun.dev/services/service-proxy/internal/xds"
)

func startServer(t *testing.T) (*xds.Server, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := xds.New(ctx, xds.Config{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(), PhaseTimeout: 10 * time.Second})
	g := grpc.NewServer()
	s.Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Serve(lis) }()
	t.Cleanup(func() { cancel(); g.Stop(); <-done })
	return s, lis.Addr().String()
}

func result(svcs []*corev1.Service, eps []*corev1.Endpoints, nodes []*corev1.Node) *translate.Result {
	return translate.Translate(translate.Input{Services: svcs, Endpoints: eps, Nodes: nodes}, translate.Options{})
}

func service(name string, port int32, annotations map[string]string) *corev1.Service {
	return &corev1.Service{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default", Annotations: annotations},
		Spec:     &corev1.ServiceSpec{Ports: []*corev1.ServicePort{{Name: "grpc", Port: port}}},
	}
}

// event is one response a test client saw.
type event struct {
	typ   string
	names []string
	// routesTo lists the clusters RDS responses route to.
	routesTo []string
}

// wildcardClient subscribes to every resource of every type over SotW ADS
// and acknowledges everything, recording what it is sent.
type wildcardClient struct {
	mu     sync.Mutex
	events []event
}

func (w *wildcardClient) run(t *testing.T, ctx context.Context, addr, nodeID string) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close()
	s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Error(err)
		return
	}
	for i, typ := range []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType} {
		req := &discoveryv3.DiscoveryRequest{TypeUrl: typ}
		if i == 0 {
			req.Node = &corev3.Node{Id: nodeID}
		}
		if err := s.Send(req); err != nil {
			return
		}
	}
	for {
		resp, err := s.Recv()
		if err != nil {
			return
		}
		ev := event{typ: resp.GetTypeUrl()}
		for _, a := range resp.GetResources() {
			m, err := a.UnmarshalNew()
			if err != nil {
				t.Error(err)
				return
			}
			switch r := m.(type) {
			case interface{ GetName() string }:
				ev.names = append(ev.names, r.GetName())
			}
			if rc, ok := m.(*routev3.RouteConfiguration); ok {
				for _, vh := range rc.GetVirtualHosts() {
					for _, rt := range vh.GetRoutes() {
						ev.routesTo = append(ev.routesTo, rt.GetRoute().GetCluster())
					}
				}
			}
		}
		w.mu.Lock()
		w.events = append(w.events, ev)
		w.mu.Unlock()
		if err := s.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resp.GetTypeUrl(), VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()}); err != nil {
			return
		}
	}
}

func (w *wildcardClient) snapshot() []event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.events)
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A proxy that has every resource sees a Service's port change
// make-before-break: the new cluster before the routes that use it, the
// old cluster removed only after the routes moved away from it.
func TestUpdatesAreMakeBeforeBreak(t *testing.T) {
	s, addr := startServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Update(ctx, result([]*corev1.Service{service("web", 80, nil)}, nil, nil)); err != nil {
		t.Fatal(err)
	}
	c := &wildcardClient{}
	done := make(chan struct{})
	go func() { defer close(done); c.run(t, ctx, addr, "envoy-1") }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the first configuration", func() bool { return len(c.snapshot()) >= 4 })
	seen := len(c.snapshot())

	if err := s.Update(ctx, result([]*corev1.Service{service("web", 81, nil)}, nil, nil)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the old cluster's removal", func() bool {
		for _, ev := range c.snapshot()[seen:] {
			if ev.typ == resource.ClusterType && !slices.Contains(ev.names, "web.default:80") {
				return true
			}
		}
		return false
	})
	newCluster, newRoutes, oldRemoved := -1, -1, -1
	for i, ev := range c.snapshot()[seen:] {
		switch {
		case ev.typ == resource.ClusterType && newCluster < 0 && slices.Contains(ev.names, "web.default:81"):
			newCluster = i
		case ev.typ == resource.RouteType && newRoutes < 0 && slices.Contains(ev.routesTo, "web.default:81"):
			newRoutes = i
		}
		if ev.typ == resource.ClusterType && oldRemoved < 0 && !slices.Contains(ev.names, "web.default:80") {
			oldRemoved = i
		}
	}
	if !(newCluster >= 0 && newCluster < newRoutes && newRoutes < oldRemoved) {
		t.Fatalf("order: new cluster at %d, new routes at %d, old cluster removed at %d; want increasing; events %+v",
			newCluster, newRoutes, oldRemoved, c.snapshot()[seen:])
	}
}

// Proxies on different Nodes get the endpoints of a prefer-local Service
// ordered from their own Node outwards; proxies on the same Node share one
// snapshot.
func TestPerNodeSnapshots(t *testing.T) {
	s, addr := startServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n1, n2 := "n1", "n2"
	nodes := []*corev1.Node{
		{Metadata: &metav1.ObjectMeta{Name: "n1", Labels: map[string]string{translate.LabelZone: "a"}}},
		{Metadata: &metav1.ObjectMeta{Name: "n2", Labels: map[string]string{translate.LabelZone: "b"}}},
	}
	eps := []*corev1.Endpoints{{
		Metadata: &metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Subsets: []*corev1.EndpointSubset{{
			Addresses: []*corev1.EndpointAddress{{Ip: "10.0.1.1", NodeName: &n1}, {Ip: "10.0.2.1", NodeName: &n2}},
			Ports:     []*corev1.EndpointPort{{Name: "grpc", Port: 8080}},
		}},
	}}
	svc := service("web", 80, map[string]string{translate.AnnotationPreferLocal: "true"})
	if err := s.Update(ctx, result([]*corev1.Service{svc}, eps, nodes)); err != nil {
		t.Fatal(err)
	}
	// open connects a proxy on nodeName, asks for the cluster and then
	// the assignment it names, and returns the address it prefers.
	open := func(id, nodeName string) string {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		md := &structpb.Struct{Fields: map[string]*structpb.Value{xds.NodeNameKey: structpb.NewStringValue(nodeName)}}
		if err := st.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: id, Metadata: md}, TypeUrl: resource.ClusterType, ResourceNames: []string{"web.default:80"}}); err != nil {
			t.Fatal(err)
		}
		resp, err := st.Recv()
		if err != nil || len(resp.GetResources()) != 1 {
			t.Fatalf("cluster response %v, %v", resp, err)
		}
		c := &clusterv3.Cluster{}
		if err := resp.GetResources()[0].UnmarshalTo(c); err != nil {
			t.Fatal(err)
		}
		eds := c.GetEdsClusterConfig().GetServiceName()
		if eds != "web.default:80@"+nodeName {
			t.Errorf("proxy on %s: cluster takes endpoints from %q", nodeName, eds)
		}
		if err := st.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resource.EndpointType, ResourceNames: []string{eds}}); err != nil {
			t.Fatal(err)
		}
		if resp, err = st.Recv(); err != nil || len(resp.GetResources()) != 1 {
			t.Fatalf("assignment response %v, %v", resp, err)
		}
		cla := &endpointv3.ClusterLoadAssignment{}
		if err := resp.GetResources()[0].UnmarshalTo(cla); err != nil {
			t.Fatal(err)
		}
		for _, l := range cla.GetEndpoints() {
			if l.GetPriority() == 0 {
				return l.GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress().GetAddress()
			}
		}
		return ""
	}
	if got := open("proxy-a", "n1"); got != "10.0.1.1" {
		t.Errorf("proxy on n1 prefers %q, want 10.0.1.1", got)
	}
	if got := open("proxy-b", "n2"); got != "10.0.2.1" {
		t.Errorf("proxy on n2 prefers %q, want 10.0.2.1", got)
	}
	open("proxy-c", "n1")
	if s.Served("proxy-a") != s.Served("proxy-c") {
		t.Error("two proxies on n1 do not share a snapshot")
	}
}

// A configuration that fails the consistency check is refused and the last
// good one stays.
func TestInconsistentConfigurationIsRefused(t *testing.T) {
	s, addr := startServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	good := result([]*corev1.Service{service("web", 80, nil)}, nil, nil)
	if err := s.Update(ctx, good); err != nil {
		t.Fatal(err)
	}
	bad := result([]*corev1.Service{service("web", 80, nil)}, nil, nil)
	bad.Groups[0].Clusters = nil // routes now name a cluster that does not exist
	err := s.Update(ctx, bad)
	if err == nil {
		t.Fatal("an inconsistent configuration was accepted")
	}
	t.Log(err)
	// A proxy connecting now is served the last good configuration.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "late"}, TypeUrl: resource.ClusterType}); err != nil {
		t.Fatal(err)
	}
	resp, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetResources()) != 2 { // web.default:80 and passthrough
		t.Fatalf("a proxy connecting after the refusal got %d clusters, want the last good 2", len(resp.GetResources()))
	}
}
