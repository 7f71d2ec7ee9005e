// Package snapshot assembles translated resources into xDS snapshots: one
// per proxy node, each checked for consistency before it may be served,
// versioned by content so that every replica of the service-proxy gives the
// same version to the same configuration, and changed make-before-break.
//
// A resource's hash is read from what it is made from where translation
// says what that is (translate.Group.Digest) and from its fields or its
// encoding otherwise (see Hasher): a full build of 1,000 Services encodes
// none of them.
//
// A Set is one configuration: resources by type and name. Check proves a Set
// is whole (every listener's route configuration exists, every route names a
// cluster that exists, every EDS cluster has its assignment). Phases splits
// the move from one Set to the next into steps that are each whole and never
// take away something a client may still use:
//
//  1. add the new and changed clusters and assignments, keep the old ones;
//  2. switch listeners and route configurations to the new ones;
//  3. remove the clusters and assignments nothing uses any more.
package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"bosun.dev/services/service-proxy/internal/parallel"
	"bosun.dev/services/service-proxy/internal/translate"
)

// Types are the resource types of a Set, in the order Envoy wants them
// applied.
var Types = []resource.Type{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType}

// entry is one resource with the hash of its content.
type entry struct {
	res  types.Resource
	hash string
	refs *refs
}

// typedEntry is an entry with its type and name.
type typedEntry struct {
	typ  resource.Type
	name string
	entry
}

// groupKey is a group as seen by the proxies on one Node: node is "" for
// a group that is the same everywhere.
type groupKey struct {
	g    *translate.Group
	node string
}

func keyOf(g *translate.Group, node string) groupKey {
	if !g.NodeLocal() {
		node = ""
	}
	return groupKey{g, node}
}

// Set is one xDS configuration. It is immutable once built: sets share
// entries, never change them.
type Set struct {
	byType   map[resource.Type]map[string]entry
	versions map[resource.Type]string
	// groups and loose are where the entries came from, for
	// Hasher.Forget: translated groups, and resources added one by one.
	groups []groupKey
	loose  []entry

	snapOnce sync.Once
	snap     *cache.Snapshot
}

// Version is the version of type typ: a hash of the names and hashes of
// every resource of the type, so equal content built from equal objects
// has equal versions on every replica running the same build.
func (s *Set) Version(typ resource.Type) string { return s.versions[typ] }

// Names returns the names of the resources of type typ, sorted.
func (s *Set) Names(typ resource.Type) []string {
	return slices.Sorted(maps.Keys(s.byType[typ]))
}

// Hash returns the hash of the content of resource typ/name, "" when s
// has no such resource. Two resources of one type and name with equal
// hashes have equal content.
func (s *Set) Hash(typ resource.Type, name string) string { return s.byType[typ][name].hash }

// Get returns the resource typ/name.
func (s *Set) Get(typ resource.Type, name string) (types.Resource, bool) {
	e, ok := s.byType[typ][name]
	return e.res, ok
}

// Equal reports whether s and o hold the same content.
func (s *Set) Equal(o *Set) bool {
	if s == nil || o == nil {
		return s == o
	}
	for _, t := range Types {
		if s.versions[t] != o.versions[t] {
			return false
		}
	}
	return true
}

// Snapshot returns the clusters, listeners and route configurations of s
// as a go-control-plane snapshot, each type with its own version. The
// assignments are left out: they are served to every proxy from one shared
// cache (see Assignments). The snapshot is built once and shared: proxies
// served the same Set share one snapshot.
func (s *Set) Snapshot() *cache.Snapshot {
	s.snapOnce.Do(func() { s.snap = s.buildSnapshot() })
	return s.snap
}

// Assignments calls f for every assignment of s with the hash of its
// content.
func (s *Set) Assignments(f func(name string, cla types.Resource, hash string)) {
	for name, e := range s.byType[resource.EndpointType] {
		f(name, e.res, e.hash)
	}
}

func (s *Set) buildSnapshot() *cache.Snapshot {
	snap := &cache.Snapshot{}
	for _, t := range []resource.Type{resource.ClusterType, resource.ListenerType, resource.RouteType} {
		items := make([]types.ResourceWithTTL, 0, len(s.byType[t]))
		for _, n := range s.Names(t) {
			items = append(items, types.ResourceWithTTL{Resource: s.byType[t][n].res})
		}
		snap.Resources[cache.GetResponseType(t)] = cache.NewResourcesWithTTL(s.versions[t], items)
	}
	return snap
}

// Hasher hashes resources and reads their references, remembering both
// for each translated group and each resource added alone, so that what
// builds share (the groups translate.Cache reuses) is read once. It is not
// safe for concurrent use.
//
// A cluster, route configuration or listener of a group with a Digest is
// hashed from that Digest and (for a node-local group) the Node:
// translation made it from nothing else. Every other resource is hashed
// from its content.
type Hasher struct {
	seen   map[types.Resource]entry
	groups map[groupKey][]typedEntry
}

// NewHasher returns an empty Hasher.
func NewHasher() *Hasher {
	return &Hasher{seen: map[types.Resource]entry{}, groups: map[groupKey][]typedEntry{}}
}

func (h *Hasher) entry(typ resource.Type, r types.Resource) (entry, error) {
	if e, ok := h.seen[r]; ok {
		return e, nil
	}
	e, err := contentEntry(typ, r)
	if err != nil {
		return entry{}, err
	}
	h.seen[r] = e
	return e, nil
}

// contentEntry hashes r from its content.
func contentEntry(typ resource.Type, r types.Resource) (entry, error) {
	if cla, ok := r.(*endpointv3.ClusterLoadAssignment); ok {
		if h, ok := assignmentHash(cla); ok {
			return entry{res: r, hash: h, refs: &refs{}}, nil
		}
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
	if err != nil {
		return entry{}, err
	}
	sum := sha256.Sum256(b)
	return entry{res: r, hash: hex.EncodeToString(sum[:12]), refs: referencesOf(typ, r)}, nil
}

// digestEntry hashes r, of group k.g, from the group's Digest: resources
// are compared and versioned by type and name, so the Digest itself (with
// the Node for a node-local group) is the hash.
func digestEntry(k groupKey, typ resource.Type, r types.Resource) entry {
	hash := k.g.Digest
	if k.node != "" {
		hash += "@" + k.node
	}
	return entry{res: r, hash: hash, refs: referencesOf(typ, r)}
}

// groupEntries hashes and reads every resource of group k.g as seen from
// Node k.node. It only reads the group, so groups may be read in parallel.
func groupEntries(k groupKey) ([]typedEntry, error) {
	g := k.g
	out := make([]typedEntry, 0, len(g.Clusters)+len(g.Assignments)+len(g.Routes)+len(g.Listeners))
	var errs []error
	add := func(typ resource.Type, r types.Resource) {
		name := cache.GetResourceName(r)
		if g.Digest != "" && typ != resource.EndpointType {
			out = append(out, typedEntry{typ, name, digestEntry(k, typ, r)})
			return
		}
		e, err := contentEntry(typ, r)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", shortType(typ), name, err))
			return
		}
		out = append(out, typedEntry{typ, name, e})
	}
	for _, c := range g.ClustersFor(k.node) {
		add(resource.ClusterType, c)
	}
	for _, a := range g.AssignmentsFor(k.node) {
		add(resource.EndpointType, a)
	}
	for _, r := range g.Routes {
		add(resource.RouteType, r)
	}
	for _, l := range g.Listeners {
		add(resource.ListenerType, l)
	}
	return out, errors.Join(errs...)
}

// group returns the entries of g as seen from node, reading them unless
// it has already.
func (h *Hasher) group(k groupKey) ([]typedEntry, error) {
	if es, ok := h.groups[k]; ok {
		return es, nil
	}
	es, err := groupEntries(k)
	if err != nil {
		return nil, err
	}
	h.groups[k] = es
	return es, nil
}

// Forget drops everything remembered except what concerns the resources
// in keep.
func (h *Hasher) Forget(keep ...*Set) {
	seen := map[types.Resource]entry{}
	groups := map[groupKey][]typedEntry{}
	for _, s := range keep {
		if s == nil {
			continue
		}
		for _, e := range s.loose {
			seen[e.res] = e
		}
		for _, k := range s.groups {
			if es, ok := h.groups[k]; ok {
				groups[k] = es
			}
		}
	}
	h.seen, h.groups = seen, groups
}

// Builder collects resources into a Set.
type Builder struct {
	h      *Hasher
	byType map[resource.Type]map[string]entry
	groups []groupKey
	loose  []entry
	err    error
}

// NewBuilder starts an empty Set; h may be nil.
func NewBuilder(h *Hasher) *Builder {
	if h == nil {
		h = NewHasher()
	}
	b := &Builder{h: h, byType: map[resource.Type]map[string]entry{}}
	for _, t := range Types {
		b.byType[t] = map[string]entry{}
	}
	return b
}

// Add adds resources of type typ. A name added twice is an error.
func (b *Builder) Add(typ resource.Type, rs ...types.Resource) {
	for _, r := range rs {
		name := cache.GetResourceName(r)
		if _, dup := b.byType[typ][name]; dup {
			b.err = errors.Join(b.err, fmt.Errorf("%s %q added twice", shortType(typ), name))
			continue
		}
		e, err := b.h.entry(typ, r)
		if err != nil {
			b.err = errors.Join(b.err, fmt.Errorf("%s %q: %w", shortType(typ), name, err))
			continue
		}
		b.byType[typ][name] = e
		b.loose = append(b.loose, e)
	}
}

// AddGroup adds every resource of g, with the clusters and assignments a
// proxy on node sees.
func (b *Builder) AddGroup(g *translate.Group, node string) {
	k := keyOf(g, node)
	es, err := b.h.group(k)
	b.addGroupEntries(k, es, err)
}

func (b *Builder) addGroupEntries(k groupKey, es []typedEntry, err error) {
	if err != nil {
		b.err = errors.Join(b.err, err)
		return
	}
	b.groups = append(b.groups, k)
	for _, e := range es {
		if _, dup := b.byType[e.typ][e.name]; dup {
			b.err = errors.Join(b.err, fmt.Errorf("%s %q added twice", shortType(e.typ), e.name))
			continue
		}
		b.byType[e.typ][e.name] = e.entry
	}
}

// Build versions the Set and checks it (see Check).
func (b *Builder) Build() (*Set, error) {
	if b.err != nil {
		return nil, b.err
	}
	s := &Set{byType: b.byType, versions: make(map[resource.Type]string, len(Types)), groups: b.groups, loose: b.loose}
	versions := make([]string, len(Types))
	parallel.For(len(Types), func(i int) { versions[i] = versionOf(s.byType[Types[i]]) })
	for i, t := range Types {
		s.versions[t] = versions[i]
	}
	if err := Check(s); err != nil {
		return nil, err
	}
	return s, nil
}

func versionOf(byName map[string]entry) string {
	d := sha256.New()
	for _, n := range slices.Sorted(maps.Keys(byName)) {
		d.Write([]byte(n))
		d.Write([]byte{0})
		d.Write([]byte(byName[n].hash))
		d.Write([]byte{0})
	}
	return hex.EncodeToString(d.Sum(nil)[:8])
}

func shortType(t resource.Type) string {
	return t[strings.LastIndexByte(t, '.')+1:]
}

// refs are what one resource refers to, and what is wrong with it alone.
type refs struct {
	routes, clusters []string
	// eds is the assignment name of an EDS cluster.
	eds    string
	faults []string
}

// referencesOf reads the references of r, of type typ.
func referencesOf(typ resource.Type, r types.Resource) *refs {
	out := &refs{}
	switch typ {
	case resource.ClusterType:
		c := r.(*clusterv3.Cluster)
		if c.GetType() == clusterv3.Cluster_EDS {
			out.eds = c.GetEdsClusterConfig().GetServiceName()
			if out.eds == "" {
				out.eds = c.GetName()
			}
		}
	case resource.RouteType:
		out.clusters = routeClusters(r.(*routev3.RouteConfiguration), nil)
	case resource.ListenerType:
		l := r.(*listenerv3.Listener)
		if api := l.GetApiListener().GetApiListener(); api != nil && !out.addEncodedHCM(api) {
			hcm := &hcmv3.HttpConnectionManager{}
			if err := api.UnmarshalTo(hcm); err != nil {
				out.faults = append(out.faults, fmt.Sprintf("API listener is not an HTTP connection manager: %v", err))
			} else {
				out.addHCM(hcm)
			}
		}
		var filters []*listenerv3.Filter
		for _, fc := range l.GetFilterChains() {
			filters = append(filters, fc.GetFilters()...)
		}
		if dfc := l.GetDefaultFilterChain(); dfc != nil {
			filters = append(filters, dfc.GetFilters()...)
		}
		for _, f := range filters {
			switch tc := f.GetTypedConfig(); {
			case tc == nil:
				out.faults = append(out.faults, fmt.Sprintf("filter %q has no typed_config", f.GetName()))
			case tc.MessageIs(&hcmv3.HttpConnectionManager{}):
				if out.addEncodedHCM(tc) {
					continue
				}
				hcm := &hcmv3.HttpConnectionManager{}
				if err := tc.UnmarshalTo(hcm); err != nil {
					out.faults = append(out.faults, err.Error())
					continue
				}
				out.addHCM(hcm)
			case tc.MessageIs(&tcpv3.TcpProxy{}):
				tp := &tcpv3.TcpProxy{}
				if err := tc.UnmarshalTo(tp); err != nil {
					out.faults = append(out.faults, err.Error())
					continue
				}
				if c := tp.GetCluster(); c != "" {
					out.clusters = append(out.clusters, c)
				}
				for _, w := range tp.GetWeightedClusters().GetClusters() {
					out.clusters = append(out.clusters, w.GetName())
				}
			}
		}
	}
	return out
}

// addEncodedHCM adds the references of a, when it is an HTTP connection
// manager that hcmRoutes can read, and reports whether it was.
func (r *refs) addEncodedHCM(a *anypb.Any) bool {
	if !a.MessageIs(&hcmv3.HttpConnectionManager{}) {
		return false
	}
	route, lastTyped, ok := hcmRoutes(a.GetValue())
	if !ok {
		return false
	}
	r.routes = append(r.routes, route)
	if !lastTyped {
		r.faults = append(r.faults, "the last HTTP filter must be the router, with typed_config")
	}
	return true
}

func (r *refs) addHCM(hcm *hcmv3.HttpConnectionManager) {
	switch {
	case hcm.GetRds() != nil:
		r.routes = append(r.routes, hcm.GetRds().GetRouteConfigName())
	case hcm.GetRouteConfig() != nil:
		r.clusters = routeClusters(hcm.GetRouteConfig(), r.clusters)
	default:
		r.faults = append(r.faults, "HTTP connection manager has no routes")
	}
	if fs := hcm.GetHttpFilters(); len(fs) == 0 || fs[len(fs)-1].GetTypedConfig() == nil {
		r.faults = append(r.faults, "the last HTTP filter must be the router, with typed_config")
	}
}

func routeClusters(rc *routev3.RouteConfiguration, out []string) []string {
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			ra := r.GetRoute()
			if ra == nil {
				continue
			}
			if c := ra.GetCluster(); c != "" {
				out = append(out, c)
			}
			for _, w := range ra.GetWeightedClusters().GetClusters() {
				out = append(out, w.GetName())
			}
		}
	}
	return out
}

// Check reports every way in which s is not whole: a listener (API
// listeners included) whose route configuration is missing, a route or TCP
// proxy that names a missing cluster, an EDS cluster without its
// assignment, an assignment without its cluster, and an HTTP connection
// manager without routes or without the router as its last filter.
func Check(s *Set) error {
	var errs []string
	clusters := s.byType[resource.ClusterType]
	endpoints := s.byType[resource.EndpointType]
	routes := s.byType[resource.RouteType]
	edsNames := make(map[string]bool, len(endpoints))
	for name, e := range clusters {
		if eds := e.refs.eds; eds != "" {
			edsNames[eds] = true
			if _, ok := endpoints[eds]; !ok {
				errs = append(errs, fmt.Sprintf("EDS cluster %q has no assignment %q", name, eds))
			}
		}
	}
	for name := range endpoints {
		if !edsNames[name] {
			errs = append(errs, fmt.Sprintf("assignment %q belongs to no EDS cluster", name))
		}
	}
	for _, typ := range []resource.Type{resource.RouteType, resource.ListenerType} {
		what := map[resource.Type]string{resource.RouteType: "route configuration ", resource.ListenerType: "listener "}[typ]
		for name, e := range s.byType[typ] {
			from := what + name
			for _, f := range e.refs.faults {
				errs = append(errs, from+": "+f)
			}
			for _, r := range e.refs.routes {
				if _, ok := routes[r]; !ok {
					errs = append(errs, fmt.Sprintf("%s names route configuration %q, which does not exist", from, r))
				}
			}
			for _, c := range e.refs.clusters {
				if _, ok := clusters[c]; !ok {
					errs = append(errs, fmt.Sprintf("%s names cluster %q, which does not exist", from, c))
				}
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	slices.Sort(errs)
	return errors.New(strings.Join(errs, "\n"))
}

// FromResult builds the Set a proxy on node (a Node's name, "" when
// unknown) is served from a translation.
//
// The groups h has not read yet are read in parallel.
func FromResult(r *translate.Result, node string, h *Hasher) (*Set, error) {
	b := NewBuilder(h)
	groups := append([]*translate.Group{r.Shared}, r.Groups...)
	keys := make([]groupKey, len(groups))
	entries := make([][]typedEntry, len(groups))
	errs := make([]error, len(groups))
	var todo []int
	for i, g := range groups {
		keys[i] = keyOf(g, node)
		if es, ok := b.h.groups[keys[i]]; ok {
			entries[i] = es
		} else {
			todo = append(todo, i)
		}
	}
	parallel.For(len(todo), func(j int) {
		i := todo[j]
		entries[i], errs[i] = groupEntries(keys[i])
	})
	for _, i := range todo {
		if errs[i] == nil {
			b.h.groups[keys[i]] = entries[i]
		}
	}
	sizes := map[resource.Type]int{}
	for _, es := range entries {
		for _, e := range es {
			sizes[e.typ]++
		}
	}
	for t, n := range sizes {
		b.byType[t] = make(map[string]entry, n)
	}
	for i := range groups {
		b.addGroupEntries(keys[i], entries[i], errs[i])
	}
	return b.Build()
}

// Phases returns the Sets that lead from cur to next make-before-break (see
// the package comment), leaving out steps that change nothing. The last
// is always next. With cur nil it is just next.
func Phases(cur, next *Set) []*Set {
	if cur == nil || cur.Equal(next) {
		return []*Set{next}
	}
	union := func(t resource.Type) map[string]entry {
		m := maps.Clone(cur.byType[t])
		maps.Copy(m, next.byType[t])
		return m
	}
	addOnly := &Set{byType: map[resource.Type]map[string]entry{
		resource.ClusterType:  union(resource.ClusterType),
		resource.EndpointType: union(resource.EndpointType),
		resource.ListenerType: cur.byType[resource.ListenerType],
		resource.RouteType:    cur.byType[resource.RouteType],
	}}
	switched := &Set{byType: map[resource.Type]map[string]entry{
		resource.ClusterType:  addOnly.byType[resource.ClusterType],
		resource.EndpointType: addOnly.byType[resource.EndpointType],
		resource.ListenerType: next.byType[resource.ListenerType],
		resource.RouteType:    next.byType[resource.RouteType],
	}}
	var out []*Set
	last := cur
	for _, s := range []*Set{addOnly, switched, next} {
		if s != next {
			s.versions = map[resource.Type]string{}
			for _, t := range Types {
				s.versions[t] = versionOf(s.byType[t])
			}
		}
		if !s.Equal(last) {
			out = append(out, s)
			last = s
		}
	}
	return out
}
