// Package mostallocated is the MostAllocated plugin, for bin-packing:
// nodes with the largest share of cpu and memory in use after placing the
// pod score highest. Enable it (and disable LeastAllocated) in a profile.
package mostallocated

import (
	"context"
	"encoding/json"

	"bosun.dev/services/scheduler/internal/framework"
)

// Name is the plugin's name.
const Name = "MostAllocated"

// MostAllocated is the plugin.
type MostAllocated struct{}

var _ framework.ScorePlugin = &MostAllocated{}

// New builds the plugin; it takes no args.
func New(args json.RawMessage, _ framework.Handle) (framework.Plugin, error) {
	return &MostAllocated{}, framework.DecodeArgs(Name, args, nil)
}

// Name implements framework.Plugin.
func (*MostAllocated) Name() string { return Name }

// Score implements framework.ScorePlugin: the mean over cpu and memory of
// requested/allocatable * MaxNodeScore, counting the pod.
func (*MostAllocated) Score(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, ni *framework.NodeInfo) (int64, *framework.Status) {
	cpu := most(ni.NonZeroRequested.MilliCPU+pod.NonZeroRequests.MilliCPU, ni.Allocatable.MilliCPU)
	mem := most(ni.NonZeroRequested.Memory+pod.NonZeroRequests.Memory, ni.Allocatable.Memory)
	return (cpu + mem) / 2, nil
}

func most(requested, capacity int64) int64 {
	if capacity <= 0 {
		return 0
	}
	if requested > capacity {
		return framework.MaxNodeScore
	}
	return requested * framework.MaxNodeScore / capacity
}

// ScoreExtensions implements framework.ScorePlugin; none are needed.
func (*MostAllocated) ScoreExtensions() framework.ScoreExtensions { return nil }
