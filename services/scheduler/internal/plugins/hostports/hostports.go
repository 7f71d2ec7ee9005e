// Package hostports is the HostPorts plugin: two pods cannot take the same
// host port and protocol on one node (on the same IP, or one on all IPs).
package hostports

import (
	"context"
	"encoding/json"

	"bosun.dev/services/scheduler/internal/framework"
)

// Name is the plugin's name.
const Name = "HostPorts"

// ErrReason is the rejection reason.
const ErrReason = "node(s) didn't have free ports for the requested pod ports"

// errConflict is shared: a status is never modified once returned.
var errConflict = framework.NewStatus(framework.Unschedulable, ErrReason).WithPlugin(Name)

// HostPorts is the plugin.
type HostPorts struct{}

var (
	_ framework.PreFilterPlugin   = &HostPorts{}
	_ framework.FilterPlugin      = &HostPorts{}
	_ framework.EnqueueExtensions = &HostPorts{}
)

// New builds the plugin; it takes no args.
func New(args json.RawMessage, _ framework.Handle) (framework.Plugin, error) {
	return &HostPorts{}, framework.DecodeArgs(Name, args, nil)
}

// Name implements framework.Plugin.
func (*HostPorts) Name() string { return Name }

// PreFilter implements framework.PreFilterPlugin: pods without host ports
// skip Filter.
func (*HostPorts) PreFilter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo) *framework.Status {
	if len(pod.HostPorts) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	return nil
}

// Filter implements framework.FilterPlugin.
func (*HostPorts) Filter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, ni *framework.NodeInfo) *framework.Status {
	for _, want := range pod.HostPorts {
		for _, used := range ni.UsedPorts {
			if want.Conflicts(used) {
				return errConflict
			}
		}
	}
	return nil
}

// EventsToRegister implements framework.EnqueueExtensions.
func (*HostPorts) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{framework.EventAssignedPodDelete, framework.EventNodeAdd}
}
