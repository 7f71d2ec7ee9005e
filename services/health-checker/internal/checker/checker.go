// Package checker wires the health-checker together: informers on Nodes,
// node Leases and bound Pods; the lease tracker and the prober; and, while
// this replica leads (pkg/leaderelection), a pass over every node each
// monitor period that
//
//  1. judges the node from its two signals (nodestatus) and writes its Ready
//     condition when the verdict changes, with an Event;
//  2. keeps the unreachable / not-ready NoExecute taints in step (taints);
//  3. counts unhealthy nodes and holds the brake when too many are;
//  4. evicts the pods whose toleration ran out (eviction), rate-limited.
//
// The pass reads informer caches and writes with compare-and-set on
// resource_version. Its context is the leader's term: pkg/leaderelection
// cancels it before any standby can take over, which ends the pass's calls.
package checker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/informer"
	"bosun.dev/pkg/leaderelection"
	"bosun.dev/pkg/pki"
	"bosun.dev/services/health-checker/internal/eviction"
	"bosun.dev/services/health-checker/internal/lease"
	"bosun.dev/services/health-checker/internal/nodestatus"
	"bosun.dev/services/health-checker/internal/probe"
	"bosun.dev/services/health-checker/internal/taints"
)

// Component names the health-checker in Events.
const Component = "health-checker"

// EventsNamespace holds the Events about Nodes, which have no namespace.
const EventsNamespace = "default"

// Event reasons.
const (
	ReasonNodeReady        = "NodeReady"
	ReasonNodeNotReady     = "NodeNotReady"
	ReasonNodeUnreachable  = "NodeUnreachable"
	ReasonEvicted          = "Evicted"
	ReasonEvictionsStopped = "EvictionsStopped"
	ReasonEvictionsResumed = "EvictionsResumed"
)

// Config configures a Checker.
type Config struct {
	// Conn reaches the apiserver.
	Conn grpc.ClientConnInterface
	// Options are the flags.
	Options Options
	// Identity names this replica in leader election and Events.
	Identity string
	// Clock is the time of every decision; the real clock when nil. The
	// informers and the calls' own timeouts always use real time.
	Clock clock.Clock
	// Logger receives the logs; slog.Default() when nil.
	Logger *slog.Logger
	// Registerer receives the checker's metrics; none are exported when nil.
	Registerer prometheus.Registerer
}

// Checker is one health-checker replica.
type Checker struct {
	cfg    Config
	opts   Options
	clock  clock.Clock
	log    *slog.Logger
	probes probe.Config
	m      *metrics

	nodeClient  *client.Resource[*corev1.Node]
	podClient   *client.Resource[*corev1.Pod]
	eventClient *client.Resource[*corev1.Event]

	nodes   *informer.Informer[*corev1.Node]
	leases  *informer.Informer[*coordinationv1.Lease]
	pods    *informer.Informer[*corev1.Pod]
	tracker *lease.Tracker

	// term state, reset when leadership begins; used by one goroutine at a
	// time (the pass), except prober which is safe for concurrent use.
	mu          sync.Mutex
	prober      *probe.Prober
	leaderSince time.Time
	firstSeen   map[string]time.Time // node -> when first seen this term
	orphanSeen  map[string]time.Time // pod uid -> when first seen on a missing node
	deleted     map[string]time.Time // pod uid -> when we deleted it
	limiter     *rate.Limiter
	braked      bool
}

// New builds a Checker; Run starts it.
func New(cfg Config) (*Checker, error) {
	if cfg.Conn == nil {
		return nil, errors.New("checker: Conn is required")
	}
	if err := cfg.Options.Validate(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Identity == "" {
		host, _ := os.Hostname()
		cfg.Identity = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	o := cfg.Options
	nodeTLS, err := nodeAgentTLS(o)
	if err != nil {
		return nil, err
	}
	c := &Checker{
		cfg: cfg, opts: o, clock: cfg.Clock, log: cfg.Logger,
		probes: probe.Config{Interval: o.ProbeInterval, Timeout: o.ProbeTimeout, Concurrency: o.ProbeConcurrency,
			Jitter: jitterOption(o.ProbeJitter), TLS: nodeTLS, Clock: cfg.Clock, Logger: cfg.Logger},
		nodeClient:  client.For[*corev1.Node](cfg.Conn),
		podClient:   client.For[*corev1.Pod](cfg.Conn),
		eventClient: client.For[*corev1.Event](cfg.Conn),
		tracker:     lease.NewTracker(cfg.Clock),
		m:           newMetrics(cfg.Registerer),
	}
	c.nodes = informer.New(c.nodeClient, informer.Options{Logger: cfg.Logger})
	c.leases = informer.New(client.For[*coordinationv1.Lease](cfg.Conn), informer.Options{Namespace: o.LeaseNamespace, Logger: cfg.Logger})
	c.pods = informer.New(c.podClient, informer.Options{
		FieldSelector: "spec.nodeName!=",
		Indexers:      cache.Indexers{informer.PodNodeNameIndex: informer.PodNodeNameIndexFunc},
		Logger:        cfg.Logger,
	})
	c.leases.AddEventHandler(informer.HandlerFuncs[*coordinationv1.Lease]{
		AddFunc:    c.tracker.Observe,
		UpdateFunc: func(_, l *coordinationv1.Lease) { c.tracker.Observe(l) },
		DeleteFunc: func(l *coordinationv1.Lease) { c.tracker.Forget(l.GetMetadata().GetName()) },
	})
	return c, nil
}

func jitterOption(j float64) float64 {
	if j == 0 {
		return -1 // probe.Config: zero means the default, negative none
	}
	return j
}

// nodeAgentTLS is the probes' TLS configuration (certificates re-read when
// they change), or nil for plaintext when no CA is given.
func nodeAgentTLS(o Options) (*tls.Config, error) {
	if o.NodeAgentCAFile == "" {
		return nil, nil
	}
	tc, err := pki.ReloadingClientConfig(o.NodeAgentCAFile, o.NodeAgentCertFile, o.NodeAgentKeyFile)
	if err != nil {
		return nil, fmt.Errorf("node-agent TLS (--node-agent-ca-file, --node-agent-cert-file, --node-agent-key-file): %w", err)
	}
	return tc, nil
}

// Run runs the informers and, while this replica leads (always, without
// --leader-elect), checks nodes until ctx ends.
func (c *Checker) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	stopped := c.runInformers(ctx)
	defer func() { cancel(); stopped() }()
	if !c.WaitForSync(ctx) {
		return ctx.Err()
	}
	if !c.opts.LeaderElect {
		c.lead(ctx)
		return nil
	}
	el, err := leaderelection.New(leaderelection.Config{
		Conn:          c.cfg.Conn,
		Lock:          leaderelection.Lock{Namespace: c.opts.LockNamespace, Name: c.opts.LockName},
		Identity:      c.cfg.Identity,
		LeaseDuration: c.opts.LeaseDuration,
		RenewDeadline: c.opts.RenewDeadline,
		RetryPeriod:   c.opts.RetryPeriod,
		Logger:        c.log,
		Callbacks: leaderelection.Callbacks{
			OnStartedLeading: func(ctx context.Context, f leaderelection.Fence) {
				c.log.Info("leading: checking nodes", "fence", f.String())
				c.lead(ctx)
			},
			OnStoppedLeading: func() { c.log.Info("stopped leading") },
		},
	})
	if err != nil {
		return err
	}
	return el.Run(ctx)
}

// runInformers starts the informers; the returned function waits for them
// to stop after ctx ends.
func (c *Checker) runInformers(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{c.nodes.Run, c.leases.Run, c.pods.Run} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = run(ctx) }()
	}
	return wg.Wait
}

// WaitForSync waits until every informer has listed once.
func (c *Checker) WaitForSync(ctx context.Context) bool {
	return informer.WaitForCacheSync(ctx, c.nodes, c.leases, c.pods)
}

// lead checks nodes every monitor period until ctx ends.
func (c *Checker) lead(ctx context.Context) {
	c.m.leading.Set(1)
	defer c.m.leading.Set(0)
	p := c.BeginTerm()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); p.Run(ctx) }()
	defer wg.Wait()
	t := c.clock.NewTimer(c.opts.MonitorPeriod)
	defer t.Stop()
	for {
		if err := c.Sync(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("node check pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			t.Reset(c.opts.MonitorPeriod)
		}
	}
}

// BeginTerm resets what a leader learns during its term and returns the
// term's prober, which the caller runs (or drives with ProbeAll). Silence
// is counted from now on, never from before the term.
func (c *Checker) BeginTerm() *probe.Prober {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prober = probe.New(c.probes)
	c.leaderSince = c.clock.Now()
	c.firstSeen = map[string]time.Time{}
	c.orphanSeen = map[string]time.Time{}
	c.deleted = map[string]time.Time{}
	c.limiter = rate.NewLimiter(rate.Limit(c.opts.EvictionRate), c.opts.EvictionBurst)
	c.braked = false
	return c.prober
}

// nodeView is one node as the pass sees it.
type nodeView struct {
	node  *corev1.Node
	ready string // its Ready status; Unknown also when it has no condition yet
}

// Sync makes one pass over every node. BeginTerm must have been called.
func (c *Checker) Sync(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	nodes := c.nodes.List()
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].GetMetadata().GetName() < nodes[j].GetMetadata().GetName() })
	views := make(map[string]*nodeView, len(nodes))
	var errs []error
	unhealthy := 0
	for _, n := range nodes {
		name := n.GetMetadata().GetName()
		v, err := c.checkNode(ctx, n, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", name, err))
		}
		views[name] = v
		if v.ready != nodestatus.StatusTrue && nodestatus.Ready(v.node) != nil {
			unhealthy++
		}
	}
	for name := range c.firstSeen {
		if _, ok := views[name]; !ok {
			delete(c.firstSeen, name)
			c.prober.Remove(name)
		}
	}
	counts := map[string]float64{nodestatus.StatusTrue: 0, nodestatus.StatusFalse: 0, nodestatus.StatusUnknown: 0}
	for _, v := range views {
		counts[v.ready]++
	}
	for status, n := range counts {
		c.m.nodes.WithLabelValues(status).Set(n)
	}
	brake := eviction.Brake(len(nodes), unhealthy, c.opts.UnhealthyThreshold)
	c.setBrake(ctx, brake, len(nodes), unhealthy, now)
	if err := c.evict(ctx, views, brake, now); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkNode judges one node and writes its condition and taints.
func (c *Checker) checkNode(ctx context.Context, n *corev1.Node, now time.Time) (*nodeView, error) {
	name := n.GetMetadata().GetName()
	if _, ok := c.firstSeen[name]; !ok {
		c.firstSeen[name] = now
	}
	endpoint := probe.EndpointOf(n)
	if err := c.prober.Set(name, endpoint); err != nil {
		c.log.Warn("cannot probe node", "node", name, "err", err)
	}
	sig := nodestatus.Signals{Now: now, Grace: c.opts.GracePeriod, Since: later(c.leaderSince, c.firstSeen[name])}
	sig.Lease, sig.LeaseKnown = c.tracker.Get(name)
	if endpoint != "" {
		sig.Probe, sig.ProbeKnown = c.prober.Result(name)
	}
	view := &nodeView{node: n, ready: nodestatus.ReadyStatus(n)}
	cur := nodestatus.Ready(n)
	verdict, ok := nodestatus.Evaluate(sig, cur)
	if ok && nodestatus.Differs(cur, verdict) {
		updated, err := c.writeReady(ctx, n, verdict, now, sig.Lease.RenewTime)
		if err != nil {
			return view, err
		}
		view.node = updated
		view.ready = verdict.Status
		if cur.GetStatus() != verdict.Status {
			c.log.Info("node condition changed", "node", name, "ready", verdict.Status, "reason", verdict.Reason, "message", verdict.Message)
			c.nodeEvent(ctx, updated, verdict, now)
		}
	}
	if !ok && cur == nil {
		return view, nil // no verdict yet, nothing to taint from
	}
	updated, err := c.writeTaints(ctx, view.node, view.ready, now)
	if err != nil {
		return view, err
	}
	view.node = updated
	return view, nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// writeReady writes the Ready verdict, first on the cached copy and, after
// a conflict, on a fresh read.
func (c *Checker) writeReady(ctx context.Context, cached *corev1.Node, v nodestatus.Verdict, now, heartbeat time.Time) (*corev1.Node, error) {
	out := cached
	first := true
	err := client.RetryOnConflict(ctx, client.DefaultRetry, func() error {
		n, err := c.current(ctx, cached, &first)
		if err != nil {
			return err
		}
		if n.Status == nil {
			n.Status = &corev1.NodeStatus{}
		}
		if !nodestatus.SetReady(n.Status, v, now, heartbeat) {
			out = n
			return nil
		}
		out, err = c.nodeClient.UpdateStatus(ctx, n)
		return err
	})
	return out, err
}

// writeTaints brings the node's lifecycle taints in step with ready.
func (c *Checker) writeTaints(ctx context.Context, cached *corev1.Node, ready string, now time.Time) (*corev1.Node, error) {
	spec := &corev1.NodeSpec{}
	if cached.GetSpec() != nil {
		spec = proto.Clone(cached.GetSpec()).(*corev1.NodeSpec)
	}
	if !taints.Reconcile(spec, ready, now) {
		return cached, nil
	}
	out := cached
	first := true
	err := client.RetryOnConflict(ctx, client.DefaultRetry, func() error {
		n, err := c.current(ctx, cached, &first)
		if err != nil {
			return err
		}
		if n.Spec == nil {
			n.Spec = &corev1.NodeSpec{}
		}
		if !taints.Reconcile(n.Spec, ready, now) {
			out = n
			return nil
		}
		out, err = c.nodeClient.Update(ctx, n)
		if err == nil {
			c.log.Info("node taints changed", "node", n.GetMetadata().GetName(), "ready", ready, "taints", taintList(out))
		}
		return err
	})
	return out, err
}

// current is a private copy of the node: the cached one the first time,
// then a fresh read.
func (c *Checker) current(ctx context.Context, cached *corev1.Node, first *bool) (*corev1.Node, error) {
	if *first {
		*first = false
		return proto.Clone(cached).(*corev1.Node), nil
	}
	return c.nodeClient.Get(ctx, "", cached.GetMetadata().GetName())
}

func taintList(n *corev1.Node) []string {
	var out []string
	for _, t := range n.GetSpec().GetTaints() {
		out = append(out, t.GetKey()+":"+t.GetEffect())
	}
	return out
}

func (c *Checker) setBrake(ctx context.Context, brake bool, total, unhealthy int, now time.Time) {
	if brake == c.braked {
		return
	}
	c.braked = brake
	if brake {
		c.m.braked.Set(1)
	} else {
		c.m.braked.Set(0)
	}
	pct := 0
	if total > 0 {
		pct = unhealthy * 100 / total
	}
	var reason, typ, msg string
	if brake {
		reason, typ = ReasonEvictionsStopped, "Warning"
		msg = fmt.Sprintf("Evictions stopped: %d of %d nodes (%d%%) are unhealthy, more than --unhealthy-threshold %g; the control plane losing them is likelier than them all failing",
			unhealthy, total, pct, c.opts.UnhealthyThreshold)
		c.log.Warn("evictions stopped", "unhealthy", unhealthy, "nodes", total)
	} else {
		reason, typ = ReasonEvictionsResumed, "Normal"
		msg = fmt.Sprintf("Evictions resumed: %d of %d nodes (%d%%) are unhealthy", unhealthy, total, pct)
		c.log.Info("evictions resumed", "unhealthy", unhealthy, "nodes", total)
	}
	c.event(ctx, c.opts.LockNamespace, &metav1.ObjectReference{
		Kind: "Lease", ApiVersion: "coordination.k8s.io/v1", Namespace: c.opts.LockNamespace, Name: c.opts.LockName,
	}, typ, reason, msg, now)
}

// evict carries out the eviction plan of every node with NoExecute taints,
// and of pods bound to nodes that no longer exist.
func (c *Checker) evict(ctx context.Context, views map[string]*nodeView, brake bool, now time.Time) error {
	ecfg := eviction.Config{DefaultTolerationSeconds: c.opts.DefaultTolerationSeconds}
	for uid, t := range c.deleted {
		if now.Sub(t) > time.Minute {
			delete(c.deleted, uid)
		}
	}
	var plan []eviction.Decision
	names := make([]string, 0, len(views))
	for name := range views {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		v := views[name]
		if !hasNoExecute(v.node) {
			continue
		}
		pods, err := c.pods.ByIndex(informer.PodNodeNameIndex, name)
		if err != nil {
			return err
		}
		plan = append(plan, eviction.Plan(ecfg, v.node, name, pods, now)...)
	}
	plan = append(plan, c.orphans(views, ecfg, now)...)

	var errs []error
	suppressed := 0
	for _, d := range plan {
		if d.Action == eviction.Keep {
			continue
		}
		uid := d.Pod.GetMetadata().GetUid()
		if _, done := c.deleted[uid+d.Action.String()]; done {
			continue
		}
		if brake && !d.Operator {
			suppressed++
			continue
		}
		if !c.limiter.AllowN(now, 1) {
			break // the rest wait for the next pass
		}
		if err := c.deletePod(ctx, d, now); err != nil {
			errs = append(errs, err)
			continue
		}
		c.deleted[uid+d.Action.String()] = now
	}
	if suppressed > 0 {
		c.log.Debug("evictions held by the brake", "pods", suppressed)
	}
	return errors.Join(errs...)
}

func hasNoExecute(n *corev1.Node) bool {
	for _, t := range n.GetSpec().GetTaints() {
		if t.GetEffect() == taints.NoExecute {
			return true
		}
	}
	return false
}

// orphans plans for pods bound to nodes that do not exist, once they have
// been seen so for a grace period (the node may not be in the cache yet).
func (c *Checker) orphans(views map[string]*nodeView, ecfg eviction.Config, now time.Time) []eviction.Decision {
	seen := map[string]bool{}
	var out []eviction.Decision
	for _, pod := range c.pods.List() {
		node := pod.GetSpec().GetNodeName()
		if node == "" {
			continue
		}
		if _, ok := views[node]; ok {
			continue
		}
		uid := pod.GetMetadata().GetUid()
		seen[uid] = true
		first, ok := c.orphanSeen[uid]
		if !ok {
			c.orphanSeen[uid] = now
			continue
		}
		if now.Sub(first) < c.opts.GracePeriod {
			continue
		}
		out = append(out, eviction.Plan(ecfg, nil, node, []*corev1.Pod{pod}, now)...)
	}
	for uid := range c.orphanSeen {
		if !seen[uid] {
			delete(c.orphanSeen, uid)
		}
	}
	return out
}

// deletePod deletes d.Pod, only if it is still the same pod (uid
// precondition): a StatefulSet's replacement has the same name.
func (c *Checker) deletePod(ctx context.Context, d eviction.Decision, now time.Time) error {
	md := d.Pod.GetMetadata()
	opts := client.DeleteOptions{Preconditions: &metav1.Preconditions{Uid: md.GetUid()}}
	if d.Action == eviction.ForceDelete {
		zero := int64(0)
		opts.GracePeriodSeconds = &zero
	}
	_, err := c.podClient.Delete(ctx, md.GetNamespace(), md.GetName(), opts)
	switch {
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		return nil // gone already, or replaced by a new pod of that name
	case err != nil:
		return fmt.Errorf("evicting pod %s/%s: %w", md.GetNamespace(), md.GetName(), err)
	}
	c.m.evictions.WithLabelValues(d.Action.String()).Inc()
	c.log.Info("evicted pod", "pod", md.GetNamespace()+"/"+md.GetName(), "node", d.Pod.GetSpec().GetNodeName(),
		"action", d.Action.String(), "reason", d.Reason)
	verb := "Evicting"
	if d.Action == eviction.ForceDelete {
		verb = "Force-deleting"
	}
	c.event(ctx, md.GetNamespace(), &metav1.ObjectReference{Kind: "Pod", ApiVersion: "v1", Namespace: md.GetNamespace(), Name: md.GetName(), Uid: md.GetUid()},
		"Normal", ReasonEvicted, fmt.Sprintf("%s pod: %s", verb, d.Reason), now)
	return nil
}

func (c *Checker) nodeEvent(ctx context.Context, n *corev1.Node, v nodestatus.Verdict, now time.Time) {
	reason, typ := ReasonNodeReady, "Normal"
	switch v.Status {
	case nodestatus.StatusFalse:
		reason, typ = ReasonNodeNotReady, "Warning"
	case nodestatus.StatusUnknown:
		reason, typ = ReasonNodeUnreachable, "Warning"
	}
	md := n.GetMetadata()
	c.event(ctx, EventsNamespace, &metav1.ObjectReference{Kind: "Node", ApiVersion: "v1", Name: md.GetName(), Uid: md.GetUid()},
		typ, reason, fmt.Sprintf("Node %s is Ready=%s: %s", md.GetName(), v.Status, v.Message), now)
}

// event records an Event; failures are logged, not returned: events are a
// courtesy to users, not part of the work.
func (c *Checker) event(ctx context.Context, namespace string, ref *metav1.ObjectReference, typ, reason, msg string, now time.Time) {
	ts := timestamppb.New(now)
	ev := &corev1.Event{
		Metadata:           &metav1.ObjectMeta{Namespace: namespace, Name: fmt.Sprintf("%s.%x%04x", ref.GetName(), now.UnixNano(), rand.IntN(1<<16))},
		InvolvedObject:     ref,
		Reason:             reason,
		Message:            msg,
		Type:               typ,
		Source:             &corev1.EventSource{Component: Component},
		FirstTimestamp:     ts,
		LastTimestamp:      ts,
		Count:              1,
		ReportingComponent: Component,
		ReportingInstance:  c.cfg.Identity,
	}
	if _, err := c.eventClient.Create(ctx, ev); err != nil && ctx.Err() == nil {
		c.log.Warn("recording event failed", "reason", reason, "object", ref.GetName(), "err", err)
	}
}
