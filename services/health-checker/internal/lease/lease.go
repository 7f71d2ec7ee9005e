// Package lease tracks how fresh each node's heartbeat Lease is, as seen by
// the health-checker.
//
// A node-agent renews the Lease named after its node in the node-lease
// namespace (DefaultNamespace) every second or so. The Tracker is fed the
// Lease informer's events and records, on the health-checker's own clock,
// when it last saw each Lease change. Freshness is measured from that local
// observation, never from the renew_time inside the Lease: clocks on
// different machines differ, and a node whose clock runs ahead must not look
// alive.
package lease

import (
	"sync"
	"time"

	"k8s.io/utils/clock"

	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
)

// DefaultNamespace is the namespace of node heartbeat Leases, one per node,
// named after the node (Kubernetes' kube-node-lease).
const DefaultNamespace = "bosun-node-lease"

// Observation is what the Tracker knows about one node's Lease.
type Observation struct {
	// Seen is the local time the Lease was last seen to change (or first
	// seen).
	Seen time.Time
	// ResourceVersion is that of the last Lease seen.
	ResourceVersion string
	// RenewTime is the renew_time the node wrote, for messages only; zero
	// when the Lease has none.
	RenewTime time.Time
}

// Tracker records when each node's Lease was last renewed. It is safe for
// concurrent use.
type Tracker struct {
	clock clock.PassiveClock

	mu  sync.Mutex
	obs map[string]Observation
}

// NewTracker returns a Tracker that stamps observations with c (the real
// clock when nil).
func NewTracker(c clock.PassiveClock) *Tracker {
	if c == nil {
		c = clock.RealClock{}
	}
	return &Tracker{clock: c, obs: map[string]Observation{}}
}

// Observe records l, restarting its node's freshness when the Lease changed.
// A Lease seen again unchanged (a resync, a relist) keeps its old time.
func (t *Tracker) Observe(l *coordinationv1.Lease) {
	name := l.GetMetadata().GetName()
	rv := l.GetMetadata().GetResourceVersion()
	t.mu.Lock()
	defer t.mu.Unlock()
	if o, ok := t.obs[name]; ok && o.ResourceVersion == rv {
		return
	}
	o := Observation{Seen: t.clock.Now(), ResourceVersion: rv}
	if rt := l.GetSpec().GetRenewTime(); rt != nil {
		o.RenewTime = rt.AsTime()
	}
	t.obs[name] = o
}

// Forget drops the node's Lease, when it was deleted.
func (t *Tracker) Forget(node string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.obs, node)
}

// Get returns what is known about node's Lease.
func (t *Tracker) Get(node string) (Observation, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o, ok := t.obs[node]
	return o, ok
}
