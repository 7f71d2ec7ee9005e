package informer_test

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/client-go/tools/cache"

	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/apitest"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/informer"
)

// recorder is a Handler that records "add ns/name rv", "update ns/name
// oldrv->rv" and "delete ns/name rv" lines.
type recorder struct {
	ch chan string
	mu sync.Mutex
	rv []int64 // revisions of add/update/delete, in delivery order
}

func newRecorder() *recorder { return &recorder{ch: make(chan string, 1000)} }

func (r *recorder) note(verb string, p *corev1.Pod, extra string) {
	rv, _ := strconv.ParseInt(p.GetMetadata().GetResourceVersion(), 10, 64)
	r.mu.Lock()
	r.rv = append(r.rv, rv)
	r.mu.Unlock()
	r.ch <- fmt.Sprintf("%s %s/%s%s", verb, p.GetMetadata().GetNamespace(), p.GetMetadata().GetName(), extra)
}

func (r *recorder) OnAdd(p *corev1.Pod) { r.note("add", p, "") }
func (r *recorder) OnUpdate(old, p *corev1.Pod) {
	r.note("update", p, " "+old.GetSpec().GetNodeName()+">"+p.GetSpec().GetNodeName())
}
func (r *recorder) OnDelete(p *corev1.Pod) { r.note("delete", p, "") }

// next returns the next n notifications.
func (r *recorder) next(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case s := <-r.ch:
			out = append(out, s)
		case <-timeout:
			t.Fatalf("got %d of %d notifications: %q", len(out), n, out)
		}
	}
	return out
}

func (r *recorder) expect(t *testing.T, want ...string) {
	t.Helper()
	got := r.next(t, len(want))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("notifications:\n got %q\nwant %q", got, want)
	}
}

func (r *recorder) quiet(t *testing.T) {
	t.Helper()
	select {
	case s := <-r.ch:
		t.Fatalf("unexpected notification %q", s)
	case <-time.After(50 * time.Millisecond):
	}
}

type fixture struct {
	srv    *apitest.Server
	pods   *client.Resource[*corev1.Pod]
	inf    *informer.Informer[*corev1.Pod]
	ctx    context.Context
	cancel context.CancelFunc
}

func newFixture(t *testing.T) *fixture {
	srv := apitest.NewServer(t)
	pods := client.For[*corev1.Pod](srv.Conn())
	inf := informer.New(pods, informer.Options{
		Logger:   slog.New(slog.DiscardHandler),
		Indexers: cache.Indexers{informer.PodNodeNameIndex: informer.PodNodeNameIndexFunc},
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &fixture{srv: srv, pods: pods, inf: inf, ctx: ctx, cancel: cancel}
}

func (f *fixture) run(t *testing.T) {
	t.Helper()
	done := make(chan struct{})
	go func() { _ = f.inf.Run(f.ctx); close(done) }()
	ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
	defer cancel()
	if !informer.WaitForCacheSync(ctx, f.inf) {
		t.Fatal("cache did not sync")
	}
	t.Cleanup(func() { f.cancel(); <-done })
}

func pod(name, node string) *corev1.Pod {
	return &corev1.Pod{Metadata: &metav1.ObjectMeta{Name: name, Namespace: "ns"}, Spec: &corev1.PodSpec{NodeName: node}}
}

func (f *fixture) create(t *testing.T, name, node string) *corev1.Pod {
	t.Helper()
	p, err := f.pods.Create(f.ctx, pod(name, node))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) setNode(t *testing.T, name, node string) {
	t.Helper()
	p, err := f.pods.Get(f.ctx, "ns", name)
	if err != nil {
		t.Fatal(err)
	}
	p.Spec.NodeName = node
	if _, err := f.pods.Update(f.ctx, p); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) delete(t *testing.T, name string) {
	t.Helper()
	if _, err := f.pods.Delete(f.ctx, "ns", name, client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitWatching waits until the informer has an open watch.
func (f *fixture) waitWatching(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for f.srv.Watches() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("informer is not watching")
		}
		time.Sleep(time.Millisecond)
	}
}

// assertMirrors checks that the cache holds exactly what the server holds.
func (f *fixture) assertMirrors(t *testing.T) {
	t.Helper()
	want, _, err := f.pods.ListAll(f.ctx, client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := f.inf.List()
	if len(got) != len(want) {
		t.Fatalf("cache has %d pods, server %d", len(got), len(want))
	}
	for _, w := range want {
		g, ok := f.inf.Get("ns", w.GetMetadata().GetName())
		if !ok || g.GetMetadata().GetResourceVersion() != w.GetMetadata().GetResourceVersion() {
			t.Fatalf("cache has %v, server %v", g, w)
		}
	}
}

func TestInitialSync(t *testing.T) {
	f := newFixture(t)
	f.create(t, "a", "n1")
	f.create(t, "b", "n1")
	f.create(t, "c", "")
	rec := newRecorder()
	f.inf.AddEventHandler(rec)
	if f.inf.HasSynced() {
		t.Fatal("synced before Run")
	}
	f.run(t)
	got := rec.next(t, 3)
	sort.Strings(got)
	if want := "[add ns/a add ns/b add ns/c]"; fmt.Sprint(got) != want {
		t.Fatalf("got %q, want %s", got, want)
	}
	f.assertMirrors(t)
	if rv := f.inf.LastSyncResourceVersion(); rv != strconv.FormatInt(f.srv.Revision(), 10) {
		t.Fatalf("LastSyncResourceVersion %q, server at %d", rv, f.srv.Revision())
	}
	onN1, err := f.inf.ByIndex(informer.PodNodeNameIndex, "n1")
	if err != nil || len(onN1) != 2 {
		t.Fatalf("ByIndex(n1) = %d pods, %v; want 2", len(onN1), err)
	}
	inNS, err := f.inf.ByIndex(informer.NamespaceIndex, "ns")
	if err != nil || len(inNS) != 3 {
		t.Fatalf("ByIndex(namespace ns) = %d pods, %v; want 3", len(inNS), err)
	}
	if _, err := f.inf.ByIndex("nope", "x"); err == nil {
		t.Fatal("ByIndex of an unknown index succeeded")
	}
	if _, ok := f.inf.Get("ns", "zzz"); ok {
		t.Fatal("Get found a pod that does not exist")
	}
	if err := f.inf.Run(f.ctx); err != informer.ErrAlreadyRunning {
		t.Fatalf("second Run: %v", err)
	}
}

func TestEventsInOrder(t *testing.T) {
	f := newFixture(t)
	rec := newRecorder()
	f.inf.AddEventHandler(rec)
	f.run(t)
	f.create(t, "a", "")
	f.setNode(t, "a", "n1")
	f.create(t, "b", "")
	f.delete(t, "a")
	f.setNode(t, "b", "n2")
	rec.expect(t, "add ns/a", "update ns/a >n1", "add ns/b", "delete ns/a", "update ns/b >n2")
	rec.quiet(t)
	f.assertMirrors(t)
	if got, _ := f.inf.ByIndex(informer.PodNodeNameIndex, "n1"); len(got) != 0 {
		t.Fatalf("deleted pod still indexed on n1: %v", got)
	}
}

func TestRelistAfterCompaction(t *testing.T) {
	f := newFixture(t)
	f.create(t, "a", "")
	f.create(t, "b", "")
	f.create(t, "c", "")
	recreated := f.create(t, "e", "")
	rec := newRecorder()
	f.inf.AddEventHandler(rec)
	f.run(t)
	rec.next(t, 4)
	f.waitWatching(t)

	// Keep the informer from watching while changes happen and the history
	// that would let it resume is compacted away.
	f.srv.SetFault(func(method string, _ any) error {
		if method == corev1.PodService_WatchPods_FullMethodName {
			return status.Error(codes.Unavailable, "down for the test")
		}
		return nil
	})
	f.srv.DropWatches()
	f.delete(t, "a")
	f.setNode(t, "b", "n9")
	f.create(t, "d", "")
	f.delete(t, "e")
	f.create(t, "e", "")
	f.srv.Compact()
	f.srv.SetFault(nil)

	got := rec.next(t, 5)
	sort.Strings(got)
	want := []string{"add ns/d", "add ns/e", "delete ns/a", "delete ns/e", "update ns/b >n9"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after relist got %q, want %q", got, want)
	}
	rec.quiet(t)
	f.assertMirrors(t)
	if e, _ := f.inf.Get("ns", "e"); e.GetMetadata().GetUid() == recreated.GetMetadata().GetUid() {
		t.Fatal("cache kept the deleted incarnation of e")
	}

	// Watching resumed after the relist.
	f.create(t, "z", "")
	rec.expect(t, "add ns/z")
}

func TestWatchResumesWithoutGapsOrDuplicates(t *testing.T) {
	f := newFixture(t)
	rec := newRecorder()
	f.inf.AddEventHandler(rec)
	f.run(t)
	const rounds, perRound = 5, 4
	var want []string
	for r := range rounds {
		f.waitWatching(t)
		for n := range perRound {
			name := fmt.Sprintf("p%d-%d", r, n)
			f.create(t, name, "")
			want = append(want, "add ns/"+name)
			if n == 1 {
				// Drop mid-stream: some of this round's events were sent,
				// others must come from the resumed watch.
				f.srv.DropWatches()
			}
		}
		f.setNode(t, fmt.Sprintf("p%d-0", r), "n1")
		want = append(want, fmt.Sprintf("update ns/p%d-0 >n1", r))
	}
	rec.expect(t, want...)
	rec.quiet(t)
	f.assertMirrors(t)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for n := 1; n < len(rec.rv); n++ {
		if rec.rv[n] <= rec.rv[n-1] {
			t.Fatalf("revisions not strictly increasing: %v", rec.rv)
		}
	}
}

func TestLateHandler(t *testing.T) {
	f := newFixture(t)
	f.create(t, "a", "")
	f.create(t, "b", "")
	f.run(t)
	early := newRecorder()
	f.inf.AddEventHandler(early) // after Run: gets the cache content too
	late := newRecorder()
	got := early.next(t, 2)
	sort.Strings(got)
	if fmt.Sprint(got) != "[add ns/a add ns/b]" {
		t.Fatalf("handler added after sync got %q", got)
	}
	f.create(t, "c", "")
	early.expect(t, "add ns/c")
	f.inf.AddEventHandler(late)
	got = late.next(t, 3)
	sort.Strings(got)
	if fmt.Sprint(got) != "[add ns/a add ns/b add ns/c]" {
		t.Fatalf("late handler got %q", got)
	}
	f.delete(t, "a")
	early.expect(t, "delete ns/a")
	late.expect(t, "delete ns/a")
}

func TestBookmarkAdvancesResourceVersion(t *testing.T) {
	f := newFixture(t)
	f.create(t, "a", "")
	f.run(t)
	f.waitWatching(t)
	leases := client.For[*coordinationv1.Lease](f.srv.Conn())
	if _, err := leases.Create(f.ctx, &coordinationv1.Lease{Metadata: &metav1.ObjectMeta{Name: "l", Namespace: "ns"}}); err != nil {
		t.Fatal(err)
	}
	want := strconv.FormatInt(f.srv.Revision(), 10)
	f.srv.SendBookmarks()
	deadline := time.Now().Add(10 * time.Second)
	for f.inf.LastSyncResourceVersion() != want {
		if time.Now().After(deadline) {
			t.Fatalf("LastSyncResourceVersion %q, want %q after a bookmark", f.inf.LastSyncResourceVersion(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestResync(t *testing.T) {
	f := newFixture(t)
	f.create(t, "a", "n1")
	f.inf = informer.New(f.pods, informer.Options{ResyncPeriod: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	rec := newRecorder()
	f.inf.AddEventHandler(rec)
	f.run(t)
	rec.expect(t, "add ns/a")
	rec.expect(t, "update ns/a n1>n1")
}
