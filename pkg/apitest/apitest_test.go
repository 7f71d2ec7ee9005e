package apitest_test

import (
	"context"
	"io"
	"testing"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/apitest"
	"bosun.dev/pkg/client"
)

func newPod(name string) *corev1.Pod {
	return &corev1.Pod{Metadata: &metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": name}}, Spec: &corev1.PodSpec{}}
}

func TestCRUDAndConflicts(t *testing.T) {
	srv := apitest.NewServer(t)
	ctx := context.Background()
	pods := client.For[*corev1.Pod](srv.Conn())
	p, err := pods.Create(ctx, newPod("a"))
	if err != nil {
		t.Fatal(err)
	}
	if p.GetMetadata().GetUid() == "" || p.GetMetadata().GetResourceVersion() != "1" {
		t.Fatalf("created %v", p.GetMetadata())
	}
	if _, err := pods.Create(ctx, newPod("a")); !apierrors.IsAlreadyExists(err) {
		t.Fatalf("second create: %v", err)
	}
	p.Status = &corev1.PodStatus{Message: "running"}
	if p, err = pods.UpdateStatus(ctx, p); err != nil {
		t.Fatal(err)
	}
	stale := newPod("a")
	stale.Metadata.ResourceVersion = "1"
	if _, err := pods.Update(ctx, stale); !apierrors.IsConflict(err) {
		t.Fatalf("stale update: %v", err)
	}
	p.Spec.NodeName = "n1"
	p.Status = nil
	if p, err = pods.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	if p.GetStatus().GetMessage() != "running" || p.GetMetadata().GetGeneration() != 2 {
		t.Fatalf("update lost the status or did not bump generation: %v", p)
	}
	if _, err := pods.Get(ctx, "ns", "zz"); !apierrors.IsNotFound(err) {
		t.Fatalf("get missing: %v", err)
	}
	if _, err := pods.Create(ctx, newPod("b")); err != nil {
		t.Fatal(err)
	}
	list, err := pods.List(ctx, client.ListOptions{LabelSelector: "app=b"})
	if err != nil || len(list.Items) != 1 || list.ResourceVersion != "4" {
		t.Fatalf("list = %v, %v", list, err)
	}
	if _, err := pods.Delete(ctx, "ns", "a", client.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: "1"}}); !apierrors.IsConflict(err) {
		t.Fatalf("delete with stale precondition: %v", err)
	}
	if _, err := pods.Delete(ctx, "ns", "a", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestWatchHistoryAndCompaction(t *testing.T) {
	srv := apitest.NewServerWithOptions(t, apitest.Options{HistoryLimit: 3})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pods := client.For[*corev1.Pod](srv.Conn())
	for _, n := range []string{"a", "b", "c", "d"} {
		if _, err := pods.Create(ctx, newPod(n)); err != nil {
			t.Fatal(err)
		}
	}
	// Revision 1 fell out of the three-event history.
	w, err := pods.Watch(ctx, client.WatchOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Next(); !apierrors.IsCompacted(err) {
		t.Fatalf("watch from 0: %v, want compacted", err)
	}
	w, err = pods.Watch(ctx, client.WatchOptions{ResourceVersion: "2", AllowBookmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"c", "d"} {
		ev, err := w.Next()
		if err != nil || ev.Type != client.Added || ev.Object.GetMetadata().GetName() != want {
			t.Fatalf("event %v, %v; want add %s", ev, err, want)
		}
	}
	srv.SendBookmarks()
	if ev, err := w.Next(); err != nil || ev.Type != client.Bookmark || ev.ResourceVersion != "4" {
		t.Fatalf("event %v, %v; want bookmark at 4", ev, err)
	}
	srv.DropWatches()
	if _, err := w.Next(); err == nil || err == io.EOF {
		t.Fatalf("after drop: %v", err)
	}
	srv.Compact()
	w, _ = pods.Watch(ctx, client.WatchOptions{ResourceVersion: "3"})
	if _, err := w.Next(); !apierrors.IsCompacted(err) {
		t.Fatalf("watch after Compact: %v", err)
	}
}

func TestBind(t *testing.T) {
	srv := apitest.NewServer(t)
	ctx := context.Background()
	if _, err := client.For[*corev1.Pod](srv.Conn()).Create(ctx, newPod("a")); err != nil {
		t.Fatal(err)
	}
	pc := corev1.NewPodServiceClient(srv.Conn())
	if _, err := pc.BindPod(ctx, &corev1.BindPodRequest{Namespace: "ns", Name: "a", NodeName: "n1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.BindPod(ctx, &corev1.BindPodRequest{Namespace: "ns", Name: "a", NodeName: "n2"}); !apierrors.IsAlreadyBound(err) {
		t.Fatalf("second bind: %v", err)
	}
}
