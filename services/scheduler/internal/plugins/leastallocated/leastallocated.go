// Package leastallocated is the LeastAllocated plugin, the default
// resource scoring: nodes with the largest share of cpu and memory left
// after placing the pod score highest, which spreads pods out.
package leastallocated

import (
	"context"
	"encoding/json"

	"bosun.dev/services/scheduler/internal/framework"
)

// Name is the plugin's name.
const Name = "LeastAllocated"

// LeastAllocated is the plugin.
type LeastAllocated struct{}

var _ framework.ScorePlugin = &LeastAllocated{}

// New builds the plugin; it takes no args.
func New(args json.RawMessage, _ framework.Handle) (framework.Plugin, error) {
	return &LeastAllocated{}, framework.DecodeArgs(Name, args, nil)
}

// Name implements framework.Plugin.
func (*LeastAllocated) Name() string { return Name }

// Score implements framework.ScorePlugin: the mean over cpu and memory of
// free/allocatable * MaxNodeScore, counting the pod (with default requests
// for containers that state none).
func (*LeastAllocated) Score(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, ni *framework.NodeInfo) (int64, *framework.Status) {
	cpu := least(ni.NonZeroRequested.MilliCPU+pod.NonZeroRequests.MilliCPU, ni.Allocatable.MilliCPU)
	mem := least(ni.NonZeroRequested.Memory+pod.NonZeroRequests.Memory, ni.Allocatable.Memory)
	return (cpu + mem) / 2, nil
}

func least(requested, capacity int64) int64 {
	if capacity <= 0 || requested > capacity {
		return 0
	}
	return (capacity - requested) * framework.MaxNodeScore / capacity
}

// ScoreExtensions implements framework.ScorePlugin; none are needed.
func (*LeastAllocated) ScoreExtensions() framework.ScoreExtensions { return nil }
