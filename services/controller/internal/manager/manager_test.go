package manager

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	clocktesting "k8s.io/utils/clock/testing"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/leaderelection"
	"bosun.dev/services/controller/internal/replicaset"
	"bosun.dev/services/controller/internal/testcluster"
)

// replica is one controller manager process on its own connection, counting
// the pod writes the apiserver accepted from it.
type replica struct {
	m         *Manager
	reg       *prometheus.Registry
	podWrites atomic.Int32
	stop      func()
}

func startReplica(t *testing.T, c *testcluster.Cluster, id string, mutate func(*Config)) *replica {
	r := &replica{reg: prometheus.NewRegistry()}
	conn, err := grpc.NewClient(c.Server.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			err := invoker(ctx, method, req, reply, cc, opts...)
			if err == nil && strings.HasPrefix(method, "/bosun.core.v1.PodService/") && !strings.Contains(method, "Get") && !strings.Contains(method, "List") {
				r.podWrites.Add(1)
			}
			return err
		}))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Conn: conn, Workers: map[string]int{replicaset.Name: 3},
		LeaderElect: true, Lock: leaderelection.Lock{Namespace: "bosun-system", Name: "controller"}, Identity: id,
		LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 250 * time.Millisecond,
		Registry: r.reg,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	r.m, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = r.m.Run(ctx) }()
	var once sync.Once
	r.stop = func() { once.Do(func() { cancel(); wg.Wait(); conn.Close() }) }
	t.Cleanup(r.stop)
	return r
}

func newRS(replicas int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		Metadata: &metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: &appsv1.ReplicaSetSpec{
			Replicas: proto.Int32(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: &corev1.PodTemplateSpec{
				Metadata: &metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:     &corev1.PodSpec{Containers: []*corev1.Container{{Name: "c", Image: "img:1"}}},
			},
		},
	}
}

func scaleTo(t *testing.T, c *testcluster.Cluster, n int32) {
	t.Helper()
	api := client.For[*appsv1.ReplicaSet](c.Conn)
	err := client.RetryOnConflict(context.Background(), client.DefaultRetry, func() error {
		rs, err := api.Get(context.Background(), "default", "web")
		if err != nil {
			return err
		}
		rs.Spec.Replicas = proto.Int32(n)
		_, err = api.Update(context.Background(), rs)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func exactly(t *testing.T, c *testcluster.Cluster, n int) {
	t.Helper()
	testcluster.Eventually(t, 30*time.Second, func() error {
		if got := len(c.LivePods("default", "app=web")); got != n {
			return fmt.Errorf("%d live pods, want %d", got, n)
		}
		return nil
	})
}

// Two replicas where the old leader still believes it leads: its election
// clock is frozen, so it never notices it stopped renewing, while the other
// replica takes the Lease over. The old leader's controllers keep running,
// but every write they try is refused by the lease gate; the new leader
// alone converges the ReplicaSet, through scaling and pods deleted behind
// its back, and no observed state has more pods than asked for.
func TestStaleLeaderWritesNothing(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 2})
	mon := c.Watch(t, "default", "app=web", nil)
	frozen := clocktesting.NewFakeClock(time.Now())
	old := startReplica(t, c, "old", func(cfg *Config) { cfg.Clock = frozen })
	testcluster.Eventually(t, 20*time.Second, func() error {
		if !old.m.IsLeader() {
			return fmt.Errorf("first replica not leading yet")
		}
		return nil
	})
	if _, err := client.For[*appsv1.ReplicaSet](c.Conn).Create(context.Background(), newRS(10)); err != nil {
		t.Fatal(err)
	}
	exactly(t, c, 10)
	if old.podWrites.Load() == 0 {
		t.Fatal("the first leader wrote no pods")
	}

	next := startReplica(t, c, "new", nil)
	testcluster.Eventually(t, 20*time.Second, func() error {
		if !next.m.IsLeader() {
			return fmt.Errorf("second replica not leading yet")
		}
		return nil
	})
	if !old.m.IsLeader() {
		t.Fatal("the old leader noticed it lost the lease; the scenario needs it to believe it still leads")
	}
	stale := old.podWrites.Load()

	scaleTo(t, c, 15)
	exactly(t, c, 15)
	for _, p := range c.LivePods("default", "app=web")[:4] {
		if _, err := client.For[*corev1.Pod](c.Conn).Delete(context.Background(), "default", p.Metadata.Name, client.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	exactly(t, c, 15)
	scaleTo(t, c, 5)
	exactly(t, c, 5)
	if got := old.podWrites.Load(); got != stale {
		t.Fatalf("the deposed leader wrote %d pods after losing the lease", got-stale)
	}
	if got := mon.MaxLive(); got > 15 {
		t.Fatalf("saw %d live pods at once, never asked for more than 15", got)
	}
	// The new leader's work queue reported through its metrics.
	families, err := next.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "name" && l.GetValue() == replicaset.Name {
					found[f.GetName()] = true
				}
			}
		}
	}
	for _, want := range []string{"bosun_workqueue_adds_total", "bosun_workqueue_depth", "bosun_workqueue_work_duration_seconds", "bosun_workqueue_retries_total"} {
		if !found[want] {
			t.Errorf("metric %s for the replicaset queue missing (have %v)", want, found)
		}
	}
}

// A leader killed in the middle of creating pods is replaced by a standby,
// which finishes the job with exactly the pods asked for.
func TestStandbyTakesOverFromKilledLeader(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 2})
	mon := c.Watch(t, "default", "app=web", nil)
	first := startReplica(t, c, "first", nil)
	testcluster.Eventually(t, 20*time.Second, func() error {
		if !first.m.IsLeader() {
			return fmt.Errorf("not leading yet")
		}
		return nil
	})
	second := startReplica(t, c, "second", nil)
	if _, err := client.For[*appsv1.ReplicaSet](c.Conn).Create(context.Background(), newRS(60)); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 20*time.Second, func() error {
		if first.podWrites.Load() == 0 {
			return fmt.Errorf("no pods written yet")
		}
		return nil
	})
	first.stop()
	exactly(t, c, 60)
	testcluster.Eventually(t, 20*time.Second, func() error {
		if !second.m.IsLeader() {
			return fmt.Errorf("the standby is not leading")
		}
		return nil
	})
	if got := mon.MaxLive(); got > 60 {
		t.Fatalf("saw %d live pods at once with replicas 60", got)
	}
}

func TestNewRefusesUnknownControllersAndBadWorkerCounts(t *testing.T) {
	conn, _ := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer conn.Close()
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Conn: conn, Controllers: []string{"replicaset", "cronjob"}}, `--controllers: unknown controller "cronjob"`},
		{Config{Conn: conn, Workers: map[string]int{"deploy": 2}}, `--workers: unknown controller "deploy"`},
		{Config{Conn: conn, Workers: map[string]int{"replicaset": 0}}, "--workers: replicaset=0"},
		{Config{Conn: conn, LeaderElect: true}, "Identity is required"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error containing %q", tc.cfg.Controllers, err, tc.want)
		}
	}
}
