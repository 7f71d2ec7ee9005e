package translate

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strconv"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	originaldstv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_dst/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	corev1 "bosun.dev/gen/bosun/core/v1"
)

// Names of the shared resources.
const (
	VirtualOutboundListener = "virtual_outbound"
	PassthroughCluster      = "passthrough"
	// ChannelIDHashKey is the filter state key by which proxyless gRPC
	// clients hash a whole channel to one endpoint.
	ChannelIDHashKey        = "io.grpc.channel_id"
	httpProtocolOptionsName = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
)

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(fmt.Sprintf("translate: packing %T: %v", m, err)) // only generated Envoy types are packed
	}
	return a
}

func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion:    corev3.ApiVersion_V3,
	}
}

func socketAddress(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// cluster is the EDS cluster of one service port, whose endpoints are the
// assignment edsName.
func cluster(sp servedPort, edsName string, o serviceOptions) *clusterv3.Cluster {
	c := &clusterv3.Cluster{
		Name:                 sp.name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource(), ServiceName: edsName},
		ConnectTimeout:       durationpb.New(defaultConnectTimeout),
	}
	switch o.lb {
	case LeastRequest:
		c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
	case RingHash:
		c.LbPolicy = clusterv3.Cluster_RING_HASH
		c.LbConfig = &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: &clusterv3.Cluster_RingHashLbConfig{
			MinimumRingSize: wrapperspb.UInt64(1024), MaximumRingSize: wrapperspb.UInt64(8192),
		}}
	case Random:
		c.LbPolicy = clusterv3.Cluster_RANDOM
	default:
		c.LbPolicy = clusterv3.Cluster_ROUND_ROBIN
	}
	if o.outlierErrors > 0 {
		c.OutlierDetection = &clusterv3.OutlierDetection{
			Consecutive_5Xx:      wrapperspb.UInt32(o.outlierErrors),
			Interval:             durationpb.New(ejectionInterval),
			BaseEjectionTime:     durationpb.New(ejectionTime),
			MaxEjectionPercent:   wrapperspb.UInt32(50),
			EnforcingSuccessRate: wrapperspb.UInt32(0),
		}
	}
	if sp.protocol == HTTP2 {
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{
			httpProtocolOptionsName: mustAny(&httpv3.HttpProtocolOptions{
				UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
					ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
				}},
			}),
		}
	}
	return c
}

// locality is where an endpoint runs.
type locality struct{ region, zone string }

func nodeLocality(nodes map[string]*corev1.Node, name string) locality {
	n := nodes[name]
	if n == nil {
		return locality{}
	}
	l := n.GetMetadata().GetLabels()
	return locality{region: l[LabelRegion], zone: l[LabelZone]}
}

type backend struct {
	ip   string
	port uint32
	node string
	loc  locality
	tier uint32
}

// assignment is the ClusterLoadAssignment of one service port: the ready
// addresses of the Endpoints subsets that carry the port, grouped into
// localities by their node's region and zone. With localNode set and the
// Service preferring local endpoints, endpoints on localNode come first
// (priority 0), then those in its zone, then the rest; with
// internalTrafficPolicy Local only localNode's endpoints are listed.
func assignment(name string, port *corev1.ServicePort, ep *corev1.Endpoints, nodes map[string]*corev1.Node, o serviceOptions, localNode string) *endpointv3.ClusterLoadAssignment {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: name}
	type hostPort struct {
		ip   string
		port uint32
	}
	var seen map[hostPort]bool
	var backends []backend
	for _, ss := range ep.GetSubsets() {
		var target uint32
		for _, p := range ss.GetPorts() {
			if p.GetName() == port.GetName() && (p.GetProtocol() == "" || p.GetProtocol() == "TCP") && p.GetPort() > 0 && p.GetPort() <= 65535 {
				target = uint32(p.GetPort())
				break
			}
		}
		if target == 0 {
			continue
		}
		addrs := ss.GetAddresses()
		if o.publishNotReady {
			addrs = append(slices.Clip(addrs), ss.GetNotReadyAddresses()...)
		}
		if seen == nil {
			seen = make(map[hostPort]bool, len(addrs))
			backends = make([]backend, 0, len(addrs))
		}
		for _, a := range addrs {
			if net.ParseIP(a.GetIp()) == nil {
				continue
			}
			key := hostPort{a.GetIp(), target}
			if seen[key] {
				continue
			}
			seen[key] = true
			backends = append(backends, backend{ip: a.GetIp(), port: target, node: a.GetNodeName(), loc: nodeLocality(nodes, a.GetNodeName())})
		}
	}
	localLoc := nodeLocality(nodes, localNode)
	tier := func(b backend) uint32 {
		switch {
		case !o.preferLocal || localNode == "":
			return 0
		case b.node == localNode:
			return 0
		case localLoc.zone != "" && b.loc == localLoc:
			return 1
		default:
			return 2
		}
	}
	if o.internalLocalOnly {
		backends = slices.DeleteFunc(backends, func(b backend) bool { return localNode == "" || b.node != localNode })
	}
	for i := range backends {
		backends[i].tier = tier(backends[i])
	}
	// Sorted by tier, locality and address, the backends of one locality
	// are next to each other.
	slices.SortFunc(backends, func(a, b backend) int {
		return cmp.Or(cmp.Compare(a.tier, b.tier), cmp.Compare(a.loc.region, b.loc.region), cmp.Compare(a.loc.zone, b.loc.zone),
			cmp.Compare(a.ip, b.ip), cmp.Compare(a.port, b.port))
	})
	// The messages of every endpoint, allocated together.
	n := len(backends)
	lbEndpoints := make([]endpointv3.LbEndpoint, n)
	hosts := make([]endpointv3.LbEndpoint_Endpoint, n)
	endpoints := make([]endpointv3.Endpoint, n)
	addresses := make([]corev3.Address, n)
	socketAddrs := make([]corev3.Address_SocketAddress, n)
	sockets := make([]corev3.SocketAddress, n)
	portValues := make([]corev3.SocketAddress_PortValue, n)
	// Priorities must run 0, 1, 2... without gaps.
	var priority uint32
	for start := 0; start < n; {
		b := backends[start]
		end := start + 1
		for end < n && backends[end].tier == b.tier && backends[end].loc == b.loc {
			end++
		}
		if start > 0 && backends[start-1].tier != b.tier {
			priority++
		}
		lle := &endpointv3.LocalityLbEndpoints{
			Locality:            &corev3.Locality{Region: b.loc.region, Zone: b.loc.zone},
			LoadBalancingWeight: wrapperspb.UInt32(uint32(end - start)),
			Priority:            priority,
			LbEndpoints:         make([]*endpointv3.LbEndpoint, 0, end-start),
		}
		for i := start; i < end; i++ {
			portValues[i].PortValue = backends[i].port
			sockets[i].Address, sockets[i].PortSpecifier = backends[i].ip, &portValues[i]
			socketAddrs[i].SocketAddress = &sockets[i]
			addresses[i].Address = &socketAddrs[i]
			endpoints[i].Address = &addresses[i]
			hosts[i].Endpoint = &endpoints[i]
			lbEndpoints[i].HostIdentifier, lbEndpoints[i].HealthStatus = &hosts[i], corev3.HealthStatus_HEALTHY
			lle.LbEndpoints = append(lle.LbEndpoints, &lbEndpoints[i])
		}
		cla.Endpoints = append(cla.Endpoints, lle)
		start = end
	}
	return cla
}

// domains are the names a port of Service name.ns is reached by.
func domains(name, ns, clusterDomain, clusterIP string, port int32) []string {
	hosts := []string{name, name + "." + ns, name + "." + ns + ".svc", name + "." + ns + ".svc." + clusterDomain}
	if clusterIP != "" && clusterIP != "None" && net.ParseIP(clusterIP) != nil {
		hosts = append(hosts, clusterIP)
	}
	p := strconv.Itoa(int(port))
	out := make([]string, 0, 2*len(hosts))
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil && ip.To4() == nil {
			out = append(out, "["+h+"]", "["+h+"]:"+p)
			continue
		}
		out = append(out, h, h+":"+p)
	}
	return out
}

func routeAction(clusterName string, o serviceOptions) *routev3.RouteAction {
	ra := &routev3.RouteAction{
		ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: clusterName},
		// No timeout: gRPC streams may live as long as they like.
		Timeout: durationpb.New(0),
	}
	if o.clientIPAffinity {
		ra.HashPolicy = []*routev3.RouteAction_HashPolicy{
			// Envoy hashes the client's address; proxyless gRPC has no
			// connection to hash and hashes its channel instead.
			{PolicySpecifier: &routev3.RouteAction_HashPolicy_ConnectionProperties_{ConnectionProperties: &routev3.RouteAction_HashPolicy_ConnectionProperties{SourceIp: true}}},
			{PolicySpecifier: &routev3.RouteAction_HashPolicy_FilterState_{FilterState: &routev3.RouteAction_HashPolicy_FilterState{Key: ChannelIDHashKey}}},
		}
	}
	if o.retries > 0 {
		ra.RetryPolicy = &routev3.RetryPolicy{RetryOn: o.retryOn, NumRetries: wrapperspb.UInt32(o.retries)}
	}
	return ra
}

func catchAllRoute(clusterName string, o serviceOptions) *routev3.Route {
	return &routev3.Route{
		Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_Route{Route: routeAction(clusterName, o)},
	}
}

// routeConfig is the route configuration of one service port: one virtual
// host for every name of the port, sending everything to its cluster.
func routeConfig(resName, name, ns, clusterDomain string, o serviceOptions, sp servedPort) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{
		Name: resName,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    resName,
			Domains: domains(name, ns, clusterDomain, o.clusterIP, sp.port.GetPort()),
			Routes:  []*routev3.Route{catchAllRoute(resName, o)},
		}},
	}
}

// httpConnectionManager routes by the route configuration routeName. It
// is the definition of what packedHCM encodes.
func httpConnectionManager(statPrefix, routeName string) *hcmv3.HttpConnectionManager {
	return &hcmv3.HttpConnectionManager{
		StatPrefix: statPrefix,
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource: adsSource(), RouteConfigName: routeName,
		}},
		HttpFilters: []*hcmv3.HttpFilter{routerFilter()},
	}
}

// routerFilter is the last HTTP filter of every connection manager.
func routerFilter() *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{
		Name:       wellknown.Router,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerv3.Router{})},
	}
}

// apiListener is a listener for proxyless gRPC clients dialing
// xds:///name, routed by the route configuration routeName.
func apiListener(name, routeName string) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name:        name,
		ApiListener: &listenerv3.ApiListener{ApiListener: packedHCM(name, routeName)},
	}
}

// networkFilterChain proxies a port's connections: through an HTTP
// connection manager with routes routeName for HTTP ports, straight to
// cluster clusterName otherwise.
func networkFilterChain(sp servedPort, clusterName, statPrefix, routeName string) *listenerv3.FilterChain {
	if sp.protocol == TCP {
		return &listenerv3.FilterChain{Filters: []*listenerv3.Filter{{
			Name: wellknown.TCPProxy,
			ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(&tcpv3.TcpProxy{
				StatPrefix: statPrefix, ClusterSpecifier: &tcpv3.TcpProxy_Cluster{Cluster: clusterName},
			})},
		}}}
	}
	return &listenerv3.FilterChain{Filters: []*listenerv3.Filter{{
		Name:       wellknown.HTTPConnectionManager,
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: packedHCM(statPrefix, routeName)},
	}}}
}

// boundListener is the Envoy listener of a service port on its cluster IP.
// It does not bind: virtual_outbound hands it the connections redirected to
// that address.
func boundListener(sp servedPort, clusterIP string) *listenerv3.Listener {
	name := clusterIP + "_" + strconv.Itoa(int(sp.port.GetPort()))
	return &listenerv3.Listener{
		Name:         name,
		Address:      socketAddress(clusterIP, uint32(sp.port.GetPort())),
		BindToPort:   wrapperspb.Bool(false),
		FilterChains: []*listenerv3.FilterChain{networkFilterChain(sp, sp.name, name, sp.name)},
	}
}

// IngressName is the name of the ingress listener (and, for HTTP, its route
// configuration) on port.
func IngressName(port uint32) string { return "ingress_" + strconv.Itoa(int(port)) }

// NodeLocalCluster is the name of the cluster that sends a service port's
// ingress traffic only to endpoints on the proxy's own Node, for Services
// with externalTrafficPolicy Local.
func NodeLocalCluster(name string) string { return name + "/node-local" }

// ingress is the listener that exposes a service port on the proxies'
// ingress address, sending to cluster clusterName, and for HTTP its route
// configuration, which accepts any host name.
func ingress(sp servedPort, port uint32, address, clusterName string, o serviceOptions) (*listenerv3.Listener, *routev3.RouteConfiguration) {
	name := IngressName(port)
	l := &listenerv3.Listener{
		Name:         name,
		Address:      socketAddress(address, port),
		FilterChains: []*listenerv3.FilterChain{networkFilterChain(sp, clusterName, name, name)},
	}
	if sp.protocol == TCP {
		return l, nil
	}
	return l, &routev3.RouteConfiguration{
		Name: name,
		VirtualHosts: []*routev3.VirtualHost{{
			Name: name, Domains: []string{"*"},
			Routes: []*routev3.Route{catchAllRoute(clusterName, o)},
		}},
	}
}

// sharedGroup is the virtual_outbound listener, where connections to
// service addresses are redirected (iptables REDIRECT), and the passthrough
// cluster that carries connections to any other address on unchanged.
func sharedGroup(opts Options, seed []byte) *Group {
	return &Group{
		Key:    "",
		Digest: hex.EncodeToString(seed[:16]),
		Clusters: []*clusterv3.Cluster{{
			Name:                 PassthroughCluster,
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST},
			LbPolicy:             clusterv3.Cluster_CLUSTER_PROVIDED,
			ConnectTimeout:       durationpb.New(defaultConnectTimeout),
		}},
		Listeners: []*listenerv3.Listener{{
			Name:           VirtualOutboundListener,
			Address:        socketAddress("0.0.0.0", opts.OutboundPort),
			UseOriginalDst: wrapperspb.Bool(true),
			ListenerFilters: []*listenerv3.ListenerFilter{{
				Name:       wellknown.OriginalDestination,
				ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: mustAny(&originaldstv3.OriginalDst{})},
			}},
			FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
				Name: wellknown.TCPProxy,
				ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(&tcpv3.TcpProxy{
					StatPrefix: PassthroughCluster, ClusterSpecifier: &tcpv3.TcpProxy_Cluster{Cluster: PassthroughCluster},
				})},
			}}}},
		}},
	}
}
