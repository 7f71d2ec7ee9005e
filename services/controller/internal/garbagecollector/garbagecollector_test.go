package garbagecollector_test

import (
	"context"
	"fmt"
	"slices"
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
	"bosun.dev/services/controller/internal/garbagecollector"
	"bosun.dev/services/controller/internal/replicaset"
	"bosun.dev/services/controller/internal/testcluster"
)

func newDeployment(name string) *appsv1.Deployment {
	return &appsv1.Deployment{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: &appsv1.DeploymentSpec{
			Replicas: proto.Int32(3),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: &corev1.PodTemplateSpec{
				Metadata: &metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:     &corev1.PodSpec{Containers: []*corev1.Container{{Name: "c", Image: "img:1"}}},
			},
		},
	}
}

// start runs the Deployment and ReplicaSet controllers and the collector;
// it returns once name's Deployment has its ReplicaSet and three pods.
func start(t *testing.T, name string) *testcluster.Cluster {
	c := testcluster.Start(t, testcluster.Options{Nodes: 2})
	cc := c.Context(nil)
	testcluster.Run(t, cc, replicaset.New(cc), deployment.New(cc), garbagecollector.New(cc))
	if _, err := client.For[*appsv1.Deployment](c.Conn).Create(context.Background(), newDeployment(name)); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, func() error {
		if n := len(c.LivePods("default", "app="+name)); n != 3 {
			return fmt.Errorf("%d pods, want 3", n)
		}
		return nil
	})
	return c
}

func counts(t *testing.T, c *testcluster.Cluster, app string) (sets, pods int) {
	t.Helper()
	rs, _, err := client.For[*appsv1.ReplicaSet](c.Conn).ListAll(context.Background(), client.ListOptions{Namespace: "default", LabelSelector: "app=" + app})
	if err != nil {
		t.Fatal(err)
	}
	return len(rs), len(c.Pods("default", "app="+app))
}

func gone(t *testing.T, c *testcluster.Cluster, app string) {
	t.Helper()
	testcluster.Eventually(t, 30*time.Second, func() error {
		if s, p := counts(t, c, app); s+p > 0 {
			return fmt.Errorf("%d replicasets and %d pods remain", s, p)
		}
		return nil
	})
}

func TestBackgroundDeletionCascades(t *testing.T) {
	c := start(t, "bg")
	if _, err := client.For[*appsv1.Deployment](c.Conn).Delete(context.Background(), "default", "bg", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	gone(t, c, "bg")
}

// Foreground deletion keeps the Deployment, marked, until its ReplicaSet and
// pods are gone, then removes it.
func TestForegroundDeletionWaitsForDependents(t *testing.T) {
	c := start(t, "fg")
	ctx := context.Background()
	deploys := client.For[*appsv1.Deployment](c.Conn)
	if _, err := deploys.Delete(ctx, "default", "fg", client.DeleteOptions{PropagationPolicy: metav1.DeletePropagation_DELETE_PROPAGATION_FOREGROUND}); err != nil {
		t.Fatal(err)
	}
	sawOwnerWithDependents := false
	testcluster.Eventually(t, 30*time.Second, func() error {
		d, err := deploys.Get(ctx, "default", "fg")
		s, p := counts(t, c, "fg")
		if err == nil {
			if d.Metadata.DeletionTimestamp == nil || !slices.Contains(d.Metadata.Finalizers, garbagecollector.FinalizerForeground) {
				return fmt.Errorf("deployment not marked for foreground deletion: %v", d.Metadata)
			}
			if s+p > 0 {
				sawOwnerWithDependents = true
			}
			return fmt.Errorf("deployment still there, %d replicasets and %d pods", s, p)
		}
		if !apierrors.IsNotFound(err) {
			return err
		}
		if s+p > 0 {
			t.Fatalf("deployment removed while %d replicasets and %d pods remain", s, p)
		}
		return nil
	})
	if !sawOwnerWithDependents {
		t.Log("the dependents went before the first look; the ordering was not observed")
	}
}

// Orphan deletion removes the Deployment and leaves its ReplicaSet and pods
// running without a reference to it.
func TestOrphanDeletionKeepsDependents(t *testing.T) {
	c := start(t, "orph")
	ctx := context.Background()
	if _, err := client.For[*appsv1.Deployment](c.Conn).Delete(ctx, "default", "orph", client.DeleteOptions{PropagationPolicy: metav1.DeletePropagation_DELETE_PROPAGATION_ORPHAN}); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, func() error {
		_, err := client.For[*appsv1.Deployment](c.Conn).Get(ctx, "default", "orph")
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("deployment still there: %v", err)
		}
		sets, _, err := client.For[*appsv1.ReplicaSet](c.Conn).ListAll(ctx, client.ListOptions{Namespace: "default", LabelSelector: "app=orph"})
		if err != nil {
			return err
		}
		if len(sets) != 1 || len(sets[0].Metadata.OwnerReferences) != 0 {
			return fmt.Errorf("replicasets %v, want one without owner", sets)
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond) // give a wrong cascade time to happen
	if s, p := counts(t, c, "orph"); s != 1 || p != 3 {
		t.Fatalf("%d replicasets and %d pods after orphaning, want 1 and 3", s, p)
	}
	for _, p := range c.LivePods("default", "app=orph") {
		if controller.ControllerRef(p.Metadata) == nil {
			t.Fatalf("pod %s lost its replicaset", p.Metadata.Name)
		}
	}
}

// A dependent with two owners loses only the reference to the deleted one.
func TestDependentWithAnotherOwnerSurvives(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	cc := c.Context(nil)
	testcluster.Run(t, cc, garbagecollector.New(cc))
	ctx := context.Background()
	cms := client.For[*corev1.ConfigMap](c.Conn)
	a, err := cms.Create(ctx, &corev1.ConfigMap{Metadata: &metav1.ObjectMeta{Name: "a", Namespace: "default"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := cms.Create(ctx, &corev1.ConfigMap{Metadata: &metav1.ObjectMeta{Name: "b", Namespace: "default"}})
	if err != nil {
		t.Fatal(err)
	}
	ref := func(o *corev1.ConfigMap) *metav1.OwnerReference {
		return &metav1.OwnerReference{ApiVersion: "v1", Kind: "ConfigMap", Name: o.Metadata.Name, Uid: o.Metadata.Uid}
	}
	if _, err := cms.Create(ctx, &corev1.ConfigMap{Metadata: &metav1.ObjectMeta{Name: "dep", Namespace: "default",
		OwnerReferences: []*metav1.OwnerReference{ref(a), ref(b)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Create(ctx, &corev1.ConfigMap{Metadata: &metav1.ObjectMeta{Name: "only-a", Namespace: "default",
		OwnerReferences: []*metav1.OwnerReference{ref(a)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Delete(ctx, "default", "a", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, func() error {
		if _, err := cms.Get(ctx, "default", "only-a"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("only-a: %v", err)
		}
		d, err := cms.Get(ctx, "default", "dep")
		if err != nil {
			return err
		}
		if len(d.Metadata.OwnerReferences) != 1 || d.Metadata.OwnerReferences[0].Name != "b" {
			return fmt.Errorf("dep owners %v, want only b", d.Metadata.OwnerReferences)
		}
		return nil
	})
}
