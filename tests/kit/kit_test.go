// Package kit tests pkg/ — the informer and leader election — against the
// real apiserver on real etcd, so that the kit's assumptions about the API
// (watch resumption, compaction errors, compare-and-set) are checked against
// the implementation and not only against pkg/apitest's fake.
package kit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/informer"
	"bosun.dev/pkg/leaderelection"
	"bosun.dev/services/apiserver/apiserver"
)

func startAPIServer(t *testing.T) (*apiserver.APIServer, *grpc.ClientConn) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := apiserver.New(ctx, apiserver.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Insecure: true,
		CompactionInterval: -1, BookmarkInterval: 100 * time.Millisecond})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); cancel(); <-done })
	eventually(t, func() error {
		_, err := client.For[*corev1.Namespace](conn).Get(ctx, "", "default")
		return err
	})
	return s, conn
}

func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newPod(name string) *corev1.Pod {
	return &corev1.Pod{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:     &corev1.PodSpec{Containers: []*corev1.Container{{Name: "c", Image: "img:1"}}},
	}
}

// The informer follows the real apiserver through creates, updates and
// deletes, and after a compaction that strands its watch it relists and
// converges, delivering the deletes it missed.
func TestInformerFollowsTheAPIServerAcrossCompaction(t *testing.T) {
	s, conn := startAPIServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pods := client.For[*corev1.Pod](conn)
	for i := 0; i < 5; i++ {
		if _, err := pods.Create(ctx, newPod(fmt.Sprintf("p%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	inf := informer.New(pods, informer.Options{})
	var mu sync.Mutex
	live := map[string]bool{}
	inf.AddEventHandler(informer.HandlerFuncs[*corev1.Pod]{
		AddFunc:    func(p *corev1.Pod) { mu.Lock(); live[p.Metadata.Name] = true; mu.Unlock() },
		DeleteFunc: func(p *corev1.Pod) { mu.Lock(); delete(live, p.Metadata.Name); mu.Unlock() },
	})
	go func() { _ = inf.Run(ctx) }()
	if !informer.WaitForCacheSync(ctx, inf) {
		t.Fatal("informer did not sync")
	}
	same := func(want ...string) func() error {
		return func() error {
			mu.Lock()
			defer mu.Unlock()
			if len(live) != len(want) {
				return fmt.Errorf("handlers saw %v, want %v", live, want)
			}
			for _, n := range want {
				if !live[n] {
					return fmt.Errorf("handlers saw %v, want %v", live, want)
				}
			}
			if got := len(inf.List()); got != len(want) {
				return fmt.Errorf("cache holds %d pods, want %d", got, len(want))
			}
			return nil
		}
	}
	eventually(t, same("p0", "p1", "p2", "p3", "p4"))
	if _, err := pods.Delete(ctx, "default", "p0", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, same("p1", "p2", "p3", "p4"))

	// Compact everything, then change the world in ways the informer must
	// learn from a relist: its next watch resumes from a compacted revision.
	for i := 1; i < 5; i++ {
		if _, err := pods.Delete(ctx, "default", fmt.Sprintf("p%d", i), client.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	last, err := pods.Create(ctx, newPod("fresh"))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, same("fresh"))
	var rev int64
	fmt.Sscan(last.Metadata.ResourceVersion, &rev)
	if err := s.Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Create(ctx, newPod("after-compaction")); err != nil {
		t.Fatal(err)
	}
	eventually(t, same("fresh", "after-compaction"))
}

// Three electors on one Lease through the real apiserver: exactly one leads
// at a time, fences grow, and when the leader stops a standby takes over.
func TestLeaderElectionOnTheRealAPIServer(t *testing.T) {
	_, conn := startAPIServer(t)
	var leaders atomic.Int32
	var maxSeen atomic.Int32
	type term struct {
		id    string
		token int64
	}
	terms := make(chan term, 16)
	cancels := map[string]context.CancelFunc{}
	var wg sync.WaitGroup
	for _, id := range []string{"a", "b", "c"} {
		ctx, cancel := context.WithCancel(context.Background())
		cancels[id] = cancel
		e, err := leaderelection.New(leaderelection.Config{
			Conn: conn, Lock: leaderelection.Lock{Namespace: "bosun-system", Name: "test-lock"}, Identity: id,
			LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 100 * time.Millisecond,
			Callbacks: leaderelection.Callbacks{
				OnStartedLeading: func(ctx context.Context, f leaderelection.Fence) {
					n := leaders.Add(1)
					for {
						m := maxSeen.Load()
						if n <= m || maxSeen.CompareAndSwap(m, n) {
							break
						}
					}
					terms <- term{id, f.Token}
					<-ctx.Done()
					leaders.Add(-1)
				},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = e.Run(ctx) }()
	}
	defer func() {
		for _, c := range cancels {
			c()
		}
		wg.Wait()
	}()
	var first term
	select {
	case first = <-terms:
	case <-time.After(20 * time.Second):
		t.Fatal("no leader elected")
	}
	cancels[first.id]() // the leader steps down and releases the lease
	select {
	case next := <-terms:
		if next.id == first.id || next.token <= first.token {
			t.Fatalf("after %+v stepped down the next term was %+v: want another candidate with a larger fence", first, next)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no standby took over")
	}
	if m := maxSeen.Load(); m != 1 {
		t.Fatalf("%d candidates led at once", m)
	}
}
