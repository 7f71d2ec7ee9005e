package serviceproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"bosun.dev/tests/conformance/harness"
)

// The four resource types a proxy holds, by type URL.
const (
	listenerType = resource.ListenerType
	routeType    = resource.RouteType
	clusterType  = resource.ClusterType
	endpointType = resource.EndpointType
)

var allTypes = []string{listenerType, routeType, clusterType, endpointType}

// shortType names a type URL in messages.
func shortType(typeURL string) string { return typeURL[strings.LastIndex(typeURL, ".")+1:] }

// config is what a proxy holds at one moment: resources by type URL and name.
type config map[string]map[string]proto.Message

func (c config) clone() config {
	out := config{}
	for typ, rs := range c {
		out[typ] = map[string]proto.Message{}
		for n, m := range rs {
			out[typ][n] = m
		}
	}
	return out
}

func (c config) names(typ string) []string {
	out := make([]string, 0, len(c[typ]))
	for n := range c[typ] {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (c config) String() string {
	var parts []string
	for _, typ := range allTypes {
		parts = append(parts, fmt.Sprintf("%s %v", shortType(typ), c.names(typ)))
	}
	return strings.Join(parts, "; ")
}

// validator is what every generated Envoy resource implements.
type validator interface{ ValidateAll() error }

// decode unpacks a resource of type typ and runs its generated validator.
func decode(typ string, a *anypb.Any) (proto.Message, error) {
	if a.GetTypeUrl() != typ {
		return nil, fmt.Errorf("resource of type %s in a %s response", a.GetTypeUrl(), shortType(typ))
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		return nil, err
	}
	if v, ok := m.(validator); !ok {
		return nil, fmt.Errorf("%T has no validator", m)
	} else if err := v.ValidateAll(); err != nil {
		return m, fmt.Errorf("ValidateAll: %w", err)
	}
	return m, nil
}

// resourceName is the name a resource is served under.
func resourceName(m proto.Message) string {
	switch r := m.(type) {
	case *listenerv3.Listener:
		return r.GetName()
	case *routev3.RouteConfiguration:
		return r.GetName()
	case *clusterv3.Cluster:
		return r.GetName()
	case *endpointv3.ClusterLoadAssignment:
		return r.GetClusterName()
	}
	return ""
}

// listenerFilters returns the HTTP connection managers of a listener (its
// API listener's and its filter chains') and its TCP proxies.
func listenerFilters(l *listenerv3.Listener) (hcms []*hcmv3.HttpConnectionManager, tcps []*tcpv3.TcpProxy, err error) {
	unpack := func(a *anypb.Any) error {
		if a == nil {
			return nil
		}
		m, err := a.UnmarshalNew()
		if err != nil {
			return fmt.Errorf("listener %s: %w", l.GetName(), err)
		}
		switch f := m.(type) {
		case *hcmv3.HttpConnectionManager:
			hcms = append(hcms, f)
		case *tcpv3.TcpProxy:
			tcps = append(tcps, f)
		}
		return nil
	}
	if err := unpack(l.GetApiListener().GetApiListener()); err != nil {
		return nil, nil, err
	}
	chains := slices.Clone(l.GetFilterChains())
	if l.GetDefaultFilterChain() != nil {
		chains = append(chains, l.GetDefaultFilterChain())
	}
	for _, fc := range chains {
		for _, f := range fc.GetFilters() {
			if err := unpack(f.GetTypedConfig()); err != nil {
				return nil, nil, err
			}
		}
	}
	return hcms, tcps, nil
}

// routeNames are the route configurations the listeners ask for over RDS.
func routeNames(listeners map[string]proto.Message) []string {
	set := map[string]bool{}
	for _, m := range listeners {
		hcms, _, _ := listenerFilters(m.(*listenerv3.Listener))
		for _, h := range hcms {
			if n := h.GetRds().GetRouteConfigName(); n != "" {
				set[n] = true
			}
		}
	}
	return sortedSet(set)
}

// assignmentName is the ClusterLoadAssignment an EDS cluster takes its
// endpoints from; "" for other clusters.
func assignmentName(c *clusterv3.Cluster) string {
	if c.GetType() != clusterv3.Cluster_EDS {
		return ""
	}
	if n := c.GetEdsClusterConfig().GetServiceName(); n != "" {
		return n
	}
	return c.GetName()
}

// assignmentNames are the assignments the clusters ask for over EDS.
func assignmentNames(clusters map[string]proto.Message) []string {
	set := map[string]bool{}
	for _, m := range clusters {
		if n := assignmentName(m.(*clusterv3.Cluster)); n != "" {
			set[n] = true
		}
	}
	return sortedSet(set)
}

func sortedSet(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// routeClusters are the clusters a route configuration sends to.
func routeClusters(rc *routev3.RouteConfiguration) []string {
	var out []string
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			out = append(out, actionClusters(r.GetRoute())...)
		}
	}
	return out
}

func actionClusters(a *routev3.RouteAction) []string {
	if c := a.GetCluster(); c != "" {
		return []string{c}
	}
	var out []string
	for _, w := range a.GetWeightedClusters().GetClusters() {
		out = append(out, w.GetName())
	}
	return out
}

// consistent checks what a proxy needs to use the configuration: every
// listener's route configuration exists, every route and TCP proxy names a
// cluster that exists, every EDS cluster has its assignment. It returns
// every violation.
func (c config) consistent() error {
	var errs []error
	clusterExists := func(what, name string) {
		if _, ok := c[clusterType][name]; !ok {
			errs = append(errs, fmt.Errorf("%s names cluster %q, which does not exist", what, name))
		}
	}
	for _, name := range c.names(listenerType) {
		hcms, tcps, err := listenerFilters(c[listenerType][name].(*listenerv3.Listener))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, h := range hcms {
			switch {
			case h.GetRds() != nil:
				if _, ok := c[routeType][h.GetRds().GetRouteConfigName()]; !ok {
					errs = append(errs, fmt.Errorf("listener %s names route configuration %q, which does not exist", name, h.GetRds().GetRouteConfigName()))
				}
			case h.GetRouteConfig() != nil:
				for _, cl := range routeClusters(h.GetRouteConfig()) {
					clusterExists("listener "+name+" (inline routes)", cl)
				}
			}
		}
		for _, tp := range tcps {
			if cl := tp.GetCluster(); cl != "" {
				clusterExists("TCP proxy of listener "+name, cl)
			}
			for _, w := range tp.GetWeightedClusters().GetClusters() {
				clusterExists("TCP proxy of listener "+name, w.GetName())
			}
		}
	}
	for _, name := range c.names(routeType) {
		for _, cl := range routeClusters(c[routeType][name].(*routev3.RouteConfiguration)) {
			clusterExists("route configuration "+name, cl)
		}
	}
	for _, name := range c.names(clusterType) {
		if a := assignmentName(c[clusterType][name].(*clusterv3.Cluster)); a != "" {
			if _, ok := c[endpointType][a]; !ok {
				errs = append(errs, fmt.Errorf("EDS cluster %s has no assignment %q", name, a))
			}
		}
	}
	return errors.Join(errs...)
}

// domainMatches is Envoy's virtual host domain matching, without ranking:
// exact, "*", "*suffix" and "prefix*".
func domainMatches(pattern, host string) bool {
	switch {
	case pattern == "*" || pattern == host:
		return true
	case strings.HasPrefix(pattern, "*"):
		return strings.HasSuffix(host, pattern[1:]) && len(host) > len(pattern)-1
	case strings.HasSuffix(pattern, "*"):
		return strings.HasPrefix(host, pattern[:len(pattern)-1]) && len(host) > len(pattern)-1
	}
	return false
}

// virtualHost picks the virtual host of rc for host the way Envoy ranks
// them: an exact domain, then the longest wildcard, then "*".
func virtualHost(rc *routev3.RouteConfiguration, host string) *routev3.VirtualHost {
	var best *routev3.VirtualHost
	bestRank := -1
	for _, vh := range rc.GetVirtualHosts() {
		for _, d := range vh.GetDomains() {
			if !domainMatches(d, host) {
				continue
			}
			rank := len(d)
			switch {
			case d == host:
				rank = 1 << 20
			case d == "*":
				rank = 0
			}
			if rank > bestRank {
				best, bestRank = vh, rank
			}
		}
	}
	return best
}

// rpcPath is the path of the RPC the suite's clients send.
const rpcPath = "/grpc.testing.TestService/UnaryCall"

// routeFor returns the clusters of the first route of vh that matches an
// RPC to rpcPath.
func routeFor(vh *routev3.VirtualHost) ([]string, error) {
	for _, r := range vh.GetRoutes() {
		m := r.GetMatch()
		ok := false
		switch {
		case m.GetPath() != "":
			ok = m.GetPath() == rpcPath
		case m.GetPathSeparatedPrefix() != "":
			ok = strings.HasPrefix(rpcPath, m.GetPathSeparatedPrefix()+"/")
		case m.GetSafeRegex() != nil:
			continue // not evaluated here
		default:
			ok = strings.HasPrefix(rpcPath, m.GetPrefix())
		}
		if ok {
			if r.GetRoute() == nil {
				return nil, fmt.Errorf("virtual host %s: the route matching %s does not route to a cluster", vh.GetName(), rpcPath)
			}
			return actionClusters(r.GetRoute()), nil
		}
	}
	return nil, fmt.Errorf("virtual host %s has no route for %s", vh.GetName(), rpcPath)
}

// endpointsOf lists the addresses ("ip:port", sorted) the assignment of
// EDS cluster name holds, whatever their health status.
func (c config) endpointsOf(name string) ([]string, error) {
	cm, ok := c[clusterType][name]
	if !ok {
		return nil, fmt.Errorf("cluster %q does not exist", name)
	}
	an := assignmentName(cm.(*clusterv3.Cluster))
	if an == "" {
		return nil, fmt.Errorf("cluster %q is of type %s, want EDS", name, cm.(*clusterv3.Cluster).GetType())
	}
	am, ok := c[endpointType][an]
	if !ok {
		return nil, fmt.Errorf("cluster %q: no assignment %q", name, an)
	}
	out := []string{}
	for _, l := range am.(*endpointv3.ClusterLoadAssignment).GetEndpoints() {
		for _, e := range l.GetLbEndpoints() {
			sa := e.GetEndpoint().GetAddress().GetSocketAddress()
			out = append(out, net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue()))))
		}
	}
	sort.Strings(out)
	return out, nil
}

// destinations are the endpoints requests to host reach through the
// route configuration rc: the virtual host for host, the route for an RPC,
// its clusters' assignments.
func (c config) destinations(rc *routev3.RouteConfiguration, host string) ([]string, error) {
	vh := virtualHost(rc, host)
	if vh == nil {
		return nil, fmt.Errorf("route configuration %s has no virtual host for %q", rc.GetName(), host)
	}
	clusters, err := routeFor(vh)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, cl := range clusters {
		eps, err := c.endpointsOf(cl)
		if err != nil {
			return nil, fmt.Errorf("route configuration %s, host %s: %w", rc.GetName(), host, err)
		}
		out = append(out, eps...)
	}
	sort.Strings(out)
	return slices.Compact(out), nil
}

// proxyless follows what a proxyless gRPC client dialing xds:///target
// does: the API listener named target, its route configuration, the
// virtual host for target, the clusters and their endpoints.
func (c config) proxyless(target string) ([]string, error) {
	lm, ok := c[listenerType][target]
	if !ok {
		return nil, fmt.Errorf("no listener %q", target)
	}
	l := lm.(*listenerv3.Listener)
	if l.GetApiListener() == nil {
		return nil, fmt.Errorf("listener %q is not an API listener", target)
	}
	hcms, _, err := listenerFilters(l)
	if err != nil || len(hcms) == 0 {
		return nil, fmt.Errorf("listener %q: no HTTP connection manager in its API listener (%v)", target, err)
	}
	rc := hcms[0].GetRouteConfig()
	if name := hcms[0].GetRds().GetRouteConfigName(); name != "" {
		rm, ok := c[routeType][name]
		if !ok {
			return nil, fmt.Errorf("listener %q: no route configuration %q", target, name)
		}
		rc = rm.(*routev3.RouteConfiguration)
	}
	return c.destinations(rc, target)
}

// byDomains finds the route configuration with a virtual host that carries
// every one of domains and returns the endpoints that virtual host sends
// to.
func (c config) byDomains(domains []string) ([]string, error) {
	for _, name := range c.names(routeType) {
		rc := c[routeType][name].(*routev3.RouteConfiguration)
		for _, vh := range rc.GetVirtualHosts() {
			has := map[string]bool{}
			for _, d := range vh.GetDomains() {
				has[d] = true
			}
			all := true
			for _, d := range domains {
				all = all && has[d]
			}
			if all {
				return c.destinations(rc, domains[0])
			}
		}
	}
	return nil, fmt.Errorf("no virtual host has all of the domains %v", domains)
}

// allEndpoints lists every address of every assignment.
func (c config) allEndpoints() map[string]bool {
	out := map[string]bool{}
	for _, name := range c.names(clusterType) {
		eps, _ := c.endpointsOf(name)
		for _, e := range eps {
			out[e] = true
		}
	}
	return out
}

// diff describes how two configurations differ, nil when they hold the
// same resources.
func diff(a, b config) error {
	var errs []error
	for _, typ := range allTypes {
		an, bn := a.names(typ), b.names(typ)
		if !slices.Equal(an, bn) {
			errs = append(errs, fmt.Errorf("%s: %v against %v", shortType(typ), an, bn))
			continue
		}
		for _, n := range an {
			if !proto.Equal(a[typ][n], b[typ][n]) {
				errs = append(errs, fmt.Errorf("%s %s differs", shortType(typ), n))
			}
		}
	}
	return errors.Join(errs...)
}

// proxy is an xDS client that behaves like Envoy on one ADS stream: it
// subscribes to every Listener and Cluster (wildcard), follows them to
// the RouteConfigurations and ClusterLoadAssignments they name, validates
// every resource it receives and acknowledges every response. Validation
// failures are recorded, and reported by check.
type proxy struct {
	t       *testing.T
	name    string
	variant string

	mu        sync.Mutex
	cfg       config
	subs      map[string][]string // route and assignment names subscribed
	versions  map[string]string   // SotW: last version per type
	nonces    map[string]string   // SotW: last nonce per type
	invalid   []error
	responses int
	err       error
	updated   chan struct{} // closed and replaced on every response
}

// startProxy connects a proxy with node id nodeID to the implementation at
// addr over the SotW variant of ADS, or the delta variant with delta set.
func startProxy(t *testing.T, c *harness.Cluster, ctx context.Context, addr, nodeID string, delta bool) *proxy {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	p := &proxy{t: t, name: nodeID, variant: "SotW", cfg: config{}, subs: map[string][]string{},
		versions: map[string]string{}, nonces: map[string]string{}, updated: make(chan struct{})}
	for _, typ := range allTypes {
		p.cfg[typ] = map[string]proto.Message{}
	}
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(c.DialService(t, addr))
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	node := &corev3.Node{Id: nodeID, Cluster: "conformance"}
	if delta {
		p.variant = "delta"
		s, err := ads.DeltaAggregatedResources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i, typ := range []string{clusterType, listenerType} {
			req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: typ}
			if i == 0 {
				req.Node = node
			}
			if err := s.Send(req); err != nil {
				t.Fatal(err)
			}
		}
		go func() { defer close(done); p.fail(p.runDelta(s)) }()
		return p
	}
	s, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, typ := range []string{clusterType, listenerType} {
		req := &discoveryv3.DiscoveryRequest{TypeUrl: typ}
		if i == 0 {
			req.Node = node
		}
		if err := s.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	go func() { defer close(done); p.fail(p.runSotW(s)) }()
	return p
}

func (p *proxy) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
	}
	close(p.updated)
	p.updated = nil
}

// accept records the resources of one response and returns the new route
// and assignment subscriptions where they changed (nil where not).
func (p *proxy) accept(typ string, resources []proto.Message, removed []string, replace bool, errs []error) (subscribe map[string][]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.responses++
	p.invalid = append(p.invalid, errs...)
	if replace {
		p.cfg[typ] = map[string]proto.Message{}
	}
	for _, m := range resources {
		p.cfg[typ][resourceName(m)] = m
	}
	for _, n := range removed {
		delete(p.cfg[typ], n)
	}
	subscribe = map[string][]string{}
	follow := func(child string, names []string) {
		if slices.Equal(names, p.subs[child]) {
			return
		}
		p.subs[child] = names
		subscribe[child] = names
		for n := range p.cfg[child] {
			if !slices.Contains(names, n) {
				delete(p.cfg[child], n)
			}
		}
	}
	switch typ {
	case listenerType:
		follow(routeType, routeNames(p.cfg[listenerType]))
	case clusterType:
		follow(endpointType, assignmentNames(p.cfg[clusterType]))
	}
	if p.updated != nil {
		close(p.updated)
		p.updated = make(chan struct{})
	}
	return subscribe
}

func decodeAll(typ string, as []*anypb.Any, where string) ([]proto.Message, []error) {
	var ms []proto.Message
	var errs []error
	for _, a := range as {
		m, err := decode(typ, a)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s %s: %w", where, shortType(typ), resourceName(m), err))
		}
		if m != nil {
			ms = append(ms, m)
		}
	}
	return ms, errs
}

func (p *proxy) runSotW(s discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient) error {
	for {
		resp, err := s.Recv()
		if err != nil {
			return err
		}
		typ := resp.GetTypeUrl()
		ms, errs := decodeAll(typ, resp.GetResources(), "SotW version "+resp.GetVersionInfo())
		// Listeners and Clusters come as the whole set; routes and
		// assignments may come alone.
		whole := typ == listenerType || typ == clusterType
		subscribe := p.accept(typ, ms, nil, whole, errs)
		p.mu.Lock()
		p.versions[typ], p.nonces[typ] = resp.GetVersionInfo(), resp.GetNonce()
		ack := &discoveryv3.DiscoveryRequest{TypeUrl: typ, VersionInfo: resp.GetVersionInfo(),
			ResponseNonce: resp.GetNonce(), ResourceNames: p.subs[typ]}
		p.mu.Unlock()
		if err := s.Send(ack); err != nil {
			return err
		}
		for _, child := range []string{routeType, endpointType} {
			names, ok := subscribe[child]
			if !ok || len(names) == 0 {
				continue // an empty list would be a wildcard
			}
			p.mu.Lock()
			req := &discoveryv3.DiscoveryRequest{TypeUrl: child, ResourceNames: names,
				VersionInfo: p.versions[child], ResponseNonce: p.nonces[child]}
			p.mu.Unlock()
			if err := s.Send(req); err != nil {
				return err
			}
		}
	}
}

func (p *proxy) runDelta(s discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient) error {
	subscribed := map[string][]string{}
	for {
		resp, err := s.Recv()
		if err != nil {
			return err
		}
		typ := resp.GetTypeUrl()
		var ms []proto.Message
		var errs []error
		for _, r := range resp.GetResources() {
			m, err := decode(typ, r.GetResource())
			if err != nil {
				errs = append(errs, fmt.Errorf("delta %s %s: %w", shortType(typ), r.GetName(), err))
			}
			if m == nil {
				continue
			}
			if resourceName(m) != r.GetName() {
				errs = append(errs, fmt.Errorf("delta %s: resource %q served under the name %q", shortType(typ), resourceName(m), r.GetName()))
			}
			ms = append(ms, m)
		}
		subscribe := p.accept(typ, ms, resp.GetRemovedResources(), false, errs)
		if err := s.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: typ, ResponseNonce: resp.GetNonce()}); err != nil {
			return err
		}
		for _, child := range []string{routeType, endpointType} {
			names, ok := subscribe[child]
			if !ok {
				continue
			}
			req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: child}
			for _, n := range names {
				if !slices.Contains(subscribed[child], n) {
					req.ResourceNamesSubscribe = append(req.ResourceNamesSubscribe, n)
				}
			}
			for _, n := range subscribed[child] {
				if !slices.Contains(names, n) {
					req.ResourceNamesUnsubscribe = append(req.ResourceNamesUnsubscribe, n)
				}
			}
			subscribed[child] = names
			if len(req.ResourceNamesSubscribe)+len(req.ResourceNamesUnsubscribe) == 0 {
				continue
			}
			if err := s.Send(req); err != nil {
				return err
			}
		}
	}
}

// snapshot returns what the proxy holds now, and the validation failures
// and stream error seen so far.
func (p *proxy) snapshot() (config, []error, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg.clone(), slices.Clone(p.invalid), p.err
}

// await waits until the proxy holds a consistent configuration for which
// want returns nil, and returns it. It fails the test on an invalid
// resource, a broken stream, or after waitFor with the last reason.
func (p *proxy) await(what string, want func(config) error) config {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	var last error
	for {
		p.mu.Lock()
		updated := p.updated
		p.mu.Unlock()
		cfg, invalid, err := p.snapshot()
		if len(invalid) > 0 {
			p.t.Fatalf("%s proxy %s received resources that fail validation:\n%v", p.variant, p.name, errors.Join(invalid...))
		}
		if err != nil {
			p.t.Fatalf("%s proxy %s: ADS stream ended: %v", p.variant, p.name, err)
		}
		last = cfg.consistent()
		if last == nil {
			if last = want(cfg); last == nil {
				return cfg
			}
		}
		select {
		case <-updated:
		case <-ctx.Done():
			p.t.Fatalf("%s proxy %s: %s: not after %v: %v\nit holds: %v", p.variant, p.name, what, waitFor, last, cfg)
		}
	}
}
