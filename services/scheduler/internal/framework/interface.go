package framework

import (
	"context"
	"time"
)

// MaxNodeScore is the highest score a Score plugin gives after
// normalization; MinNodeScore the lowest.
const (
	MaxNodeScore int64 = 100
	MinNodeScore int64 = 0
)

// Plugin is what every plugin is.
type Plugin interface {
	// Name is the plugin's registered name.
	Name() string
}

// PreFilterPlugin computes per-pod state before Filter runs on any node.
// Returning Skip skips the plugin's Filter for this pod; a rejection makes
// the pod unschedulable on every node.
type PreFilterPlugin interface {
	Plugin
	PreFilter(ctx context.Context, state *CycleState, pod *PodInfo) *Status
}

// PreFilterExtensions lets preemption update a PreFilter's state when it
// removes or adds pods on a node in a what-if run.
type PreFilterExtensions interface {
	AddPod(ctx context.Context, state *CycleState, podToSchedule *PodInfo, podToAdd *PodInfo, nodeInfo *NodeInfo) *Status
	RemovePod(ctx context.Context, state *CycleState, podToSchedule *PodInfo, podToRemove *PodInfo, nodeInfo *NodeInfo) *Status
}

// PreFilterWithExtensions is a PreFilterPlugin whose state depends on the
// pods of other nodes (affinity, spreading) and must follow preemption's
// what-if changes.
type PreFilterWithExtensions interface {
	PreFilterPlugin
	PreFilterExtensions() PreFilterExtensions
}

// FilterPlugin says whether the pod may run on one node. It is called for
// many nodes in parallel and must not modify nodeInfo.
type FilterPlugin interface {
	Plugin
	Filter(ctx context.Context, state *CycleState, pod *PodInfo, nodeInfo *NodeInfo) *Status
}

// PostFilterResult is what a PostFilter plugin achieved.
type PostFilterResult struct {
	// NominatedNodeName is the node made available for the pod (by
	// preemption), "" when none.
	NominatedNodeName string
}

// PostFilterPlugin runs when no node passed Filter, e.g. to preempt pods.
// filtered holds every node's rejecting status.
type PostFilterPlugin interface {
	Plugin
	PostFilter(ctx context.Context, state *CycleState, pod *PodInfo, filtered NodeToStatus) (*PostFilterResult, *Status)
}

// PreScorePlugin computes per-pod state for scoring the feasible nodes.
// Returning Skip skips the plugin's Score for this pod.
type PreScorePlugin interface {
	Plugin
	PreScore(ctx context.Context, state *CycleState, pod *PodInfo, nodes []*NodeInfo) *Status
}

// ScorePlugin ranks a feasible node; higher is better. Scores are
// normalized to [MinNodeScore, MaxNodeScore], by ScoreExtensions when the
// plugin has them, and then multiplied by the plugin's weight.
type ScorePlugin interface {
	Plugin
	Score(ctx context.Context, state *CycleState, pod *PodInfo, nodeInfo *NodeInfo) (int64, *Status)
	// ScoreExtensions returns nil when scores need no normalization.
	ScoreExtensions() ScoreExtensions
}

// ScoreExtensions normalize a plugin's scores over all feasible nodes.
type ScoreExtensions interface {
	NormalizeScore(ctx context.Context, state *CycleState, pod *PodInfo, scores NodeScoreList) *Status
}

// ReservePlugin is told when the pod is assumed on a node (Reserve) and
// when that is undone (Unreserve), so it can keep its own accounting.
// Unreserve must be idempotent and must not fail.
type ReservePlugin interface {
	Plugin
	Reserve(ctx context.Context, state *CycleState, pod *PodInfo, nodeName string) *Status
	Unreserve(ctx context.Context, state *CycleState, pod *PodInfo, nodeName string)
}

// PermitPlugin approves, rejects or delays (Wait with a timeout) the binding
// of a reserved pod. A waiting pod is allowed or rejected through
// Handle.WaitingPod.
type PermitPlugin interface {
	Plugin
	Permit(ctx context.Context, state *CycleState, pod *PodInfo, nodeName string) (*Status, time.Duration)
}

// BindPlugin binds the pod to the node. A plugin that does not handle the
// pod returns Skip and the next one is tried.
type BindPlugin interface {
	Plugin
	Bind(ctx context.Context, state *CycleState, pod *PodInfo, nodeName string) *Status
}

// EnqueueExtensions name the cluster events that may make a pod this plugin
// rejected schedulable. A pod rejected only by plugins that do not list an
// event stays in the unschedulable queue when the event happens. Plugins
// that do not implement it are woken by every event.
type EnqueueExtensions interface {
	EventsToRegister() []ClusterEvent
}

// Resource kinds of cluster events.
const (
	KindNode = "Node"
	KindPod  = "Pod"
)

// ActionType is what happened to an object.
type ActionType int

// Action types; they combine as bits.
const (
	Add ActionType = 1 << iota
	Update
	Delete
	All = Add | Update | Delete
)

// ClusterEvent is a change that may make unschedulable pods schedulable.
// For KindPod it is about pods assigned to nodes.
type ClusterEvent struct {
	Kind   string
	Action ActionType
	// Label names the event in logs and metrics.
	Label string
}

// Match reports whether a registered event (e) covers the event that
// happened (got).
func (e ClusterEvent) Match(got ClusterEvent) bool {
	return e.Kind == got.Kind && e.Action&got.Action != 0
}

// Common cluster events.
var (
	EventNodeAdd           = ClusterEvent{Kind: KindNode, Action: Add, Label: "NodeAdd"}
	EventNodeUpdate        = ClusterEvent{Kind: KindNode, Action: Update, Label: "NodeUpdate"}
	EventAssignedPodAdd    = ClusterEvent{Kind: KindPod, Action: Add, Label: "AssignedPodAdd"}
	EventAssignedPodUpdate = ClusterEvent{Kind: KindPod, Action: Update, Label: "AssignedPodUpdate"}
	EventAssignedPodDelete = ClusterEvent{Kind: KindPod, Action: Delete, Label: "AssignedPodDelete"}
	EventNodeDelete        = ClusterEvent{Kind: KindNode, Action: Delete, Label: "NodeDelete"}
)

// NodeScore is one node's score.
type NodeScore struct {
	Name  string
	Score int64
}

// NodeScoreList are the scores of the feasible nodes, in their order.
type NodeScoreList []NodeScore

// NodeToStatus maps a node's name to the status that rejected it.
type NodeToStatus map[string]*Status
