// Package balancedallocation is the BalancedAllocation plugin: nodes whose
// cpu and memory would be used in similar proportions after placing the pod
// score highest, so that neither resource is stranded.
package balancedallocation

import (
	"context"
	"encoding/json"

	"bosun.dev/services/scheduler/internal/framework"
)

// Name is the plugin's name.
const Name = "BalancedAllocation"

// BalancedAllocation is the plugin.
type BalancedAllocation struct{}

var _ framework.ScorePlugin = &BalancedAllocation{}

// New builds the plugin; it takes no args.
func New(args json.RawMessage, _ framework.Handle) (framework.Plugin, error) {
	return &BalancedAllocation{}, framework.DecodeArgs(Name, args, nil)
}

// Name implements framework.Plugin.
func (*BalancedAllocation) Name() string { return Name }

// Score implements framework.ScorePlugin: (1 - standard deviation of the
// cpu and memory fractions) * MaxNodeScore. For two fractions the standard
// deviation is half their difference.
func (*BalancedAllocation) Score(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, ni *framework.NodeInfo) (int64, *framework.Status) {
	cpu := fraction(ni.NonZeroRequested.MilliCPU+pod.NonZeroRequests.MilliCPU, ni.Allocatable.MilliCPU)
	mem := fraction(ni.NonZeroRequested.Memory+pod.NonZeroRequests.Memory, ni.Allocatable.Memory)
	d := cpu - mem
	if d < 0 {
		d = -d
	}
	return int64((1 - d/2) * float64(framework.MaxNodeScore)), nil
}

func fraction(requested, capacity int64) float64 {
	if capacity <= 0 {
		return 1
	}
	return min(float64(requested)/float64(capacity), 1)
}

// ScoreExtensions implements framework.ScorePlugin; none are needed.
func (*BalancedAllocation) ScoreExtensions() framework.ScoreExtensions { return nil }
