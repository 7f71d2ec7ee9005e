// Package framework defines the scheduler's extension points and runs the
// plugins that implement them. A pod goes through two cycles:
//
//	scheduling cycle (one pod at a time, on a snapshot of the cache)
//	  PreFilter -> Filter (every sampled node, in parallel) -> PostFilter (only when no node fits: preemption)
//	  -> PreScore -> Score -> NormalizeScore (feasible nodes, weighted) -> select host
//	  -> Reserve (assume the pod on the node) -> Permit
//	binding cycle (asynchronous, many pods at once)
//	  wait for Permit -> Bind -> (on failure) Unreserve, forget the assumption, requeue
//
// Each extension point is a small interface; a plugin implements the ones it
// needs and is registered by name in a Registry with its constructor
// (Factory). A Profile, read from the scheduler's configuration file, says
// which plugins run and with which score weights.
//
// Results are Statuses with codes that separate "does not fit here"
// (Unschedulable: preemption might help), "can never fit here"
// (UnschedulableAndUnresolvable) and internal errors (Error). The reasons of
// every rejecting plugin are collected per node, so that a pod that fits
// nowhere gets a message such as
// "0/5 nodes are available: 3 Insufficient cpu, 2 node(s) had untolerated taint {dedicated: gpu}."
package framework
