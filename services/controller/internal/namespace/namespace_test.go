package namespace_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/services/controller/internal/namespace"
	"bosun.dev/services/controller/internal/replicaset"
	"bosun.dev/services/controller/internal/testcluster"
)

// Deleting a namespace deletes everything in it, including pods bound to
// nodes that finish a graceful deletion, and then the namespace.
func TestDeletingANamespaceEmptiesItFirst(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 2})
	cc := c.Context(nil)
	testcluster.Run(t, cc, namespace.New(cc), replicaset.New(cc))
	ctx := context.Background()
	nsAPI := client.For[*corev1.Namespace](c.Conn)
	if _, err := nsAPI.Create(ctx, &corev1.Namespace{Metadata: &metav1.ObjectMeta{Name: "team"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.For[*corev1.ConfigMap](c.Conn).Create(ctx, &corev1.ConfigMap{Metadata: &metav1.ObjectMeta{Name: "cfg", Namespace: "team"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.For[*corev1.Service](c.Conn).Create(ctx, &corev1.Service{Metadata: &metav1.ObjectMeta{Name: "svc", Namespace: "team"},
		Spec: &corev1.ServiceSpec{Ports: []*corev1.ServicePort{{Port: 80}}}}); err != nil {
		t.Fatal(err)
	}
	rs := &appsv1.ReplicaSet{
		Metadata: &metav1.ObjectMeta{Name: "web", Namespace: "team"},
		Spec: &appsv1.ReplicaSetSpec{Replicas: proto.Int32(3),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: &corev1.PodTemplateSpec{Metadata: &metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: &corev1.PodSpec{Containers: []*corev1.Container{{Name: "c", Image: "img:1"}}}}},
	}
	if _, err := client.For[*appsv1.ReplicaSet](c.Conn).Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, func() error {
		pods := c.LivePods("team", "app=web")
		for _, p := range pods {
			if p.Spec.NodeName == "" {
				return fmt.Errorf("pod %s not bound yet", p.Metadata.Name)
			}
		}
		if len(pods) != 3 {
			return fmt.Errorf("%d pods", len(pods))
		}
		return nil
	})
	if _, err := nsAPI.Delete(ctx, "", "team", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ns, err := nsAPI.Get(ctx, "", "team")
	if err != nil {
		t.Fatalf("namespace with objects went at once: %v", err)
	}
	if ns.Status.GetPhase() != "Terminating" {
		t.Fatalf("phase %q, want Terminating", ns.Status.GetPhase())
	}
	testcluster.Eventually(t, 30*time.Second, func() error {
		_, err := nsAPI.Get(ctx, "", "team")
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("namespace still there (%v); %d pods left", err, len(c.Pods("team", "")))
	})
	// Everything in it went first.
	if n := len(c.Pods("team", "")); n != 0 {
		t.Fatalf("%d pods outlived their namespace", n)
	}
	cms, _, err := client.For[*corev1.ConfigMap](c.Conn).ListAll(ctx, client.ListOptions{Namespace: "team"})
	if err != nil || len(cms) != 0 {
		t.Fatalf("configmaps %v, %v after the namespace went", cms, err)
	}
}
