// Package nodename is the NodeName plugin: a pod that names its node in
// spec.nodeName fits only that node.
package nodename

import (
	"context"
	"encoding/json"

	"bosun.dev/services/scheduler/internal/framework"
)

// Name is the plugin's name.
const Name = "NodeName"

// ErrReason is the rejection reason.
const ErrReason = "node(s) didn't match the requested node name"

// errNoMatch is shared: a status is never modified once returned.
var errNoMatch = framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReason).WithPlugin(Name)

// NodeName is the plugin.
type NodeName struct{}

var (
	_ framework.FilterPlugin      = &NodeName{}
	_ framework.EnqueueExtensions = &NodeName{}
)

// New builds the plugin; it takes no args.
func New(args json.RawMessage, _ framework.Handle) (framework.Plugin, error) {
	return &NodeName{}, framework.DecodeArgs(Name, args, nil)
}

// Name implements framework.Plugin.
func (*NodeName) Name() string { return Name }

// Filter implements framework.FilterPlugin.
func (*NodeName) Filter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, ni *framework.NodeInfo) *framework.Status {
	if want := pod.Pod.GetSpec().GetNodeName(); want != "" && want != ni.Name() {
		return errNoMatch
	}
	return nil
}

// EventsToRegister implements framework.EnqueueExtensions.
func (*NodeName) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{framework.EventNodeAdd}
}
