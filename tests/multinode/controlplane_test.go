package multinode

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/tests/conformance/harness"
)

// retriable are the codes a client retries: the apiserver or etcd
// unavailable for a moment, or a call that timed out meanwhile.
var retriable = map[codes.Code]bool{codes.Unavailable: true, codes.DeadlineExceeded: true}

// writer creates ConfigMaps one after another, each retried until it is
// stored, and keeps the names the apiserver acknowledged.
type writer struct {
	c      *Cluster
	mu     sync.Mutex
	acked  []string
	errs   map[codes.Code]int
	failed []string
	// slowest is the longest a write took, retries included, and when.
	slowest   time.Duration
	slowestAt time.Time
	stop      chan struct{}
	done      chan struct{}
	once      sync.Once
}

func startWriter(c *Cluster) *writer {
	w := &writer{c: c, errs: map[codes.Code]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		cms := client.For[*corev1.ConfigMap](c.Conn)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			name := fmt.Sprintf("w-%04d", i)
			errs := map[codes.Code]int{}
			attempts := 0
			began := time.Now()
			err := retriedCall(60*time.Second, errs, func(ctx context.Context) error {
				attempts++
				_, err := cms.Create(ctx, &corev1.ConfigMap{
					Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default"},
					Data:     map[string]string{"i": fmt.Sprint(i)},
				})
				if attempts > 1 && codeOf(err) == codes.AlreadyExists {
					return nil // an earlier attempt was stored though its answer was lost
				}
				return err
			})
			w.mu.Lock()
			if took := time.Since(began); took > w.slowest {
				w.slowest, w.slowestAt = took, began
			}
			for code, k := range errs {
				w.errs[code] += k
			}
			if err != nil {
				w.failed = append(w.failed, fmt.Sprintf("%s: %v", name, err))
			} else {
				w.acked = append(w.acked, name)
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *writer) finish() { w.once.Do(func() { close(w.stop) }); <-w.done }

func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// waitProgress waits until the writer has had n more writes acknowledged.
func (w *writer) waitProgress(t *testing.T, n int) {
	t.Helper()
	start := w.count()
	harness.Eventually(t, 60*time.Second, fmt.Sprintf("%d more writes acknowledged", n), func() error {
		if got := w.count() - start; got < n {
			return fmt.Errorf("%d", got)
		}
		return nil
	})
}

// The apiserver is killed with SIGKILL and restarted while a client writes
// and a Deployment scales, then the etcd leader (one of three members) is
// killed with SIGKILL: clients see only retriable errors and every retried
// call succeeds, every acknowledged write is present afterwards, the
// Deployment converges, and every recorded watch stream, resumed across the
// restart, matches etcd's history.
func TestAPIServerRestartAndEtcdMemberLoss(t *testing.T) {
	c := StartLayout(t, Layout{Nodes: 2, EtcdMembers: 3})
	ctx := context.Background()
	rec := c.RecordWatches(t, KindPod, KindDeployment, KindReplicaSet, "ConfigMap")
	deployWeb(t, c, 2)
	t.Cleanup(func() { removeConfigMaps(t, c) })

	w := startWriter(c)
	defer w.finish()
	w.waitProgress(t, 10)

	// The apiserver dies mid-work: a scale is in flight behind it.
	killed := time.Now()
	c.KillAPIServer()
	scaleErrs := map[codes.Code]int{}
	scaled := make(chan error, 1)
	go func() {
		scaled <- retriedCall(90*time.Second, scaleErrs, func(ctx context.Context) error {
			d, err := client.For[*appsv1.Deployment](c.Conn).Get(ctx, "default", "web")
			if err != nil {
				return err
			}
			n := int32(4)
			d.Spec.Replicas = &n
			_, err = client.For[*appsv1.Deployment](c.Conn).Update(ctx, d)
			return err
		})
	}()
	time.Sleep(time.Second)
	c.RestartAPIServer(t)
	serving := time.Since(killed)
	if err := <-scaled; err != nil {
		t.Fatalf("scaling web to 4 across the apiserver restart: %v", err)
	}
	scaledAfter := time.Since(killed)
	w.waitProgress(t, 10)
	writesAfter := time.Since(killed)
	waitWebRunning(t, c, 4, 120*time.Second)
	t.Logf("apiserver restart: serving again %.2f s after kill -9 (1 s down on purpose); the scale retried through it landed after %.2f s, writes flowing again after %.2f s",
		serving.Seconds(), scaledAfter.Seconds(), writesAfter.Seconds())

	// The etcd leader dies.
	cli := c.EtcdClient(t)
	var leader *EtcdMember
	for _, m := range c.Etcd {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := cli.Status(sctx, m.ClientURL)
		cancel()
		if err == nil && st.Header.MemberId == st.Leader {
			leader = m
		}
	}
	if leader == nil {
		t.Fatal("no etcd member says it is the leader")
	}
	before := w.count()
	etcdKilled := time.Now()
	leader.Kill()
	w.waitProgress(t, 20)
	etcdRecovered := time.Since(etcdKilled)
	t.Logf("etcd: killed the leader %s of 3 members; %d writes acknowledged within %.2f s after it", leader.Name, w.count()-before, etcdRecovered.Seconds())
	// A Deployment change through the 2 remaining members.
	if err := retriedCall(60*time.Second, scaleErrs, func(ctx context.Context) error {
		d, err := client.For[*appsv1.Deployment](c.Conn).Get(ctx, "default", "web")
		if err != nil {
			return err
		}
		n := int32(3)
		d.Spec.Replicas = &n
		_, err = client.For[*appsv1.Deployment](c.Conn).Update(ctx, d)
		return err
	}); err != nil {
		t.Fatalf("scaling web to 3 with one etcd member down: %v", err)
	}
	waitWebRunning(t, c, 3, 120*time.Second)
	// The member comes back and catches up.
	leader.Start(t)
	harness.Eventually(t, 30*time.Second, leader.Name+" back in the cluster", func() error {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := cli.Status(sctx, leader.ClientURL)
		return err
	})
	w.finish()

	// Nothing lost: every acknowledged write is there, read through the
	// apiserver and from the member that was down.
	cms, _, err := client.For[*corev1.ConfigMap](c.Conn).ListAll(ctx, client.ListOptions{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, cm := range cms {
		stored[cm.GetMetadata().GetName()] = true
	}
	var lost []string
	for _, name := range w.acked {
		if !stored[name] {
			lost = append(lost, name)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d acknowledged writes lost: %v", len(lost), lost)
	}
	if len(w.failed) > 0 {
		t.Errorf("writes that never succeeded though retried for 60 s: %v", w.failed)
	}
	harness.Eventually(t, 30*time.Second, leader.Name+" has every write", func() error {
		mcli, err := clientv3.New(clientv3.Config{Endpoints: []string{leader.ClientURL}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return err
		}
		defer mcli.Close()
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		resp, err := mcli.Get(sctx, "/bosun/core/configmaps/default/", clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithSerializable())
		if err != nil {
			return err
		}
		if int(resp.Count) < len(w.acked) {
			return fmt.Errorf("%d keys, %d acknowledged", resp.Count, len(w.acked))
		}
		return nil
	})
	all := map[codes.Code]int{}
	for code, k := range w.errs {
		all[code] += k
	}
	for code, k := range scaleErrs {
		all[code] += k
	}
	var seen []string
	for code, k := range all {
		seen = append(seen, fmt.Sprintf("%s x%d", code, k))
		if !retriable[code] {
			t.Errorf("clients saw %d errors %s, which a client does not retry", k, code)
		}
	}
	sort.Strings(seen)
	t.Logf("control-plane faults: %d writes acknowledged, %d lost, errors seen and retried: [%s]; slowest write %.2f s, begun %.2f s after the apiserver's kill (the etcd leader's kill was at %.2f s)",
		len(w.acked), len(lost), strings.Join(seen, ", "), w.slowest.Seconds(), w.slowestAt.Sub(killed).Seconds(), etcdKilled.Sub(killed).Seconds())
	c.CheckFinalState(t)
	rec.Check(t)

	t.Run("ForegroundDeletionAfterRestart", func(t *testing.T) {
		// Watches resumed from before the restarted apiserver's cache window
		// are served by etcd and must still carry bookmarks, or the garbage
		// collector never sees its quiet caches catch up.
		deleteWeb(t, c, metav1.DeletePropagation_DELETE_PROPAGATION_FOREGROUND)
	})
	// Whatever the foreground deletion left (nothing when it passed) goes in
	// the background.
	deleteWeb(t, c, metav1.DeletePropagation_DELETE_PROPAGATION_BACKGROUND)
}

// deleteWeb deletes the web Deployment with the given propagation and
// waits until its pods are gone.
func deleteWeb(t *testing.T, c *Cluster, policy metav1.DeletePropagation) {
	t.Helper()
	ctx := context.Background()
	if _, err := client.For[*appsv1.Deployment](c.Conn).Delete(ctx, "default", "web", client.DeleteOptions{PropagationPolicy: policy}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("deleting the Deployment (%s): %v", policy, err)
	}
	start := time.Now()
	harness.Eventually(t, 60*time.Second, "the Deployment's pods gone", func() error {
		pods, err := deploymentPods(ctx, c)
		if err != nil {
			return err
		}
		if len(pods) > 0 {
			return fmt.Errorf("pods %s", describePods(pods))
		}
		return nil
	})
	t.Logf("deleting web (%s): its pods gone after %.2f s", policy, time.Since(start).Seconds())
}

// removeConfigMaps deletes the writer's ConfigMaps.
func removeConfigMaps(t *testing.T, c *Cluster) {
	ctx := context.Background()
	cms, _, err := client.For[*corev1.ConfigMap](c.Conn).ListAll(ctx, client.ListOptions{Namespace: "default"})
	if err != nil {
		t.Logf("listing ConfigMaps: %v", err)
		return
	}
	for _, cm := range cms {
		if strings.HasPrefix(cm.GetMetadata().GetName(), "w-") {
			_, _ = client.For[*corev1.ConfigMap](c.Conn).Delete(ctx, "default", cm.GetMetadata().GetName(), client.DeleteOptions{})
		}
	}
}
