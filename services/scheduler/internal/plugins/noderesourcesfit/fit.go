// Package noderesourcesfit is the NodeResourcesFit plugin: a pod fits a
// node when its cpu, memory and ephemeral-storage requests fit in what the
// node's allocatable leaves after the pods already there, and the node's
// pod count allows one more.
package noderesourcesfit

import (
	"context"
	"encoding/json"

	"bosun.dev/services/scheduler/internal/framework"
)

// Name is the plugin's name.
const Name = "NodeResourcesFit"

// Rejection reasons.
const (
	ReasonTooManyPods           = "Too many pods"
	ReasonInsufficientCPU       = "Insufficient cpu"
	ReasonInsufficientMemory    = "Insufficient memory"
	ReasonInsufficientEphemeral = "Insufficient ephemeral-storage"
)

// Fit is the plugin. It keeps one rejection per combination of missing
// resources, shared by every call (a status is never modified once returned).
type Fit struct {
	rejections [16]*framework.Status
}

var (
	_ framework.FilterPlugin      = &Fit{}
	_ framework.EnqueueExtensions = &Fit{}
)

// New builds the plugin; it takes no args.
func New(args json.RawMessage, _ framework.Handle) (framework.Plugin, error) {
	f := &Fit{}
	for mask := 1; mask < len(f.rejections); mask++ {
		var reasons []string
		for bit, r := range allReasons {
			if mask&(1<<bit) != 0 {
				reasons = append(reasons, r)
			}
		}
		f.rejections[mask] = framework.NewStatus(framework.Unschedulable, reasons...).WithPlugin(Name)
	}
	return f, framework.DecodeArgs(Name, args, nil)
}

// Name implements framework.Plugin.
func (*Fit) Name() string { return Name }

// allReasons are the reasons in the order they are reported; bit i of a
// shortage mask stands for allReasons[i].
var allReasons = [...]string{ReasonTooManyPods, ReasonInsufficientCPU, ReasonInsufficientMemory, ReasonInsufficientEphemeral}

// shortage returns a mask of what the node lacks for the pod; 0 when it fits.
func shortage(pod *framework.PodInfo, ni *framework.NodeInfo) int {
	mask := 0
	if int64(len(ni.Pods))+1 > ni.Allocatable.AllowedPodNumber {
		mask |= 1
	}
	req := pod.Requests
	if req.MilliCPU > 0 && req.MilliCPU > ni.Allocatable.MilliCPU-ni.Requested.MilliCPU {
		mask |= 2
	}
	if req.Memory > 0 && req.Memory > ni.Allocatable.Memory-ni.Requested.Memory {
		mask |= 4
	}
	if req.EphemeralStorage > 0 && req.EphemeralStorage > ni.Allocatable.EphemeralStorage-ni.Requested.EphemeralStorage {
		mask |= 8
	}
	return mask
}

// Insufficient lists what the node lacks for the pod; empty when it fits.
func Insufficient(pod *framework.PodInfo, ni *framework.NodeInfo) []string {
	var out []string
	mask := shortage(pod, ni)
	for bit, r := range allReasons {
		if mask&(1<<bit) != 0 {
			out = append(out, r)
		}
	}
	return out
}

// Filter implements framework.FilterPlugin. Every missing resource is a
// reason; removing pods (preemption) may make room.
func (f *Fit) Filter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, ni *framework.NodeInfo) *framework.Status {
	if mask := shortage(pod, ni); mask != 0 {
		return f.rejections[mask]
	}
	return nil
}

// EventsToRegister implements framework.EnqueueExtensions.
func (*Fit) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{framework.EventNodeAdd, framework.EventNodeUpdate, framework.EventAssignedPodDelete}
}
