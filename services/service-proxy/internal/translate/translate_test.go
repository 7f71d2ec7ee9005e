package translate_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/timestamppb"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/services/service-proxy/internal/snapshot"
	"bosun.dev/services/service-proxy/internal/translate"
)

func ptr[T any](v T) *T { return &v }

func svc(name string, mutate ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: timestamppb.New(time.Unix(1000, 0))},
		Spec: &corev1.ServiceSpec{
			Type: "ClusterIP", ClusterIp: "10.96.0.10", SessionAffinity: "None",
			Ports: []*corev1.ServicePort{{Name: "grpc", Port: 80, Protocol: "TCP", TargetPort: &metav1.IntOrString{IntVal: 8080}}},
		},
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

func annotate(k, v string) func(*corev1.Service) {
	return func(s *corev1.Service) {
		if s.Metadata.Annotations == nil {
			s.Metadata.Annotations = map[string]string{}
		}
		s.Metadata.Annotations[k] = v
	}
}

type addr struct{ ip, node string }

func eps(name string, port int32, ready []addr, notReady []addr) *corev1.Endpoints {
	conv := func(as []addr) []*corev1.EndpointAddress {
		var out []*corev1.EndpointAddress
		for _, a := range as {
			ea := &corev1.EndpointAddress{Ip: a.ip}
			if a.node != "" {
				ea.NodeName = ptr(a.node)
			}
			out = append(out, ea)
		}
		return out
	}
	return &corev1.Endpoints{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default"},
		Subsets: []*corev1.EndpointSubset{{
			Addresses: conv(ready), NotReadyAddresses: conv(notReady),
			Ports: []*corev1.EndpointPort{{Name: "grpc", Port: port, Protocol: "TCP"}},
		}},
	}
}

func node(name, region, zone string) *corev1.Node {
	return &corev1.Node{Metadata: &metav1.ObjectMeta{Name: name, Labels: map[string]string{translate.LabelRegion: region, translate.LabelZone: zone}}}
}

var threeNodes = []*corev1.Node{node("n1", "eu", "eu-a"), node("n2", "eu", "eu-a"), node("n3", "eu", "eu-b")}

// translateOK translates in, requires that the result is consistent, and
// returns it with the group of default/web.
func translateOK(t *testing.T, in translate.Input) (*translate.Result, *translate.Group) {
	t.Helper()
	res := translate.Translate(in, translate.Options{})
	if _, err := snapshot.FromResult(res, "", nil); err != nil {
		t.Fatalf("inconsistent result: %v", err)
	}
	for _, g := range res.Groups {
		if err := translate.ValidateGroup(g); err != nil {
			t.Fatal(err)
		}
		if g.Key == "default/web" {
			return res, g
		}
	}
	return res, nil
}

func listenerNames(g *translate.Group) []string {
	var out []string
	for _, l := range g.Listeners {
		out = append(out, l.GetName())
	}
	return out
}

func endpointsByPriority(cla *endpointv3.ClusterLoadAssignment) map[uint32][]string {
	out := map[uint32][]string{}
	for _, l := range cla.GetEndpoints() {
		for _, e := range l.GetLbEndpoints() {
			out[l.GetPriority()] = append(out[l.GetPriority()], e.GetEndpoint().GetAddress().GetSocketAddress().GetAddress())
		}
	}
	return out
}

func TestServiceResources(t *testing.T) {
	_, g := translateOK(t, translate.Input{
		Services:  []*corev1.Service{svc("web")},
		Endpoints: []*corev1.Endpoints{eps("web", 8080, []addr{{"10.244.1.2", "n1"}, {"10.244.3.2", "n3"}, {"10.244.2.2", "n2"}}, []addr{{"10.244.1.9", "n1"}})},
		Nodes:     threeNodes,
	})
	if g == nil {
		t.Fatal("no group for default/web")
	}
	if got, want := listenerNames(g), []string{"web.default:80", "web.default", "10.96.0.10_80"}; !slices.Equal(got, want) {
		t.Errorf("listeners %v, want %v", got, want)
	}
	c := g.Clusters[0]
	if c.GetName() != "web.default:80" || c.GetType() != clusterv3.Cluster_EDS || c.GetEdsClusterConfig().GetServiceName() != "web.default:80" || c.GetLbPolicy() != clusterv3.Cluster_ROUND_ROBIN {
		t.Errorf("cluster %v", c)
	}
	if _, ok := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]; !ok {
		t.Error("a grpc port's cluster does not speak HTTP/2 upstream")
	}
	cla := g.Assignments[0]
	if len(cla.GetEndpoints()) != 2 {
		t.Fatalf("want 2 localities (eu-a, eu-b), got %v", cla.GetEndpoints())
	}
	a, b := cla.GetEndpoints()[0], cla.GetEndpoints()[1]
	if a.GetLocality().GetZone() != "eu-a" || len(a.GetLbEndpoints()) != 2 || a.GetLoadBalancingWeight().GetValue() != 2 ||
		b.GetLocality().GetZone() != "eu-b" || len(b.GetLbEndpoints()) != 1 || b.GetLoadBalancingWeight().GetValue() != 1 {
		t.Errorf("localities %v", cla.GetEndpoints())
	}
	if got := endpointsByPriority(cla)[0]; !slices.Equal(got, []string{"10.244.1.2", "10.244.2.2", "10.244.3.2"}) {
		t.Errorf("endpoints %v: want the three ready ones, sorted, without the not-ready 10.244.1.9", got)
	}
	if p := a.GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress().GetPortValue(); p != 8080 {
		t.Errorf("endpoint port %d, want the target port 8080", p)
	}
	vh := g.Routes[0].GetVirtualHosts()[0]
	for _, d := range []string{"web", "web:80", "web.default", "web.default:80", "web.default.svc.cluster.local", "web.default.svc.cluster.local:80", "10.96.0.10:80"} {
		if !slices.Contains(vh.GetDomains(), d) {
			t.Errorf("virtual host domains %v lack %q", vh.GetDomains(), d)
		}
	}
	if got := vh.GetRoutes()[0].GetRoute().GetCluster(); got != "web.default:80" {
		t.Errorf("route to %q", got)
	}
	// The API listener web.default carries the first port's routes.
	hcm := &hcmv3.HttpConnectionManager{}
	if err := g.Listeners[1].GetApiListener().GetApiListener().UnmarshalTo(hcm); err != nil {
		t.Fatal(err)
	}
	if hcm.GetRds().GetRouteConfigName() != "web.default:80" || hcm.GetHttpFilters()[0].GetName() != "envoy.filters.http.router" {
		t.Errorf("API listener HCM %v", hcm)
	}
}

func TestLoadBalancingChoices(t *testing.T) {
	cases := []struct {
		name        string
		mutate      []func(*corev1.Service)
		policy      clusterv3.Cluster_LbPolicy
		hashed      bool
		retries     uint32
		outlier     uint32
		problemLike string
	}{
		{name: "default round robin", policy: clusterv3.Cluster_ROUND_ROBIN},
		{name: "least request", mutate: []func(*corev1.Service){annotate(translate.AnnotationLBPolicy, "least-request")}, policy: clusterv3.Cluster_LEAST_REQUEST},
		{name: "random", mutate: []func(*corev1.Service){annotate(translate.AnnotationLBPolicy, "random")}, policy: clusterv3.Cluster_RANDOM},
		{name: "ring hash", mutate: []func(*corev1.Service){annotate(translate.AnnotationLBPolicy, "ring-hash")}, policy: clusterv3.Cluster_RING_HASH},
		{name: "ClientIP affinity", mutate: []func(*corev1.Service){func(s *corev1.Service) { s.Spec.SessionAffinity = "ClientIP" }}, policy: clusterv3.Cluster_RING_HASH, hashed: true},
		{name: "ClientIP affinity overrides least-request", mutate: []func(*corev1.Service){
			annotate(translate.AnnotationLBPolicy, "least-request"), func(s *corev1.Service) { s.Spec.SessionAffinity = "ClientIP" },
		}, policy: clusterv3.Cluster_RING_HASH, hashed: true, problemLike: "needs ring-hash"},
		{name: "invalid affinity", mutate: []func(*corev1.Service){func(s *corev1.Service) { s.Spec.SessionAffinity = "Cookie" }}, policy: clusterv3.Cluster_ROUND_ROBIN, problemLike: "spec.sessionAffinity"},
		{name: "unknown policy", mutate: []func(*corev1.Service){annotate(translate.AnnotationLBPolicy, "maglev")}, policy: clusterv3.Cluster_ROUND_ROBIN, problemLike: `unsupported value "maglev"`},
		{name: "retries", mutate: []func(*corev1.Service){annotate(translate.AnnotationRetries, "3")}, policy: clusterv3.Cluster_ROUND_ROBIN, retries: 3},
		{name: "too many retries", mutate: []func(*corev1.Service){annotate(translate.AnnotationRetries, "50")}, policy: clusterv3.Cluster_ROUND_ROBIN, problemLike: "from 0 to 10"},
		{name: "outlier detection", mutate: []func(*corev1.Service){annotate(translate.AnnotationOutlierConsecutiveErrors, "5")}, policy: clusterv3.Cluster_ROUND_ROBIN, outlier: 5},
		{name: "bad outlier detection", mutate: []func(*corev1.Service){annotate(translate.AnnotationOutlierConsecutiveErrors, "-1")}, policy: clusterv3.Cluster_ROUND_ROBIN, problemLike: "outlier detection off"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, g := translateOK(t, translate.Input{Services: []*corev1.Service{svc("web", tc.mutate...)}})
			if g == nil {
				t.Fatalf("service left out: %v", res.Problems)
			}
			c := g.Clusters[0]
			if c.GetLbPolicy() != tc.policy {
				t.Errorf("policy %v, want %v", c.GetLbPolicy(), tc.policy)
			}
			ra := g.Routes[0].GetVirtualHosts()[0].GetRoutes()[0].GetRoute()
			if got := len(ra.GetHashPolicy()) > 0; got != tc.hashed {
				t.Errorf("hash policies %v, want hashed=%v", ra.GetHashPolicy(), tc.hashed)
			}
			if tc.hashed && ra.GetHashPolicy()[1].GetFilterState().GetKey() != translate.ChannelIDHashKey {
				t.Errorf("proxyless clients cannot hash: %v", ra.GetHashPolicy())
			}
			if got := ra.GetRetryPolicy().GetNumRetries().GetValue(); got != tc.retries {
				t.Errorf("retries %d, want %d", got, tc.retries)
			}
			if got := c.GetOutlierDetection().GetConsecutive_5Xx().GetValue(); got != tc.outlier {
				t.Errorf("outlier consecutive errors %d, want %d", got, tc.outlier)
			}
			var problems []string
			for _, p := range res.Problems {
				problems = append(problems, p.String())
			}
			if tc.problemLike == "" && len(problems) > 0 {
				t.Errorf("unexpected problems %v", problems)
			}
			if tc.problemLike != "" && !strings.Contains(strings.Join(problems, "\n"), tc.problemLike) {
				t.Errorf("problems %v, want one like %q", problems, tc.problemLike)
			}
		})
	}
}

func TestLocalityPreference(t *testing.T) {
	ready := []addr{{"10.0.1.1", "n1"}, {"10.0.2.1", "n2"}, {"10.0.3.1", "n3"}}
	in := func(mutate ...func(*corev1.Service)) translate.Input {
		return translate.Input{Services: []*corev1.Service{svc("web", mutate...)}, Endpoints: []*corev1.Endpoints{eps("web", 8080, ready, nil)}, Nodes: threeNodes}
	}
	cases := []struct {
		name     string
		mutate   func(*corev1.Service)
		node     string
		want     map[uint32][]string
		nodeWide bool
	}{
		{"no preference", func(*corev1.Service) {}, "n1", map[uint32][]string{0: {"10.0.1.1", "10.0.2.1", "10.0.3.1"}}, false},
		{"prefer local on n1", annotate(translate.AnnotationPreferLocal, "true"), "n1", map[uint32][]string{0: {"10.0.1.1"}, 1: {"10.0.2.1"}, 2: {"10.0.3.1"}}, true},
		{"prefer local on n3", annotate(translate.AnnotationPreferLocal, "true"), "n3", map[uint32][]string{0: {"10.0.3.1"}, 1: {"10.0.1.1", "10.0.2.1"}}, true},
		{"prefer local, unknown node", annotate(translate.AnnotationPreferLocal, "true"), "", map[uint32][]string{0: {"10.0.1.1", "10.0.2.1", "10.0.3.1"}}, true},
		{"internal traffic local", func(s *corev1.Service) { s.Spec.InternalTrafficPolicy = "Local" }, "n2", map[uint32][]string{0: {"10.0.2.1"}}, true},
		{"internal traffic local, node without endpoints", func(s *corev1.Service) { s.Spec.InternalTrafficPolicy = "Local" }, "n9", map[uint32][]string{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, g := translateOK(t, in(tc.mutate))
			if g.NodeLocal() != tc.nodeWide {
				t.Errorf("NodeLocal %v, want %v", g.NodeLocal(), tc.nodeWide)
			}
			cla := g.AssignmentsFor(tc.node)[0]
			if err := cla.ValidateAll(); err != nil {
				t.Fatal(err)
			}
			got := endpointsByPriority(cla)
			for p := range got {
				slices.Sort(got[p])
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("endpoints by priority %v, want %v", got, tc.want)
			}
		})
	}
}

func TestIngressAndTCP(t *testing.T) {
	nodePort := func(port int32) func(*corev1.Service) {
		return func(s *corev1.Service) { s.Spec.Type = "NodePort"; s.Spec.Ports[0].NodePort = port }
	}
	older := svc("web", nodePort(30080))
	newer := svc("api", nodePort(30080), func(s *corev1.Service) {
		s.Metadata.CreationTimestamp = timestamppb.New(time.Unix(2000, 0))
		s.Spec.ClusterIp = "10.96.0.11"
	})
	lb := svc("db", func(s *corev1.Service) {
		s.Spec.Type = "LoadBalancer"
		s.Spec.ClusterIp = "10.96.0.12"
		s.Spec.Ports[0].Name = "postgres"
		s.Spec.Ports[0].Port = 5432
	})
	res, g := translateOK(t, translate.Input{Services: []*corev1.Service{newer, lb, older}})
	if !slices.Contains(listenerNames(g), "ingress_30080") {
		t.Fatalf("the older service has no ingress listener: %v", listenerNames(g))
	}
	var ingress *listenerv3.Listener
	for _, l := range g.Listeners {
		if l.GetName() == "ingress_30080" {
			ingress = l
		}
	}
	if sa := ingress.GetAddress().GetSocketAddress(); sa.GetAddress() != "0.0.0.0" || sa.GetPortValue() != 30080 {
		t.Errorf("ingress bound on %v", sa)
	}
	var routeNames []string
	for _, r := range g.Routes {
		routeNames = append(routeNames, r.GetName())
	}
	if !slices.Contains(routeNames, "ingress_30080") {
		t.Errorf("no ingress route configuration: %v", routeNames)
	}
	found := false
	for _, p := range res.Problems {
		if p.Object == "Service default/api" && strings.Contains(p.Message, "ingress port 30080 is already used by Service default/web") {
			found = true
		}
	}
	if !found {
		t.Errorf("the clash on node port 30080 was not reported: %v", res.Problems)
	}
	// A TCP LoadBalancer service: a TCP proxy on its cluster IP, and an
	// ingress on its port since no node port was given.
	var db *translate.Group
	for _, x := range res.Groups {
		if x.Key == "default/db" {
			db = x
		}
	}
	if db == nil {
		t.Fatal("no group for default/db")
	}
	if got, want := listenerNames(db), []string{"db.default:5432", "db.default", "10.96.0.12_5432", "ingress_5432"}; !slices.Equal(got, want) {
		t.Fatalf("listeners %v, want %v", got, want)
	}
	tp := &tcpv3.TcpProxy{}
	if err := db.Listeners[2].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(tp); err != nil {
		t.Fatalf("the cluster IP listener of a TCP port is not a TCP proxy: %v", err)
	}
	if tp.GetCluster() != "db.default:5432" {
		t.Errorf("TCP proxy to %q", tp.GetCluster())
	}
	if len(db.Routes) != 1 {
		t.Errorf("a TCP port has %d route configurations, want only the API listener's", len(db.Routes))
	}
}

// Odd Services never crash the translator and never give an inconsistent
// or invalid result; what cannot be served is reported.
func TestOddServices(t *testing.T) {
	manyPorts := svc("many", func(s *corev1.Service) {
		s.Spec.Ports = nil
		for i := 0; i < 3000; i++ {
			s.Spec.Ports = append(s.Spec.Ports, &corev1.ServicePort{Name: fmt.Sprintf("p%d", i), Port: int32(10000 + i)})
		}
	})
	cases := []struct {
		name     string
		in       translate.Input
		groups   int
		problems []string
	}{
		{"no selector and no endpoints", translate.Input{Services: []*corev1.Service{svc("web")}}, 1, nil},
		{"no ready endpoints", translate.Input{Services: []*corev1.Service{svc("web")}, Endpoints: []*corev1.Endpoints{eps("web", 8080, nil, []addr{{"10.0.0.1", ""}})}}, 1, nil},
		{"headless", translate.Input{Services: []*corev1.Service{svc("web", func(s *corev1.Service) { s.Spec.ClusterIp = "None" })}}, 1, nil},
		{"no spec", translate.Input{Services: []*corev1.Service{{Metadata: &metav1.ObjectMeta{Name: "web", Namespace: "default"}}}}, 0, []string{"spec.ports: no TCP port"}},
		{"nil everything", translate.Input{Services: []*corev1.Service{nil, {}}, Endpoints: []*corev1.Endpoints{nil, {}}, Nodes: []*corev1.Node{nil}}, 0, nil},
		{"external name", translate.Input{Services: []*corev1.Service{svc("web", func(s *corev1.Service) { s.Spec.Type = "ExternalName" })}}, 0, []string{"ExternalName"}},
		{"UDP only", translate.Input{Services: []*corev1.Service{svc("web", func(s *corev1.Service) { s.Spec.Ports[0].Protocol = "UDP" })}}, 0, []string{"UDP is not proxied"}},
		{"port clash", translate.Input{Services: []*corev1.Service{svc("web", func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, &corev1.ServicePort{Name: "grpc", Port: 80}, nil, &corev1.ServicePort{Name: "zero"})
		})}}, 1, []string{"listed twice", "port 0 out of range"}},
		{"name clash across namespaces", translate.Input{Services: []*corev1.Service{
			{Metadata: &metav1.ObjectMeta{Name: "a", Namespace: "b.c"}, Spec: &corev1.ServiceSpec{Ports: []*corev1.ServicePort{{Port: 1}}}},
			{Metadata: &metav1.ObjectMeta{Name: "a.b", Namespace: "c"}, Spec: &corev1.ServiceSpec{Ports: []*corev1.ServicePort{{Port: 1}}}},
		}}, 1, []string{"already Service"}},
		{"same cluster IP twice", translate.Input{Services: []*corev1.Service{svc("web"), svc("api")}}, 2, []string{"address 10.96.0.10:80 is already served"}},
		{"bad endpoint addresses", translate.Input{Services: []*corev1.Service{svc("web")}, Endpoints: []*corev1.Endpoints{eps("web", 8080, []addr{{"not-an-ip", ""}, {"", ""}, {"10.0.0.1", "ghost"}}, nil)}}, 1, nil},
		{"endpoint port out of range", translate.Input{Services: []*corev1.Service{svc("web")}, Endpoints: []*corev1.Endpoints{eps("web", 70000, []addr{{"10.0.0.1", ""}}, nil)}}, 1, nil},
		{"three thousand ports", translate.Input{Services: []*corev1.Service{manyPorts}}, 1, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := translateOK(t, tc.in)
			if len(res.Groups) != tc.groups {
				t.Errorf("%d groups, want %d; problems %v", len(res.Groups), tc.groups, res.Problems)
			}
			var all []string
			for _, p := range res.Problems {
				all = append(all, p.String())
			}
			for _, want := range tc.problems {
				if !strings.Contains(strings.Join(all, "\n"), want) {
					t.Errorf("problems %v, want one with %q", all, want)
				}
			}
			if tc.problems == nil && len(all) > 0 {
				t.Errorf("unexpected problems %v", all)
			}
		})
	}
}

// The same input gives the same resources, in the same order.
func TestDeterministic(t *testing.T) {
	in := translate.Input{
		Services:  []*corev1.Service{svc("web"), svc("api", func(s *corev1.Service) { s.Spec.ClusterIp = "10.96.0.11" })},
		Endpoints: []*corev1.Endpoints{eps("web", 8080, []addr{{"10.0.1.1", "n1"}, {"10.0.3.1", "n3"}}, nil)},
		Nodes:     threeNodes,
	}
	a, err := snapshot.FromResult(translate.Translate(in, translate.Options{}), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(in.Services)
	slices.Reverse(in.Nodes)
	b, err := snapshot.FromResult(translate.Translate(in, translate.Options{}), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Equal(b) {
		t.Fatal("the same cluster state in another order gave another configuration")
	}
}

// A NodePort Service with externalTrafficPolicy Local sends ingress traffic
// only to endpoints on the proxy's own Node, through a cluster of its own,
// while traffic from inside still reaches every endpoint.
func TestExternalTrafficPolicyLocal(t *testing.T) {
	web := svc("web", func(s *corev1.Service) {
		s.Spec.Type = "NodePort"
		s.Spec.ExternalTrafficPolicy = "Local"
		s.Spec.Ports[0].NodePort = 30080
	})
	res := translate.Translate(translate.Input{
		Services:  []*corev1.Service{web},
		Endpoints: []*corev1.Endpoints{eps("web", 8080, []addr{{"10.0.1.1", "n1"}, {"10.0.3.1", "n3"}}, nil)},
		Nodes:     threeNodes,
	}, translate.Options{})
	if len(res.Groups) != 1 || !res.Groups[0].NodeLocal() {
		t.Fatalf("groups %v, problems %v", res.Groups, res.Problems)
	}
	set, err := snapshot.FromResult(res, "n1", nil)
	if err != nil {
		t.Fatal(err)
	}
	assigned := func(name string) []string {
		r, ok := set.Get(resource.EndpointType, name)
		if !ok {
			t.Fatalf("no assignment %q in %v", name, set.Names(resource.EndpointType))
		}
		var out []string
		for _, ips := range endpointsByPriority(r.(*endpointv3.ClusterLoadAssignment)) {
			out = append(out, ips...)
		}
		slices.Sort(out)
		return out
	}
	if got := assigned("web.default:80/node-local@n1"); !slices.Equal(got, []string{"10.0.1.1"}) {
		t.Errorf("ingress endpoints on n1: %v, want only 10.0.1.1", got)
	}
	if got := assigned("web.default:80@n1"); !slices.Equal(got, []string{"10.0.1.1", "10.0.3.1"}) {
		t.Errorf("in-cluster endpoints seen from n1: %v, want both", got)
	}
	r, ok := set.Get(resource.RouteType, "ingress_30080")
	if !ok {
		t.Fatal("no ingress route configuration")
	}
	if got := r.(*routev3.RouteConfiguration).GetVirtualHosts()[0].GetRoutes()[0].GetRoute().GetCluster(); got != "web.default:80/node-local" {
		t.Errorf("ingress routes to %q", got)
	}
	c, _ := set.Get(resource.ClusterType, "web.default:80/node-local")
	if got := c.(*clusterv3.Cluster).GetEdsClusterConfig().GetServiceName(); got != "web.default:80/node-local@n1" {
		t.Errorf("node-local cluster on n1 takes endpoints from %q", got)
	}
}
