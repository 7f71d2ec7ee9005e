package framework

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"k8s.io/apimachinery/pkg/labels"
)

// Handle is what plugins get from the framework that runs them.
type Handle interface {
	// SnapshotSharedLister reads the snapshot of the current cycle.
	SnapshotSharedLister() NodeInfoLister
	// Parallelizer runs work over nodes in parallel.
	Parallelizer() Parallelizer
	// Conn reaches the apiserver (binding, preemption).
	Conn() grpc.ClientConnInterface
	// NamespaceLabels returns a namespace's labels, for namespace selectors.
	NamespaceLabels(namespace string) labels.Set
	// Nominator knows the pods nominated to nodes by preemption.
	Nominator() Nominator
	// SchedulerName is the profile's scheduler name.
	SchedulerName() string
	// RunFilterPluginsWithNominatedPods runs every Filter plugin of the
	// profile on a node, counting the pods nominated to it that have at
	// least the pod's priority as if they were running there.
	RunFilterPluginsWithNominatedPods(ctx context.Context, state *CycleState, pod *PodInfo, nodeInfo *NodeInfo) *Status
	// RunPreFilterExtensionAddPod and RunPreFilterExtensionRemovePod tell
	// every PreFilter plugin with extensions that a pod was added to or
	// removed from nodeInfo in a what-if run.
	RunPreFilterExtensionAddPod(ctx context.Context, state *CycleState, podToSchedule, podToAdd *PodInfo, nodeInfo *NodeInfo) *Status
	RunPreFilterExtensionRemovePod(ctx context.Context, state *CycleState, podToSchedule, podToRemove *PodInfo, nodeInfo *NodeInfo) *Status
	// WaitingPod returns a pod held by a Permit plugin, nil when none.
	WaitingPod(uid string) *WaitingPod
}

// Nominator tracks pods that preemption nominated to a node: they are
// expected to run there once their victims are gone.
type Nominator interface {
	// NominatedPodsForNode returns the pods nominated to the node.
	NominatedPodsForNode(nodeName string) []*PodInfo
}

// Factory builds a plugin from its arguments (the profile's pluginConfig
// entry, nil when there is none) and the framework's handle.
type Factory func(args json.RawMessage, h Handle) (Plugin, error)

// Registry maps plugin names to their factories.
type Registry map[string]Factory

// Parallelizer runs pieces of work on a bounded number of goroutines.
type Parallelizer struct {
	// Parallelism is the number of goroutines; 1 runs pieces in order on
	// the caller's goroutine.
	Parallelism int
}

// chunkSize is how many pieces one goroutine takes at a time: about the
// square root of the work, so that both the number of hand-offs and the
// imbalance at the end stay small.
func chunkSize(pieces, parallelism int) int {
	s := 1
	for s*s < pieces {
		s++
	}
	if per := pieces/parallelism + 1; per < s {
		s = per
	}
	return max(s, 1)
}

// Until calls fn(i) for i in [0, pieces) until done, from up to Parallelism
// goroutines. Pieces are handed out in increasing chunks; stop, when not
// nil, is checked before a goroutine takes its next chunk, so once it
// returns true the pieces done are exactly the chunks already taken.
func (p Parallelizer) Until(ctx context.Context, pieces int, fn func(i int), stop func() bool) {
	if pieces == 0 {
		return
	}
	workers := max(p.Parallelism, 1)
	chunk := chunkSize(pieces, workers)
	if workers == 1 || pieces <= chunk {
		for i := 0; i < pieces; i++ {
			if i%chunk == 0 && (ctx.Err() != nil || (stop != nil && stop())) {
				return
			}
			fn(i)
		}
		return
	}
	workers = min(workers, (pieces+chunk-1)/chunk)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil && (stop == nil || !stop()) {
				start := int(next.Add(int64(chunk))) - chunk
				if start >= pieces {
					return
				}
				for i := start; i < min(start+chunk, pieces); i++ {
					fn(i)
				}
			}
		})
	}
	wg.Wait()
}
