package serviceproxy

import (
	"slices"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The suite's own checks, against hand-made configurations: each one
// passes a good configuration and catches the fault it is there for, so a
// passing conformance run means something.

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func ads() *corev3.ConfigSource {
	return &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion: corev3.ApiVersion_V3}
}

// goodConfig is what a proxyless client of echo.shop needs: an API
// listener, its routes (a catch-all virtual host and one for echo), an
// EDS cluster and its assignment with two endpoints.
func goodConfig(t *testing.T) config {
	t.Helper()
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix:     "echo",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{ConfigSource: ads(), RouteConfigName: "echo-routes"}},
		HttpFilters:    []*hcmv3.HttpFilter{{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &routerv3.Router{})}}},
	}
	route := func(cluster string) []*routev3.Route {
		return []*routev3.Route{{
			Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster}}},
		}}
	}
	lb := func(ip string, port uint32) *endpointv3.LbEndpoint {
		return &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}}}}
	}
	c := config{
		listenerType: {"echo.shop": &listenerv3.Listener{Name: "echo.shop", ApiListener: &listenerv3.ApiListener{ApiListener: mustAny(t, hcm)}}},
		routeType: {"echo-routes": &routev3.RouteConfiguration{Name: "echo-routes", VirtualHosts: []*routev3.VirtualHost{
			{Name: "any", Domains: []string{"*"}, Routes: route("other")},
			{Name: "echo", Domains: domains("shop", "echo", 50051), Routes: route("echo-cluster")},
		}}},
		clusterType: {
			"echo-cluster": &clusterv3.Cluster{Name: "echo-cluster", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
				EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{EdsConfig: ads(), ServiceName: "echo-endpoints"}, ConnectTimeout: durationpb.New(1e9)},
			"other": &clusterv3.Cluster{Name: "other", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
				EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{EdsConfig: ads()}, ConnectTimeout: durationpb.New(1e9)},
		},
		endpointType: {
			"echo-endpoints": &endpointv3.ClusterLoadAssignment{ClusterName: "echo-endpoints", Endpoints: []*endpointv3.LocalityLbEndpoints{{
				Locality: &corev3.Locality{}, LoadBalancingWeight: wrapperspb.UInt32(1),
				LbEndpoints: []*endpointv3.LbEndpoint{lb("10.0.0.2", 50051), lb("10.0.0.1", 50051)},
			}}},
			"other": &endpointv3.ClusterLoadAssignment{ClusterName: "other"},
		},
	}
	for typ, rs := range c {
		for n, m := range rs {
			if err := m.(validator).ValidateAll(); err != nil {
				t.Fatalf("%s %s: %v", shortType(typ), n, err)
			}
		}
	}
	return c
}

func TestChecksPassAGoodConfiguration(t *testing.T) {
	c := goodConfig(t)
	if err := c.consistent(); err != nil {
		t.Fatalf("consistent: %v", err)
	}
	want := []string{"10.0.0.1:50051", "10.0.0.2:50051"}
	if got, err := c.proxyless("echo.shop"); err != nil || !slices.Equal(got, want) {
		t.Errorf("proxyless(echo.shop) = %v, %v; want %v", got, err, want)
	}
	if got, err := c.byDomains(domains("shop", "echo", 50051)); err != nil || !slices.Equal(got, want) {
		t.Errorf("byDomains = %v, %v; want %v", got, err, want)
	}
	// Any other host falls to the catch-all virtual host.
	rc := c[routeType]["echo-routes"].(*routev3.RouteConfiguration)
	if got, err := c.destinations(rc, "unknown.shop"); err != nil || len(got) != 0 {
		t.Errorf("destinations(unknown.shop) = %v, %v; want the catch-all's none", got, err)
	}
	if err := diff(c, goodConfig(t)); err != nil {
		t.Errorf("diff of equal configurations: %v", err)
	}
	if err := expectAll(c, nil, []string{"10.0.0.3"}); err != nil {
		t.Errorf("expectAll: %v", err)
	}
}

func TestChecksCatchFaults(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(config)
		check  func(config) error
		want   string
	}{
		{"assignment missing", func(c config) { delete(c[endpointType], "echo-endpoints") }, config.consistent, `has no assignment "echo-endpoints"`},
		{"route to a missing cluster", func(c config) { delete(c[clusterType], "other"); delete(c[endpointType], "other") }, config.consistent, `names cluster "other"`},
		{"listener without its routes", func(c config) { delete(c[routeType], "echo-routes") }, config.consistent, `route configuration "echo-routes"`},
		{"no listener for the target", func(c config) { delete(c[listenerType], "echo.shop") }, func(c config) error { _, err := c.proxyless("echo.shop"); return err }, `no listener "echo.shop"`},
		{"a domain missing", func(c config) {
			vh := c[routeType]["echo-routes"].(*routev3.RouteConfiguration).VirtualHosts[1]
			vh.Domains = slices.DeleteFunc(vh.Domains, func(d string) bool { return strings.HasSuffix(d, ".svc.cluster.local") })
		}, func(c config) error { _, err := c.byDomains(domains("shop", "echo", 50051)); return err }, "no virtual host has all"},
		{"a not-ready address served", func(config) {}, func(c config) error { return expectAll(c, nil, []string{"10.0.0.2"}) }, "10.0.0.2:50051 is served"},
		{"an address changed", func(c config) {
			cla := c[endpointType]["echo-endpoints"].(*endpointv3.ClusterLoadAssignment)
			cla.Endpoints[0].LbEndpoints[0].GetEndpoint().GetAddress().GetSocketAddress().Address = "10.0.0.9"
		}, func(c config) error { return diff(c, goodConfig(t)) }, "ClusterLoadAssignment echo-endpoints differs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := goodConfig(t)
			tc.mutate(c)
			err := tc.check(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestVirtualHostRanking(t *testing.T) {
	rc := &routev3.RouteConfiguration{VirtualHosts: []*routev3.VirtualHost{
		{Name: "any", Domains: []string{"*"}},
		{Name: "suffix", Domains: []string{"*.shop"}},
		{Name: "exact", Domains: []string{"echo.shop"}},
	}}
	for host, want := range map[string]string{"echo.shop": "exact", "web.shop": "suffix", "web.outlet": "any"} {
		if got := virtualHost(rc, host).GetName(); got != want {
			t.Errorf("virtual host for %s: %s, want %s", host, got, want)
		}
	}
}
