package daemonset_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/services/controller/internal/controller"
	"bosun.dev/services/controller/internal/daemonset"
	"bosun.dev/services/controller/internal/garbagecollector"
	"bosun.dev/services/controller/internal/testcluster"
)

func TestEligible(t *testing.T) {
	node := &corev1.Node{
		Metadata: &metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"role": "worker", "gpus": "4"}},
		Spec:     &corev1.NodeSpec{Taints: []*corev1.Taint{{Key: "dedicated", Value: "infra", Effect: "NoSchedule"}, {Key: "soft", Effect: "PreferNoSchedule"}}},
	}
	tolerate := []*corev1.Toleration{{Key: "dedicated", Operator: "Equal", Value: "infra", Effect: "NoSchedule"}}
	affinity := func(reqs ...*corev1.NodeSelectorRequirement) *corev1.Affinity {
		return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []*corev1.NodeSelectorTerm{{MatchExpressions: reqs}}}}}
	}
	for _, tc := range []struct {
		name string
		spec *corev1.PodSpec
		want bool
	}{
		{"taint not tolerated", &corev1.PodSpec{}, false},
		{"tolerated", &corev1.PodSpec{Tolerations: tolerate}, true},
		{"tolerate all", &corev1.PodSpec{Tolerations: []*corev1.Toleration{{Operator: "Exists"}}}, true},
		{"wrong value", &corev1.PodSpec{Tolerations: []*corev1.Toleration{{Key: "dedicated", Value: "db", Effect: "NoSchedule"}}}, false},
		{"selector matches", &corev1.PodSpec{Tolerations: tolerate, NodeSelector: map[string]string{"role": "worker"}}, true},
		{"selector misses", &corev1.PodSpec{Tolerations: tolerate, NodeSelector: map[string]string{"role": "db"}}, false},
		{"affinity In", &corev1.PodSpec{Tolerations: tolerate, Affinity: affinity(&corev1.NodeSelectorRequirement{Key: "role", Operator: "In", Values: []string{"a", "worker"}})}, true},
		{"affinity Gt", &corev1.PodSpec{Tolerations: tolerate, Affinity: affinity(&corev1.NodeSelectorRequirement{Key: "gpus", Operator: "Gt", Values: []string{"2"}})}, true},
		{"affinity DoesNotExist", &corev1.PodSpec{Tolerations: tolerate, Affinity: affinity(&corev1.NodeSelectorRequirement{Key: "role", Operator: "DoesNotExist"})}, false},
	} {
		if got := daemonset.Eligible(node, tc.spec); got != tc.want {
			t.Errorf("%s: Eligible = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func newDS(name string, image string) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: &appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"ds": name}},
			Template: &corev1.PodTemplateSpec{
				Metadata: &metav1.ObjectMeta{Labels: map[string]string{"ds": name}},
				Spec:     &corev1.PodSpec{Containers: []*corev1.Container{{Name: "c", Image: image}}},
			},
		},
	}
}

// onNodes waits until the live pods of ds sit one per node on exactly nodes,
// each running image.
func onNodes(t *testing.T, c *testcluster.Cluster, ds, image string, nodes ...string) {
	t.Helper()
	sort.Strings(nodes)
	testcluster.Eventually(t, 30*time.Second, func() error {
		var got []string
		for _, p := range c.LivePods("default", "ds="+ds) {
			if p.Spec.Containers[0].Image != image {
				return fmt.Errorf("pod %s runs %s", p.Metadata.Name, p.Spec.Containers[0].Image)
			}
			got = append(got, p.Spec.NodeName)
		}
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(nodes, ",") {
			return fmt.Errorf("pods on %v, want %v", got, nodes)
		}
		return nil
	})
}

func TestDaemonSetFollowsNodes(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	c.AddNode("a", map[string]string{"role": "worker"}, nil)
	c.AddNode("b", map[string]string{"role": "worker"}, nil)
	c.AddNode("infra", map[string]string{"role": "worker"}, []*corev1.Taint{{Key: "dedicated", Value: "infra", Effect: "NoSchedule"}})
	c.AddNode("db", map[string]string{"role": "db"}, nil)
	cc := c.Context(nil)
	testcluster.Run(t, cc, daemonset.New(cc))
	ds := newDS("agent", "agent:1")
	ds.Spec.Template.Spec.NodeSelector = map[string]string{"role": "worker"}
	if _, err := client.For[*appsv1.DaemonSet](c.Conn).Create(context.Background(), ds); err != nil {
		t.Fatal(err)
	}
	onNodes(t, c, "agent", "agent:1", "a", "b")
	c.AddNode("c", map[string]string{"role": "worker"}, nil)
	onNodes(t, c, "agent", "agent:1", "a", "b", "c")
	if _, err := client.For[*corev1.Node](c.Conn).Delete(context.Background(), "", "b", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	onNodes(t, c, "agent", "agent:1", "a", "c")
	n, err := client.For[*corev1.Node](c.Conn).Get(context.Background(), "", "a")
	if err != nil {
		t.Fatal(err)
	}
	n.Metadata.Labels = map[string]string{"role": "retired"}
	if _, err := client.For[*corev1.Node](c.Conn).Update(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	onNodes(t, c, "agent", "agent:1", "c")
}

// A template change rolls out node by node: at every observed state each
// node has at most one live daemon pod and at most one node lacks a ready
// one.
func TestDaemonSetRollingUpdate(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 4})
	cc := c.Context(nil)
	testcluster.Run(t, cc, daemonset.New(cc))
	nodes := []string{"node-0", "node-1", "node-2", "node-3"}
	if _, err := client.For[*appsv1.DaemonSet](c.Conn).Create(context.Background(), newDS("log", "log:1")); err != nil {
		t.Fatal(err)
	}
	onNodes(t, c, "log", "log:1", nodes...)
	testcluster.Eventually(t, 30*time.Second, func() error {
		for _, p := range c.LivePods("default", "ds=log") {
			if !controller.IsPodReady(p) {
				return fmt.Errorf("pod %s not ready", p.Metadata.Name)
			}
		}
		return nil
	})
	var armed atomic.Bool
	mon := c.Watch(t, "default", "ds=log", func(live []*corev1.Pod) string {
		if !armed.Load() {
			return ""
		}
		perNode := map[string]int{}
		ready := map[string]bool{}
		for _, p := range live {
			perNode[p.Spec.NodeName]++
			if controller.IsPodReady(p) {
				ready[p.Spec.NodeName] = true
			}
		}
		for n, k := range perNode {
			if k > 1 {
				return fmt.Sprintf("%d live pods on %s", k, n)
			}
		}
		if len(ready) < 3 {
			return fmt.Sprintf("only %d nodes with a ready pod", len(ready))
		}
		return ""
	})
	armed.Store(true)
	api := client.For[*appsv1.DaemonSet](c.Conn)
	err := client.RetryOnConflict(context.Background(), client.DefaultRetry, func() error {
		ds, err := api.Get(context.Background(), "default", "log")
		if err != nil {
			return err
		}
		ds.Spec.Template.Spec.Containers[0].Image = "log:2"
		_, err = api.Update(context.Background(), ds)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	onNodes(t, c, "log", "log:2", nodes...)
	if v := mon.Violations(); len(v) > 0 {
		t.Fatal(v)
	}
	testcluster.Eventually(t, 30*time.Second, func() error {
		ds, err := api.Get(context.Background(), "default", "log")
		if err != nil {
			return err
		}
		if st := ds.Status; st.GetUpdatedNumberScheduled() != 4 || st.GetNumberReady() != 4 || st.GetDesiredNumberScheduled() != 4 {
			return fmt.Errorf("status %v", st)
		}
		return nil
	})
}

// A foreground deletion ends: the controller stops replacing the pods the
// garbage collector removes, and the DaemonSet goes once they are gone.
func TestForegroundDeletionEnds(t *testing.T) {
	// Simulated node-agents finish the pods' graceful deletion.
	c := testcluster.Start(t, testcluster.Options{Nodes: 2})
	cc := c.Context(nil)
	testcluster.Run(t, cc, daemonset.New(cc), garbagecollector.New(cc))
	ctx := context.Background()
	sets := client.For[*appsv1.DaemonSet](c.Conn)
	if _, err := sets.Create(ctx, newDS("agent", "agent:1")); err != nil {
		t.Fatal(err)
	}
	onNodes(t, c, "agent", "agent:1", "node-0", "node-1")
	mon := c.Watch(t, "default", "ds=agent", func(live []*corev1.Pod) string {
		if len(live) > 2 {
			return fmt.Sprintf("%d live daemon pods on 2 nodes", len(live))
		}
		return ""
	})
	if _, err := sets.Delete(ctx, "default", "agent", client.DeleteOptions{PropagationPolicy: metav1.DeletePropagation_DELETE_PROPAGATION_FOREGROUND}); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, func() error {
		if _, err := sets.Get(ctx, "default", "agent"); err == nil {
			return fmt.Errorf("daemonset still there, with %d pods", len(c.Pods("default", "ds=agent")))
		}
		if n := len(c.Pods("default", "ds=agent")); n > 0 {
			return fmt.Errorf("%d pods left", n)
		}
		return nil
	})
	if v := mon.Violations(); len(v) > 0 {
		t.Fatal(v)
	}
}
