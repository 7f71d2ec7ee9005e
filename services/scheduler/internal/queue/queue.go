// Package queue holds the pods waiting to be scheduled, in three parts:
//
//   - active: pods to try now, highest priority first, then oldest first;
//   - backoff: pods that failed recently and wait out an exponential
//     back-off (initial, doubling per attempt, capped) before going back to
//     active;
//   - unschedulable: pods no node could take. They stay until a cluster
//     event that may help them happens (a node added or changed, an
//     assigned pod deleted, ...): only events that one of the plugins that
//     rejected the pod registered for move it, to backoff or active.
//
// A pod that fails while an event happened during its own scheduling cycle
// goes to backoff instead of unschedulable, so the event is not lost.
//
// The queue also tracks nominated pods: pods that preemption made room for
// on a node, which later cycles count on that node.
package queue

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/scheduler/internal/framework"
)

// Defaults of Options.
const (
	DefaultInitialBackoff = time.Second
	DefaultMaxBackoff     = 10 * time.Second
	// flushInterval is how often pods whose back-off ended move to active.
	flushInterval = 100 * time.Millisecond
)

// ErrClosed is returned by Pop once the queue is closed.
var ErrClosed = errors.New("scheduling queue is closed")

// QueuedPodInfo is a pod in the queue with its scheduling history.
type QueuedPodInfo struct {
	*framework.PodInfo
	key string
	// Timestamp is when the pod last entered the queue.
	Timestamp time.Time
	// InitialAttemptTimestamp is when the pod was first popped.
	InitialAttemptTimestamp time.Time
	// Attempts counts scheduling attempts.
	Attempts int
	// UnschedulablePlugins are the plugins that rejected the pod in its last
	// attempt; empty after an error.
	UnschedulablePlugins map[string]struct{}
}

// Key is namespace/name.
func (q *QueuedPodInfo) Key() string { return q.key }

// Options configure a Queue.
type Options struct {
	Clock          clock.Clock
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// QueueingEvents name, per plugin, the events that may make a pod it
	// rejected schedulable; a plugin missing or mapped to nil is woken by
	// every event.
	QueueingEvents map[string][]framework.ClusterEvent
}

// Queue is the scheduling queue. It is safe for concurrent use.
type Queue struct {
	opts  Options
	clock clock.Clock

	mu            sync.Mutex
	cond          *sync.Cond
	active        *keyedHeap
	backoff       *keyedHeap
	unschedulable map[string]*QueuedPodInfo
	inFlight      map[string]struct{}
	closed        bool
	// schedulingCycle counts pops; moveRequestCycle is the cycle of the
	// last event that moved pods.
	schedulingCycle  int64
	moveRequestCycle int64

	nominated     map[string][]*framework.PodInfo // by node
	nominatedNode map[string]string               // by pod key
	// nominatedCount lets NominatedPodsForNode, called for every node
	// filtered, skip the lock when nothing is nominated.
	nominatedCount atomic.Int64
}

// New returns an empty queue.
func New(opts Options) *Queue {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = DefaultInitialBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	q := &Queue{
		opts: opts, clock: opts.Clock,
		unschedulable: map[string]*QueuedPodInfo{}, inFlight: map[string]struct{}{},
		moveRequestCycle: -1,
		nominated:        map[string][]*framework.PodInfo{}, nominatedNode: map[string]string{},
	}
	q.cond = sync.NewCond(&q.mu)
	q.active = newKeyedHeap(func(a, b *QueuedPodInfo) bool {
		if a.Priority != b.Priority {
			return a.Priority > b.Priority
		}
		return a.Timestamp.Before(b.Timestamp)
	})
	q.backoff = newKeyedHeap(func(a, b *QueuedPodInfo) bool { return q.backoffExpiry(a).Before(q.backoffExpiry(b)) })
	return q
}

// Key is the queue's key of a pod: namespace/name.
func Key(pod *corev1.Pod) string {
	return pod.GetMetadata().GetNamespace() + "/" + pod.GetMetadata().GetName()
}

func (q *Queue) backoffDuration(p *QueuedPodInfo) time.Duration {
	d := q.opts.InitialBackoff
	for i := 1; i < p.Attempts; i++ {
		d *= 2
		if d >= q.opts.MaxBackoff {
			return q.opts.MaxBackoff
		}
	}
	return d
}

func (q *Queue) backoffExpiry(p *QueuedPodInfo) time.Time {
	return p.Timestamp.Add(q.backoffDuration(p))
}

func (q *Queue) newInfo(pod *corev1.Pod) *QueuedPodInfo {
	return &QueuedPodInfo{PodInfo: framework.NewPodInfo(pod), key: Key(pod), Timestamp: q.clock.Now()}
}

func (q *Queue) present(key string) bool {
	if _, ok := q.active.index[key]; ok {
		return true
	}
	if _, ok := q.backoff.index[key]; ok {
		return true
	}
	_, ok := q.unschedulable[key]
	return ok
}

// Add queues a new pending pod in active.
func (q *Queue) Add(pod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	key := Key(pod)
	q.backoff.remove(key)
	delete(q.unschedulable, key)
	if it, ok := q.active.get(key); ok {
		it.PodInfo = framework.NewPodInfo(pod)
		return
	}
	q.active.add(q.newInfo(pod))
	q.cond.Broadcast()
}

// Update replaces a pending pod. A pod waiting as unschedulable whose spec
// or labels changed is tried again.
func (q *Queue) Update(oldPod, newPod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	key := Key(newPod)
	if it, ok := q.active.get(key); ok {
		it.PodInfo = framework.NewPodInfo(newPod)
		q.active.add(it)
		return
	}
	if it, ok := q.backoff.get(key); ok {
		it.PodInfo = framework.NewPodInfo(newPod)
		q.backoff.add(it)
		return
	}
	if it, ok := q.unschedulable[key]; ok {
		it.PodInfo = framework.NewPodInfo(newPod)
		if schedulingChanged(oldPod, newPod) {
			delete(q.unschedulable, key)
			q.moveLocked(it)
		}
		return
	}
	if _, ok := q.inFlight[key]; ok {
		return
	}
	q.active.add(q.newInfo(newPod))
	q.cond.Broadcast()
}

// schedulingChanged reports a change that may matter to scheduling: the
// spec or the labels.
func schedulingChanged(a, b *corev1.Pod) bool {
	if a.GetMetadata().GetGeneration() != b.GetMetadata().GetGeneration() {
		return true
	}
	la, lb := a.GetMetadata().GetLabels(), b.GetMetadata().GetLabels()
	if len(la) != len(lb) {
		return true
	}
	for k, v := range la {
		if lb[k] != v {
			return true
		}
	}
	return false
}

// Delete removes a pod from the queue and from the nominations.
func (q *Queue) Delete(pod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	key := Key(pod)
	q.active.remove(key)
	q.backoff.remove(key)
	delete(q.unschedulable, key)
	q.deleteNominatedLocked(key)
}

// Pop blocks until a pod is active and returns it, or ErrClosed.
func (q *Queue) Pop() (*QueuedPodInfo, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.active.Len() == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return nil, ErrClosed
	}
	p := q.active.pop()
	q.schedulingCycle++
	p.Attempts++
	if p.InitialAttemptTimestamp.IsZero() {
		p.InitialAttemptTimestamp = q.clock.Now()
	}
	q.inFlight[p.key] = struct{}{}
	return p, nil
}

// Done tells the queue the popped pod's cycle is over (it was assumed, or
// requeued).
func (q *Queue) Done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.inFlight, key)
}

// SchedulingCycle is the number of pops so far.
func (q *Queue) SchedulingCycle() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.schedulingCycle
}

// AddUnschedulableIfNotPresent puts back a pod whose attempt in cycle
// failed. A pod with rejecting plugins waits in unschedulable, unless an
// event moved pods since that cycle began; a pod that failed with an error
// waits out its back-off.
func (q *Queue) AddUnschedulableIfNotPresent(p *QueuedPodInfo, cycle int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.inFlight, p.key)
	if q.present(p.key) {
		return
	}
	p.Timestamp = q.clock.Now()
	if len(p.UnschedulablePlugins) == 0 || q.moveRequestCycle >= cycle {
		q.backoff.add(p)
		return
	}
	q.unschedulable[p.key] = p
}

// moveLocked sends p to backoff if its back-off is still running, else to
// active.
func (q *Queue) moveLocked(p *QueuedPodInfo) {
	if q.clock.Now().Before(q.backoffExpiry(p)) {
		q.backoff.add(p)
		return
	}
	q.active.add(p)
	q.cond.Broadcast()
}

// MoveAllToActiveOrBackoffQueue moves the unschedulable pods that event
// may help. It returns how many moved.
func (q *Queue) MoveAllToActiveOrBackoffQueue(event framework.ClusterEvent) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	moved := 0
	for key, p := range q.unschedulable {
		if q.interested(p, event) {
			delete(q.unschedulable, key)
			q.moveLocked(p)
			moved++
		}
	}
	q.moveRequestCycle = q.schedulingCycle
	return moved
}

func (q *Queue) interested(p *QueuedPodInfo, event framework.ClusterEvent) bool {
	if len(p.UnschedulablePlugins) == 0 {
		return true
	}
	for name := range p.UnschedulablePlugins {
		events, ok := q.opts.QueueingEvents[name]
		if !ok || events == nil {
			return true
		}
		for _, e := range events {
			if e.Match(event) {
				return true
			}
		}
	}
	return false
}

// FlushBackoffCompleted moves pods whose back-off has ended to active.
func (q *Queue) FlushBackoffCompleted() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clock.Now()
	for {
		p := q.backoff.peek()
		if p == nil || now.Before(q.backoffExpiry(p)) {
			return
		}
		q.backoff.pop()
		q.active.add(p)
		q.cond.Broadcast()
	}
}

// Run flushes completed back-offs until stop is closed, then closes the
// queue.
func (q *Queue) Run(stop <-chan struct{}) {
	for {
		t := q.clock.NewTimer(flushInterval)
		select {
		case <-stop:
			t.Stop()
			q.Close()
			return
		case <-t.C():
			q.FlushBackoffCompleted()
		}
	}
}

// Open lets Pop hand out pods again after Close: a scheduler that lost
// leadership closes its queue and opens it when it leads again. The pods
// waiting in it stay.
func (q *Queue) Open() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = false
}

// Close wakes Pop with ErrClosed.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}

// Len returns the number of pods in active, backoff and unschedulable.
func (q *Queue) Len() (active, backoff, unschedulable int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.active.Len(), q.backoff.Len(), len(q.unschedulable)
}

// Has reports whether the pod key is waiting in any part of the queue, and
// in which: "active", "backoff" or "unschedulable".
func (q *Queue) Has(key string) (string, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.active.index[key]; ok {
		return "active", true
	}
	if _, ok := q.backoff.index[key]; ok {
		return "backoff", true
	}
	if _, ok := q.unschedulable[key]; ok {
		return "unschedulable", true
	}
	return "", false
}

// AddNominatedPod records that pi is expected on nodeName.
func (q *Queue) AddNominatedPod(pi *framework.PodInfo, nodeName string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	key := Key(pi.Pod)
	q.deleteNominatedLocked(key)
	if nodeName == "" {
		return
	}
	q.nominatedNode[key] = nodeName
	q.nominated[nodeName] = append(q.nominated[nodeName], pi)
	q.nominatedCount.Add(1)
}

// DeleteNominatedPodIfExists forgets pod's nomination.
func (q *Queue) DeleteNominatedPodIfExists(pod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.deleteNominatedLocked(Key(pod))
}

func (q *Queue) deleteNominatedLocked(key string) {
	node, ok := q.nominatedNode[key]
	if !ok {
		return
	}
	delete(q.nominatedNode, key)
	q.nominatedCount.Add(-1)
	list := q.nominated[node]
	for i, p := range list {
		if Key(p.Pod) == key {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(q.nominated, node)
	} else {
		q.nominated[node] = list
	}
}

// NominatedPodsForNode implements framework.Nominator.
func (q *Queue) NominatedPodsForNode(nodeName string) []*framework.PodInfo {
	if q.nominatedCount.Load() == 0 {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.nominated[nodeName]) == 0 {
		return nil
	}
	return append([]*framework.PodInfo(nil), q.nominated[nodeName]...)
}

var _ framework.Nominator = &Queue{}
