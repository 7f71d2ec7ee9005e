// Package xds serves the proxy configuration over xDS: the aggregated
// discovery service (ADS) in both its state-of-the-world and delta
// variants, and the per-type discovery services, from go-control-plane's
// caches.
//
// Each proxy node id gets its own snapshot of clusters, listeners and
// routes (a snapshot cache). Proxies on the same Bosun Node share one (built
// once); they differ only when a Service prefers local endpoints.
// Assignments, the largest and most often changing set, are served to every
// proxy from one LinearCache, which answers only the proxies subscribed to
// an assignment that changed; node-dependent assignments have node-specific
// names there.
//
// Updates move every proxy make-before-break (see package snapshot),
// waiting between phases until the proxies have answered or
// Config.PhaseTimeout has passed. A NACK is logged with the node id and the
// proxy's error, counted, and not answered with the same configuration
// again: the proxy keeps what it had until the configuration changes.
package xds

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"bosun.dev/services/service-proxy/internal/snapshot"
	"bosun.dev/services/service-proxy/internal/translate"
)

// DefaultPhaseTimeout bounds the wait between make-before-break phases when
// Config.PhaseTimeout is zero.
const DefaultPhaseTimeout = 2 * time.Second

// Config configures a Server.
type Config struct {
	// Logger receives NACKs, problems and update failures; slog.Default()
	// when nil.
	Logger *slog.Logger
	// Registry receives the metrics; none are registered when nil.
	Registry prometheus.Registerer
	// PhaseTimeout is how long an update waits for the proxies to answer
	// one make-before-break phase before it goes on with the next.
	PhaseTimeout time.Duration
}

// Server is the xDS control plane.
type Server struct {
	cfg     Config
	log     *slog.Logger
	cache   cachev3.SnapshotCache // clusters, listeners, routes: per node
	eds     *cachev3.LinearCache  // assignments: shared
	xds     serverv3.Server
	streams *streams
	m       *metrics

	updateMu sync.Mutex // one Update at a time

	mu         sync.Mutex // guards everything below, and orders SetSnapshot calls
	result     *translate.Result
	localAware bool                     // some group depends on the proxy's node
	sets       map[string]*snapshot.Set // of result, by node name ("" for all when !localAware)
	current    map[string]*snapshot.Set // served, by node id
	nodeNames  map[string]string        // node id -> Bosun Node name, for nodes with an open stream
	hasher     *snapshot.Hasher
	problems   map[string]bool
	edsHashes  map[string]string // what eds holds: assignment name -> content hash
}

// New returns a Server that serves nothing until the first Update; ctx ends
// its streams.
func New(ctx context.Context, cfg Config) *Server {
	if cfg.PhaseTimeout <= 0 {
		cfg.PhaseTimeout = DefaultPhaseTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		cfg: cfg, log: log, streams: newStreams(), m: newMetrics(cfg.Registry),
		sets: map[string]*snapshot.Set{}, current: map[string]*snapshot.Set{}, nodeNames: map[string]string{},
		hasher: snapshot.NewHasher(), problems: map[string]bool{}, edsHashes: map[string]string{},
	}
	// Not in ADS mode: the snapshot cache would then answer only requests
	// that name every resource of a type, and proxyless gRPC clients name
	// just what they use.
	s.cache = cachev3.NewSnapshotCache(false, cachev3.IDHash{}, cacheLogger{log})
	s.eds = cachev3.NewLinearCache(resource.EndpointType, cachev3.WithLogger(cacheLogger{log}))
	byType := func(typeURL string) string {
		if typeURL == resource.EndpointType {
			return "eds"
		}
		return "snapshot"
	}
	mux := &cachev3.MuxCache{
		Classify:      func(r *cachev3.Request) string { return byType(r.GetTypeUrl()) },
		ClassifyDelta: func(r *cachev3.DeltaRequest) string { return byType(r.GetTypeUrl()) },
		Caches:        map[string]cachev3.Cache{"eds": s.eds, "snapshot": s.cache},
	}
	s.xds = serverv3.NewServer(ctx, mux, callbacks{s})
	return s
}

// syncAssignmentsLocked puts every assignment of sets into the shared
// assignment cache, and with prune removes every other.
func (s *Server) syncAssignmentsLocked(prune bool, sets ...*snapshot.Set) {
	want := map[string]string{}
	update := map[string]types.Resource{}
	done := map[*snapshot.Set]bool{} // proxies share sets: read each once
	for _, set := range sets {
		if set == nil || done[set] {
			continue
		}
		done[set] = true
		set.Assignments(func(name string, cla types.Resource, hash string) {
			if _, seen := want[name]; seen {
				return
			}
			want[name] = hash
			if s.edsHashes[name] != hash {
				update[name] = cla
			}
		})
	}
	var remove []string
	if prune {
		for name := range s.edsHashes {
			if _, ok := want[name]; !ok {
				remove = append(remove, name)
			}
		}
	}
	if len(update) == 0 && len(remove) == 0 {
		return
	}
	if err := s.eds.UpdateResources(update, remove); err != nil {
		s.log.Error("updating the assignment cache", "err", err)
		return
	}
	for name := range update {
		s.edsHashes[name] = want[name]
	}
	for _, name := range remove {
		delete(s.edsHashes, name)
	}
}

// servedLocked lists every set being served or ready to be.
func (s *Server) servedLocked() []*snapshot.Set {
	out := make([]*snapshot.Set, 0, len(s.current)+len(s.sets))
	for _, set := range s.current {
		out = append(out, set)
	}
	for _, set := range s.sets {
		out = append(out, set)
	}
	return out
}

// Register adds the aggregated and per-type discovery services to g.
func (s *Server) Register(g *grpc.Server) {
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, s.xds)
	clusterservice.RegisterClusterDiscoveryServiceServer(g, s.xds)
	endpointservice.RegisterEndpointDiscoveryServiceServer(g, s.xds)
	listenerservice.RegisterListenerDiscoveryServiceServer(g, s.xds)
	routeservice.RegisterRouteDiscoveryServiceServer(g, s.xds)
}

// Served returns the configuration node id is being served, nil when none.
func (s *Server) Served(nodeID string) *snapshot.Set {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current[nodeID]
}

// Update serves r to every proxy. It builds and checks each snapshot
// first; if any fails the check, nothing is served from r, the last good
// configuration stays, and the error says why. Otherwise it moves each
// proxy to its new snapshot make-before-break and returns when the last
// phase has been handed to the proxies.
func (s *Server) Update(ctx context.Context, r *translate.Result) error {
	s.updateMu.Lock()
	defer s.updateMu.Unlock()
	start := time.Now()
	s.logProblems(r.Problems)

	s.mu.Lock()
	prevResult, prevSets, prevAware := s.result, s.sets, s.localAware
	s.result, s.sets, s.localAware = r, map[string]*snapshot.Set{}, false
	for _, g := range r.Groups {
		s.localAware = s.localAware || g.NodeLocal()
	}
	// Every update builds at least the shared set, so that a broken
	// configuration is refused even while no proxy is connected.
	_, err := s.setForLocked("")
	plans := map[string][]*snapshot.Set{}
	// Proxies mostly share their current and next sets: plan each move once.
	type move struct{ from, to *snapshot.Set }
	planned := map[move][]*snapshot.Set{}
	for id, name := range s.nodeNames {
		if err != nil {
			break
		}
		var set *snapshot.Set
		if set, err = s.setForLocked(name); err == nil {
			m := move{s.current[id], set}
			if _, ok := planned[m]; !ok {
				planned[m] = snapshot.Phases(m.from, m.to)
			}
			plans[id] = planned[m]
		}
	}
	if err != nil {
		s.result, s.sets, s.localAware = prevResult, prevSets, prevAware
		s.mu.Unlock()
		s.m.updates.WithLabelValues("rejected").Inc()
		s.log.ErrorContext(ctx, "configuration refused by the consistency check; keeping the last one", "err", err)
		return fmt.Errorf("configuration refused: %w", err)
	}
	keep := make([]*snapshot.Set, 0, len(s.sets))
	for _, set := range s.sets {
		keep = append(keep, set)
	}
	s.hasher.Forget(keep...)
	s.mu.Unlock()
	s.m.buildSeconds.Observe(time.Since(start).Seconds())

	phases := 0
	for _, p := range plans {
		phases = max(phases, len(p))
	}
	for i := 0; i < phases; i++ {
		want := map[string]versioned{}
		s.mu.Lock()
		var phaseSets []*snapshot.Set
		for id, plan := range plans {
			if _, live := s.nodeNames[id]; live && i < len(plan) {
				phaseSets = append(phaseSets, plan[i])
			}
		}
		// Assignments first: a cluster never arrives before its endpoints.
		s.syncAssignmentsLocked(false, phaseSets...)
		for id, plan := range plans {
			if _, live := s.nodeNames[id]; !live || i >= len(plan) {
				continue
			}
			s.setSnapshotLocked(ctx, id, plan[i])
			want[id] = plan[i]
		}
		s.mu.Unlock()
		if i == phases-1 {
			break
		}
		wctx, cancel := context.WithTimeout(ctx, s.cfg.PhaseTimeout)
		if !s.streams.waitSettled(wctx, want) && ctx.Err() == nil {
			s.m.phaseTimeout.Inc()
			s.log.WarnContext(ctx, "proxies did not answer a make-before-break phase in time; going on", "phase", i+1, "of", phases, "timeout", s.cfg.PhaseTimeout)
		}
		cancel()
	}
	// Assignments last: removed only once no cluster uses them.
	s.mu.Lock()
	s.syncAssignmentsLocked(true, s.servedLocked()...)
	s.mu.Unlock()
	s.m.updates.WithLabelValues("pushed").Inc()
	s.m.pushSeconds.Observe(time.Since(start).Seconds())
	return ctx.Err()
}

func (s *Server) setForLocked(nodeName string) (*snapshot.Set, error) {
	if !s.localAware {
		nodeName = ""
	}
	if set, ok := s.sets[nodeName]; ok {
		return set, nil
	}
	set, err := snapshot.FromResult(s.result, nodeName, s.hasher)
	if err != nil {
		return nil, err
	}
	s.sets[nodeName] = set
	return set, nil
}

func (s *Server) setSnapshotLocked(ctx context.Context, id string, set *snapshot.Set) {
	if err := s.cache.SetSnapshot(ctx, id, set.Snapshot()); err != nil {
		s.log.ErrorContext(ctx, "setting snapshot", "node", id, "err", err)
		return
	}
	s.current[id] = set
}

// nodeSeen serves a node's first stream at once from the current
// configuration.
func (s *Server) nodeSeen(n *corev3.Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := n.GetId()
	s.nodeNames[id] = NodeName(n)
	s.m.nodes.Set(float64(len(s.nodeNames)))
	if s.result == nil {
		return
	}
	set, err := s.setForLocked(s.nodeNames[id])
	if err != nil {
		s.log.Error("no consistent configuration for a new proxy", "node", id, "err", err)
		return
	}
	s.syncAssignmentsLocked(false, set)
	s.setSnapshotLocked(context.Background(), id, set)
}

// nodeGone forgets a node whose last stream closed.
func (s *Server) nodeGone(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.nodeNames, id)
	delete(s.current, id)
	s.cache.ClearSnapshot(id)
	s.m.nodes.Set(float64(len(s.nodeNames)))
}

func (s *Server) logProblems(ps []translate.Problem) {
	next := make(map[string]bool, len(ps))
	for _, p := range ps {
		msg := p.String()
		next[msg] = true
		if !s.problems[msg] {
			s.log.Warn("not served as asked", "problem", msg)
		}
	}
	s.problems = next
	s.m.problems.Set(float64(len(ps)))
}

// cacheLogger sends go-control-plane's logs to slog, its chatter at debug.
type cacheLogger struct{ log *slog.Logger }

func (l cacheLogger) Debugf(format string, args ...any) { l.log.Debug(fmt.Sprintf(format, args...)) }
func (l cacheLogger) Infof(format string, args ...any)  { l.log.Debug(fmt.Sprintf(format, args...)) }
func (l cacheLogger) Warnf(format string, args ...any)  { l.log.Warn(fmt.Sprintf(format, args...)) }
func (l cacheLogger) Errorf(format string, args ...any) { l.log.Error(fmt.Sprintf(format, args...)) }
