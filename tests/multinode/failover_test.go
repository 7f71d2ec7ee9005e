package multinode

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/tests/conformance/harness"
)

// takeoverBound is when a standby that has not taken over counts as broken
// (the lease duration is 4 s; the figure itself is printed).
const takeoverBound = 30 * time.Second

// podTracker watches the web Deployment's pods for a whole scenario: every
// pod ever created, every node each was bound to, and the most pods alive
// (not deleting) at once.
type podTracker struct {
	mu      sync.Mutex
	nodes   map[string]map[string]bool // uid -> nodes it was bound to
	live    map[string]bool            // uid -> alive
	maxLive int
	cancel  context.CancelFunc
	done    chan struct{}
}

func trackWebPods(t *testing.T, c *Cluster) *podTracker {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pt := &podTracker{nodes: map[string]map[string]bool{}, live: map[string]bool{}, cancel: cancel, done: make(chan struct{})}
	pods := client.For[*corev1.Pod](c.Conn)
	list, err := pods.List(ctx, client.ListOptions{Namespace: "default", LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Items {
		pt.observe(client.Added, p)
	}
	from := list.ResourceVersion
	go func() {
		defer close(pt.done)
		for ctx.Err() == nil {
			w, err := pods.Watch(ctx, client.WatchOptions{Namespace: "default", LabelSelector: "app=web", ResourceVersion: from, AllowBookmarks: true})
			if err != nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			for {
				ev, err := w.Next()
				if err != nil {
					break
				}
				from = ev.ResourceVersion
				if ev.Type != client.Bookmark {
					pt.observe(ev.Type, ev.Object)
				}
			}
			w.Stop()
		}
	}()
	t.Cleanup(pt.stop)
	return pt
}

func (pt *podTracker) observe(typ client.EventType, p *corev1.Pod) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	uid := p.GetMetadata().GetUid()
	if pt.nodes[uid] == nil {
		pt.nodes[uid] = map[string]bool{}
	}
	if n := p.GetSpec().GetNodeName(); n != "" {
		pt.nodes[uid][n] = true
	}
	pt.live[uid] = typ != client.Deleted && p.GetMetadata().GetDeletionTimestamp() == nil
	n := 0
	for _, l := range pt.live {
		if l {
			n++
		}
	}
	pt.maxLive = max(pt.maxLive, n)
}

func (pt *podTracker) stop() { pt.cancel(); <-pt.done }

// summary is the pods ever created, those bound to more than one node, and
// the most alive at once.
func (pt *podTracker) summary() (created int, rebound []string, maxLive int) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	for uid, nodes := range pt.nodes {
		if len(nodes) > 1 {
			rebound = append(rebound, fmt.Sprintf("%s bound to %v", uid, nodes))
		}
	}
	return len(pt.nodes), rebound, pt.maxLive
}

// leaseHolder reads the holder of a leader election Lease in bosun-system.
func leaseHolder(ctx context.Context, c *Cluster, name string) (string, error) {
	l, err := client.For[*coordinationv1.Lease](c.Conn).Get(ctx, "bosun-system", name)
	if err != nil {
		return "", err
	}
	return l.GetSpec().GetHolderIdentity(), nil
}

// The scheduler's and the controller's leaders die with SIGKILL right after
// a Deployment is scaled from 2 to 8: their standbys take over, the scale
// completes, and nothing is done twice: 8 pods created in all (no
// ReplicaSet over-creating, never more than 8 alive), each bound once, one
// ReplicaSet, each pod's container running on exactly one node.
func TestLeaderFailoverMidScale(t *testing.T) {
	c := StartLayout(t, Layout{Nodes: 3, Replicas: 2})
	ctx := context.Background()
	rec := c.RecordWatches(t, KindPod, KindReplicaSet, KindDeployment)
	deployWeb(t, c, 2)
	pt := trackWebPods(t, c)

	leaders := map[string]string{}
	for _, svc := range []string{"scheduler", "controller"} {
		harness.Eventually(t, 30*time.Second, svc+" leader elected", func() error {
			h, err := leaseHolder(ctx, c, svc)
			if err != nil {
				return err
			}
			if h == "" {
				return fmt.Errorf("no holder")
			}
			leaders[svc] = h
			return nil
		})
	}
	procOf := func(svc, identity string) *Process {
		for i, p := range c.Control[svc] {
			if identity == svc+"-"+strconv.Itoa(i+1) {
				return p
			}
		}
		t.Fatalf("no %s replica is %q (the Lease's holder)", svc, identity)
		return nil
	}

	// Mid-work: the scale is accepted, then both leaders die at once.
	const target = 8
	harness.Eventually(t, 10*time.Second, "scaling web to 8", func() error {
		d, err := client.For[*appsv1.Deployment](c.Conn).Get(ctx, "default", "web")
		if err != nil {
			return err
		}
		n := int32(target)
		d.Spec.Replicas = &n
		_, err = client.For[*appsv1.Deployment](c.Conn).Update(ctx, d)
		return err
	})
	killed := time.Now()
	for _, svc := range []string{"scheduler", "controller"} {
		procOf(svc, leaders[svc]).Kill()
	}
	t.Logf("scaled web 2 -> %d and killed the leaders %s and %s", target, leaders["scheduler"], leaders["controller"])

	takeover := map[string]time.Duration{}
	for len(takeover) < 2 {
		for _, svc := range []string{"scheduler", "controller"} {
			if _, ok := takeover[svc]; ok {
				continue
			}
			h, err := leaseHolder(ctx, c, svc)
			if err == nil && h != "" && h != leaders[svc] {
				takeover[svc] = time.Since(killed)
				if p := procOf(svc, h); p.Exited() {
					t.Fatalf("%s Lease taken by %s, which is not running", svc, h)
				}
			}
		}
		if time.Since(killed) > takeoverBound {
			t.Fatalf("no standby took over within %v: taken over %v", takeoverBound, takeover)
		}
		time.Sleep(50 * time.Millisecond)
	}
	pods := waitWebRunning(t, c, target, 120*time.Second)
	allRunning := time.Since(killed)
	t.Logf("leader failover: scheduler standby leads %.2f s and controller standby %.2f s after kill -9 of the leaders; %d pods Running %.2f s after it",
		takeover["scheduler"].Seconds(), takeover["controller"].Seconds(), target, allRunning.Seconds())

	// No double work.
	rss, _, err := client.For[*appsv1.ReplicaSet](c.Conn).ListAll(ctx, client.ListOptions{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rss) != 1 {
		t.Errorf("%d ReplicaSets for the Deployment, want 1", len(rss))
	} else if r := rss[0].GetStatus().GetReplicas(); r != target {
		t.Errorf("ReplicaSet status.replicas = %d at rest, want %d", r, target)
	}
	time.Sleep(2 * time.Second) // a late duplicate create or bind would show here
	created, rebound, maxLive := pt.summary()
	t.Logf("leader failover: %d pods created in all, at most %d alive at once, %d bound twice", created, maxLive, len(rebound))
	if created != target {
		t.Errorf("%d pods created for a Deployment scaled 2 -> %d with no failure: double work", created, target)
	}
	if maxLive > target {
		t.Errorf("%d pods alive at once, more than the %d replicas", maxLive, target)
	}
	for _, r := range rebound {
		t.Errorf("pod bound twice: %s", r)
	}
	runningOnNodes := map[string][]string{}
	for _, nd := range c.Nodes {
		for uid := range nd.TaskPIDs(t) {
			runningOnNodes[uid] = append(runningOnNodes[uid], nd.Name)
		}
	}
	for _, p := range pods {
		if on := runningOnNodes[p.GetMetadata().GetUid()]; len(on) != 1 || on[0] != p.GetSpec().GetNodeName() {
			t.Errorf("pod %s bound to %s runs on %v", p.GetMetadata().GetName(), p.GetSpec().GetNodeName(), on)
		}
	}
	c.CheckFinalState(t)
	rec.Check(t)
}
