package translate

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/services/service-proxy/internal/parallel"
)

// Input is the cluster state the proxy configuration is made from. Objects
// are read, never modified.
type Input struct {
	Services  []*corev1.Service
	Endpoints []*corev1.Endpoints
	Nodes     []*corev1.Node
}

// Options are the proxy-wide settings.
type Options struct {
	// ClusterDomain is the DNS suffix of services: name.namespace.svc.<domain>.
	// Default "cluster.local".
	ClusterDomain string
	// IngressAddress is the address ingress listeners bind on. Default "0.0.0.0".
	IngressAddress string
	// OutboundPort is the port of the virtual_outbound listener that
	// redirected connections arrive on. Default 15001.
	OutboundPort uint32
}

func (o Options) withDefaults() Options {
	if o.ClusterDomain == "" {
		o.ClusterDomain = "cluster.local"
	}
	if o.IngressAddress == "" {
		o.IngressAddress = "0.0.0.0"
	}
	if o.OutboundPort == 0 {
		o.OutboundPort = 15001
	}
	return o
}

// Problem is something in the input that is not served as asked.
type Problem struct {
	// Object is kind namespace/name, e.g. "Service default/web".
	Object string
	// Field is the path of the field at fault, when one is.
	Field string
	// Message says what is wrong and what was done instead.
	Message string
}

func (p Problem) String() string {
	if p.Field == "" {
		return p.Object + ": " + p.Message
	}
	return p.Object + ": " + p.Field + ": " + p.Message
}

// Group is every resource of one Service. Groups are independent: a
// resource of one group never refers to a resource of another, so a
// Service can be left out without breaking the rest.
type Group struct {
	// Key is namespace/name.
	Key string
	// Digest sums up everything the group's clusters, route
	// configurations and listeners are made from: the Service's name,
	// namespace, annotations and spec, the Options and the build of the
	// service-proxy. Two groups with the same Digest have the same
	// content in every cluster (as seen from the same node), route
	// configuration and listener they share a name with; assignments,
	// which come from the Endpoints and Nodes too, are not covered. Empty
	// when unknown.
	Digest       string
	Clusters     []*clusterv3.Cluster
	Assignments  []*endpointv3.ClusterLoadAssignment
	Routes       []*routev3.RouteConfiguration
	Listeners    []*listenerv3.Listener
	nodeLocal    bool
	localAssigns func(node string) []*endpointv3.ClusterLoadAssignment
}

// NodeLocal reports whether the group's assignments depend on the node the
// proxy runs on (prefer-local or internalTrafficPolicy Local). Such a
// group's clusters and assignments are per node: the cluster S.NS:P of a
// proxy on node N takes its endpoints from the assignment S.NS:P@N (see
// LocalAssignmentName), so that every proxy can be served from one shared
// set of assignments. Clusters and Assignments hold the variant of an
// unknown node ("").
func (g *Group) NodeLocal() bool { return g.nodeLocal }

// LocalAssignmentName is the name of the assignment of cluster name as seen
// from node, for Services whose endpoints depend on the proxy's node.
func LocalAssignmentName(name, node string) string { return name + "@" + node }

// ClustersFor returns the group's clusters as seen by a proxy on node (a
// Node's name; "" when unknown).
func (g *Group) ClustersFor(node string) []*clusterv3.Cluster {
	if !g.nodeLocal || node == "" {
		return g.Clusters
	}
	out := make([]*clusterv3.Cluster, len(g.Clusters))
	for i, c := range g.Clusters {
		c = proto.Clone(c).(*clusterv3.Cluster)
		c.EdsClusterConfig.ServiceName = LocalAssignmentName(c.GetName(), node)
		out[i] = c
	}
	return out
}

// AssignmentsFor returns the group's assignments as seen by a proxy on node
// (a Node's name; "" when unknown).
func (g *Group) AssignmentsFor(node string) []*endpointv3.ClusterLoadAssignment {
	if !g.nodeLocal || g.localAssigns == nil || node == "" {
		return g.Assignments
	}
	return g.localAssigns(node)
}

// Result is the translation of an Input.
type Result struct {
	// Groups holds one group per served Service, sorted by key.
	Groups []*Group
	// Shared holds what belongs to no Service: the virtual_outbound listener
	// and its passthrough cluster.
	Shared *Group
	// Problems lists what was not served as asked, in input order.
	Problems []Problem
}

// Translate turns in into Envoy resources. Every resource it returns passes
// its ValidateAll; a Service whose resources do not is left out and reported.
func Translate(in Input, opts Options) *Result {
	return (&Cache{}).Translate(in, opts)
}

// Cache translates like Translate, reusing the Group of a Service whose
// Service and Endpoints objects are the very ones it translated last time
// (informers replace an object on every change, never modify it) while the
// Nodes' localities and the options stay the same. An update of one
// Service's Endpoints then translates one Service, not all. The zero value
// is ready; a Cache is not safe for concurrent use.
type Cache struct {
	entries  map[string]*cacheEntry
	nodesKey string
	opts     Options
}

// cacheEntry is the translation of one Service. An entry with svc set was
// translated unobstructed, as if no other Service held anything, and may be
// reused while the Service wants nothing another one holds.
type cacheEntry struct {
	svc      *corev1.Service
	ep       *corev1.Endpoints
	group    *Group
	problems []Problem
	// wants is everything the translation depends on holding: its
	// addresses and ingress ports even when the group was left out, its
	// resource names when it was not. claims is what it holds.
	wants, claims claimSet
}

// Translate turns in into Envoy resources, reusing what it can from the
// previous call.
//
// Services are translated in parallel, each as if it were alone; then,
// oldest first, each claims its cluster-IP addresses, ingress ports and
// resource names. The rare Service that wants something an older one holds
// is translated again, alone, against what is held, so the result is the
// one of translating every Service in turn.
func (c *Cache) Translate(in Input, opts Options) *Result {
	t, services, eps := prepare(in, opts)
	if nk := nodesKey(t.nodes); nk != c.nodesKey || t.opts != c.opts || c.entries == nil {
		c.entries, c.nodesKey, c.opts = map[string]*cacheEntry{}, nk, t.opts
	}
	res := &Result{Shared: sharedGroup(t.opts, t.seed)}
	keys := make([]string, len(services))
	found := make([]*cacheEntry, len(services))
	var todo []int
	for i, svc := range services {
		keys[i] = api.KeyOf(svc)
		if e := c.entries[keys[i]]; e != nil && e.svc == svc && e.ep == eps[keys[i]] {
			found[i] = e
		} else {
			todo = append(todo, i)
		}
	}
	parallel.For(len(todo), func(j int) {
		i := todo[j]
		found[i] = t.service(services[i], eps[keys[i]], nil)
	})

	t.claim(claimSet{names: groupNames(res.Shared)}, "(shared)")
	entries := make(map[string]*cacheEntry, len(services))
	for i, svc := range services {
		e := found[i]
		if !t.free(e.wants) {
			// Another Service holds part of it: translate it against what
			// is held, and do not keep the result.
			e = t.service(svc, eps[keys[i]], t.held)
			e.svc = nil
		}
		t.claim(e.claims, keys[i])
		entries[keys[i]] = e
		res.Problems = append(res.Problems, e.problems...)
		if e.group != nil {
			res.Groups = append(res.Groups, e.group)
		}
	}
	c.entries = entries
	slices.SortFunc(res.Groups, func(a, b *Group) int { return cmp.Compare(a.Key, b.Key) })
	return res
}

// prepare indexes in: it returns a translator for it, its Services that
// have a name and namespace, oldest first, and its Endpoints by key.
func prepare(in Input, opts Options) (*translator, []*corev1.Service, map[string]*corev1.Endpoints) {
	opts = opts.withDefaults()
	eps := make(map[string]*corev1.Endpoints, len(in.Endpoints))
	for _, e := range in.Endpoints {
		if e != nil && e.GetMetadata() != nil {
			eps[api.KeyOf(e)] = e
		}
	}
	nodes := make(map[string]*corev1.Node, len(in.Nodes))
	for _, n := range in.Nodes {
		if n != nil {
			nodes[n.GetMetadata().GetName()] = n
		}
	}
	type aged struct {
		svc     *corev1.Service
		created time.Time
		key     string
	}
	byAge := make([]aged, 0, len(in.Services))
	for _, s := range in.Services {
		if s != nil && s.GetMetadata().GetName() != "" && s.GetMetadata().GetNamespace() != "" {
			byAge = append(byAge, aged{s, s.GetMetadata().GetCreationTimestamp().AsTime(), api.KeyOf(s)})
		}
	}
	// Oldest first, so that a Service created later cannot take a bound
	// address or ingress port from one that already has it.
	slices.SortStableFunc(byAge, func(a, b aged) int {
		return cmp.Or(a.created.Compare(b.created), cmp.Compare(a.key, b.key))
	})
	services := make([]*corev1.Service, len(byAge))
	for i, a := range byAge {
		services[i] = a.svc
	}
	// Most Services hold five names and an address per port.
	t := &translator{opts: opts, nodes: nodes, seed: digestSeed(opts), held: make(map[holding]string, 8*len(services))}
	return t, services, eps
}

// nodesKey sums up what translation reads of the Nodes: their localities.
func nodesKey(nodes map[string]*corev1.Node) string {
	keys := make([]string, 0, len(nodes))
	for name, n := range nodes {
		l := n.GetMetadata().GetLabels()
		keys = append(keys, name+"\x00"+l[LabelRegion]+"\x00"+l[LabelZone])
	}
	slices.Sort(keys)
	return strings.Join(keys, "\x01")
}

// claimSet is what a Service holds that no other Service may: resource
// names, cluster-IP addresses and ingress ports.
type claimSet struct {
	names, addrs []string
	ingress      []uint32
}

func (t *translator) free(c claimSet) bool {
	for _, n := range c.names {
		if _, taken := t.held[holding{name: n}]; taken {
			return false
		}
	}
	for _, a := range c.addrs {
		if _, taken := t.held[holding{addr: a}]; taken {
			return false
		}
	}
	for _, p := range c.ingress {
		if _, taken := t.held[holding{ingress: p}]; taken {
			return false
		}
	}
	return true
}

func (t *translator) claim(c claimSet, key string) {
	for _, n := range c.names {
		t.held[holding{name: n}] = key
	}
	for _, a := range c.addrs {
		t.held[holding{addr: a}] = key
	}
	for _, p := range c.ingress {
		t.held[holding{ingress: p}] = key
	}
}

// holding is one thing a Service may hold: a resource name, an address or
// an ingress port; exactly one field is set.
type holding struct {
	name, addr string
	ingress    uint32
}

type translator struct {
	opts  Options
	nodes map[string]*corev1.Node
	// seed starts every group's Digest: the build and the options.
	seed []byte
	// held records which Service holds each resource name, cluster-IP
	// address and ingress port, so that no two Services ask one Envoy for
	// the same.
	held map[holding]string
}

// servedPort is one service port that is proxied.
type servedPort struct {
	port     *corev1.ServicePort
	name     string // resource name, name.namespace:port
	protocol Protocol
}

// service translates one Service with its Endpoints (nil when none),
// refusing what held (which may be nil) says another Service holds. It
// only reads t, so that Services may be translated in parallel with a nil
// held.
func (t *translator) service(svc *corev1.Service, ep *corev1.Endpoints, held map[holding]string) *cacheEntry {
	e := &cacheEntry{svc: svc, ep: ep}
	key := api.KeyOf(svc)
	obj := "Service " + key
	problem := func(field, msg string) {
		e.problems = append(e.problems, Problem{Object: obj, Field: field, Message: msg})
	}
	if svc.GetSpec().GetType() == "ExternalName" {
		problem("spec.type", "ExternalName services are resolved by DNS, not proxied")
		return e
	}
	o := parseServiceOptions(svc, problem)
	name, ns := svc.GetMetadata().GetName(), svc.GetMetadata().GetNamespace()

	var ports []servedPort
	seen := map[int32]bool{}
	for i, p := range svc.GetSpec().GetPorts() {
		field := fmt.Sprintf("spec.ports[%d]", i)
		switch {
		case p == nil:
			continue
		case p.GetProtocol() != "" && p.GetProtocol() != "TCP":
			problem(field+".protocol", fmt.Sprintf("%s is not proxied", p.GetProtocol()))
			continue
		case p.GetPort() < 1 || p.GetPort() > 65535:
			problem(field+".port", fmt.Sprintf("port %d out of range", p.GetPort()))
			continue
		case seen[p.GetPort()]:
			problem(field+".port", fmt.Sprintf("port %d is listed twice; the first is used", p.GetPort()))
			continue
		}
		seen[p.GetPort()] = true
		ports = append(ports, servedPort{port: p, name: ResourceName(name, ns, p.GetPort()), protocol: PortProtocol(p)})
	}
	if len(ports) == 0 {
		problem("spec.ports", "no TCP port to proxy")
		return e
	}

	g := &Group{Key: key, Digest: t.digest(svc), nodeLocal: o.preferLocal || o.internalLocalOnly || o.externalLocalPolicy}
	edsName := func(cluster, node string) string {
		if g.nodeLocal {
			return LocalAssignmentName(cluster, node)
		}
		return cluster
	}
	// Ingress traffic of an externalTrafficPolicy Local Service goes only
	// to endpoints on the proxy's own Node, through a cluster of its own.
	localOnly := o
	localOnly.preferLocal, localOnly.internalLocalOnly = false, true
	var ingressLocal []servedPort
	var claims claimSet
	ownPorts := map[uint32]bool{}
	for i, sp := range ports {
		g.Clusters = append(g.Clusters, cluster(sp, edsName(sp.name, ""), o))
		g.Assignments = append(g.Assignments, assignment(edsName(sp.name, ""), sp.port, ep, t.nodes, o, ""))
		g.Routes = append(g.Routes, routeConfig(sp.name, name, ns, t.opts.ClusterDomain, o, sp))
		g.Listeners = append(g.Listeners, apiListener(sp.name, sp.name))
		if i == 0 {
			g.Listeners = append(g.Listeners, apiListener(ServiceTarget(name, ns), sp.name))
		}
		if !o.headless && o.clusterIP != "" && net.ParseIP(o.clusterIP) != nil {
			addr := net.JoinHostPort(o.clusterIP, strconv.Itoa(int(sp.port.GetPort())))
			e.wants.addrs = append(e.wants.addrs, addr)
			if holder, taken := held[holding{addr: addr}]; taken {
				problem(fmt.Sprintf("spec.ports[%d]", i), fmt.Sprintf("address %s is already served for Service %s", addr, holder))
			} else {
				g.Listeners = append(g.Listeners, boundListener(sp, o.clusterIP))
				claims.addrs = append(claims.addrs, addr)
			}
		}
		if o.exposedOnNodePorts {
			port := uint32(sp.port.GetNodePort())
			if port == 0 && svc.GetSpec().GetType() == "LoadBalancer" {
				port = uint32(sp.port.GetPort())
			}
			if port != 0 && !ownPorts[port] {
				e.wants.ingress = append(e.wants.ingress, port)
			}
			holder, taken := held[holding{ingress: port}]
			if ownPorts[port] {
				holder, taken = key, true
			}
			switch {
			case port == 0:
				problem(fmt.Sprintf("spec.ports[%d].nodePort", i), "no node port assigned; not exposed on the ingress")
			case taken:
				problem(fmt.Sprintf("spec.ports[%d].nodePort", i), fmt.Sprintf("ingress port %d is already used by Service %s", port, holder))
			default:
				ownPorts[port] = true
				target := sp.name
				if o.externalLocalPolicy {
					target = NodeLocalCluster(sp.name)
					c := cluster(sp, edsName(target, ""), o)
					c.Name = target
					g.Clusters = append(g.Clusters, c)
					g.Assignments = append(g.Assignments, assignment(edsName(target, ""), sp.port, ep, t.nodes, localOnly, ""))
					ingressLocal = append(ingressLocal, sp)
				}
				l, r := ingress(sp, port, t.opts.IngressAddress, target, o)
				g.Listeners = append(g.Listeners, l)
				if r != nil {
					g.Routes = append(g.Routes, r)
				}
				claims.ingress = append(claims.ingress, port)
			}
		}
	}
	if g.nodeLocal {
		nodes := t.nodes
		g.localAssigns = func(node string) []*endpointv3.ClusterLoadAssignment {
			out := make([]*endpointv3.ClusterLoadAssignment, 0, len(ports)+len(ingressLocal))
			for _, sp := range ports {
				out = append(out, assignment(edsName(sp.name, node), sp.port, ep, nodes, o, node))
			}
			for _, sp := range ingressLocal {
				out = append(out, assignment(edsName(NodeLocalCluster(sp.name), node), sp.port, ep, nodes, localOnly, node))
			}
			return out
		}
	}
	if err := ValidateGroup(g); err != nil {
		problem("", "left out: "+err.Error())
		return e
	}
	claims.names = groupNames(g)
	e.wants.names = claims.names
	for _, n := range claims.names {
		if holder, taken := held[holding{name: n}]; taken {
			problem("metadata.name", fmt.Sprintf("left out: resource %s is already Service %s's", n, holder))
			return e
		}
	}
	e.group, e.claims = g, claims
	return e
}

// groupNames lists the resources of g as "kind/name".
func groupNames(g *Group) []string {
	var out []string
	for _, c := range g.Clusters {
		out = append(out, "cluster/"+c.GetName())
	}
	for _, r := range g.Routes {
		out = append(out, "route/"+r.GetName())
	}
	for _, l := range g.Listeners {
		out = append(out, "listener/"+l.GetName())
	}
	return out
}

// ResourceName is the name of every resource of port port of Service
// name in namespace ns: name.ns:port.
func ResourceName(name, ns string, port int32) string {
	return name + "." + ns + ":" + strconv.Itoa(int(port))
}

// ServiceTarget is the name of the API listener of a Service's first port,
// the host of the gRPC target xds:///name.ns.
func ServiceTarget(name, ns string) string { return name + "." + ns }

// ValidateGroup runs ValidateAll on every resource of g.
func ValidateGroup(g *Group) error {
	for _, c := range g.Clusters {
		if err := c.ValidateAll(); err != nil {
			return fmt.Errorf("cluster %q: %w", c.GetName(), err)
		}
	}
	for _, a := range g.Assignments {
		if err := a.ValidateAll(); err != nil {
			return fmt.Errorf("assignment %q: %w", a.GetClusterName(), err)
		}
	}
	for _, r := range g.Routes {
		if err := r.ValidateAll(); err != nil {
			return fmt.Errorf("route configuration %q: %w", r.GetName(), err)
		}
	}
	for _, l := range g.Listeners {
		if err := l.ValidateAll(); err != nil {
			return fmt.Errorf("listener %q: %w", l.GetName(), err)
		}
	}
	return nil
}
