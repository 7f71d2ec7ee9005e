// Package tainttoleration is the TaintToleration plugin: a node's
// NoSchedule and NoExecute taints keep out pods that do not tolerate them;
// PreferNoSchedule taints only lower the node's score.
package tainttoleration

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/scheduler/internal/framework"
)

// Name is the plugin's name.
const Name = "TaintToleration"

// Taint effects.
const (
	NoSchedule       = "NoSchedule"
	PreferNoSchedule = "PreferNoSchedule"
	NoExecute        = "NoExecute"
)

// TaintToleration is the plugin.
type TaintToleration struct{}

var (
	_ framework.FilterPlugin      = &TaintToleration{}
	_ framework.ScorePlugin       = &TaintToleration{}
	_ framework.ScoreExtensions   = &TaintToleration{}
	_ framework.EnqueueExtensions = &TaintToleration{}
)

// New builds the plugin; it takes no args.
func New(args json.RawMessage, _ framework.Handle) (framework.Plugin, error) {
	return &TaintToleration{}, framework.DecodeArgs(Name, args, nil)
}

// Name implements framework.Plugin.
func (*TaintToleration) Name() string { return Name }

// ToleratesTaint reports whether one toleration tolerates taint.
func ToleratesTaint(t *corev1.Toleration, taint *corev1.Taint) bool {
	if t.GetEffect() != "" && t.GetEffect() != taint.GetEffect() {
		return false
	}
	if t.GetKey() != "" && t.GetKey() != taint.GetKey() {
		return false
	}
	switch t.GetOperator() {
	case "Exists":
		return true
	case "", "Equal":
		return t.GetKey() != "" && t.GetValue() == taint.GetValue()
	default:
		return false
	}
}

// Tolerates reports whether any of tolerations tolerates taint.
func Tolerates(tolerations []*corev1.Toleration, taint *corev1.Taint) bool {
	for _, t := range tolerations {
		if ToleratesTaint(t, taint) {
			return true
		}
	}
	return false
}

// Filter implements framework.FilterPlugin.
func (*TaintToleration) Filter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, ni *framework.NodeInfo) *framework.Status {
	tols := pod.Pod.GetSpec().GetTolerations()
	for _, taint := range ni.Taints() {
		if taint.GetEffect() != NoSchedule && taint.GetEffect() != NoExecute {
			continue
		}
		if !Tolerates(tols, taint) {
			return framework.NewStatus(framework.UnschedulableAndUnresolvable,
				fmt.Sprintf("node(s) had untolerated taint {%s: %s}", taint.GetKey(), taint.GetValue()))
		}
	}
	return nil
}

// Score implements framework.ScorePlugin: the number of PreferNoSchedule
// taints the pod does not tolerate (fewer is better after normalizing).
func (*TaintToleration) Score(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, ni *framework.NodeInfo) (int64, *framework.Status) {
	var n int64
	for _, taint := range ni.Taints() {
		if taint.GetEffect() != PreferNoSchedule {
			continue
		}
		tolerated := false
		for _, t := range pod.Pod.GetSpec().GetTolerations() {
			if (t.GetEffect() == "" || t.GetEffect() == PreferNoSchedule) && ToleratesTaint(t, taint) {
				tolerated = true
				break
			}
		}
		if !tolerated {
			n++
		}
	}
	return n, nil
}

// ScoreExtensions implements framework.ScorePlugin.
func (t *TaintToleration) ScoreExtensions() framework.ScoreExtensions { return t }

// NormalizeScore implements framework.ScoreExtensions: the node with the
// most intolerable taints scores 0, nodes with none MaxNodeScore.
func (*TaintToleration) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, scores framework.NodeScoreList) *framework.Status {
	framework.NormalizeReverse(scores)
	return nil
}

// EventsToRegister implements framework.EnqueueExtensions.
func (*TaintToleration) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{framework.EventNodeAdd, framework.EventNodeUpdate}
}
