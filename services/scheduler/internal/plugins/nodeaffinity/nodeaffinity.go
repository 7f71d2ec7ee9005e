// Package nodeaffinity is the NodeAffinity plugin: spec.nodeSelector and
// the required node affinity decide which nodes a pod may run on; the
// preferred node affinity adds the weights of the terms a node matches to
// its score.
package nodeaffinity

import (
	"context"
	"encoding/json"
	"strconv"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/scheduler/internal/framework"
)

// Name is the plugin's name.
const Name = "NodeAffinity"

// ErrReason is the rejection reason.
const ErrReason = "node(s) didn't match Pod's node affinity/selector"

// errNoMatch is shared: a status is never modified once returned.
var errNoMatch = framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReason).WithPlugin(Name)

// NodeAffinity is the plugin.
type NodeAffinity struct{}

var (
	_ framework.PreFilterPlugin   = &NodeAffinity{}
	_ framework.FilterPlugin      = &NodeAffinity{}
	_ framework.PreScorePlugin    = &NodeAffinity{}
	_ framework.ScorePlugin       = &NodeAffinity{}
	_ framework.EnqueueExtensions = &NodeAffinity{}
)

// New builds the plugin; it takes no args.
func New(args json.RawMessage, _ framework.Handle) (framework.Plugin, error) {
	return &NodeAffinity{}, framework.DecodeArgs(Name, args, nil)
}

// Name implements framework.Plugin.
func (*NodeAffinity) Name() string { return Name }

// Required is a pod's hard node constraints: its node selector and its
// required node affinity.
type Required struct {
	selector map[string]string
	terms    []*corev1.NodeSelectorTerm
}

// RequiredOf returns pod's hard node constraints.
func RequiredOf(pod *corev1.Pod) Required {
	r := Required{selector: pod.GetSpec().GetNodeSelector()}
	if req := pod.GetSpec().GetAffinity().GetNodeAffinity().GetRequiredDuringSchedulingIgnoredDuringExecution(); req != nil {
		r.terms = req.GetNodeSelectorTerms()
		if r.terms == nil {
			r.terms = []*corev1.NodeSelectorTerm{}
		}
	}
	return r
}

// Empty reports whether there are no constraints.
func (r Required) Empty() bool { return len(r.selector) == 0 && r.terms == nil }

// Match reports whether node satisfies the constraints: every selector
// label, and (when there is a required affinity) at least one term.
func (r Required) Match(node *corev1.Node) bool {
	lbls := node.GetMetadata().GetLabels()
	for k, v := range r.selector {
		if got, ok := lbls[k]; !ok || got != v {
			return false
		}
	}
	if r.terms == nil {
		return true
	}
	for _, t := range r.terms {
		if MatchTerm(t, node) {
			return true
		}
	}
	return false
}

// MatchTerm reports whether node matches every requirement of term; a term
// with no requirements matches nothing, as in Kubernetes.
func MatchTerm(t *corev1.NodeSelectorTerm, node *corev1.Node) bool {
	if len(t.GetMatchExpressions())+len(t.GetMatchFields()) == 0 {
		return false
	}
	lbls := node.GetMetadata().GetLabels()
	for _, r := range t.GetMatchExpressions() {
		v, ok := lbls[r.GetKey()]
		if !matchRequirement(r, v, ok) {
			return false
		}
	}
	for _, r := range t.GetMatchFields() {
		if r.GetKey() != "metadata.name" {
			return false
		}
		if !matchRequirement(r, node.GetMetadata().GetName(), true) {
			return false
		}
	}
	return true
}

func matchRequirement(r *corev1.NodeSelectorRequirement, v string, present bool) bool {
	switch r.GetOperator() {
	case "In":
		return present && contains(r.GetValues(), v)
	case "NotIn":
		return !present || !contains(r.GetValues(), v)
	case "Exists":
		return present
	case "DoesNotExist":
		return !present
	case "Gt", "Lt":
		if !present || len(r.GetValues()) != 1 {
			return false
		}
		have, err1 := strconv.ParseInt(v, 10, 64)
		want, err2 := strconv.ParseInt(r.GetValues()[0], 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if r.GetOperator() == "Gt" {
			return have > want
		}
		return have < want
	}
	return false
}

func contains(vs []string, v string) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

const stateKey framework.StateKey = Name

type preFilterState struct{ required Required }

func (s *preFilterState) Clone() framework.StateData { return s }

// PreFilter implements framework.PreFilterPlugin; pods without node
// constraints skip Filter.
func (*NodeAffinity) PreFilter(_ context.Context, state *framework.CycleState, pod *framework.PodInfo) *framework.Status {
	r := RequiredOf(pod.Pod)
	if r.Empty() {
		return framework.NewStatus(framework.Skip)
	}
	state.Write(stateKey, &preFilterState{required: r})
	return nil
}

// Filter implements framework.FilterPlugin.
func (*NodeAffinity) Filter(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, ni *framework.NodeInfo) *framework.Status {
	var r Required
	if d, ok := state.Read(stateKey); ok {
		r = d.(*preFilterState).required
	} else {
		r = RequiredOf(pod.Pod)
	}
	if !r.Match(ni.Node()) {
		return errNoMatch
	}
	return nil
}

func preferred(pod *corev1.Pod) []*corev1.PreferredSchedulingTerm {
	return pod.GetSpec().GetAffinity().GetNodeAffinity().GetPreferredDuringSchedulingIgnoredDuringExecution()
}

// PreScore implements framework.PreScorePlugin; pods without preferences
// skip Score.
func (*NodeAffinity) PreScore(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, _ []*framework.NodeInfo) *framework.Status {
	if len(preferred(pod.Pod)) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	return nil
}

// Score implements framework.ScorePlugin: the sum of the weights of the
// preferred terms the node matches.
func (*NodeAffinity) Score(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, ni *framework.NodeInfo) (int64, *framework.Status) {
	var s int64
	for _, t := range preferred(pod.Pod) {
		if t.GetWeight() != 0 && MatchTerm(t.GetPreference(), ni.Node()) {
			s += int64(t.GetWeight())
		}
	}
	return s, nil
}

// ScoreExtensions implements framework.ScorePlugin.
func (p *NodeAffinity) ScoreExtensions() framework.ScoreExtensions { return p }

// NormalizeScore implements framework.ScoreExtensions.
func (*NodeAffinity) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, scores framework.NodeScoreList) *framework.Status {
	framework.NormalizeMax(scores)
	return nil
}

// EventsToRegister implements framework.EnqueueExtensions.
func (*NodeAffinity) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{framework.EventNodeAdd, framework.EventNodeUpdate}
}
