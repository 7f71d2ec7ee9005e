package statefulset_test

import (
	"context"
	"fmt"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/services/controller/internal/controller"
	"bosun.dev/services/controller/internal/statefulset"
	"bosun.dev/services/controller/internal/testcluster"
)

func TestOrdinal(t *testing.T) {
	for pod, want := range map[string]int{"db-0": 0, "db-12": 12, "db-x": -1, "db-01": -1, "dbx-1": -1, "db--1": -1, "db-": -1} {
		if got := statefulset.Ordinal("db", pod); got != want {
			t.Errorf("Ordinal(db, %s) = %d, want %d", pod, got, want)
		}
	}
}

func newSet(name string, replicas int32, policy string) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: &appsv1.StatefulSetSpec{
			Replicas: proto.Int32(replicas), ServiceName: name, PodManagementPolicy: policy,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"sts": name}},
			Template: &corev1.PodTemplateSpec{
				Metadata: &metav1.ObjectMeta{Labels: map[string]string{"sts": name}},
				Spec:     &corev1.PodSpec{Containers: []*corev1.Container{{Name: "c", Image: name + ":1"}}},
			},
		},
	}
}

// Phases of TestOrderedReady, each with its own check.
const (
	phaseOrdered int32 = iota // scaling: live pods are a prefix, all but the last ready
	phaseAny                  // a pod deleted behind the controller's back
	phaseRolling              // rolling update of 3: at most one pod down at a time
)

// orderedCheck checks each observed state against the current phase.
func orderedCheck(name string, phase *atomic.Int32) func([]*corev1.Pod) string {
	return func(live []*corev1.Pod) string {
		switch phase.Load() {
		case phaseAny:
			return ""
		case phaseRolling:
			ready := 0
			for _, p := range live {
				if controller.IsPodReady(p) {
					ready++
				}
			}
			if ready < 2 {
				return fmt.Sprintf("%d of 3 pods ready during a rolling update", ready)
			}
			return ""
		}
		var ords []int
		ready := map[int]bool{}
		for _, p := range live {
			o := statefulset.Ordinal(name, p.Metadata.Name)
			ords = append(ords, o)
			ready[o] = controller.IsPodReady(p)
		}
		sort.Ints(ords)
		for i, o := range ords {
			if o != i {
				return fmt.Sprintf("live ordinals %v are not a prefix", ords)
			}
			if i < len(ords)-1 && !ready[o] {
				return fmt.Sprintf("live ordinals %v with %d not ready", ords, o)
			}
		}
		return ""
	}
}

func images(t *testing.T, c *testcluster.Cluster, name string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range c.LivePods("default", "sts="+name) {
		out[p.Metadata.Name] = p.Spec.Containers[0].Image
		if p.Spec.Hostname != p.Metadata.Name || p.Spec.Subdomain != name {
			t.Fatalf("pod %s has hostname %q subdomain %q", p.Metadata.Name, p.Spec.Hostname, p.Spec.Subdomain)
		}
	}
	return out
}

func waitImages(t *testing.T, c *testcluster.Cluster, name string, want map[string]string) {
	t.Helper()
	testcluster.Eventually(t, 30*time.Second, func() error {
		got := images(t, c, name)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("pods %v, want %v", got, want)
		}
		for _, p := range c.LivePods("default", "sts="+name) {
			if !controller.IsPodReady(p) {
				return fmt.Errorf("pod %s not ready: node %q status %v", p.Metadata.Name, p.Spec.NodeName, p.Status)
			}
		}
		return nil
	})
}

func change(t *testing.T, c *testcluster.Cluster, name string, f func(*appsv1.StatefulSet)) {
	t.Helper()
	api := client.For[*appsv1.StatefulSet](c.Conn)
	err := client.RetryOnConflict(context.Background(), client.DefaultRetry, func() error {
		s, err := api.Get(context.Background(), "default", name)
		if err != nil {
			return err
		}
		f(s)
		_, err = api.Update(context.Background(), s)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// OrderedReady: pods come up in order, go down from the top, are replaced
// under the same name when deleted behind the controller's back, and a
// rolling update with a partition replaces only the ordinals at or above
// it, highest first; a controller restarted midway picks up where it was.
// No observed state breaks the order or has two live pods of one name.
func TestOrderedReady(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 2})
	var phase atomic.Int32
	mon := c.Watch(t, "default", "sts=db", orderedCheck("db", &phase))
	cc := c.Context(nil)
	stop := testcluster.Run(t, cc, statefulset.New(cc))
	if _, err := client.For[*appsv1.StatefulSet](c.Conn).Create(context.Background(), newSet("db", 3, "")); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, func() error {
		if len(c.Pods("default", "sts=db")) == 0 {
			return fmt.Errorf("no pods yet")
		}
		return nil
	})
	stop() // killed mid-reconcile; a fresh controller takes over
	cc = c.Context(nil)
	testcluster.Run(t, cc, statefulset.New(cc))
	waitImages(t, c, "db", map[string]string{"db-0": "db:1", "db-1": "db:1", "db-2": "db:1"})

	phase.Store(phaseAny)
	if _, err := client.For[*corev1.Pod](c.Conn).Delete(context.Background(), "default", "db-1", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, func() error {
		p, err := client.For[*corev1.Pod](c.Conn).Get(context.Background(), "default", "db-1")
		if err != nil || !controller.IsPodReady(p) || p.Metadata.DeletionTimestamp != nil {
			return fmt.Errorf("db-1 not back: %v", err)
		}
		return nil
	})

	phase.Store(phaseRolling)
	change(t, c, "db", func(s *appsv1.StatefulSet) {
		s.Spec.Template.Spec.Containers[0].Image = "db:2"
		s.Spec.UpdateStrategy = &appsv1.StatefulSetUpdateStrategy{Type: "RollingUpdate",
			RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: proto.Int32(1)}}
	})
	waitImages(t, c, "db", map[string]string{"db-0": "db:1", "db-1": "db:2", "db-2": "db:2"})
	change(t, c, "db", func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.RollingUpdate.Partition = proto.Int32(0) })
	waitImages(t, c, "db", map[string]string{"db-0": "db:2", "db-1": "db:2", "db-2": "db:2"})
	testcluster.Eventually(t, 30*time.Second, func() error {
		s, err := client.For[*appsv1.StatefulSet](c.Conn).Get(context.Background(), "default", "db")
		if err != nil {
			return err
		}
		if st := s.Status; st.GetCurrentRevision() != st.GetUpdateRevision() || st.GetUpdatedReplicas() != 3 || st.GetReadyReplicas() != 3 {
			return fmt.Errorf("status %v", st)
		}
		return nil
	})

	phase.Store(phaseOrdered)
	change(t, c, "db", func(s *appsv1.StatefulSet) { s.Spec.Replicas = proto.Int32(1) })
	waitImages(t, c, "db", map[string]string{"db-0": "db:2"})
	if v := mon.Violations(); len(v) > 0 {
		t.Fatal(v)
	}
}

// Parallel creates every pod without waiting for the others.
func TestParallel(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 2})
	c.Pause(true) // no pod becomes ready: Parallel must not care
	mon := c.Watch(t, "default", "sts=web", nil)
	cc := c.Context(nil)
	testcluster.Run(t, cc, statefulset.New(cc))
	if _, err := client.For[*appsv1.StatefulSet](c.Conn).Create(context.Background(), newSet("web", 4, "Parallel")); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, func() error {
		if n := len(c.LivePods("default", "sts=web")); n != 4 {
			return fmt.Errorf("%d pods", n)
		}
		return nil
	})
	c.Pause(false)
	waitImages(t, c, "web", map[string]string{"web-0": "web:1", "web-1": "web:1", "web-2": "web:1", "web-3": "web:1"})
	if v := mon.Violations(); len(v) > 0 {
		t.Fatal(v)
	}
}
