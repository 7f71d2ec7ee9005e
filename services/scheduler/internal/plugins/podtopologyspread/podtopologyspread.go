// Package podtopologyspread is the PodTopologySpread plugin. A constraint
// counts the pods matching its selector in each topology domain (the nodes
// sharing a value of its topology key, among the nodes the pod's node
// selector and affinity allow). With DoNotSchedule a node is refused when
// placing the pod there would make its domain's count exceed the smallest
// domain's by more than maxSkew; with ScheduleAnyway nodes in emptier
// domains score higher.
package podtopologyspread

import (
	"context"
	"encoding/json"
	"math"

	"k8s.io/apimachinery/pkg/labels"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/scheduler/internal/framework"
	"bosun.dev/services/scheduler/internal/plugins/nodeaffinity"
)

// Name is the plugin's name.
const Name = "PodTopologySpread"

// Rejection reasons.
const (
	ErrReasonConstraintsNotMatch = "node(s) didn't match pod topology spread constraints"
	ErrReasonNodeLabelNotMatch   = ErrReasonConstraintsNotMatch + " (missing required label)"
)

// Shared rejections: a status is never modified once returned.
var (
	errSkew    = framework.NewStatus(framework.Unschedulable, ErrReasonConstraintsNotMatch).WithPlugin(Name)
	errNoLabel = framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonNodeLabelNotMatch).WithPlugin(Name)
)

// Values of whenUnsatisfiable.
const (
	DoNotSchedule  = "DoNotSchedule"
	ScheduleAnyway = "ScheduleAnyway"
)

// PodTopologySpread is the plugin.
type PodTopologySpread struct {
	h framework.Handle
}

var (
	_ framework.PreFilterWithExtensions = &PodTopologySpread{}
	_ framework.FilterPlugin            = &PodTopologySpread{}
	_ framework.PreScorePlugin          = &PodTopologySpread{}
	_ framework.ScorePlugin             = &PodTopologySpread{}
	_ framework.EnqueueExtensions       = &PodTopologySpread{}
)

// New builds the plugin; it takes no args.
func New(args json.RawMessage, h framework.Handle) (framework.Plugin, error) {
	return &PodTopologySpread{h: h}, framework.DecodeArgs(Name, args, nil)
}

// Name implements framework.Plugin.
func (*PodTopologySpread) Name() string { return Name }

type constraint struct {
	maxSkew     int64
	topologyKey string
	selector    labels.Selector
	minDomains  int
}

func constraintsOf(pod *corev1.Pod, when string) ([]constraint, error) {
	var out []constraint
	for _, c := range pod.GetSpec().GetTopologySpreadConstraints() {
		w := c.GetWhenUnsatisfiable()
		if w == "" {
			w = DoNotSchedule
		}
		if w != when {
			continue
		}
		sel, err := framework.LabelSelector(c.GetLabelSelector())
		if err != nil {
			return nil, err
		}
		out = append(out, constraint{maxSkew: int64(max(c.GetMaxSkew(), 1)), topologyKey: c.GetTopologyKey(), selector: sel, minDomains: int(c.GetMinDomains())})
	}
	return out, nil
}

const preFilterKey framework.StateKey = "PreFilter" + Name

// domainCounts counts, per constraint, the matching pods in each domain
// (value of the constraint's topology key); every eligible domain has an
// entry, possibly 0.
type domainCounts []map[string]int64

func (d domainCounts) clone() domainCounts {
	out := make(domainCounts, len(d))
	for i, m := range d {
		out[i] = make(map[string]int64, len(m))
		for k, v := range m {
			out[i][k] = v
		}
	}
	return out
}

type preFilterState struct {
	constraints []constraint
	matchNum    domainCounts
	// minMatch is the smallest count per constraint.
	minMatch []int64
	// self is 1 for the constraints whose selector matches the pod itself.
	self []int64
}

func (s *preFilterState) Clone() framework.StateData {
	return &preFilterState{constraints: s.constraints, matchNum: s.matchNum.clone(), minMatch: append([]int64(nil), s.minMatch...), self: s.self}
}

func (s *preFilterState) recomputeMin() {
	for i, c := range s.constraints {
		lo := int64(math.MaxInt64)
		for _, n := range s.matchNum[i] {
			lo = min(lo, n)
		}
		if domains := len(s.matchNum[i]); domains == 0 || domains < c.minDomains {
			lo = 0
		}
		s.minMatch[i] = lo
	}
}

func hasKeys(l map[string]string, cs []constraint) bool {
	for _, c := range cs {
		if _, ok := l[c.topologyKey]; !ok {
			return false
		}
	}
	return true
}

// countMatching counts the pods on ni in namespace ns that sel matches and
// are not being deleted.
func countMatching(ni *framework.NodeInfo, ns string, sel labels.Selector) int64 {
	var n int64
	for _, p := range ni.Pods {
		md := p.Pod.GetMetadata()
		if md.GetNamespace() == ns && md.GetDeletionTimestamp() == nil && sel.Matches(labels.Set(md.GetLabels())) {
			n++
		}
	}
	return n
}

// counts builds the per-domain counts of constraints over the nodes the
// pod may run on.
func (p *PodTopologySpread) counts(pod *corev1.Pod, cs []constraint) domainCounts {
	required := nodeaffinity.RequiredOf(pod)
	anyNode := required.Empty()
	ns := pod.GetMetadata().GetNamespace()
	out := make(domainCounts, len(cs))
	for i := range out {
		out[i] = map[string]int64{}
	}
	lister := p.h.SnapshotSharedLister()
	if anyNode && len(cs) == 1 {
		// Every node with the key is eligible: the domains are known
		// without visiting the nodes, and only nodes with pods add counts.
		c := cs[0]
		index, _ := lister.DomainIndex(c.topologyKey)
		for v := range index {
			out[0][v] = 0
		}
		for _, ni := range lister.HavePodsList() {
			if v, ok := ni.Labels()[c.topologyKey]; ok {
				out[0][v] += countMatching(ni, ns, c.selector)
			}
		}
		return out
	}
	for _, ni := range lister.List() {
		l := ni.Labels()
		if !hasKeys(l, cs) || (!anyNode && !required.Match(ni.Node())) {
			continue
		}
		for i, c := range cs {
			var n int64
			if len(ni.Pods) > 0 {
				n = countMatching(ni, ns, c.selector)
			}
			out[i][l[c.topologyKey]] += n
		}
	}
	return out
}

// PreFilter implements framework.PreFilterPlugin.
func (p *PodTopologySpread) PreFilter(_ context.Context, state *framework.CycleState, pod *framework.PodInfo) *framework.Status {
	cs, err := constraintsOf(pod.Pod, DoNotSchedule)
	if err != nil {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, "spec.topologySpreadConstraints: "+err.Error())
	}
	if len(cs) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	s := &preFilterState{constraints: cs, matchNum: p.counts(pod.Pod, cs), minMatch: make([]int64, len(cs)), self: make([]int64, len(cs))}
	podLabels := labels.Set(pod.Pod.GetMetadata().GetLabels())
	for i, c := range cs {
		if c.selector.Matches(podLabels) {
			s.self[i] = 1
		}
	}
	s.recomputeMin()
	state.Write(preFilterKey, s)
	return nil
}

// PreFilterExtensions implements framework.PreFilterWithExtensions.
func (p *PodTopologySpread) PreFilterExtensions() framework.PreFilterExtensions { return p }

func (p *PodTopologySpread) update(state *framework.CycleState, pod, other *framework.PodInfo, ni *framework.NodeInfo, n int64) *framework.Status {
	d, ok := state.Read(preFilterKey)
	if !ok {
		return framework.NewStatus(framework.Error, "PodTopologySpread: no PreFilter state")
	}
	s := d.(*preFilterState)
	node := ni.Node()
	md := other.Pod.GetMetadata()
	l := ni.Labels()
	if md.GetNamespace() != pod.Pod.GetMetadata().GetNamespace() || !hasKeys(l, s.constraints) || !nodeaffinity.RequiredOf(pod.Pod).Match(node) {
		return nil
	}
	for i, c := range s.constraints {
		if c.selector.Matches(labels.Set(md.GetLabels())) {
			s.matchNum[i][l[c.topologyKey]] += n
		}
	}
	s.recomputeMin()
	return nil
}

// AddPod implements framework.PreFilterExtensions.
func (p *PodTopologySpread) AddPod(_ context.Context, state *framework.CycleState, pod, add *framework.PodInfo, ni *framework.NodeInfo) *framework.Status {
	return p.update(state, pod, add, ni, 1)
}

// RemovePod implements framework.PreFilterExtensions.
func (p *PodTopologySpread) RemovePod(_ context.Context, state *framework.CycleState, pod, remove *framework.PodInfo, ni *framework.NodeInfo) *framework.Status {
	return p.update(state, pod, remove, ni, -1)
}

// Filter implements framework.FilterPlugin.
func (p *PodTopologySpread) Filter(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, ni *framework.NodeInfo) *framework.Status {
	d, ok := state.Read(preFilterKey)
	if !ok {
		return framework.NewStatus(framework.Error, "PodTopologySpread: no PreFilter state")
	}
	s := d.(*preFilterState)
	l := ni.Labels()
	for i, c := range s.constraints {
		v, ok := l[c.topologyKey]
		if !ok {
			return errNoLabel
		}
		if s.matchNum[i][v]+s.self[i]-s.minMatch[i] > c.maxSkew {
			return errSkew
		}
	}
	return nil
}

const preScoreKey framework.StateKey = "PreScore" + Name

type preScoreState struct {
	constraints []constraint
	matchNum    domainCounts
}

func (s *preScoreState) Clone() framework.StateData { return s }

// PreScore implements framework.PreScorePlugin.
func (p *PodTopologySpread) PreScore(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, _ []*framework.NodeInfo) *framework.Status {
	cs, err := constraintsOf(pod.Pod, ScheduleAnyway)
	if err != nil {
		return framework.AsStatus(err)
	}
	if len(cs) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	state.Write(preScoreKey, &preScoreState{constraints: cs, matchNum: p.counts(pod.Pod, cs)})
	return nil
}

// Score implements framework.ScorePlugin: the number of matching pods in
// the node's domains (fewer is better after normalizing); nodes without the
// topology keys get the worst score.
func (p *PodTopologySpread) Score(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, ni *framework.NodeInfo) (int64, *framework.Status) {
	d, ok := state.Read(preScoreKey)
	if !ok {
		return 0, framework.NewStatus(framework.Error, "PodTopologySpread: no PreScore state")
	}
	s := d.(*preScoreState)
	l := ni.Labels()
	var n int64
	for i, c := range s.constraints {
		v, ok := l[c.topologyKey]
		if !ok {
			return -1, nil
		}
		n += s.matchNum[i][v]
	}
	return n, nil
}

// ScoreExtensions implements framework.ScorePlugin.
func (p *PodTopologySpread) ScoreExtensions() framework.ScoreExtensions { return p }

// NormalizeScore implements framework.ScoreExtensions: the emptiest domain
// scores MaxNodeScore; nodes without the topology keys score 0.
func (*PodTopologySpread) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, scores framework.NodeScoreList) *framework.Status {
	lo, hi := int64(math.MaxInt64), int64(0)
	for _, s := range scores {
		if s.Score >= 0 {
			lo, hi = min(lo, s.Score), max(hi, s.Score)
		}
	}
	for i := range scores {
		switch {
		case scores[i].Score < 0:
			scores[i].Score = 0
		case hi == 0:
			scores[i].Score = framework.MaxNodeScore
		default:
			scores[i].Score = framework.MaxNodeScore * (hi + lo - scores[i].Score) / hi
		}
	}
	return nil
}

// EventsToRegister implements framework.EnqueueExtensions.
func (*PodTopologySpread) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{
		framework.EventAssignedPodAdd, framework.EventAssignedPodUpdate, framework.EventAssignedPodDelete,
		framework.EventNodeAdd, framework.EventNodeUpdate, framework.EventNodeDelete,
	}
}
