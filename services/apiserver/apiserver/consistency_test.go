package apiserver_test

import (
	"fmt"
	"strconv"
	"sync"
	"testing"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
)

// 50 clients increment one counter with read-modify-write and retry on
// conflict: no increment may be lost.
func TestConcurrentReadModifyWriteLosesNothing(t *testing.T) {
	ts := startServer(t, "")
	ctx := ctxT(t)
	cms := client.For[*corev1.ConfigMap](ts.conn)
	if _, err := cms.Create(ctx, configMap("default", "counter", map[string]string{"n": "0"})); err != nil {
		t.Fatal(err)
	}
	const clients, increments = 50, 10
	var wg sync.WaitGroup
	var conflicts sync.Map
	errs := make(chan error, clients)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < increments; i++ {
				err := client.RetryOnConflict(ctx, retryForever, func() error {
					cm, err := cms.Get(ctx, "default", "counter")
					if err != nil {
						return err
					}
					n, _ := strconv.Atoi(cm.Data["n"])
					cm.Data["n"] = strconv.Itoa(n + 1)
					_, err = cms.Update(ctx, cm)
					if apierrors.IsConflict(err) {
						conflicts.Store(c, true)
					}
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	cm, err := cms.Get(ctx, "default", "counter")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cm.Data["n"], strconv.Itoa(clients*increments); got != want {
		t.Fatalf("counter = %s, want %s: increments were lost", got, want)
	}
	seen := 0
	conflicts.Range(func(any, any) bool { seen++; return true })
	if seen == 0 {
		t.Fatal("no client ever saw a conflict: the test did not exercise compare-and-set")
	}
}

// A stale resource_version is refused and the stored object is unchanged.
func TestStaleUpdateIsRefused(t *testing.T) {
	ts := startServer(t, "")
	ctx := ctxT(t)
	cms := client.For[*corev1.ConfigMap](ts.conn)
	v1, err := cms.Create(ctx, configMap("default", "cfg", map[string]string{"k": "1"}))
	if err != nil {
		t.Fatal(err)
	}
	v2 := cloneCM(v1)
	v2.Data["k"] = "2"
	if _, err := cms.Update(ctx, v2); err != nil {
		t.Fatal(err)
	}
	stale := cloneCM(v1)
	stale.Data["k"] = "stale"
	_, err = cms.Update(ctx, stale)
	if !apierrors.IsConflict(err) || apierrors.Reason(err) != apierrors.ReasonConflict {
		t.Fatalf("stale update: got %v, want a CONFLICT (Aborted) error", err)
	}
	got, _ := cms.Get(ctx, "default", "cfg")
	if got.Data["k"] != "2" {
		t.Fatalf("stored value %q after a refused stale update, want 2", got.Data["k"])
	}
}

func cloneCM(cm *corev1.ConfigMap) *corev1.ConfigMap {
	out := configMap(cm.Metadata.Namespace, cm.Metadata.Name, map[string]string{})
	for k, v := range cm.Data {
		out.Data[k] = v
	}
	out.Metadata.ResourceVersion = cm.Metadata.ResourceVersion
	return out
}

// Paged lists are consistent at the revision of their first page, even while
// objects are created between pages.
func TestPaginationIsConsistentAtOneRevision(t *testing.T) {
	ts := startServer(t, "")
	ctx := ctxT(t)
	pods := client.For[*corev1.Pod](ts.conn)
	for i := 0; i < 25; i++ {
		if _, err := pods.Create(ctx, pod("default", fmt.Sprintf("p%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	opts := client.ListOptions{Namespace: "default", PageSize: 10}
	rv := ""
	for page := 0; ; page++ {
		l, err := pods.List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if rv == "" {
			rv = l.ResourceVersion
		} else if l.ResourceVersion != rv {
			t.Fatalf("page %d at revision %s, first page at %s", page, l.ResourceVersion, rv)
		}
		for _, p := range l.Items {
			names = append(names, p.Metadata.Name)
		}
		// A write between pages must not show up in this list.
		if _, err := pods.Create(ctx, pod("default", fmt.Sprintf("late%d", page))); err != nil {
			t.Fatal(err)
		}
		if l.NextPageToken == "" {
			break
		}
		if len(l.Items) != 10 {
			t.Fatalf("page %d has %d items, want 10", page, len(l.Items))
		}
		opts.PageToken = l.NextPageToken
	}
	if len(names) != 25 {
		t.Fatalf("paged list returned %d pods, want the 25 that existed at its revision: %v", len(names), names)
	}
	for i, n := range names {
		if want := fmt.Sprintf("p%02d", i); n != want {
			t.Fatalf("item %d = %s, want %s", i, n, want)
		}
	}
}

func TestSelectors(t *testing.T) {
	ts := startServer(t, "")
	ctx := ctxT(t)
	pods := client.For[*corev1.Pod](ts.conn)
	mk := func(name string, labels map[string]string, node string) {
		p := pod("default", name)
		p.Metadata.Labels = labels
		if _, err := pods.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		if node != "" {
			if _, err := corev1.NewPodServiceClient(ts.conn).BindPod(ctx, &corev1.BindPodRequest{Namespace: "default", Name: name, NodeName: node}); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk("a", map[string]string{"app": "web", "tier": "front"}, "n1")
	mk("b", map[string]string{"app": "web", "tier": "back"}, "n2")
	mk("c", map[string]string{"app": "db"}, "")
	mk("d", map[string]string{"app": "web", "legacy": "yes"}, "n1")
	cases := []struct{ labels, fields, want string }{
		{"app=web", "", "a,b,d"},
		{"app!=web", "", "c"},
		{"tier in (front,back)", "", "a,b"},
		{"tier notin (front)", "", "b,c,d"},
		{"legacy", "", "d"},
		{"!legacy,app=web", "", "a,b"},
		{"", "spec.nodeName=n1", "a,d"},
		{"", "spec.nodeName=", "c"},
		{"", "spec.nodeName!=n1", "b,c"},
		{"", "metadata.name=b", "b"},
		{"", "metadata.namespace=default,status.phase=Pending", "a,b,c,d"},
		{"app=web", "spec.nodeName=n1", "a,d"},
	}
	for _, c := range cases {
		l, err := pods.List(ctx, client.ListOptions{Namespace: "default", LabelSelector: c.labels, FieldSelector: c.fields})
		if err != nil {
			t.Fatalf("%q %q: %v", c.labels, c.fields, err)
		}
		got := ""
		for i, p := range l.Items {
			if i > 0 {
				got += ","
			}
			got += p.Metadata.Name
		}
		if got != c.want {
			t.Errorf("labels %q fields %q: got %s, want %s", c.labels, c.fields, got, c.want)
		}
	}
	if _, err := pods.List(ctx, client.ListOptions{FieldSelector: "spec.nosuch=x"}); apierrors.Reason(err) != apierrors.ReasonBadRequest {
		t.Errorf("unknown field label: got %v, want BAD_REQUEST", err)
	}
}
