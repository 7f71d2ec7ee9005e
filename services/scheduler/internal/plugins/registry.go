// Package plugins lists Bosun's scheduler plugins: one package per plugin
// below this one, and here the registry from name to constructor and the
// default plugin set.
package plugins

import (
	"bosun.dev/services/scheduler/internal/framework"
	"bosun.dev/services/scheduler/internal/plugins/balancedallocation"
	"bosun.dev/services/scheduler/internal/plugins/defaultbinder"
	"bosun.dev/services/scheduler/internal/plugins/defaultpreemption"
	"bosun.dev/services/scheduler/internal/plugins/hostports"
	"bosun.dev/services/scheduler/internal/plugins/interpodaffinity"
	"bosun.dev/services/scheduler/internal/plugins/leastallocated"
	"bosun.dev/services/scheduler/internal/plugins/mostallocated"
	"bosun.dev/services/scheduler/internal/plugins/nodeaffinity"
	"bosun.dev/services/scheduler/internal/plugins/nodename"
	"bosun.dev/services/scheduler/internal/plugins/noderesourcesfit"
	"bosun.dev/services/scheduler/internal/plugins/nodeunschedulable"
	"bosun.dev/services/scheduler/internal/plugins/podtopologyspread"
	"bosun.dev/services/scheduler/internal/plugins/tainttoleration"
)

// NewRegistry returns every built-in plugin by name.
func NewRegistry() framework.Registry {
	return framework.Registry{
		nodeunschedulable.Name:  nodeunschedulable.New,
		nodename.Name:           nodename.New,
		tainttoleration.Name:    tainttoleration.New,
		nodeaffinity.Name:       nodeaffinity.New,
		hostports.Name:          hostports.New,
		noderesourcesfit.Name:   noderesourcesfit.New,
		interpodaffinity.Name:   interpodaffinity.New,
		podtopologyspread.Name:  podtopologyspread.New,
		leastallocated.Name:     leastallocated.New,
		mostallocated.Name:      mostallocated.New,
		balancedallocation.Name: balancedallocation.New,
		defaultpreemption.Name:  defaultpreemption.New,
		defaultbinder.Name:      defaultbinder.New,
	}
}

// Defaults is the default plugin set, in the order plugins run at each
// extension point, with score weights. MostAllocated is registered but not
// a default: enable it (and disable LeastAllocated) to bin-pack.
func Defaults() []framework.PluginRef {
	return []framework.PluginRef{
		{Name: nodeunschedulable.Name},
		{Name: nodename.Name},
		{Name: tainttoleration.Name, Weight: 3},
		{Name: nodeaffinity.Name, Weight: 2},
		{Name: hostports.Name},
		{Name: noderesourcesfit.Name},
		{Name: interpodaffinity.Name, Weight: 2},
		{Name: podtopologyspread.Name, Weight: 2},
		{Name: leastallocated.Name, Weight: 1},
		{Name: balancedallocation.Name, Weight: 1},
		{Name: defaultpreemption.Name},
		{Name: defaultbinder.Name},
	}
}
