package multinode

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	batchv1 "bosun.dev/gen/bosun/batch/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/tests/conformance/harness"
)

// workloadBroken bounds the waits of the workload scenarios: a step not
// done after this long is broken, not slow.
const workloadBroken = 90 * time.Second

// removeWorkload deletes whatever workload and Service are named name
// (foreground: the pods first; a DaemonSet or Job in the background, see
// checkForegroundDeletion), waits until the pods labelled
// app=name are gone, and, when the test passed, checks that the
// node-agents removed their containers, network namespaces, IPAM leases
// and masquerade rules. Deleting what is already gone is fine: it runs
// again as a cleanup.
func removeWorkload(t *testing.T, c *Cluster, name string) {
	removeWorkloadWith(t, c, name, metav1.DeletePropagation_DELETE_PROPAGATION_BACKGROUND)
}

// removeOnce registers removeWorkload of name as a cleanup and returns it
// to be called earlier; it runs only once.
func removeOnce(t *testing.T, c *Cluster, name string) func() {
	var once sync.Once
	remove := func() { once.Do(func() { removeWorkload(t, c, name) }) }
	t.Cleanup(remove)
	return remove
}

// removeWorkloadWith is removeWorkload deleting a DaemonSet or a Job
// with propagation policy.
func removeWorkloadWith(t *testing.T, c *Cluster, name string, policy metav1.DeletePropagation) {
	deleteWorkload(t, c, name, policy)
	awaitWorkloadsGone(t, c, name)
}

// deleteWorkload deletes whatever workload and Service are named name,
// DaemonSets and Jobs with propagation policy.
func deleteWorkload(t *testing.T, c *Cluster, name string, policy metav1.DeletePropagation) {
	ctx := context.Background()
	fg := client.DeleteOptions{PropagationPolicy: metav1.DeletePropagation_DELETE_PROPAGATION_FOREGROUND}
	bg := client.DeleteOptions{PropagationPolicy: policy}
	check := func(kind string, err error) {
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting %s %s: %v", kind, name, err)
		}
	}
	_, err := client.For[*appsv1.Deployment](c.Conn).Delete(ctx, "default", name, fg)
	check("Deployment", err)
	_, err = client.For[*appsv1.DaemonSet](c.Conn).Delete(ctx, "default", name, bg)
	check("DaemonSet", err)
	_, err = client.For[*appsv1.StatefulSet](c.Conn).Delete(ctx, "default", name, fg)
	check("StatefulSet", err)
	_, err = client.For[*batchv1.Job](c.Conn).Delete(ctx, "default", name, bg)
	check("Job", err)
	_, err = client.For[*corev1.Service](c.Conn).Delete(ctx, "default", name, client.DeleteOptions{})
	check("Service", err)
}

// awaitWorkloadsGone waits until the pods of every named workload are gone
// and then until the nodes hold none of their containers, network
// namespaces, IPAM leases or masquerade rules (the nodes run nothing else
// then).
func awaitWorkloadsGone(t *testing.T, c *Cluster, names ...string) {
	ctx := context.Background()
	for _, name := range names {
		deadline := time.Now().Add(60 * time.Second)
		for {
			pods, err := podsOf(ctx, c, name)
			if err == nil && len(pods) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("pods of %s remain 60 s after its deletion: %s (%v)", name, describePods(pods), err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if t.Failed() {
		return
	}
	c.waitNodesClean(t, "the pods of "+strings.Join(names, ", ")+" were deleted")
}

// podEvent is one event of a pod watch, as it arrived.
type podEvent struct {
	at   time.Time
	typ  client.EventType
	pod  *corev1.Pod
	name string
}

// podWatch records, in order and as they arrive, the events of the pods
// labelled app=APP.
type podWatch struct {
	mu     sync.Mutex
	events []podEvent
	err    error
	w      *client.Watcher[*corev1.Pod]
	done   chan struct{}
}

func watchPods(t *testing.T, c *Cluster, app string) *podWatch {
	t.Helper()
	ctx := context.Background()
	res := client.For[*corev1.Pod](c.Conn)
	list, err := res.List(ctx, client.ListOptions{Namespace: "default", LabelSelector: "app=" + app})
	if err != nil {
		t.Fatal(err)
	}
	w, err := res.Watch(ctx, client.WatchOptions{Namespace: "default", LabelSelector: "app=" + app,
		ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	pw := &podWatch{w: w, done: make(chan struct{})}
	go func() {
		defer close(pw.done)
		for {
			ev, err := w.Next()
			if err != nil {
				pw.mu.Lock()
				pw.err = err
				pw.mu.Unlock()
				return
			}
			if ev.Type == client.Bookmark {
				continue
			}
			pw.mu.Lock()
			pw.events = append(pw.events, podEvent{at: time.Now(), typ: ev.Type, pod: ev.Object, name: ev.Object.GetMetadata().GetName()})
			pw.mu.Unlock()
		}
	}()
	t.Cleanup(pw.stop)
	return pw
}

func (pw *podWatch) stop() { pw.w.Stop(); <-pw.done }

// snapshot returns the events so far, failing the test if the watch ended.
func (pw *podWatch) snapshot(t *testing.T) []podEvent {
	t.Helper()
	pw.mu.Lock()
	defer pw.mu.Unlock()
	if pw.err != nil {
		t.Fatalf("the pod watch ended: %v", pw.err)
	}
	return append([]podEvent(nil), pw.events...)
}

func isRunningReady(p *corev1.Pod) bool {
	return p.GetStatus().GetPhase() == "Running" && !podReadySince(p).IsZero() && p.GetMetadata().GetDeletionTimestamp() == nil
}

// Three kinds of workloads on real nodes: a DaemonSet runs one pod on every
// node, and on a node added later; a Job runs its pods to completion, never
// more at once than its parallelism, and leaves them Succeeded; a
// StatefulSet creates its pods in ordinal order, each Running and Ready
// before the next, removes them in reverse order and brings back the same
// names.
func TestWorkloadsDaemonSetJobStatefulSet(t *testing.T) {
	c := Start(t, 2)
	rec := c.RecordWatches(t, KindPod, KindNode, KindJob, KindStatefulSet, KindDaemonSet)
	checkJob(t, c)
	checkStatefulSet(t, c)
	checkDaemonSet(t, c) // last: it adds a node
	t.Run("ForegroundDeletion", func(t *testing.T) { checkForegroundDeletion(t, c) })
	c.CheckFinalState(t)
	rec.Check(t)
}

// daemonSet is a DaemonSet of podapp's HTTP mode.
func daemonSet(c *Cluster, name string) *appsv1.DaemonSet {
	grace := int64(1)
	return &appsv1.DaemonSet{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: &appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: &corev1.PodTemplateSpec{
				Metadata: &metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: &corev1.PodSpec{TerminationGracePeriodSeconds: &grace,
					Containers: []*corev1.Container{{Name: "app", Image: c.Image, Args: []string{"serve", "8080"}}}},
			},
		},
	}
}

// checkForegroundDeletion deletes a DaemonSet and a running Job with
// foreground propagation: their pods go, then they do.
func checkForegroundDeletion(t *testing.T, c *Cluster) {
	ctx := context.Background()
	dsName, jobName := "dsfg-"+randomHex(3), "jobfg-"+randomHex(3)
	if _, err := client.For[*appsv1.DaemonSet](c.Conn).Create(ctx, daemonSet(c, dsName)); err != nil {
		t.Fatal(err)
	}
	removeOnce(t, c, dsName)
	parallelism := int32(2)
	if _, err := client.For[*batchv1.Job](c.Conn).Create(ctx, &batchv1.Job{
		Metadata: &metav1.ObjectMeta{Name: jobName, Namespace: "default"},
		Spec: &batchv1.JobSpec{Parallelism: &parallelism, Completions: &parallelism,
			Template: &corev1.PodTemplateSpec{
				Metadata: &metav1.ObjectMeta{Labels: map[string]string{"app": jobName}},
				Spec: &corev1.PodSpec{RestartPolicy: "Never",
					Containers: []*corev1.Container{{Name: "task", Image: c.Image, Args: []string{"run", "60"}}}},
			}},
	}); err != nil {
		t.Fatal(err)
	}
	removeOnce(t, c, jobName)
	for name, want := range map[string]int{dsName: len(c.Nodes), jobName: int(parallelism)} {
		harness.Eventually(t, workloadBroken, name+" Running", func() error {
			pods, err := podsOf(ctx, c, name)
			if err != nil {
				return err
			}
			running := 0
			for _, p := range pods {
				if p.GetStatus().GetPhase() == "Running" {
					running++
				}
			}
			if running != want {
				return fmt.Errorf("pods %s", describePods(pods))
			}
			return nil
		})
	}
	t0 := time.Now()
	// Both at once: the nodes are clean only when both are gone.
	deleteWorkload(t, c, dsName, metav1.DeletePropagation_DELETE_PROPAGATION_FOREGROUND)
	deleteWorkload(t, c, jobName, metav1.DeletePropagation_DELETE_PROPAGATION_FOREGROUND)
	awaitWorkloadsGone(t, c, dsName, jobName)
	harness.Eventually(t, 30*time.Second, "the DaemonSet and the Job gone after their pods", func() error {
		_, err := client.For[*appsv1.DaemonSet](c.Conn).Get(ctx, "default", dsName)
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("DaemonSet %s still there (%v)", dsName, err)
		}
		_, err = client.For[*batchv1.Job](c.Conn).Get(ctx, "default", jobName)
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("Job %s still there (%v)", jobName, err)
		}
		return nil
	})
	t.Logf("foreground deletion of a DaemonSet and a running Job done in %.2f s", time.Since(t0).Seconds())
}

func checkDaemonSet(t *testing.T, c *Cluster) {
	ctx := context.Background()
	name := "ds-" + randomHex(3)
	created := time.Now()
	if _, err := client.For[*appsv1.DaemonSet](c.Conn).Create(ctx, daemonSet(c, name)); err != nil {
		t.Fatal(err)
	}
	remove := removeOnce(t, c, name)

	// onEveryNode waits until each node runs exactly one of the pods and
	// the DaemonSet's status agrees.
	onEveryNode := func() {
		t.Helper()
		harness.Eventually(t, workloadBroken, fmt.Sprintf("DaemonSet %s Running on each of %d nodes", name, len(c.Nodes)), func() error {
			pods, err := podsOf(ctx, c, name)
			if err != nil {
				return err
			}
			per := map[string]int{}
			for _, p := range pods {
				if p.GetStatus().GetPhase() != "Running" || p.GetMetadata().GetDeletionTimestamp() != nil {
					return fmt.Errorf("pods %s", describePods(pods))
				}
				per[p.GetSpec().GetNodeName()]++
			}
			for _, nd := range c.Nodes {
				if per[nd.Name] != 1 {
					return fmt.Errorf("pods %s", describePods(pods))
				}
			}
			if len(pods) != len(c.Nodes) {
				return fmt.Errorf("%d pods on %d nodes: %s", len(pods), len(c.Nodes), describePods(pods))
			}
			ds, err := client.For[*appsv1.DaemonSet](c.Conn).Get(ctx, "default", name)
			if err != nil {
				return err
			}
			st, n := ds.GetStatus(), int32(len(c.Nodes))
			if st.GetDesiredNumberScheduled() != n || st.GetCurrentNumberScheduled() != n || st.GetNumberReady() != n || st.GetNumberMisscheduled() != 0 {
				return fmt.Errorf("status %v", st)
			}
			return nil
		})
	}
	onEveryNode()
	t.Logf("daemonset: one pod Running on each of %d nodes %.2f s after the DaemonSet was created", len(c.Nodes), time.Since(created).Seconds())

	added := time.Now()
	nd := c.AddNode(t, fmt.Sprintf("node-%d", len(c.Nodes)+1))
	c.WaitNode(t, nd.Name, 60*time.Second, "Ready", func(n *corev1.Node) error {
		if s := ReadyStatus(n); s != "True" {
			return fmt.Errorf("Ready=%q", s)
		}
		return nil
	})
	ready := time.Now()
	onEveryNode()
	t.Logf("daemonset: node %s Ready %.2f s after its agent started; its daemon pod Running %.2f s after that",
		nd.Name, ready.Sub(added).Seconds(), time.Since(ready).Seconds())
	// Removed now, while the added node's agent runs (its cleanup comes
	// before this one's).
	remove()
}

func checkJob(t *testing.T, c *Cluster) {
	ctx := context.Background()
	name := "job-" + randomHex(3)
	completions, parallelism, backoff := int32(4), int32(2), int32(0)
	created := time.Now()
	if _, err := client.For[*batchv1.Job](c.Conn).Create(ctx, &batchv1.Job{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: &batchv1.JobSpec{
			Completions: &completions, Parallelism: &parallelism, BackoffLimit: &backoff,
			Template: &corev1.PodTemplateSpec{
				Metadata: &metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: &corev1.PodSpec{RestartPolicy: "Never",
					Containers: []*corev1.Container{{Name: "task", Image: c.Image, Args: []string{"run", "1"}}}},
			},
		},
	}); err != nil {
		t.Fatal(err)
	}
	remove := removeOnce(t, c, name)

	var job *batchv1.Job
	harness.Eventually(t, workloadBroken, "Job "+name+" Complete", func() error {
		j, err := client.For[*batchv1.Job](c.Conn).Get(ctx, "default", name)
		if err != nil {
			return err
		}
		for _, cond := range j.GetStatus().GetConditions() {
			if cond.GetType() == "Failed" && cond.GetStatus() == "True" {
				pods, _ := podsOf(ctx, c, name)
				t.Fatalf("Job %s failed: %s: %s; pods %s", name, cond.GetReason(), cond.GetMessage(), describePods(pods))
			}
			if cond.GetType() == "Complete" && cond.GetStatus() == "True" {
				job = j
				return nil
			}
		}
		return fmt.Errorf("status %v", j.GetStatus())
	})
	took := time.Since(created)
	st := job.GetStatus()
	if st.GetSucceeded() != completions || st.GetFailed() != 0 || st.GetActive() != 0 {
		t.Errorf("Job status succeeded=%d failed=%d active=%d, want %d, 0, 0", st.GetSucceeded(), st.GetFailed(), st.GetActive(), completions)
	}
	pods, err := podsOf(ctx, c, name)
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != int(completions) {
		t.Errorf("%d pods after the Job completed, want %d: %s", len(pods), completions, describePods(pods))
	}
	// The containers' run times never overlap more than the parallelism.
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, p := range pods {
		if p.GetStatus().GetPhase() != "Succeeded" || p.GetMetadata().GetDeletionTimestamp() != nil {
			t.Errorf("pod %s is %s (deleting: %t) after the Job completed, want Succeeded and kept", p.GetMetadata().GetName(),
				p.GetStatus().GetPhase(), p.GetMetadata().GetDeletionTimestamp() != nil)
			continue
		}
		cs := p.GetStatus().GetContainerStatuses()
		if len(cs) != 1 || cs[0].GetState().GetTerminated() == nil {
			t.Errorf("pod %s: container statuses %v, want one terminated", p.GetMetadata().GetName(), cs)
			continue
		}
		term := cs[0].GetState().GetTerminated()
		if term.GetExitCode() != 0 {
			t.Errorf("pod %s exited %d", p.GetMetadata().GetName(), term.GetExitCode())
		}
		edges = append(edges, edge{term.GetStartedAt().AsTime(), 1}, edge{term.GetFinishedAt().AsTime(), -1})
	}
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at.Equal(edges[j].at) {
			return edges[i].delta < edges[j].delta
		}
		return edges[i].at.Before(edges[j].at)
	})
	running, most := 0, 0
	for _, e := range edges {
		running += e.delta
		most = max(most, running)
	}
	if most > int(parallelism) {
		t.Errorf("%d of the Job's containers ran at once, parallelism %d", most, parallelism)
	}
	t.Logf("job: %d completions (parallelism %d, 1 s tasks) Complete %.2f s after the Job was created; at most %d ran at once",
		completions, parallelism, took.Seconds(), most)
	remove()
}

func checkStatefulSet(t *testing.T, c *Cluster) {
	ctx := context.Background()
	name := "sts-" + randomHex(3)
	pw := watchPods(t, c, name)
	grace := int64(5)
	replicas := int32(3)
	sets := client.For[*appsv1.StatefulSet](c.Conn)
	created := time.Now()
	if _, err := sets.Create(ctx, &appsv1.StatefulSet{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: &appsv1.StatefulSetSpec{
			Replicas: &replicas, ServiceName: name, PodManagementPolicy: "OrderedReady",
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(c, name, "v1", grace, "0"),
		},
	}); err != nil {
		t.Fatal(err)
	}
	remove := removeOnce(t, c, name)

	podName := func(i int) string { return name + "-" + strconv.Itoa(i) }
	// settled waits until exactly pods name-0..n-1 exist, Running and
	// Ready, and returns their UIDs.
	settled := func(n int) map[string]string {
		t.Helper()
		uids := map[string]string{}
		harness.Eventually(t, workloadBroken, fmt.Sprintf("StatefulSet %s at %d Ready pods", name, n), func() error {
			pods, err := podsOf(ctx, c, name)
			if err != nil {
				return err
			}
			clear(uids)
			for _, p := range pods {
				if !isRunningReady(p) {
					return fmt.Errorf("pods %s", describePods(pods))
				}
				uids[p.GetMetadata().GetName()] = p.GetMetadata().GetUid()
			}
			for i := range n {
				if uids[podName(i)] == "" {
					return fmt.Errorf("pods %s", describePods(pods))
				}
			}
			if len(pods) != n {
				return fmt.Errorf("pods %s", describePods(pods))
			}
			ss, err := sets.Get(ctx, "default", name)
			if err != nil {
				return err
			}
			if st := ss.GetStatus(); st.GetReplicas() != int32(n) || st.GetReadyReplicas() != int32(n) {
				return fmt.Errorf("status %v", st)
			}
			return nil
		})
		return uids
	}
	// checkUpOrder: from event index from on, pod i (lo <= i < hi) is
	// added only after pod i-1 was seen Running and Ready; it returns how
	// long each pod took from its creation to Ready, as the watch saw them
	// (creation timestamps have whole seconds only).
	checkUpOrder := func(from, lo, hi int) []float64 {
		t.Helper()
		evs := pw.snapshot(t)[from:]
		readyAt := map[string]int{}
		addedAt := map[string]time.Time{}
		var durations []float64
		for i, ev := range evs {
			if ev.typ == client.Added {
				addedAt[ev.name] = ev.at
			}
			if _, ok := readyAt[ev.name]; !ok && ev.typ != client.Deleted && isRunningReady(ev.pod) {
				readyAt[ev.name] = i
				if a, ok := addedAt[ev.name]; ok {
					durations = append(durations, ev.at.Sub(a).Seconds())
				}
			}
		}
		for o := max(lo, 1); o < hi; o++ {
			added := -1
			for i, ev := range evs {
				if ev.name == podName(o) && ev.typ == client.Added {
					added = i
					break
				}
			}
			prev, ok := readyAt[podName(o-1)]
			if o-1 < lo {
				prev, ok = -1, true // already Ready before this step
			}
			if added < 0 || !ok || added < prev {
				t.Errorf("%s added (event %d) before %s was Running and Ready (event %d, seen %t)", podName(o), added, podName(o-1), prev, ok)
			}
		}
		return durations
	}
	// checkDownOrder: from event index from on, pods had-1 down to keep
	// are deleted in that order, each gone before the next one's deletion
	// starts.
	checkDownOrder := func(from, keep, had int) {
		t.Helper()
		evs := pw.snapshot(t)[from:]
		first := func(pod string, match func(podEvent) bool) int {
			for i, ev := range evs {
				if ev.name == pod && match(ev) {
					return i
				}
			}
			return -1
		}
		for o := had - 1; o > keep; o-- {
			gone := first(podName(o), func(ev podEvent) bool { return ev.typ == client.Deleted })
			next := first(podName(o-1), func(ev podEvent) bool {
				return ev.typ == client.Deleted || ev.pod.GetMetadata().GetDeletionTimestamp() != nil
			})
			if gone < 0 || next < 0 || next < gone {
				t.Errorf("%s began terminating (event %d) before %s was gone (event %d)", podName(o-1), next, podName(o), gone)
			}
		}
	}

	uids := settled(3)
	up := time.Since(created)
	durations := checkUpOrder(0, 0, 3)
	t.Logf("statefulset: 0 -> 3 in order in %.2f s; each pod from created to Running and Ready: %s", up.Seconds(), spread(durations))

	mark := len(pw.snapshot(t))
	t0 := time.Now()
	setReplicas := func(n int32) {
		t.Helper()
		err := client.RetryOnConflict(ctx, client.DefaultRetry, func() error {
			ss, err := sets.Get(ctx, "default", name)
			if err != nil {
				return err
			}
			ss.Spec.Replicas = &n
			_, err = sets.Update(ctx, ss)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	setReplicas(1)
	after := settled(1)
	// Wait for the DELETED events of both removed pods to arrive.
	harness.Eventually(t, 10*time.Second, "the watch showing the removed pods deleted", func() error {
		gone := map[string]bool{}
		for _, ev := range pw.snapshot(t)[mark:] {
			if ev.typ == client.Deleted {
				gone[ev.name] = true
			}
		}
		if !gone[podName(1)] || !gone[podName(2)] {
			return fmt.Errorf("deleted so far: %v", gone)
		}
		return nil
	})
	down := time.Since(t0)
	checkDownOrder(mark, 1, 3)
	if after[podName(0)] != uids[podName(0)] {
		t.Errorf("%s was replaced while scaling down (uid %s, was %s)", podName(0), after[podName(0)], uids[podName(0)])
	}
	t.Logf("statefulset: 3 -> 1 in reverse order in %.2f s (grace %d s)", down.Seconds(), grace)

	mark = len(pw.snapshot(t))
	t0 = time.Now()
	setReplicas(3)
	again := settled(3)
	checkUpOrder(mark, 1, 3)
	t.Logf("statefulset: 1 -> 3 in order in %.2f s", time.Since(t0).Seconds())
	for i := range 3 {
		n := podName(i)
		if changed := again[n] != uids[n]; changed != (i > 0) {
			t.Errorf("%s: uid %s, was %s: want a new pod of the same name only for the ordinals scaled away", n, again[n], uids[n])
		}
	}
	remove()
}
