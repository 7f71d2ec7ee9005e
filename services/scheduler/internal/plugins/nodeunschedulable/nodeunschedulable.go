// Package nodeunschedulable is the NodeUnschedulable plugin: a cordoned
// node (spec.unschedulable) takes no new pods, unless the pod tolerates the
// taint node.kubernetes.io/unschedulable:NoSchedule.
package nodeunschedulable

import (
	"context"
	"encoding/json"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/scheduler/internal/framework"
	"bosun.dev/services/scheduler/internal/plugins/tainttoleration"
)

// Name is the plugin's name.
const Name = "NodeUnschedulable"

// ErrReason is the rejection reason.
const ErrReason = "node(s) were unschedulable"

// TaintKey is the taint a cordoned node is treated as having.
const TaintKey = "node.kubernetes.io/unschedulable"

// errCordoned is shared: a status is never modified once returned.
var errCordoned = framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReason).WithPlugin(Name)

// NodeUnschedulable is the plugin.
type NodeUnschedulable struct{}

var (
	_ framework.FilterPlugin      = &NodeUnschedulable{}
	_ framework.EnqueueExtensions = &NodeUnschedulable{}
)

// New builds the plugin; it takes no args.
func New(args json.RawMessage, _ framework.Handle) (framework.Plugin, error) {
	return &NodeUnschedulable{}, framework.DecodeArgs(Name, args, nil)
}

// Name implements framework.Plugin.
func (*NodeUnschedulable) Name() string { return Name }

var cordonTaint = &corev1.Taint{Key: TaintKey, Effect: "NoSchedule"}

// Filter implements framework.FilterPlugin.
func (*NodeUnschedulable) Filter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, ni *framework.NodeInfo) *framework.Status {
	if !ni.Unschedulable() {
		return nil
	}
	if tainttoleration.Tolerates(pod.Pod.GetSpec().GetTolerations(), cordonTaint) {
		return nil
	}
	return errCordoned
}

// EventsToRegister implements framework.EnqueueExtensions.
func (*NodeUnschedulable) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{framework.EventNodeAdd, framework.EventNodeUpdate}
}
