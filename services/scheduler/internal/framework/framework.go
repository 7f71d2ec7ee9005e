package framework

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"k8s.io/apimachinery/pkg/labels"
)

// Options are what a Framework needs besides its profile.
type Options struct {
	// Snapshot is the snapshot the scheduler refreshes before every cycle.
	Snapshot NodeInfoLister
	// Conn reaches the apiserver.
	Conn grpc.ClientConnInterface
	// Parallelism bounds the goroutines used per cycle; 1 when zero.
	Parallelism int
	// Nominator knows nominated pods; none when nil.
	Nominator Nominator
	// NamespaceLabels returns a namespace's labels; nil when unknown.
	NamespaceLabels func(namespace string) labels.Set
}

type weightedScorePlugin struct {
	ScorePlugin
	weight int64
}

// Framework runs one profile's plugins at each extension point.
type Framework struct {
	profileName string
	opts        Options
	plugins     map[string]Plugin

	preFilter  []PreFilterPlugin
	filter     []FilterPlugin
	postFilter []PostFilterPlugin
	preScore   []PreScorePlugin
	score      []weightedScorePlugin
	reserve    []ReservePlugin
	permit     []PermitPlugin
	bind       []BindPlugin

	waitingMu sync.Mutex
	waiting   map[string]*WaitingPod

	// scoreLists recycles the per-plugin score lists between cycles.
	scoreLists sync.Pool
}

var _ Handle = &Framework{}

// New builds the profile's plugins, in the order of
// profile.EffectivePlugins(defaults), from registry.
func New(profile Profile, registry Registry, defaults []PluginRef, opts Options) (*Framework, error) {
	if opts.Parallelism < 1 {
		opts.Parallelism = 1
	}
	f := &Framework{profileName: profile.SchedulerName, opts: opts, plugins: map[string]Plugin{}, waiting: map[string]*WaitingPod{}}
	for _, ref := range profile.EffectivePlugins(defaults) {
		factory, ok := registry[ref.Name]
		if !ok {
			return nil, fmt.Errorf("profile %q: unknown plugin %q", profile.SchedulerName, ref.Name)
		}
		p, err := factory(profile.Args(ref.Name), f)
		if err != nil {
			return nil, fmt.Errorf("profile %q: plugin %s: %w", profile.SchedulerName, ref.Name, err)
		}
		f.plugins[ref.Name] = p
		if pl, ok := p.(PreFilterPlugin); ok {
			f.preFilter = append(f.preFilter, pl)
		}
		if pl, ok := p.(FilterPlugin); ok {
			f.filter = append(f.filter, pl)
		}
		if pl, ok := p.(PostFilterPlugin); ok {
			f.postFilter = append(f.postFilter, pl)
		}
		if pl, ok := p.(PreScorePlugin); ok {
			f.preScore = append(f.preScore, pl)
		}
		if pl, ok := p.(ScorePlugin); ok {
			w := int64(ref.Weight)
			if w == 0 {
				w = 1
			}
			f.score = append(f.score, weightedScorePlugin{ScorePlugin: pl, weight: w})
		}
		if pl, ok := p.(ReservePlugin); ok {
			f.reserve = append(f.reserve, pl)
		}
		if pl, ok := p.(PermitPlugin); ok {
			f.permit = append(f.permit, pl)
		}
		if pl, ok := p.(BindPlugin); ok {
			f.bind = append(f.bind, pl)
		}
	}
	if len(f.bind) == 0 {
		return nil, fmt.Errorf("profile %q: no Bind plugin is enabled", profile.SchedulerName)
	}
	return f, nil
}

// SchedulerName is the profile's scheduler name.
func (f *Framework) SchedulerName() string { return f.profileName }

// SnapshotSharedLister implements Handle.
func (f *Framework) SnapshotSharedLister() NodeInfoLister { return f.opts.Snapshot }

// Parallelizer implements Handle.
func (f *Framework) Parallelizer() Parallelizer { return Parallelizer{Parallelism: f.opts.Parallelism} }

// Conn implements Handle.
func (f *Framework) Conn() grpc.ClientConnInterface { return f.opts.Conn }

// NamespaceLabels implements Handle.
func (f *Framework) NamespaceLabels(namespace string) labels.Set {
	if f.opts.NamespaceLabels == nil {
		return nil
	}
	return f.opts.NamespaceLabels(namespace)
}

// Nominator implements Handle.
func (f *Framework) Nominator() Nominator { return f.opts.Nominator }

// Plugin returns the named plugin of the profile, nil when it is not enabled.
func (f *Framework) Plugin(name string) Plugin { return f.plugins[name] }

// HasPostFilterPlugins reports whether any PostFilter plugin is enabled.
func (f *Framework) HasPostFilterPlugins() bool { return len(f.postFilter) > 0 }

// QueueingEvents returns, per enabled plugin, the events that may make a
// pod it rejected schedulable; nil for plugins that name none (every event).
func (f *Framework) QueueingEvents() map[string][]ClusterEvent {
	out := map[string][]ClusterEvent{}
	for name, p := range f.plugins {
		if e, ok := p.(EnqueueExtensions); ok {
			out[name] = e.EventsToRegister()
		} else {
			out[name] = nil
		}
	}
	return out
}

func pluginError(point, plugin string, s *Status) *Status {
	return AsStatus(fmt.Errorf("running %s plugin %s: %w", point, plugin, s.AsError())).WithPlugin(plugin)
}

// RunPreFilterPlugins runs every PreFilter plugin. It returns the first
// rejection or error; plugins that return Skip are recorded in state so
// that their Filter is skipped.
func (f *Framework) RunPreFilterPlugins(ctx context.Context, state *CycleState, pod *PodInfo) *Status {
	for _, pl := range f.preFilter {
		s := pl.PreFilter(ctx, state, pod)
		switch {
		case s.IsSkip():
			state.skipFilter[pl.Name()] = true
		case s.Code() == Error:
			return pluginError("PreFilter", pl.Name(), s)
		case !s.IsSuccess():
			return s.WithPlugin(pl.Name())
		}
	}
	state.filters = state.filters[:0]
	for _, pl := range f.filter {
		if !state.skipFilter[pl.Name()] {
			state.filters = append(state.filters, pl)
		}
	}
	state.filtersSet = true
	return nil
}

// RunFilterPlugins runs the Filter plugins on one node and returns the
// first one's rejection or error.
func (f *Framework) RunFilterPlugins(ctx context.Context, state *CycleState, pod *PodInfo, nodeInfo *NodeInfo) *Status {
	filters := state.filters
	if !state.filtersSet {
		filters = f.filter
	}
	for _, pl := range filters {
		if s := pl.Filter(ctx, state, pod, nodeInfo); !s.IsSuccess() {
			if s.Code() == Error {
				return pluginError("Filter", pl.Name(), s)
			}
			return s.WithPlugin(pl.Name())
		}
	}
	return nil
}

// RunFilterPluginsWithNominatedPods implements Handle.
func (f *Framework) RunFilterPluginsWithNominatedPods(ctx context.Context, state *CycleState, pod *PodInfo, nodeInfo *NodeInfo) *Status {
	if f.opts.Nominator != nil {
		var add []*PodInfo
		for _, np := range f.opts.Nominator.NominatedPodsForNode(nodeInfo.name) {
			if np.Priority >= pod.Priority && np.Pod.GetMetadata().GetUid() != pod.Pod.GetMetadata().GetUid() {
				add = append(add, np)
			}
		}
		if len(add) > 0 {
			nodeInfo = nodeInfo.Clone()
			state = state.Clone()
			for _, np := range add {
				nodeInfo.AddPodInfo(np)
				if s := f.RunPreFilterExtensionAddPod(ctx, state, pod, np, nodeInfo); !s.IsSuccess() {
					return s
				}
			}
		}
	}
	return f.RunFilterPlugins(ctx, state, pod, nodeInfo)
}

// RunPreFilterExtensionAddPod implements Handle.
func (f *Framework) RunPreFilterExtensionAddPod(ctx context.Context, state *CycleState, pod, add *PodInfo, nodeInfo *NodeInfo) *Status {
	for _, pl := range f.preFilter {
		ext, ok := pl.(PreFilterWithExtensions)
		if !ok || state.skipFilter[pl.Name()] || ext.PreFilterExtensions() == nil {
			continue
		}
		if s := ext.PreFilterExtensions().AddPod(ctx, state, pod, add, nodeInfo); !s.IsSuccess() {
			return pluginError("PreFilterExtensions.AddPod", pl.Name(), s)
		}
	}
	return nil
}

// RunPreFilterExtensionRemovePod implements Handle.
func (f *Framework) RunPreFilterExtensionRemovePod(ctx context.Context, state *CycleState, pod, remove *PodInfo, nodeInfo *NodeInfo) *Status {
	for _, pl := range f.preFilter {
		ext, ok := pl.(PreFilterWithExtensions)
		if !ok || state.skipFilter[pl.Name()] || ext.PreFilterExtensions() == nil {
			continue
		}
		if s := ext.PreFilterExtensions().RemovePod(ctx, state, pod, remove, nodeInfo); !s.IsSuccess() {
			return pluginError("PreFilterExtensions.RemovePod", pl.Name(), s)
		}
	}
	return nil
}

// RunPostFilterPlugins runs the PostFilter plugins until one succeeds.
func (f *Framework) RunPostFilterPlugins(ctx context.Context, state *CycleState, pod *PodInfo, filtered NodeToStatus) (*PostFilterResult, *Status) {
	var reasons []string
	for _, pl := range f.postFilter {
		r, s := pl.PostFilter(ctx, state, pod, filtered)
		if s.IsSuccess() {
			return r, nil
		}
		if s.Code() == Error {
			return nil, pluginError("PostFilter", pl.Name(), s)
		}
		reasons = append(reasons, s.Reasons()...)
	}
	return nil, NewStatus(Unschedulable, reasons...)
}

// RunPreScorePlugins runs the PreScore plugins; those that return Skip are
// recorded so that their Score is skipped.
func (f *Framework) RunPreScorePlugins(ctx context.Context, state *CycleState, pod *PodInfo, nodes []*NodeInfo) *Status {
	for _, pl := range f.preScore {
		s := pl.PreScore(ctx, state, pod, nodes)
		switch {
		case s.IsSkip():
			state.skipScore[pl.Name()] = true
		case !s.IsSuccess():
			return pluginError("PreScore", pl.Name(), s)
		}
	}
	return nil
}

// RunScorePlugins scores every node with every Score plugin, normalizes
// each plugin's scores, applies the weights and returns the totals in the
// order of nodes.
func (f *Framework) RunScorePlugins(ctx context.Context, state *CycleState, pod *PodInfo, nodes []*NodeInfo) ([]int64, *Status) {
	var active []weightedScorePlugin
	for _, pl := range f.score {
		if !state.skipScore[pl.Name()] {
			active = append(active, pl)
		}
	}
	totals := make([]int64, len(nodes))
	if len(active) == 0 {
		return totals, nil
	}
	scores := make([]NodeScoreList, len(active))
	for i := range scores {
		if l, ok := f.scoreLists.Get().(*NodeScoreList); ok && cap(*l) >= len(nodes) {
			scores[i] = (*l)[:len(nodes)]
		} else {
			scores[i] = make(NodeScoreList, len(nodes))
		}
	}
	defer func() {
		for i := range scores {
			l := scores[i][:0]
			f.scoreLists.Put(&l)
		}
	}()
	var errMu sync.Mutex
	var firstErr *Status
	done := f.Parallelizer().Until(ctx, len(nodes), func(n int) {
		for i, pl := range active {
			s, st := pl.Score(ctx, state, pod, nodes[n])
			if !st.IsSuccess() {
				errMu.Lock()
				if firstErr == nil {
					firstErr = pluginError("Score", pl.Name(), st)
				}
				errMu.Unlock()
				return
			}
			scores[i][n] = NodeScore{Name: nodes[n].Name(), Score: s}
		}
	}, nil)
	if firstErr != nil {
		return nil, firstErr
	}
	if done < len(nodes) {
		// Stopped by ctx: the scores not computed are stale.
		return nil, AsStatus(ctx.Err())
	}
	for i, pl := range active {
		if ext := pl.ScoreExtensions(); ext != nil {
			if st := ext.NormalizeScore(ctx, state, pod, scores[i]); !st.IsSuccess() {
				return nil, pluginError("NormalizeScore", pl.Name(), st)
			}
		}
		for n, s := range scores[i] {
			if s.Score < MinNodeScore || s.Score > MaxNodeScore {
				return nil, AsStatus(fmt.Errorf("plugin %s scored node %s %d, outside [%d, %d]", pl.Name(), s.Name, s.Score, MinNodeScore, MaxNodeScore))
			}
			totals[n] += s.Score * pl.weight
		}
	}
	return totals, nil
}

// RunReservePluginsReserve runs Reserve; on failure the caller runs
// RunReservePluginsUnreserve.
func (f *Framework) RunReservePluginsReserve(ctx context.Context, state *CycleState, pod *PodInfo, nodeName string) *Status {
	for _, pl := range f.reserve {
		if s := pl.Reserve(ctx, state, pod, nodeName); !s.IsSuccess() {
			if s.Code() == Error {
				return pluginError("Reserve", pl.Name(), s)
			}
			return s.WithPlugin(pl.Name())
		}
	}
	return nil
}

// RunReservePluginsUnreserve runs Unreserve in reverse order.
func (f *Framework) RunReservePluginsUnreserve(ctx context.Context, state *CycleState, pod *PodInfo, nodeName string) {
	for i := len(f.reserve) - 1; i >= 0; i-- {
		f.reserve[i].Unreserve(ctx, state, pod, nodeName)
	}
}

// RunPermitPlugins runs Permit. When a plugin asks to wait, the pod is
// registered as waiting (see WaitOnPermit) and Wait is returned.
func (f *Framework) RunPermitPlugins(ctx context.Context, state *CycleState, pod *PodInfo, nodeName string) *Status {
	timeouts := map[string]time.Duration{}
	for _, pl := range f.permit {
		s, d := pl.Permit(ctx, state, pod, nodeName)
		switch {
		case s.IsSuccess():
		case s.IsWait():
			timeouts[pl.Name()] = d
		case s.Code() == Error:
			return pluginError("Permit", pl.Name(), s)
		default:
			return s.WithPlugin(pl.Name())
		}
	}
	if len(timeouts) == 0 {
		return nil
	}
	wp := newWaitingPod(pod, timeouts)
	f.waitingMu.Lock()
	f.waiting[pod.Pod.GetMetadata().GetUid()] = wp
	f.waitingMu.Unlock()
	return NewStatus(Wait)
}

// WaitOnPermit blocks until a waiting pod is allowed by every plugin that
// held it, rejected, timed out or ctx ends. It returns at once for pods
// that are not waiting.
func (f *Framework) WaitOnPermit(ctx context.Context, pod *PodInfo) *Status {
	uid := pod.Pod.GetMetadata().GetUid()
	wp := f.WaitingPod(uid)
	if wp == nil {
		return nil
	}
	defer func() {
		f.waitingMu.Lock()
		delete(f.waiting, uid)
		f.waitingMu.Unlock()
	}()
	return wp.wait(ctx)
}

// WaitingPod implements Handle.
func (f *Framework) WaitingPod(uid string) *WaitingPod {
	f.waitingMu.Lock()
	defer f.waitingMu.Unlock()
	return f.waiting[uid]
}

// RunBindPlugins runs the Bind plugins until one does not Skip.
func (f *Framework) RunBindPlugins(ctx context.Context, state *CycleState, pod *PodInfo, nodeName string) *Status {
	for _, pl := range f.bind {
		s := pl.Bind(ctx, state, pod, nodeName)
		if s.IsSkip() {
			continue
		}
		if s.Code() == Error {
			return pluginError("Bind", pl.Name(), s)
		}
		return s.WithPlugin(pl.Name())
	}
	return AsStatus(fmt.Errorf("no Bind plugin bound pod %s/%s", pod.Pod.GetMetadata().GetNamespace(), pod.Pod.GetMetadata().GetName()))
}

// WaitingPod is a reserved pod a Permit plugin holds back.
type WaitingPod struct {
	Pod *PodInfo
	mu  sync.Mutex
	// pending are the plugins that have not allowed the pod yet.
	pending map[string]time.Time
	// deadline is the earliest of the plugins' timeouts.
	deadline time.Time
	done     chan *Status
}

func newWaitingPod(pod *PodInfo, timeouts map[string]time.Duration) *WaitingPod {
	wp := &WaitingPod{Pod: pod, pending: map[string]time.Time{}, done: make(chan *Status, 1)}
	now := time.Now()
	for name, d := range timeouts {
		wp.pending[name] = now.Add(d)
		if wp.deadline.IsZero() || now.Add(d).Before(wp.deadline) {
			wp.deadline = now.Add(d)
		}
	}
	return wp
}

// Allow records that plugin allows the pod; the pod goes on to binding
// once every holding plugin allowed it.
func (w *WaitingPod) Allow(plugin string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.pending, plugin)
	if len(w.pending) == 0 {
		select {
		case w.done <- nil:
		default:
		}
	}
}

// Reject refuses the pod; it is unreserved and requeued.
func (w *WaitingPod) Reject(plugin, msg string) {
	select {
	case w.done <- NewStatus(Unschedulable, msg).WithPlugin(plugin):
	default:
	}
}

func (w *WaitingPod) wait(ctx context.Context) *Status {
	// A decision made before waiting wins over an expired timer.
	select {
	case s := <-w.done:
		return s
	default:
	}
	timer := time.NewTimer(time.Until(w.deadline))
	defer timer.Stop()
	select {
	case s := <-w.done:
		return s
	case <-timer.C:
		return NewStatus(Unschedulable, "rejected due to timeout while waiting at Permit")
	case <-ctx.Done():
		return AsStatus(ctx.Err())
	}
}
