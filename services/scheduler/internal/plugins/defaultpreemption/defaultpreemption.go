// Package defaultpreemption is the DefaultPreemption plugin: when no node
// fits a pod, it evicts lower-priority pods from the node where that
// disrupts least (see package preemption) and nominates that node.
package defaultpreemption

import (
	"context"
	"encoding/json"

	"bosun.dev/services/scheduler/internal/framework"
	"bosun.dev/services/scheduler/internal/preemption"
)

// Name is the plugin's name.
const Name = "DefaultPreemption"

// DefaultPreemption is the plugin.
type DefaultPreemption struct {
	ev *preemption.Evaluator
}

var (
	_ framework.PostFilterPlugin  = &DefaultPreemption{}
	_ framework.EnqueueExtensions = &DefaultPreemption{}
)

// New builds the plugin; it takes no args.
func New(args json.RawMessage, h framework.Handle) (framework.Plugin, error) {
	return &DefaultPreemption{ev: &preemption.Evaluator{Handle: h}}, framework.DecodeArgs(Name, args, nil)
}

// Name implements framework.Plugin.
func (*DefaultPreemption) Name() string { return Name }

// PostFilter implements framework.PostFilterPlugin.
func (p *DefaultPreemption) PostFilter(ctx context.Context, state *framework.CycleState, pod *framework.PodInfo, m framework.NodeToStatus) (*framework.PostFilterResult, *framework.Status) {
	return p.ev.Preempt(ctx, state, pod, m)
}

// EventsToRegister implements framework.EnqueueExtensions: a preempting
// pod waits for its victims to go.
func (*DefaultPreemption) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{framework.EventAssignedPodDelete}
}
