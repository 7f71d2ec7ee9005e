package snapshot_test

import (
	"slices"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/services/service-proxy/internal/snapshot"
	"bosun.dev/services/service-proxy/internal/translate"
)

func eds(name string) *clusterv3.Cluster {
	return &clusterv3.Cluster{Name: name, ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{ServiceName: name}}
}

func cla(name string) *endpointv3.ClusterLoadAssignment {
	return &endpointv3.ClusterLoadAssignment{ClusterName: name}
}

func routes(name, cluster string) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{Name: name, VirtualHosts: []*routev3.VirtualHost{{
		Name: name, Domains: []string{"*"},
		Routes: []*routev3.Route{{Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster}}}}},
	}}}
}

func hcm(t *testing.T, route string, router bool) *anypb.Any {
	t.Helper()
	h := &hcmv3.HttpConnectionManager{StatPrefix: "x", RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: route}}}
	if router {
		r, err := anypb.New(&routerv3.Router{})
		if err != nil {
			t.Fatal(err)
		}
		h.HttpFilters = []*hcmv3.HttpFilter{{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: r}}}
	}
	a, err := anypb.New(h)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func apiListener(t *testing.T, name, route string) *listenerv3.Listener {
	return &listenerv3.Listener{Name: name, ApiListener: &listenerv3.ApiListener{ApiListener: hcm(t, route, true)}}
}

func tcpListener(t *testing.T, name, cluster string) *listenerv3.Listener {
	a, err := anypb.New(&tcpv3.TcpProxy{StatPrefix: name, ClusterSpecifier: &tcpv3.TcpProxy_Cluster{Cluster: cluster}})
	if err != nil {
		t.Fatal(err)
	}
	return &listenerv3.Listener{Name: name, FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{Name: "tcp", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: a}}}}}}
}

// The consistency check finds every kind of dangling reference, API
// listeners included.
func TestCheck(t *testing.T) {
	cases := []struct {
		name string
		add  func(b *snapshot.Builder)
		want []string
	}{
		{"whole", func(b *snapshot.Builder) {
			b.Add(resource.ClusterType, eds("c"))
			b.Add(resource.EndpointType, cla("c"))
			b.Add(resource.RouteType, routes("r", "c"))
			b.Add(resource.ListenerType, apiListener(t, "l", "r"), tcpListener(t, "t", "c"))
		}, nil},
		{"route names a missing cluster", func(b *snapshot.Builder) {
			b.Add(resource.RouteType, routes("r", "gone"))
			b.Add(resource.ListenerType, apiListener(t, "l", "r"))
		}, []string{`route configuration r names cluster "gone"`}},
		{"API listener names a missing route configuration", func(b *snapshot.Builder) {
			b.Add(resource.ListenerType, apiListener(t, "l", "nowhere"))
		}, []string{`listener l names route configuration "nowhere"`}},
		{"API listener without router", func(b *snapshot.Builder) {
			b.Add(resource.RouteType, routes("r", "c"))
			b.Add(resource.ClusterType, eds("c"))
			b.Add(resource.EndpointType, cla("c"))
			b.Add(resource.ListenerType, &listenerv3.Listener{Name: "l", ApiListener: &listenerv3.ApiListener{ApiListener: hcm(t, "r", false)}})
		}, []string{"last HTTP filter must be the router"}},
		{"EDS cluster without assignment", func(b *snapshot.Builder) {
			b.Add(resource.ClusterType, eds("c"))
		}, []string{`EDS cluster "c" has no assignment`}},
		{"assignment without cluster", func(b *snapshot.Builder) {
			b.Add(resource.EndpointType, cla("orphan"))
		}, []string{`assignment "orphan" belongs to no EDS cluster`}},
		{"TCP proxy to a missing cluster", func(b *snapshot.Builder) {
			b.Add(resource.ListenerType, tcpListener(t, "t", "gone"))
		}, []string{`listener t names cluster "gone"`}},
		{"duplicate names", func(b *snapshot.Builder) {
			b.Add(resource.ClusterType, eds("c"), eds("c"))
			b.Add(resource.EndpointType, cla("c"))
		}, []string{`Cluster "c" added twice`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := snapshot.NewBuilder(nil)
			tc.add(b)
			_, err := b.Build()
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %v", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func service(name string, port int32) *corev1.Service {
	return &corev1.Service{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:     &corev1.ServiceSpec{Ports: []*corev1.ServicePort{{Name: "grpc", Port: port}}},
	}
}

func setOf(t *testing.T, svcs ...*corev1.Service) *snapshot.Set {
	t.Helper()
	s, err := snapshot.FromResult(translate.Translate(translate.Input{Services: svcs}, translate.Options{}), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Moving from one configuration to the next adds clusters first, switches
// listeners and routes second and removes clusters last, and every step is
// whole.
func TestPhasesAreMakeBeforeBreak(t *testing.T) {
	// web moves from port 80 to port 81: a new cluster, new routes for
	// the web.default listener, and the old cluster to remove.
	cur := setOf(t, service("web", 80), service("keep", 90))
	next := setOf(t, service("web", 81), service("keep", 90))
	phases := snapshot.Phases(cur, next)
	if len(phases) != 3 {
		t.Fatalf("%d phases, want 3 (add, switch, remove)", len(phases))
	}
	for i, p := range phases {
		if err := snapshot.Check(p); err != nil {
			t.Fatalf("phase %d is not whole: %v", i+1, err)
		}
	}
	add, sw, remove := phases[0], phases[1], phases[2]
	if got := add.Names(resource.ClusterType); !slices.Contains(got, "web.default:80") || !slices.Contains(got, "web.default:81") {
		t.Errorf("phase 1 clusters %v: want the old and the new", got)
	}
	if add.Version(resource.ListenerType) != cur.Version(resource.ListenerType) || add.Version(resource.RouteType) != cur.Version(resource.RouteType) {
		t.Error("phase 1 changed listeners or routes")
	}
	if sw.Version(resource.ListenerType) != next.Version(resource.ListenerType) || sw.Version(resource.RouteType) != next.Version(resource.RouteType) {
		t.Error("phase 2 did not switch listeners and routes")
	}
	if !slices.Contains(sw.Names(resource.ClusterType), "web.default:80") {
		t.Error("phase 2 removed the old cluster while switching routes")
	}
	if !remove.Equal(next) || slices.Contains(remove.Names(resource.ClusterType), "web.default:80") {
		t.Error("phase 3 is not the next configuration")
	}

	// Only adding: clusters first, then listeners; nothing to remove.
	if got := len(snapshot.Phases(setOf(t, service("keep", 90)), next)); got != 2 {
		t.Errorf("adding a service takes %d phases, want 2", got)
	}
	// Only removing: listeners first, then clusters.
	if got := len(snapshot.Phases(next, setOf(t, service("keep", 90)))); got != 2 {
		t.Errorf("removing a service takes %d phases, want 2", got)
	}
	// No change, or no current configuration: one step.
	if got := len(snapshot.Phases(next, setOf(t, service("web", 81), service("keep", 90)))); got != 1 {
		t.Errorf("an unchanged configuration takes %d phases, want 1", got)
	}
	if got := snapshot.Phases(nil, next); len(got) != 1 || got[0] != next {
		t.Error("a first configuration is not served in one step")
	}
}

// Versions depend on content only: two builds of the same state agree, and
// a change to one type changes only that type's version.
func TestVersionsFollowContent(t *testing.T) {
	a, b := setOf(t, service("web", 80)), setOf(t, service("web", 80))
	if !a.Equal(b) {
		t.Fatal("equal content, different versions")
	}
	if a.Snapshot().GetVersion(resource.ClusterType) != a.Version(resource.ClusterType) {
		t.Fatal("the snapshot's version is not the set's")
	}
	withEndpoints, err := snapshot.FromResult(translate.Translate(translate.Input{
		Services: []*corev1.Service{service("web", 80)},
		Endpoints: []*corev1.Endpoints{{Metadata: &metav1.ObjectMeta{Name: "web", Namespace: "default"}, Subsets: []*corev1.EndpointSubset{{
			Addresses: []*corev1.EndpointAddress{{Ip: "10.0.0.1"}}, Ports: []*corev1.EndpointPort{{Name: "grpc", Port: 8080}},
		}}}},
	}, translate.Options{}), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range snapshot.Types {
		changed := withEndpoints.Version(typ) != a.Version(typ)
		if changed != (typ == resource.EndpointType) {
			t.Errorf("%s version changed=%v after an endpoints change", typ, changed)
		}
	}
}
