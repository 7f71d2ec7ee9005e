package apiserver_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
)

type seen struct {
	typ  client.EventType
	name string
	rv   string
}

func (s seen) String() string { return fmt.Sprintf("%s %s@%s", s.typ, s.name, s.rv) }

// collect reads n non-bookmark events from w.
func collect[T api.Object](t *testing.T, w *client.Watcher[T], n int) []seen {
	t.Helper()
	out := make([]seen, 0, n)
	done := make(chan error, 1)
	go func() {
		for len(out) < n {
			ev, err := w.Next()
			if err != nil {
				done <- err
				return
			}
			if ev.Type == client.Bookmark {
				continue
			}
			if ev.ResourceVersion != ev.Object.GetMetadata().GetResourceVersion() {
				done <- fmt.Errorf("event rv %s but object rv %s", ev.ResourceVersion, ev.Object.GetMetadata().GetResourceVersion())
				return
			}
			out = append(out, seen{ev.Type, ev.Object.GetMetadata().GetName(), ev.ResourceVersion})
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after %d of %d events: %v", len(out), n, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out after %d of %d events", len(out), n)
	}
	return out
}

// writeHistory creates, updates and deletes config maps: 10 + 20 + 5 events.
func writeHistory(t *testing.T, ctx context.Context, cms *client.Resource[*corev1.ConfigMap], prefix string) {
	t.Helper()
	for i := 0; i < 10; i++ {
		if _, err := cms.Create(ctx, configMap("default", fmt.Sprintf("%s%d", prefix, i), map[string]string{"v": "0"})); err != nil {
			t.Fatal(err)
		}
	}
	for round := 1; round <= 2; round++ {
		for i := 0; i < 10; i++ {
			cm, err := cms.Get(ctx, "default", fmt.Sprintf("%s%d", prefix, i))
			if err != nil {
				t.Fatal(err)
			}
			cm.Data["v"] = strconv.Itoa(round)
			if _, err := cms.Update(ctx, cm); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < 5; i++ {
		if _, err := cms.Delete(ctx, "default", fmt.Sprintf("%s%d", prefix, i), client.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func checkOrdered(t *testing.T, evs []seen) {
	t.Helper()
	last := int64(0)
	for _, e := range evs {
		rv, _ := strconv.ParseInt(e.rv, 10, 64)
		if rv <= last {
			t.Fatalf("events out of order or duplicated at %s: %v", e, evs)
		}
		last = rv
	}
}

// assertExactlyAfter watches from rv and checks that it delivers exactly want,
// and then nothing but a marker written afterwards.
func assertExactlyAfter(t *testing.T, ctx context.Context, cms *client.Resource[*corev1.ConfigMap], rv string, want []seen, marker string) {
	t.Helper()
	w, err := cms.Watch(ctx, client.WatchOptions{Namespace: "default", ResourceVersion: rv})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	got := collect(t, w, len(want))
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("watch from %s: event %d = %v, want %v", rv, i, got[i], want[i])
		}
	}
	m, err := cms.Get(ctx, "default", marker)
	if err != nil {
		t.Fatal(err)
	}
	if m.Data == nil {
		m.Data = map[string]string{}
	}
	m.Data["tick"] = rv
	if _, err := cms.Update(ctx, m); err != nil {
		t.Fatal(err)
	}
	next := collect(t, w, 1)
	if next[0].name != marker {
		t.Fatalf("watch from %s: after the expected events came %v, want only the marker", rv, next[0])
	}
}

func testResume(t *testing.T, opts ...serverOption) {
	ts := startServer(t, "", opts...)
	ctx := ctxT(t)
	cms := client.For[*corev1.ConfigMap](ts.conn)
	start, err := cms.List(ctx, client.ListOptions{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := cms.Watch(ctx, client.WatchOptions{Namespace: "default", ResourceVersion: start.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	writeHistory(t, ctx, cms, "cm")
	history := collect(t, rec, 35)
	rec.Stop()
	checkOrdered(t, history)
	if _, err := cms.Create(ctx, configMap("default", "marker", map[string]string{})); err != nil {
		t.Fatal(err)
	}
	// The marker's creation is part of history after every resume point.
	mk, _ := cms.Get(ctx, "default", "marker")
	history = append(history, seen{client.Added, "marker", mk.Metadata.ResourceVersion})

	froms := []string{start.ResourceVersion}
	for _, e := range history[:len(history)-1] {
		froms = append(froms, e.rv)
	}
	resumeAll := func(h []seen) {
		for i, rv := range froms {
			assertExactlyAfter(t, ctx, cms, rv, h[i:], "marker")
			// assertExactlyAfter appended one marker update to history.
			m, _ := cms.Get(ctx, "default", "marker")
			h = append(h, seen{client.Modified, "marker", m.Metadata.ResourceVersion})
		}
	}
	resumeAll(history)

	// Across a restart on the same data directory: the new apiserver's cache
	// starts empty, and resuming from every past revision is still exact.
	dir := ts.dataDir
	ts.stop(t)
	ts2 := startServer(t, dir, opts...)
	cms = client.For[*corev1.ConfigMap](ts2.conn)
	full, err := cms.Watch(ctx, client.WatchOptions{Namespace: "default", ResourceVersion: start.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := cms.Get(ctx, "default", "marker")
	want := len(history) + len(froms) // the creation history plus one marker update per resume
	after := collect(t, full, want)
	full.Stop()
	checkOrdered(t, after)
	if last := after[len(after)-1]; last.rv != m.Metadata.ResourceVersion {
		t.Fatalf("after restart the full history ends at %v, want the marker at %s", last, m.Metadata.ResourceVersion)
	}
	for i := range history {
		if after[i] != history[i] {
			t.Fatalf("after restart, event %d = %v, want %v", i, after[i], history[i])
		}
	}
	for i, rv := range froms {
		assertExactlyAfter(t, ctx, cms, rv, after[i:], "marker")
		m, _ := cms.Get(ctx, "default", "marker")
		after = append(after, seen{client.Modified, "marker", m.Metadata.ResourceVersion})
	}
}

func TestWatchResumesExactlyFromAnyRevision(t *testing.T) { testResume(t) }

// With a tiny watch cache, old revisions are served by etcd directly.
func TestWatchResumesBeyondTheCacheWindow(t *testing.T) { testResume(t, withCacheSize(3)) }

func TestWatchFromCompactedRevisionIsRefused(t *testing.T) {
	ts := startServer(t, "")
	ctx := ctxT(t)
	cms := client.For[*corev1.ConfigMap](ts.conn)
	first, err := cms.Create(ctx, configMap("default", "a", map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	writeHistory(t, ctx, cms, "x")
	l, err := cms.List(ctx, client.ListOptions{Namespace: "default", PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	last, err := cms.Create(ctx, configMap("default", "z", map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	rev, _ := strconv.ParseInt(last.Metadata.ResourceVersion, 10, 64)
	// Compact only once the watch cache has seen the last write: compacting
	// past where its own etcd watch stands would end that watch (the cache
	// then restarts, which is tested elsewhere), not what this test is about.
	caughtUp, err := cms.Watch(ctx, client.WatchOptions{Namespace: "default", ResourceVersion: l.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := caughtUp.Next()
		if err != nil {
			t.Fatalf("waiting for the watch cache to see %q: %v", "z", err)
		}
		if ev.Type != client.Bookmark && ev.Object.GetMetadata().GetName() == "z" {
			break
		}
	}
	caughtUp.Stop()
	if err := ts.Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	w, err := cms.Watch(ctx, client.WatchOptions{Namespace: "default", ResourceVersion: first.Metadata.ResourceVersion})
	if err == nil {
		_, err = w.Next()
	}
	if !apierrors.IsCompacted(err) {
		t.Fatalf("watch from a compacted revision: got %v, want RESOURCE_VERSION_COMPACTED", err)
	}
	if apierrors.Code(err).String() != "OutOfRange" {
		t.Fatalf("compacted watch code = %s, want OutOfRange", apierrors.Code(err))
	}
	_, err = cms.List(ctx, client.ListOptions{Namespace: "default", PageSize: 2, PageToken: l.NextPageToken})
	if !apierrors.IsCompacted(err) {
		t.Fatalf("continuing a list at a compacted revision: got %v, want RESOURCE_VERSION_COMPACTED", err)
	}
	// From the compaction revision on, watching works.
	w2, err := cms.Watch(ctx, client.WatchOptions{Namespace: "default", ResourceVersion: last.Metadata.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Stop()
	if _, err := cms.Create(ctx, configMap("default", "after", map[string]string{})); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, w2, 1); got[0].name != "after" {
		t.Fatalf("watch after compaction got %v", got)
	}
}

func TestTwoHundredWatchersGetEveryEvent(t *testing.T) {
	ts := startServer(t, "")
	ctx := ctxT(t)
	pods := client.For[*corev1.Pod](ts.conn)
	l, err := pods.List(ctx, client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const watchers, n = 200, 60
	ws := make([]*client.Watcher[*corev1.Pod], watchers)
	for i := range ws {
		opts := client.WatchOptions{ResourceVersion: l.ResourceVersion}
		if i%2 == 1 {
			opts.Namespace, opts.LabelSelector = "default", "app=web"
		}
		if ws[i], err = pods.Watch(ctx, opts); err != nil {
			t.Fatal(err)
		}
	}
	var want []seen
	for i := 0; i < n/2; i++ {
		p, err := pods.Create(ctx, pod("default", fmt.Sprintf("w%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, seen{client.Added, p.Metadata.Name, p.Metadata.ResourceVersion})
	}
	for i := 0; i < n/2; i++ {
		p, err := pods.Delete(ctx, "default", fmt.Sprintf("w%d", i), client.DeleteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, seen{client.Deleted, p.Metadata.Name, p.Metadata.ResourceVersion})
	}
	results := make(chan error, watchers)
	for _, w := range ws {
		go func() {
			defer w.Stop()
			got := make([]seen, 0, n)
			for len(got) < n {
				ev, err := w.Next()
				if err != nil {
					results <- err
					return
				}
				got = append(got, seen{ev.Type, ev.Object.GetMetadata().GetName(), ev.ResourceVersion})
			}
			for i := range want {
				if got[i] != want[i] {
					results <- fmt.Errorf("event %d = %v, want %v", i, got[i], want[i])
					return
				}
			}
			results <- nil
		}()
	}
	for range ws {
		select {
		case err := <-results:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("watchers did not receive every event")
		}
	}
}

func TestWatchSelectorTransitionsAndBookmarks(t *testing.T) {
	ts := startServer(t, "", withBookmarks(50*time.Millisecond))
	ctx := ctxT(t)
	pods := client.For[*corev1.Pod](ts.conn)
	w, err := pods.Watch(ctx, client.WatchOptions{Namespace: "default", LabelSelector: "app=web", AllowBookmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	p, err := pods.Create(ctx, pod("default", "moving"))
	if err != nil {
		t.Fatal(err)
	}
	p.Metadata.Labels["app"] = "other"
	moved, err := pods.Update(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, w, 2)
	if got[0].typ != client.Added || got[1].typ != client.Deleted || got[1].rv != moved.Metadata.ResourceVersion {
		t.Fatalf("leaving the selector should be a DELETED at the update's revision: %v", got)
	}
	deadline := time.After(20 * time.Second)
	for {
		type res struct {
			ev  client.Event[*corev1.Pod]
			err error
		}
		ch := make(chan res, 1)
		go func() { ev, err := w.Next(); ch <- res{ev, err} }()
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.ev.Type == client.Bookmark {
				rv, _ := strconv.ParseInt(r.ev.ResourceVersion, 10, 64)
				last, _ := strconv.ParseInt(moved.Metadata.ResourceVersion, 10, 64)
				if rv < last {
					t.Fatalf("bookmark at %d is behind the last event %d", rv, last)
				}
				return
			}
			t.Fatalf("unexpected event %v", r.ev.Type)
		case <-deadline:
			t.Fatal("no bookmark arrived")
		}
	}
}

// A watch resumed from before the cache's window is served by etcd, and
// still gets bookmarks: they tell a client how far it has got when other
// kinds change (what the garbage collector waits for after a restart).
func TestBookmarksBeyondTheCacheWindow(t *testing.T) {
	ts := startServer(t, "", withBookmarks(50*time.Millisecond), withCacheSize(4))
	ctx := ctxT(t)
	pods := client.For[*corev1.Pod](ts.conn)
	first, err := pods.Create(ctx, pod("default", "p0"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 10; i++ {
		if _, err := pods.Create(ctx, pod("default", fmt.Sprintf("p%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	w, err := pods.Watch(ctx, client.WatchOptions{Namespace: "default", ResourceVersion: first.Metadata.ResourceVersion, AllowBookmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	// Another kind moves etcd's revision on; the pods' stream must say it
	// has got that far.
	cm, err := client.For[*corev1.ConfigMap](ts.conn).Create(ctx, &corev1.ConfigMap{Metadata: &metav1.ObjectMeta{Name: "elsewhere", Namespace: "default"}})
	if err != nil {
		t.Fatal(err)
	}
	target, _ := strconv.ParseInt(cm.Metadata.ResourceVersion, 10, 64)
	added := 0
	for {
		ev, err := w.Next()
		if err != nil {
			t.Fatalf("after %d events: %v", added, err)
		}
		if ev.Type == client.Added {
			added++
			continue
		}
		if ev.Type != client.Bookmark {
			t.Fatalf("unexpected %v", ev.Type)
		}
		if rv, _ := strconv.ParseInt(ev.ResourceVersion, 10, 64); rv >= target {
			break
		}
	}
	if added != 9 {
		t.Errorf("%d pods added after p0, want 9", added)
	}
}
