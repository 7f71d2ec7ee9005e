package manager

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
	"bosun.dev/services/controller/internal/testcluster"
)

// The life of a deployment with every controller running in one manager:
// a Deployment and a Service in a new namespace give ready pods and
// Endpoints listing them; nodes get pod CIDRs; deleting the namespace
// removes everything in it and then the namespace.
func TestLifeOfADeployment(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3})
	startReplica(t, c, "only", func(cfg *Config) { cfg.ClusterCIDR, cfg.NodeCIDRMaskSize = "10.244.0.0/16", 24 })
	ctx := context.Background()
	if _, err := client.For[*corev1.Namespace](c.Conn).Create(ctx, &corev1.Namespace{Metadata: &metav1.ObjectMeta{Name: "shop"}}); err != nil {
		t.Fatal(err)
	}
	d := &appsv1.Deployment{
		Metadata: &metav1.ObjectMeta{Name: "cart", Namespace: "shop"},
		Spec: &appsv1.DeploymentSpec{
			Replicas: proto.Int32(4),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}},
			Template: &corev1.PodTemplateSpec{
				Metadata: &metav1.ObjectMeta{Labels: map[string]string{"app": "cart"}},
				Spec: &corev1.PodSpec{Containers: []*corev1.Container{{Name: "cart", Image: "cart:1",
					Ports: []*corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
			},
		},
	}
	if _, err := client.For[*appsv1.Deployment](c.Conn).Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		Metadata: &metav1.ObjectMeta{Name: "cart", Namespace: "shop"},
		Spec: &corev1.ServiceSpec{Selector: map[string]string{"app": "cart"},
			Ports: []*corev1.ServicePort{{Port: 80, TargetPort: &metav1.IntOrString{StrVal: "http"}}}},
	}
	if _, err := client.For[*corev1.Service](c.Conn).Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, func() error {
		ep, err := client.For[*corev1.Endpoints](c.Conn).Get(ctx, "shop", "cart")
		if err != nil {
			return err
		}
		n := 0
		for _, s := range ep.Subsets {
			n += len(s.Addresses)
		}
		if n != 4 {
			return fmt.Errorf("%d ready addresses, want 4", n)
		}
		nodes, _, err := client.For[*corev1.Node](c.Conn).ListAll(ctx, client.ListOptions{})
		if err != nil {
			return err
		}
		for _, node := range nodes {
			if node.GetSpec().GetPodCidr() == "" {
				return fmt.Errorf("node %s has no pod CIDR", node.Metadata.Name)
			}
		}
		return nil
	})
	if _, err := client.For[*corev1.Namespace](c.Conn).Delete(ctx, "", "shop", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, func() error {
		if _, err := client.For[*corev1.Namespace](c.Conn).Get(ctx, "", "shop"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("namespace still there (%v); %d pods left", err, len(c.Pods("shop", "")))
		}
		return nil
	})
	if n := len(c.Pods("shop", "")); n != 0 {
		t.Fatalf("%d pods outlived their namespace", n)
	}
	sets, _, err := client.For[*appsv1.ReplicaSet](c.Conn).ListAll(ctx, client.ListOptions{Namespace: "shop"})
	if err != nil || len(sets) != 0 {
		t.Fatalf("replicasets %d (%v) outlived their namespace", len(sets), err)
	}
}
