package endpoints_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/services/controller/internal/endpoints"
	"bosun.dev/services/controller/internal/testcluster"
)

func webPod(name string) *corev1.Pod {
	return &corev1.Pod{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: &corev1.PodSpec{Containers: []*corev1.Container{{Name: "c", Image: "web:1",
			Ports: []*corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
	}
}

// addresses returns the ready and not-ready pod names of an Endpoints.
func addresses(ep *corev1.Endpoints) (ready, notReady []string) {
	for _, s := range ep.GetSubsets() {
		for _, a := range s.Addresses {
			ready = append(ready, a.TargetRef.Name)
		}
		for _, a := range s.NotReadyAddresses {
			notReady = append(notReady, a.TargetRef.Name)
		}
	}
	return ready, notReady
}

func TestEndpointsFollowPodsAndReadiness(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 2})
	var mu sync.Mutex
	unready := map[string]bool{}
	c.Outcome = func(p *corev1.Pod) testcluster.Outcome {
		mu.Lock()
		defer mu.Unlock()
		return testcluster.Outcome{Phase: "Running", Ready: !unready[p.Metadata.Name]}
	}
	cc := c.Context(nil)
	testcluster.Run(t, cc, endpoints.New(cc))
	ctx := context.Background()
	pods := client.For[*corev1.Pod](c.Conn)
	eps := client.For[*corev1.Endpoints](c.Conn)
	svc := &corev1.Service{
		Metadata: &metav1.ObjectMeta{Name: "web", Namespace: "default", Labels: map[string]string{"tier": "front"}},
		Spec: &corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []*corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: &metav1.IntOrString{StrVal: "http"}}}},
	}
	if _, err := client.For[*corev1.Service](c.Conn).Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b", "c"} {
		if _, err := pods.Create(ctx, webPod(n)); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(wantReady, wantNotReady int) *corev1.Endpoints {
		t.Helper()
		var ep *corev1.Endpoints
		testcluster.Eventually(t, 20*time.Second, func() error {
			var err error
			ep, err = eps.Get(ctx, "default", "web")
			if err != nil {
				return err
			}
			r, nr := addresses(ep)
			if len(r) != wantReady || len(nr) != wantNotReady {
				return fmt.Errorf("ready %v, not ready %v; want %d and %d", r, nr, wantReady, wantNotReady)
			}
			return nil
		})
		return ep
	}
	ep := expect(3, 0)
	s := ep.Subsets[0]
	if len(s.Ports) != 1 || s.Ports[0].Port != 8080 || s.Ports[0].Name != "http" || s.Ports[0].Protocol != "TCP" {
		t.Fatalf("ports %v, want http 8080/TCP resolved from the container port name", s.Ports)
	}
	for _, a := range s.Addresses {
		if a.Ip == "" || a.GetNodeName() == "" {
			t.Fatalf("address %v lacks IP or node", a)
		}
	}
	if ep.Metadata.Labels["tier"] != "front" || ep.Metadata.Labels[endpoints.ManagedByLabel] != endpoints.ManagedBy {
		t.Fatalf("labels %v, want the service's", ep.Metadata.Labels)
	}

	// Pod b stops being ready, as its node-agent would report it.
	mu.Lock()
	unready["b"] = true
	mu.Unlock()
	b, err := pods.Get(ctx, "default", "b")
	if err != nil {
		t.Fatal(err)
	}
	for _, cond := range b.Status.Conditions {
		if cond.Type == "Ready" {
			cond.Status = "False"
			cond.LastTransitionTime = timestamppb.Now()
		}
	}
	changed := time.Now()
	if _, err := pods.UpdateStatus(ctx, b); err != nil {
		t.Fatal(err)
	}
	ep = expect(2, 1)
	t.Logf("readiness change reflected in Endpoints after %v", time.Since(changed))
	if _, nr := addresses(ep); nr[0] != "b" {
		t.Fatalf("not ready %v, want b", nr)
	}

	// A pod deleted behind the controller's back leaves; one that stops
	// matching the selector leaves too.
	if _, err := pods.Delete(ctx, "default", "a", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	cpod, _ := pods.Get(ctx, "default", "c")
	cpod.Metadata.Labels = map[string]string{"app": "other"}
	if _, err := pods.Update(ctx, cpod); err != nil {
		t.Fatal(err)
	}
	expect(0, 1)

	// Endpoints deleted by hand come back; the Service's deletion takes them.
	if _, err := eps.Delete(ctx, "default", "web", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect(0, 1)
	if _, err := client.For[*corev1.Service](c.Conn).Delete(ctx, "default", "web", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 20*time.Second, func() error {
		if _, err := eps.Get(ctx, "default", "web"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("endpoints of a deleted service: %v", err)
		}
		return nil
	})
}

// A Service without a selector keeps the Endpoints its owner writes.
func TestEndpointsOfServiceWithoutSelectorAreLeftAlone(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 1})
	cc := c.Context(nil)
	testcluster.Run(t, cc, endpoints.New(cc))
	ctx := context.Background()
	manual := &corev1.Endpoints{Metadata: &metav1.ObjectMeta{Name: "ext", Namespace: "default"},
		Subsets: []*corev1.EndpointSubset{{Addresses: []*corev1.EndpointAddress{{Ip: "192.0.2.10"}}, Ports: []*corev1.EndpointPort{{Port: 5432, Protocol: "TCP"}}}}}
	if _, err := client.For[*corev1.Endpoints](c.Conn).Create(ctx, manual); err != nil {
		t.Fatal(err)
	}
	if _, err := client.For[*corev1.Service](c.Conn).Create(ctx, &corev1.Service{Metadata: &metav1.ObjectMeta{Name: "ext", Namespace: "default"},
		Spec: &corev1.ServiceSpec{Ports: []*corev1.ServicePort{{Port: 5432}}}}); err != nil {
		t.Fatal(err)
	}
	// A selector service created after it proves the controller has synced.
	if _, err := client.For[*corev1.Service](c.Conn).Create(ctx, &corev1.Service{Metadata: &metav1.ObjectMeta{Name: "probe", Namespace: "default"},
		Spec: &corev1.ServiceSpec{Selector: map[string]string{"app": "none"}, Ports: []*corev1.ServicePort{{Port: 1}}}}); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 20*time.Second, func() error {
		_, err := client.For[*corev1.Endpoints](c.Conn).Get(ctx, "default", "probe")
		return err
	})
	got, err := client.For[*corev1.Endpoints](c.Conn).Get(ctx, "default", "ext")
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got.Subsets[0], manual.Subsets[0]) {
		t.Fatalf("manual endpoints changed to %v", got.Subsets)
	}
}
