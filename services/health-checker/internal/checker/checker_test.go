package checker

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/services/health-checker/internal/nodestatus"
	"bosun.dev/services/health-checker/internal/taints"
)

const (
	unreachableNoExecute = taints.Unreachable + ":" + taints.NoExecute
	outOfServiceTaint    = taints.OutOfService + ":" + taints.NoExecute
)

// startHealthy adds nodes and runs passes until they are all Ready.
func startHealthy(t *testing.T, w *world, names ...string) []*agent {
	t.Helper()
	var live []*agent
	for _, n := range names {
		live = append(live, w.addNode(n))
	}
	w.pass() // learns the health endpoints
	for _, n := range names {
		w.awaitProbe(n)
	}
	w.step(time.Second, live...)
	for _, n := range names {
		if got := w.ready(n); got != nodestatus.StatusTrue {
			t.Fatalf("node %s Ready=%s after its first heartbeat and probe, want True", n, got)
		}
	}
	return live
}

// A node-agent paused (SIGSTOP) for less than the grace period: no lease
// renewals, no health answers. Nothing changes: no condition, no taint, no
// eviction, no event.
func TestShortBlipChangesNothing(t *testing.T) {
	w := newWorld(t, testOptions())
	live := startHealthy(t, w, "n1", "n2")
	n1, n2 := live[0], live[1]
	pod := w.podOn("n1", "web-1", "ReplicaSet")
	before := w.node("n1")
	transition := nodestatus.Ready(before).GetLastTransitionTime().AsTime()

	n1.pause()
	for i := 0; i < 7; i++ { // 3.5 s of silence against a 4 s grace period
		w.step(500*time.Millisecond, n2)
		if got := w.ready("n1"); got != nodestatus.StatusTrue {
			t.Fatalf("after %v of silence n1 Ready=%s, want True", time.Duration(i+1)*500*time.Millisecond, got)
		}
	}
	n1.resume()
	for i := 0; i < 10; i++ { // and well past where toleration would have run out
		w.step(time.Second, n1, n2)
	}
	after := w.node("n1")
	if got := nodestatus.Ready(after); got.GetStatus() != nodestatus.StatusTrue || !got.GetLastTransitionTime().AsTime().Equal(transition) {
		t.Errorf("n1 Ready after the blip = %v, want True with the transition time %v unchanged", got, transition)
	}
	if len(after.GetSpec().GetTaints()) != 0 {
		t.Errorf("n1 taints after the blip = %v, want none", taintKeys(after))
	}
	if s := w.podState(pod.GetMetadata().GetName()); s != "present" {
		t.Errorf("pod on n1 is %s after the blip, want present", s)
	}
	if evs := w.eventsWith(EventsNamespace, ReasonNodeUnreachable); len(evs) != 0 {
		t.Errorf("events %v after a blip, want none", evs)
	}
}

// A node that dies: Unknown just after the grace period with the
// unreachable taint; each pod goes when its toleration runs out (default,
// its own, never); DaemonSet pods stay; the StatefulSet pod is marked but
// not removed until the node is declared out of service. When the node comes
// back, Ready returns and the unreachable taint is removed.
func TestDeadNodeEvictionStatefulSetAndRecovery(t *testing.T) {
	w := newWorld(t, testOptions())
	live := startHealthy(t, w, "n1", "n2")
	n1, n2 := live[0], live[1]
	tolerate := func(s *int64) *corev1.Toleration {
		return &corev1.Toleration{Key: taints.Unreachable, Operator: "Exists", Effect: taints.NoExecute, TolerationSeconds: s}
	}
	w.podOn("n1", "plain", "ReplicaSet")
	w.podOn("n1", "patient", "ReplicaSet", tolerate(secs(10)))
	w.podOn("n1", "forever", "", tolerate(nil))
	w.podOn("n1", "daemon", "DaemonSet")
	w.podOn("n1", "db-0", "StatefulSet")
	w.podOn("n2", "elsewhere", "ReplicaSet")
	w.settle()

	n1.stop() // kill -9: no more renewals, no health server
	w.step(4*time.Second, n2)
	if got := w.ready("n1"); got != nodestatus.StatusTrue {
		t.Fatalf("n1 Ready=%s exactly at the grace period, want True still", got)
	}
	w.step(500*time.Millisecond, n2) // 4.5 s silent
	node := w.node("n1")
	if got := nodestatus.Ready(node); got.GetStatus() != nodestatus.StatusUnknown || got.GetReason() != nodestatus.ReasonUnknown {
		t.Fatalf("n1 Ready = %v after 4.5 s of silence, want Unknown/%s", got, nodestatus.ReasonUnknown)
	}
	if !taintKeys(node)[unreachableNoExecute] {
		t.Fatalf("n1 taints = %v, want %s", taintKeys(node), unreachableNoExecute)
	}
	if nodestatus.Find(node.GetStatus(), "MemoryPressure") == nil {
		t.Errorf("the agent's MemoryPressure condition was dropped: %v", node.GetStatus().GetConditions())
	}
	if evs := w.eventsWith(EventsNamespace, ReasonNodeUnreachable); len(evs) != 1 {
		t.Errorf("got %d %s events, want 1", len(evs), ReasonNodeUnreachable)
	}
	want := func(when string, states map[string]string) {
		t.Helper()
		for pod, s := range states {
			if got := w.podState(pod); got != s {
				t.Errorf("%s: pod %s is %s, want %s", when, pod, got, s)
			}
		}
	}
	w.step(2500*time.Millisecond, n2) // 2.5 s after the taint: default toleration 3 s not over
	want("before the default toleration ran out", map[string]string{"plain": "present", "db-0": "present"})
	w.step(500*time.Millisecond, n2) // 3 s after the taint
	want("after the default toleration", map[string]string{
		"plain": "gone", "patient": "present", "forever": "present", "daemon": "present",
		"db-0": "terminating", "elsewhere": "present",
	})
	if f, e := testutil.ToFloat64(w.chk.m.evictions.WithLabelValues("ForceDelete")), testutil.ToFloat64(w.chk.m.evictions.WithLabelValues("Evict")); f != 1 || e != 1 {
		t.Errorf("evictions metric: ForceDelete %v, Evict %v; want 1 and 1", f, e)
	}
	if evs := w.eventsWith("default", ReasonEvicted); len(evs) != 2 {
		t.Errorf("got %d eviction events, want 2 (plain, db-0)", len(evs))
	}
	w.step(7*time.Second, n2) // 10 s after the taint
	want("after the pod's own 10 s toleration", map[string]string{"patient": "gone", "db-0": "terminating", "forever": "present"})
	for i := 0; i < 5; i++ {
		w.step(10*time.Second, n2)
	}
	want("long after", map[string]string{"db-0": "terminating", "forever": "present", "daemon": "present"})

	// The operator declares the node out of service: the StatefulSet pod
	// may now be replaced, and pods not tolerating that taint go too.
	w.setTaint("n1", &corev1.Taint{Key: taints.OutOfService, Value: "nodeshutdown", Effect: taints.NoExecute}, true)
	w.step(100*time.Millisecond, n2)
	want("after out-of-service", map[string]string{"db-0": "gone", "forever": "gone", "daemon": "gone", "elsewhere": "present"})

	// The node-agent comes back: Ready again, the unreachable taint is
	// removed and the operator's own taint stays until the operator lifts it.
	w.restartAgent(n1)
	w.step(time.Second, n1, n2)
	node = w.node("n1")
	if got := nodestatus.Ready(node); got.GetStatus() != nodestatus.StatusTrue {
		t.Fatalf("n1 Ready = %v after the agent came back, want True", got)
	}
	if keys := taintKeys(node); keys[unreachableNoExecute] || !keys[outOfServiceTaint] {
		t.Errorf("n1 taints = %v after recovery, want the out-of-service taint only", keys)
	}
	if evs := w.eventsWith(EventsNamespace, ReasonNodeReady); len(evs) < 2 {
		t.Errorf("got %d %s events, want one per node at start and one for the recovery", len(evs), ReasonNodeReady)
	}
}

// When more than 55% of nodes go silent at once, they are marked and
// tainted but nothing is evicted, and an Event says why; when enough come
// back, evictions resume.
func TestMassFailureStopsEvictions(t *testing.T) {
	w := newWorld(t, testOptions())
	live := startHealthy(t, w, "n1", "n2", "n3", "n4", "n5")
	for i, a := range live {
		w.podOn(a.name, "web-"+itoa(i+1), "ReplicaSet")
	}
	w.settle()
	for _, a := range live[:3] { // 60%
		a.stop()
	}
	survivors := live[3:]
	for i := 0; i < 10; i++ {
		w.step(time.Second, survivors...)
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		node := w.node(n)
		if nodestatus.ReadyStatus(node) != nodestatus.StatusUnknown || !taintKeys(node)[unreachableNoExecute] {
			t.Errorf("node %s: Ready=%s taints=%v, want Unknown and tainted", n, nodestatus.ReadyStatus(node), taintKeys(node))
		}
	}
	for i := 1; i <= 5; i++ {
		if s := w.podState("web-" + itoa(i)); s != "present" {
			t.Errorf("pod web-%d is %s while 60%% of nodes are silent, want present", i, s)
		}
	}
	if got := testutil.ToFloat64(w.chk.m.braked); got != 1 {
		t.Errorf("evictions_stopped metric = %v while braked, want 1", got)
	}
	if got := testutil.ToFloat64(w.chk.m.nodes.WithLabelValues(nodestatus.StatusUnknown)); got != 3 {
		t.Errorf("nodes{ready=Unknown} = %v, want 3", got)
	}
	evs := w.eventsWith(DefaultLockNamespace, ReasonEvictionsStopped)
	if len(evs) != 1 {
		t.Fatalf("got %d %s events, want 1", len(evs), ReasonEvictionsStopped)
	}
	t.Logf("event: %s", evs[0].GetMessage())

	// n1 comes back: 2 of 5 unhealthy is under the threshold.
	w.restartAgent(live[0])
	survivors = append(survivors, live[0])
	w.step(time.Second, survivors...)
	w.step(100*time.Millisecond, survivors...)
	if got := w.eventsWith(DefaultLockNamespace, ReasonEvictionsResumed); len(got) != 1 {
		t.Errorf("got %d %s events, want 1", len(got), ReasonEvictionsResumed)
	}
	for i, s := range map[int]string{1: "present", 2: "gone", 3: "gone", 4: "present", 5: "present"} {
		if got := w.podState("web-" + itoa(i)); got != s {
			t.Errorf("after evictions resumed pod web-%d is %s, want %s", i, got, s)
		}
	}
}

// A Node deleted by its operator is gone for good: once the grace period has
// passed, its pods, StatefulSet pods included, are removed so they can be
// replaced.
func TestPodsOfDeletedNodeAreRemoved(t *testing.T) {
	w := newWorld(t, testOptions())
	live := startHealthy(t, w, "n1", "n2")
	w.podOn("n2", "db-0", "StatefulSet")
	w.podOn("n1", "web-1", "ReplicaSet")
	w.settle()
	if _, err := w.nodes.Delete(w.ctx, "", "n2", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	w.settle()
	w.step(time.Second, live[0])
	w.step(3*time.Second, live[0])
	if s := w.podState("db-0"); s != "present" {
		t.Fatalf("pod of the deleted node is %s within the grace period, want present", s)
	}
	w.step(time.Second, live[0])
	if s := w.podState("db-0"); s != "gone" {
		t.Errorf("pod of the deleted node is %s after the grace period, want gone", s)
	}
	if s := w.podState("web-1"); s != "present" {
		t.Errorf("pod of the live node is %s, want present", s)
	}
	if _, ok := w.prober.Result("n2"); ok {
		t.Error("the deleted node is still probed")
	}
}
