package replicaset_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/services/controller/internal/controller"
	"bosun.dev/services/controller/internal/replicaset"
	"bosun.dev/services/controller/internal/testcluster"
)

func newRS(name string, replicas int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: &appsv1.ReplicaSetSpec{
			Replicas: proto.Int32(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: &corev1.PodTemplateSpec{
				Metadata: &metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:     &corev1.PodSpec{Containers: []*corev1.Container{{Name: "c", Image: "img:1"}}},
			},
		},
	}
}

// exactly waits until the live pods of app are n, each controlled by a
// ReplicaSet, and the ReplicaSet reports them all ready.
func exactly(t *testing.T, c *testcluster.Cluster, app string, n int) {
	t.Helper()
	testcluster.Eventually(t, 30*time.Second, func() error {
		pods := c.LivePods("default", "app="+app)
		if len(pods) != n {
			return fmt.Errorf("%d live pods, want %d", len(pods), n)
		}
		for _, p := range pods {
			if controller.ControllerRef(p.Metadata) == nil {
				return fmt.Errorf("pod %s has no controller reference", p.Metadata.Name)
			}
		}
		rs, err := client.For[*appsv1.ReplicaSet](c.Conn).Get(context.Background(), "default", app)
		if err != nil {
			return err
		}
		if st := rs.GetStatus(); st.GetReplicas() != int32(n) || st.GetReadyReplicas() != int32(n) || st.GetObservedGeneration() != rs.Metadata.Generation {
			return fmt.Errorf("status %v, want %d replicas ready at generation %d", st, n, rs.Metadata.Generation)
		}
		return nil
	})
}

func scale(t *testing.T, c *testcluster.Cluster, name string, n int32) {
	t.Helper()
	api := client.For[*appsv1.ReplicaSet](c.Conn)
	err := client.RetryOnConflict(context.Background(), client.DefaultRetry, func() error {
		rs, err := api.Get(context.Background(), "default", name)
		if err != nil {
			return err
		}
		rs.Spec.Replicas = proto.Int32(n)
		_, err = api.Update(context.Background(), rs)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A ReplicaSet converges from any starting state: created, scaled up and
// down, with pods deleted behind its back, and with an orphan pod to adopt.
// At no observed state are there more live pods than the largest replicas
// asked for.
func TestReplicaSetConverges(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3})
	ctx := context.Background()
	orphan := &corev1.Pod{
		Metadata: &metav1.ObjectMeta{Name: "orphan", Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec:     &corev1.PodSpec{Containers: []*corev1.Container{{Name: "c", Image: "img:1"}}},
	}
	if _, err := client.For[*corev1.Pod](c.Conn).Create(ctx, orphan); err != nil {
		t.Fatal(err)
	}
	mon := c.Watch(t, "default", "app=web", nil)
	cc := c.Context(nil)
	testcluster.Run(t, cc, replicaset.New(cc))
	if _, err := client.For[*appsv1.ReplicaSet](c.Conn).Create(ctx, newRS("web", 5)); err != nil {
		t.Fatal(err)
	}
	exactly(t, c, "web", 5)
	adopted, err := client.For[*corev1.Pod](c.Conn).Get(ctx, "default", "orphan")
	if err != nil {
		t.Fatalf("the orphan was replaced instead of adopted: %v", err)
	}
	if ref := controller.ControllerRef(adopted.Metadata); ref == nil || ref.Name != "web" {
		t.Fatalf("orphan not adopted: owner references %v", adopted.Metadata.OwnerReferences)
	}
	if got := mon.MaxLive(); got > 5 {
		t.Fatalf("saw %d live pods at once while creating 5", got)
	}

	scale(t, c, "web", 2)
	exactly(t, c, "web", 2)
	scale(t, c, "web", 7)
	exactly(t, c, "web", 7)

	// Delete three pods behind the controller's back.
	for _, p := range c.LivePods("default", "app=web")[:3] {
		if _, err := client.For[*corev1.Pod](c.Conn).Delete(ctx, "default", p.Metadata.Name, client.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	exactly(t, c, "web", 7)
	if got := mon.MaxLive(); got > 7 {
		t.Fatalf("saw %d live pods at once, never asked for more than 7", got)
	}
}

// With a watch that delivers every event 300 ms late, expectations keep the
// controller from creating pods it has already created: the number of live
// pods never exceeds replicas.
func TestReplicaSetSlowWatchCreatesNoExtraPods(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 2})
	mon := c.Watch(t, "default", "app=slow", nil)
	cc := c.Context(c.DialLagging(300 * time.Millisecond))
	testcluster.Run(t, cc, replicaset.New(cc))
	if _, err := client.For[*appsv1.ReplicaSet](c.Conn).Create(context.Background(), newRS("slow", 10)); err != nil {
		t.Fatal(err)
	}
	exactly(t, c, "slow", 10)
	scale(t, c, "slow", 4)
	exactly(t, c, "slow", 4)
	if got := mon.MaxLive(); got > 10 {
		t.Fatalf("saw %d live pods at once with replicas 10", got)
	}
}

// A controller stopped in the middle of creating pods and replaced by a new
// one (fresh caches, no memory) ends with exactly replicas pods.
func TestReplicaSetControllerRestartedMidReconcile(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 2})
	mon := c.Watch(t, "default", "app=restart", nil)
	cc := c.Context(nil)
	stop := testcluster.Run(t, cc, replicaset.New(cc))
	if _, err := client.For[*appsv1.ReplicaSet](c.Conn).Create(context.Background(), newRS("restart", 40)); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, func() error {
		if n := len(c.Pods("default", "app=restart")); n == 0 {
			return fmt.Errorf("no pods yet")
		}
		return nil
	})
	stop()
	if n := len(c.LivePods("default", "app=restart")); n >= 40 {
		t.Logf("the first controller finished before it was stopped (%d pods)", n)
	}
	cc2 := c.Context(nil)
	testcluster.Run(t, cc2, replicaset.New(cc2))
	exactly(t, c, "restart", 40)
	if got := mon.MaxLive(); got > 40 {
		t.Fatalf("saw %d live pods at once with replicas 40", got)
	}
}

// With minReadySeconds, ready pods count as available only once they have
// been ready that long; the controller looks again by itself when they are
// due, without any new event.
func TestReplicaSetMinReadySeconds(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 2})
	cc := c.Context(nil)
	testcluster.Run(t, cc, replicaset.New(cc))
	rs := newRS("slowready", 3)
	rs.Spec.MinReadySeconds = 2
	if _, err := client.For[*appsv1.ReplicaSet](c.Conn).Create(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	var readyAt time.Time
	testcluster.Eventually(t, 30*time.Second, func() error {
		got, err := client.For[*appsv1.ReplicaSet](c.Conn).Get(context.Background(), "default", "slowready")
		if err != nil {
			return err
		}
		if got.GetStatus().GetReadyReplicas() != 3 {
			return fmt.Errorf("status %v", got.GetStatus())
		}
		if got.GetStatus().GetAvailableReplicas() == 3 {
			// Only a failure if some pod became ready less than 2 s ago.
			for _, p := range c.LivePods("default", "app=slowready") {
				for _, cond := range p.Status.Conditions {
					if cond.Type == "Ready" && time.Since(cond.LastTransitionTime.AsTime()) < 1900*time.Millisecond {
						t.Fatalf("pod %s available %v after becoming ready, minReadySeconds 2", p.Metadata.Name, time.Since(cond.LastTransitionTime.AsTime()))
					}
				}
			}
		}
		readyAt = time.Now()
		return nil
	})
	testcluster.Eventually(t, 30*time.Second, func() error {
		got, err := client.For[*appsv1.ReplicaSet](c.Conn).Get(context.Background(), "default", "slowready")
		if err != nil {
			return err
		}
		if got.GetStatus().GetAvailableReplicas() != 3 {
			return fmt.Errorf("status %v", got.GetStatus())
		}
		return nil
	})
	t.Logf("available %v after all were ready (minReadySeconds 2; readiness times are whole seconds)", time.Since(readyAt))
}
