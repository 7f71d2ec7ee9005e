package queue_test

import (
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"bosun.dev/services/scheduler/internal/framework"
	"bosun.dev/services/scheduler/internal/queue"
	st "bosun.dev/services/scheduler/internal/schedtest"
)

func newQueue() (*queue.Queue, *clocktesting.FakeClock) {
	clk := clocktesting.NewFakeClock(time.Unix(1_000_000, 0))
	q := queue.New(queue.Options{Clock: clk, InitialBackoff: time.Second, MaxBackoff: 4 * time.Second,
		QueueingEvents: map[string][]framework.ClusterEvent{
			"NodeResourcesFit": {framework.EventNodeAdd, framework.EventAssignedPodDelete},
			"TaintToleration":  {framework.EventNodeAdd, framework.EventNodeUpdate},
		}})
	return q, clk
}

func pop(t *testing.T, q *queue.Queue) *queue.QueuedPodInfo {
	t.Helper()
	if a, _, _ := q.Len(); a == 0 {
		t.Fatal("nothing active to pop")
	}
	p, err := q.Pop()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPriorityThenAge(t *testing.T) {
	q, clk := newQueue()
	q.Add(st.Pod("old-low").Priority(1).Obj())
	clk.Step(time.Millisecond)
	q.Add(st.Pod("new-high").Priority(10).Obj())
	clk.Step(time.Millisecond)
	q.Add(st.Pod("new-low").Priority(1).Obj())
	for _, want := range []string{"new-high", "old-low", "new-low"} {
		if got := pop(t, q).Pod.GetMetadata().GetName(); got != want {
			t.Fatalf("popped %s, want %s", got, want)
		}
	}
}

func TestUnschedulableWaitsForARelevantEvent(t *testing.T) {
	q, clk := newQueue()
	q.Add(st.Pod("p").Obj())
	p := pop(t, q)
	cycle := q.SchedulingCycle()
	p.UnschedulablePlugins = map[string]struct{}{"TaintToleration": {}}
	q.AddUnschedulableIfNotPresent(p, cycle)
	if where, _ := q.Has("default/p"); where != "unschedulable" {
		t.Fatalf("pod is in %q, want unschedulable", where)
	}
	clk.Step(time.Hour)
	q.FlushBackoffCompleted()
	if where, _ := q.Has("default/p"); where != "unschedulable" {
		t.Fatalf("time alone moved the pod to %q", where)
	}
	if n := q.MoveAllToActiveOrBackoffQueue(framework.EventAssignedPodDelete); n != 0 {
		t.Fatalf("an event TaintToleration does not register for moved %d pods", n)
	}
	if n := q.MoveAllToActiveOrBackoffQueue(framework.EventNodeUpdate); n != 1 {
		t.Fatalf("a node update moved %d pods, want 1", n)
	}
	if where, _ := q.Has("default/p"); where != "active" {
		t.Fatalf("pod is in %q after its back-off, want active", where)
	}
}

func TestBackoffDoublesAndCaps(t *testing.T) {
	q, clk := newQueue()
	q.Add(st.Pod("p").Obj())
	for attempt, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		p := pop(t, q)
		q.AddUnschedulableIfNotPresent(p, q.SchedulingCycle()) // an error: no plugins -> backoff
		if where, _ := q.Has("default/p"); where != "backoff" {
			t.Fatalf("attempt %d: in %q, want backoff", attempt+1, where)
		}
		clk.Step(wait - time.Millisecond)
		q.FlushBackoffCompleted()
		if where, _ := q.Has("default/p"); where != "backoff" {
			t.Fatalf("attempt %d: left backoff before %s", attempt+1, wait)
		}
		clk.Step(time.Millisecond)
		q.FlushBackoffCompleted()
		if where, _ := q.Has("default/p"); where != "active" {
			t.Fatalf("attempt %d: still in %q after %s", attempt+1, where, wait)
		}
	}
}

func TestEventDuringTheCycleIsNotLost(t *testing.T) {
	q, _ := newQueue()
	q.Add(st.Pod("p").Obj())
	p := pop(t, q)
	cycle := q.SchedulingCycle()
	q.MoveAllToActiveOrBackoffQueue(framework.EventNodeAdd) // while p is being scheduled
	p.UnschedulablePlugins = map[string]struct{}{"NodeResourcesFit": {}}
	q.AddUnschedulableIfNotPresent(p, cycle)
	if where, _ := q.Has("default/p"); where != "backoff" {
		t.Fatalf("pod is in %q, want backoff: a node was added during its cycle", where)
	}
}

func TestUpdateAndDelete(t *testing.T) {
	q, _ := newQueue()
	old := st.Pod("p").Obj()
	q.Add(old)
	p := pop(t, q)
	p.UnschedulablePlugins = map[string]struct{}{"TaintToleration": {}}
	q.AddUnschedulableIfNotPresent(p, q.SchedulingCycle())
	changed := st.Pod("p").Toleration("dedicated", "Exists", "", "").Obj()
	changed.Metadata.Generation = 2
	q.Update(old, changed)
	where, _ := q.Has("default/p")
	if where == "unschedulable" {
		t.Fatal("a changed spec left the pod unschedulable")
	}
	q.Delete(changed)
	if _, ok := q.Has("default/p"); ok {
		t.Fatal("deleted pod still queued")
	}
}

func TestNominatedPods(t *testing.T) {
	q, _ := newQueue()
	pi := st.Pod("p").Priority(5).Info()
	q.AddNominatedPod(pi, "n1")
	if got := q.NominatedPodsForNode("n1"); len(got) != 1 || got[0] != pi {
		t.Fatalf("nominated on n1: %v", got)
	}
	q.AddNominatedPod(pi, "n2")
	if len(q.NominatedPodsForNode("n1")) != 0 || len(q.NominatedPodsForNode("n2")) != 1 {
		t.Fatal("re-nominating did not move the pod")
	}
	q.DeleteNominatedPodIfExists(pi.Pod)
	if len(q.NominatedPodsForNode("n2")) != 0 {
		t.Fatal("nomination not forgotten")
	}
}

func TestCloseWakesPop(t *testing.T) {
	q, _ := newQueue()
	errc := make(chan error, 1)
	go func() { _, err := q.Pop(); errc <- err }()
	q.Close()
	select {
	case err := <-errc:
		if err != queue.ErrClosed {
			t.Fatalf("Pop returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Pop did not return after Close")
	}
}
