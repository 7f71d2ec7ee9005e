package deployment_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/services/controller/internal/controller"
	"bosun.dev/services/controller/internal/deployment"
	"bosun.dev/services/controller/internal/replicaset"
	"bosun.dev/services/controller/internal/testcluster"
)

func newDeployment(name string, replicas int32, image string) *appsv1.Deployment {
	return &appsv1.Deployment{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: &appsv1.DeploymentSpec{
			Replicas: proto.Int32(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: &corev1.PodTemplateSpec{
				Metadata: &metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:     &corev1.PodSpec{Containers: []*corev1.Container{{Name: "c", Image: image}}},
			},
		},
	}
}

// start runs an apiserver with nodes and the ReplicaSet and Deployment
// controllers. Pods whose image starts with "broken" never become ready.
func start(t *testing.T) *testcluster.Cluster {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3})
	c.Outcome = func(p *corev1.Pod) testcluster.Outcome {
		return testcluster.Outcome{Phase: "Running", Ready: !strings.HasPrefix(p.GetSpec().GetContainers()[0].GetImage(), "broken")}
	}
	cc := c.Context(nil)
	testcluster.Run(t, cc, replicaset.New(cc), deployment.New(cc))
	return c
}

func deployAPI(c *testcluster.Cluster) *client.Resource[*appsv1.Deployment] {
	return client.For[*appsv1.Deployment](c.Conn)
}

func update(t *testing.T, c *testcluster.Cluster, name string, change func(*appsv1.Deployment)) {
	t.Helper()
	err := client.RetryOnConflict(context.Background(), client.DefaultRetry, func() error {
		d, err := deployAPI(c).Get(context.Background(), "default", name)
		if err != nil {
			return err
		}
		change(d)
		_, err = deployAPI(c).Update(context.Background(), d)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// rolledOut waits until the Deployment reports every replica updated and
// available at its latest generation, with no old pods left, and returns it.
func rolledOut(t *testing.T, c *testcluster.Cluster, name, image string) *appsv1.Deployment {
	t.Helper()
	var d *appsv1.Deployment
	testcluster.Eventually(t, 60*time.Second, func() error {
		var err error
		d, err = deployAPI(c).Get(context.Background(), "default", name)
		if err != nil {
			return err
		}
		st, want := d.GetStatus(), d.GetSpec().GetReplicas()
		if st.GetObservedGeneration() != d.Metadata.Generation || st.GetUpdatedReplicas() != want || st.GetReplicas() != want || st.GetAvailableReplicas() != want {
			return fmt.Errorf("status %v, want %d replicas updated and available", st, want)
		}
		pods := c.LivePods("default", "app="+name)
		if len(pods) != int(want) {
			return fmt.Errorf("%d live pods, want %d", len(pods), want)
		}
		for _, p := range pods {
			if img := p.Spec.Containers[0].Image; img != image {
				return fmt.Errorf("pod %s runs %s, want %s", p.Metadata.Name, img, image)
			}
		}
		return nil
	})
	return d
}

func replicaSets(t *testing.T, c *testcluster.Cluster, app string) []*appsv1.ReplicaSet {
	t.Helper()
	sets, _, err := client.For[*appsv1.ReplicaSet](c.Conn).ListAll(context.Background(), client.ListOptions{Namespace: "default", LabelSelector: "app=" + app})
	if err != nil {
		t.Fatal(err)
	}
	return sets
}

// A rolling update of 10 replicas with maxSurge 3 and maxUnavailable 2 never
// has more than 13 live pods nor fewer than 8 ready ones at any state the
// watch shows; rolling back restores the first template under a new
// revision, reusing its ReplicaSet.
func TestRollingUpdateStaysWithinBoundsAndRollsBack(t *testing.T) {
	c := start(t)
	d := newDeployment("web", 10, "web:1")
	d.Spec.Strategy = &appsv1.DeploymentStrategy{Type: "RollingUpdate", RollingUpdate: &appsv1.RollingUpdateDeployment{
		MaxSurge: &metav1.IntOrString{IntVal: 3}, MaxUnavailable: &metav1.IntOrString{IntVal: 2}}}
	if _, err := deployAPI(c).Create(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	rolledOut(t, c, "web", "web:1")

	var armed atomic.Bool
	mon := c.Watch(t, "default", "app=web", func(live []*corev1.Pod) string {
		if !armed.Load() {
			return ""
		}
		ready := 0
		for _, p := range live {
			if controller.IsPodReady(p) {
				ready++
			}
		}
		if len(live) > 13 || ready < 8 {
			return fmt.Sprintf("%d live pods, %d ready", len(live), ready)
		}
		return ""
	})
	armed.Store(true)
	for _, image := range []string{"web:2", "web:1"} {
		update(t, c, "web", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = image })
		rolledOut(t, c, "web", image)
	}
	if v := mon.Violations(); len(v) > 0 {
		t.Fatalf("bounds broken during the rollout (%d states observed): %v", mon.States(), v)
	}
	if mon.States() < 20 {
		t.Fatalf("observed only %d states; the check saw too little", mon.States())
	}
	sets := replicaSets(t, c, "web")
	if len(sets) != 2 {
		t.Fatalf("%d replicasets after rolling back, want the two revisions' own", len(sets))
	}
	d, _ = deployAPI(c).Get(context.Background(), "default", "web")
	if rev := d.Metadata.Annotations[deployment.RevisionAnnotation]; rev != "3" {
		t.Fatalf("deployment revision %q after web:1, web:2, web:1; want 3", rev)
	}
	for _, rs := range sets {
		img := rs.Spec.Template.Spec.Containers[0].Image
		rev := rs.Metadata.Annotations[deployment.RevisionAnnotation]
		if (img == "web:1") != (rev == "3") {
			t.Fatalf("replicaset %s runs %s at revision %s", rs.Metadata.Name, img, rev)
		}
	}
}

// Recreate never runs old and new pods together.
func TestRecreate(t *testing.T) {
	c := start(t)
	d := newDeployment("batch", 4, "batch:1")
	d.Spec.Strategy = &appsv1.DeploymentStrategy{Type: "Recreate"}
	if _, err := deployAPI(c).Create(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	rolledOut(t, c, "batch", "batch:1")
	mon := c.Watch(t, "default", "app=batch", func(live []*corev1.Pod) string {
		images := map[string]bool{}
		for _, p := range live {
			images[p.Spec.Containers[0].Image] = true
		}
		if len(images) > 1 {
			return fmt.Sprintf("old and new pods together: %v", images)
		}
		return ""
	})
	update(t, c, "batch", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "batch:2" })
	rolledOut(t, c, "batch", "batch:2")
	if v := mon.Violations(); len(v) > 0 {
		t.Fatal(v)
	}
}

// A rollout whose pods never become ready is reported as
// ProgressDeadlineExceeded once the deadline passes; the old pods keep
// serving.
func TestProgressDeadlineExceeded(t *testing.T) {
	c := start(t)
	d := newDeployment("stuck", 3, "stuck:1")
	d.Spec.ProgressDeadlineSeconds = proto.Int32(2)
	if _, err := deployAPI(c).Create(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	rolledOut(t, c, "stuck", "stuck:1")
	update(t, c, "stuck", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "broken:2" })
	testcluster.Eventually(t, 30*time.Second, func() error {
		d, err := deployAPI(c).Get(context.Background(), "default", "stuck")
		if err != nil {
			return err
		}
		cond := deployment.Condition(d.Status, deployment.ConditionProgressing)
		if cond.GetStatus() != "False" || cond.GetReason() != deployment.ReasonProgressDeadlineExceeded {
			return fmt.Errorf("progressing condition %v", cond)
		}
		return nil
	})
	ready := 0
	for _, p := range c.LivePods("default", "app=stuck") {
		if controller.IsPodReady(p) {
			ready++
		}
	}
	if ready < 2 {
		t.Fatalf("%d ready pods during a stuck rollout of 3 with maxUnavailable 25%%", ready)
	}
}

// A paused Deployment does not roll out a new template, but is scaled;
// resumed, it rolls out. Old ReplicaSets beyond revisionHistoryLimit go.
func TestPauseResumeAndHistoryLimit(t *testing.T) {
	c := start(t)
	d := newDeployment("paused", 2, "p:1")
	d.Spec.RevisionHistoryLimit = proto.Int32(1)
	if _, err := deployAPI(c).Create(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	rolledOut(t, c, "paused", "p:1")
	update(t, c, "paused", func(d *appsv1.Deployment) {
		d.Spec.Paused = true
		d.Spec.Template.Spec.Containers[0].Image = "p:2"
	})
	update(t, c, "paused", func(d *appsv1.Deployment) { d.Spec.Replicas = proto.Int32(4) })
	testcluster.Eventually(t, 30*time.Second, func() error {
		pods := c.LivePods("default", "app=paused")
		if len(pods) != 4 {
			return fmt.Errorf("%d pods, want 4", len(pods))
		}
		d, err := deployAPI(c).Get(context.Background(), "default", "paused")
		if err != nil {
			return err
		}
		if cond := deployment.Condition(d.Status, deployment.ConditionProgressing); cond.GetReason() != deployment.ReasonPaused {
			return fmt.Errorf("progressing condition %v, want reason %s", cond, deployment.ReasonPaused)
		}
		return nil
	})
	for _, p := range c.LivePods("default", "app=paused") {
		if p.Spec.Containers[0].Image != "p:1" {
			t.Fatalf("a paused deployment rolled out %s", p.Spec.Containers[0].Image)
		}
	}
	if n := len(replicaSets(t, c, "paused")); n != 1 {
		t.Fatalf("%d replicasets while paused, want 1", n)
	}
	update(t, c, "paused", func(d *appsv1.Deployment) { d.Spec.Paused = false })
	rolledOut(t, c, "paused", "p:2")
	update(t, c, "paused", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "p:3" })
	rolledOut(t, c, "paused", "p:3")
	testcluster.Eventually(t, 30*time.Second, func() error {
		if n := len(replicaSets(t, c, "paused")); n != 2 {
			return fmt.Errorf("%d replicasets with revisionHistoryLimit 1, want 2", n)
		}
		return nil
	})
}

// Bad Deployments are refused by the API with the field named, and the
// controller creates nothing for them.
func TestBadDeploymentsAreRefused(t *testing.T) {
	c := start(t)
	for _, tc := range []struct {
		name  string
		field string
		bad   func(*appsv1.Deployment)
	}{
		{"selector", "spec.template.metadata.labels", func(d *appsv1.Deployment) {
			d.Spec.Selector.MatchLabels = map[string]string{"app": "other"}
		}},
		{"negative", "spec.replicas", func(d *appsv1.Deployment) { d.Spec.Replicas = proto.Int32(-1) }},
		{"zeros", "spec.strategy.rollingUpdate.maxUnavailable", func(d *appsv1.Deployment) {
			d.Spec.Strategy = &appsv1.DeploymentStrategy{Type: "RollingUpdate", RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxSurge: &metav1.IntOrString{IntVal: 0}, MaxUnavailable: &metav1.IntOrString{StrVal: "0%"}}}
		}},
	} {
		d := newDeployment("bad-"+tc.name, 2, "x:1")
		tc.bad(d)
		_, err := deployAPI(c).Create(context.Background(), d)
		if !apierrors.IsInvalid(err) {
			t.Fatalf("%s: create returned %v, want Invalid", tc.name, err)
		}
		named := false
		for _, v := range apierrors.FieldViolations(err) {
			named = named || v.Field == tc.field
		}
		if !named {
			t.Fatalf("%s: violations %v do not name %s", tc.name, apierrors.FieldViolations(err), tc.field)
		}
	}
	// A good one afterwards proves the controller is running; nothing else
	// exists.
	if _, err := deployAPI(c).Create(context.Background(), newDeployment("good", 1, "x:1")); err != nil {
		t.Fatal(err)
	}
	rolledOut(t, c, "good", "x:1")
	all, _, err := client.For[*appsv1.ReplicaSet](c.Conn).ListAll(context.Background(), client.ListOptions{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || len(c.Pods("default", "")) != 1 {
		t.Fatalf("%d replicasets and %d pods; want only the good deployment's", len(all), len(c.Pods("default", "")))
	}
}

// Scaling a Deployment in the middle of a rollout resizes the old and new
// ReplicaSets in proportion instead of giving everything to one of them.
func TestProportionalScalingMidRollout(t *testing.T) {
	c := start(t)
	d := newDeployment("prop", 10, "prop:1")
	d.Spec.Strategy = &appsv1.DeploymentStrategy{Type: "RollingUpdate", RollingUpdate: &appsv1.RollingUpdateDeployment{
		MaxSurge: &metav1.IntOrString{IntVal: 3}, MaxUnavailable: &metav1.IntOrString{IntVal: 2}}}
	if _, err := deployAPI(c).Create(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	rolledOut(t, c, "prop", "prop:1")
	// The new pods never become ready: the rollout stalls at old 8, new 5.
	update(t, c, "prop", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "broken:2" })
	sizes := func(wantOld, wantNew int32) {
		t.Helper()
		testcluster.Eventually(t, 30*time.Second, func() error {
			var old, cur int32
			for _, rs := range replicaSets(t, c, "prop") {
				if rs.Spec.Template.Spec.Containers[0].Image == "prop:1" {
					old = rs.Spec.GetReplicas()
				} else {
					cur = rs.Spec.GetReplicas()
				}
			}
			if old != wantOld || cur != wantNew {
				return fmt.Errorf("old %d new %d, want %d and %d", old, cur, wantOld, wantNew)
			}
			return nil
		})
	}
	sizes(8, 5)
	update(t, c, "prop", func(d *appsv1.Deployment) { d.Spec.Replicas = proto.Int32(20) })
	// 23 pods allowed (20 + maxSurge 3), shared 8:5.
	sizes(15, 8)
}

// A rolling update of 10 replicas keeps its bounds when the controllers'
// watches deliver every event 200 ms late, and when the controllers are
// killed in the middle of the rollout and replaced by fresh ones that know
// nothing of what the first ones did.
func TestRollingUpdateWithLaggingWatchAndRestart(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3})
	lagging := c.DialLagging(200 * time.Millisecond)
	cc := c.Context(lagging)
	stop := testcluster.Run(t, cc, replicaset.New(cc), deployment.New(cc))
	d := newDeployment("lag", 10, "lag:1")
	d.Spec.Strategy = &appsv1.DeploymentStrategy{Type: "RollingUpdate", RollingUpdate: &appsv1.RollingUpdateDeployment{
		MaxSurge: &metav1.IntOrString{IntVal: 3}, MaxUnavailable: &metav1.IntOrString{IntVal: 2}}}
	if _, err := deployAPI(c).Create(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	rolledOut(t, c, "lag", "lag:1")
	var armed atomic.Bool
	mon := c.Watch(t, "default", "app=lag", func(live []*corev1.Pod) string {
		if !armed.Load() {
			return ""
		}
		ready := 0
		for _, p := range live {
			if controller.IsPodReady(p) {
				ready++
			}
		}
		if len(live) > 13 || ready < 8 {
			return fmt.Sprintf("%d live pods, %d ready", len(live), ready)
		}
		return ""
	})
	armed.Store(true)
	update(t, c, "lag", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "lag:2" })
	testcluster.Eventually(t, 30*time.Second, func() error {
		n := 0
		for _, p := range c.LivePods("default", "app=lag") {
			if p.Spec.Containers[0].Image == "lag:2" {
				n++
			}
		}
		if n == 0 {
			return fmt.Errorf("rollout not started")
		}
		return nil
	})
	stop()
	cc = c.Context(c.DialLagging(200 * time.Millisecond))
	testcluster.Run(t, cc, replicaset.New(cc), deployment.New(cc))
	rolledOut(t, c, "lag", "lag:2")
	if v := mon.Violations(); len(v) > 0 {
		t.Fatalf("bounds broken (%d states observed): %v", mon.States(), v)
	}
	if n := len(replicaSets(t, c, "lag")); n != 2 {
		t.Fatalf("%d replicasets after one rollout, want 2", n)
	}
}
