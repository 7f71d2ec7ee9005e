// Package testcluster starts what controller tests run against: a real
// in-process apiserver on embedded etcd, nodes registered through the API,
// and a simulated node-agent for those nodes.
//
// The simulated node-agent does, through the API, what a scheduler and the
// nodes' node-agents would do for a pod: it binds unbound pods to a node
// (round robin), then writes their status with UpdateStatus (Running with a
// pod IP and Ready, or Succeeded/Failed for pods that run to completion), and
// finishes graceful deletions of pods on its nodes with a zero grace period.
// Tests steer it with Cluster.Outcome and Cluster.Pause.
package testcluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/informer"
	"bosun.dev/services/apiserver/apiserver"
	"bosun.dev/services/controller/internal/controller"
)

// Outcome is what the simulated node-agent makes of a pod.
type Outcome struct {
	// Phase is the pod's phase: Running, Succeeded or Failed.
	Phase string
	// Ready is the Ready condition of a Running pod.
	Ready bool
}

// Cluster is a running apiserver with simulated nodes.
type Cluster struct {
	T      testing.TB
	Server *apiserver.APIServer
	// Conn reaches the apiserver.
	Conn *grpc.ClientConn
	// Nodes are the names of the registered nodes.
	Nodes []string
	// Outcome decides each bound pod's status; by default pods with
	// restartPolicy Never or OnFailure succeed, others run and are ready.
	Outcome func(*corev1.Pod) Outcome

	paused atomic.Bool
	nextIP atomic.Uint32
	rr     atomic.Uint32
}

// Options configure a cluster.
type Options struct {
	// Nodes is the number of simulated nodes; 0 starts no node-agent.
	Nodes int
	// NodeLabels labels node i (may be nil).
	NodeLabels func(i int) map[string]string
}

// Start starts an apiserver and the simulated nodes; everything stops when
// the test ends.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := apiserver.New(ctx, apiserver.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Insecure: true,
		CompactionInterval: -1, BookmarkInterval: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = s.Run(ctx) }()
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(client.MaxMessageSize)))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	c := &Cluster{T: t, Server: s, Conn: conn}
	t.Cleanup(func() { cancel(); wg.Wait(); conn.Close() })
	Eventually(t, 30*time.Second, func() error {
		_, err := client.For[*corev1.Namespace](conn).Get(ctx, "", "default")
		return err
	})
	for i := range o.Nodes {
		var lbls map[string]string
		if o.NodeLabels != nil {
			lbls = o.NodeLabels(i)
		}
		c.AddNode(fmt.Sprintf("node-%d", i), lbls, nil)
	}
	if o.Nodes > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); c.runNodeAgent(ctx) }()
	}
	return c
}

// AddNode registers a Ready node through the API.
func (c *Cluster) AddNode(name string, lbls map[string]string, taints []*corev1.Taint) *corev1.Node {
	c.T.Helper()
	n, err := client.For[*corev1.Node](c.Conn).Create(context.Background(), &corev1.Node{
		Metadata: &metav1.ObjectMeta{Name: name, Labels: lbls},
		Spec:     &corev1.NodeSpec{Taints: taints},
		Status: &corev1.NodeStatus{
			Capacity:    map[string]string{"cpu": "64", "memory": "256Gi", "pods": "5000"},
			Allocatable: map[string]string{"cpu": "64", "memory": "256Gi", "pods": "5000"},
			Conditions:  []*corev1.NodeCondition{{Type: "Ready", Status: "True"}},
			Addresses:   []*corev1.NodeAddress{{Type: "InternalIP", Address: "192.0.2.1"}},
		},
	})
	if err != nil {
		c.T.Fatal(err)
	}
	c.Nodes = append(c.Nodes, name)
	return n
}

// Pause stops (true) or resumes (false) the simulated node-agent: while
// paused, pods are neither bound, started nor finished deleting.
func (c *Cluster) Pause(p bool) { c.paused.Store(p) }

// Context gives a controller a context on its own connection with fresh
// informers; run them with RunInformers.
func (c *Cluster) Context(conn grpc.ClientConnInterface) *controller.Context {
	if conn == nil {
		conn = c.Conn
	}
	return &controller.Context{
		Conn:      conn,
		Informers: controller.NewInformers(conn, controller.InformerOptions{Logger: quiet()}),
		Log:       quiet(),
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Runner is a controller.
type Runner interface {
	Run(ctx context.Context, workers int)
}

// Run runs the informers of cc and the controllers until the returned stop
// is called (or the test ends); stop waits for them to return.
func Run(t testing.TB, cc *controller.Context, runners ...Runner) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); cc.Informers.Run(ctx) }()
	for _, r := range runners {
		wg.Add(1)
		go func() { defer wg.Done(); r.Run(ctx, 2) }()
	}
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// Eventually polls f every 20 ms until it returns nil, failing the test with
// f's last error after timeout.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Pods lists the pods in namespace matching selector, straight from the API.
func (c *Cluster) Pods(namespace, selector string) []*corev1.Pod {
	c.T.Helper()
	pods, _, err := client.For[*corev1.Pod](c.Conn).ListAll(context.Background(), client.ListOptions{Namespace: namespace, LabelSelector: selector})
	if err != nil {
		c.T.Fatal(err)
	}
	return pods
}

// LivePods are Pods without those being deleted or finished.
func (c *Cluster) LivePods(namespace, selector string) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range c.Pods(namespace, selector) {
		if controller.IsPodActive(p) {
			out = append(out, p)
		}
	}
	return out
}

func defaultOutcome(p *corev1.Pod) Outcome {
	switch p.GetSpec().GetRestartPolicy() {
	case "Never", "OnFailure":
		for _, ct := range p.GetSpec().GetContainers() {
			if strings.Contains(strings.Join(ct.GetCommand(), " "), "exit 1") {
				return Outcome{Phase: controller.PodFailed}
			}
		}
		return Outcome{Phase: controller.PodSucceeded}
	}
	return Outcome{Phase: controller.PodRunning, Ready: true}
}

// runNodeAgent simulates the scheduler and the node-agents of c.Nodes.
func (c *Cluster) runNodeAgent(ctx context.Context) {
	pods := informer.New(client.For[*corev1.Pod](c.Conn), informer.Options{Logger: quiet()})
	q := controller.NewQueue("", nil)
	enqueue := func(p *corev1.Pod) { q.Add(api.KeyOf(p)) }
	pods.AddEventHandler(informer.HandlerFuncs[*corev1.Pod]{
		AddFunc: enqueue, UpdateFunc: func(_, p *corev1.Pod) { enqueue(p) },
	})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = pods.Run(ctx) }()
	// Keys skipped while paused are requeued once resumed.
	var skipped sync.Map
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if c.paused.Load() {
					continue
				}
				skipped.Range(func(k, _ any) bool {
					skipped.Delete(k)
					q.Add(k.(string))
					return true
				})
			}
		}
	}()
	controller.RunWorkers(ctx, q, 16, func(ctx context.Context, key string) error {
		if c.paused.Load() {
			skipped.Store(key, true)
			return nil
		}
		ns, name, _ := strings.Cut(key, "/")
		p, ok := pods.Get(ns, name)
		if !ok {
			return nil
		}
		return c.step(ctx, p)
	}, quiet())
	wg.Wait()
}

func (c *Cluster) step(ctx context.Context, p *corev1.Pod) error {
	podAPI := client.For[*corev1.Pod](c.Conn)
	m := p.GetMetadata()
	if m.GetDeletionTimestamp() != nil {
		if p.GetSpec().GetNodeName() == "" {
			return nil
		}
		_, err := podAPI.Delete(ctx, m.Namespace, m.Name, client.DeleteOptions{GracePeriodSeconds: proto.Int64(0), Preconditions: &metav1.Preconditions{Uid: m.Uid}})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	}
	if p.GetSpec().GetNodeName() == "" {
		node := c.Nodes[int(c.rr.Add(1))%len(c.Nodes)]
		_, err := corev1.NewPodServiceClient(c.Conn).BindPod(ctx, &corev1.BindPodRequest{Namespace: m.Namespace, Name: m.Name, NodeName: node, Uid: m.Uid})
		if apierrors.IsNotFound(err) || apierrors.IsAlreadyBound(err) || apierrors.IsConflict(err) || apierrors.Code(err) == codes.FailedPrecondition {
			return nil
		}
		return err
	}
	outcome := defaultOutcome
	if c.Outcome != nil {
		outcome = c.Outcome
	}
	want := outcome(p)
	st := proto.Clone(p.GetStatus()).(*corev1.PodStatus)
	if st == nil {
		st = &corev1.PodStatus{}
	}
	phase := st.GetPhase()
	if phase == controller.PodSucceeded || phase == controller.PodFailed {
		return nil
	}
	now := timestamppb.Now()
	if st.PodIp == "" {
		n := c.nextIP.Add(1)
		st.PodIp = fmt.Sprintf("10.%d.%d.%d", 100+n>>16&0xff, n>>8&0xff, n&0xff)
		st.PodIps = []*corev1.PodIP{{Ip: st.PodIp}}
		st.HostIp = "192.0.2.1"
		st.StartTime = now
	}
	st.Phase = want.Phase
	ready := "False"
	if want.Phase == controller.PodRunning && want.Ready {
		ready = "True"
	}
	var cond *corev1.PodCondition
	for _, pc := range st.Conditions {
		if pc.Type == "Ready" {
			cond = pc
		}
	}
	if cond == nil {
		cond = &corev1.PodCondition{Type: "Ready"}
		st.Conditions = append(st.Conditions, cond)
	}
	if cond.Status != ready {
		cond.Status = ready
		cond.LastTransitionTime = now
	}
	if proto.Equal(st, p.GetStatus()) {
		return nil
	}
	next := proto.Clone(p).(*corev1.Pod)
	next.Status = st
	_, err := podAPI.UpdateStatus(ctx, next)
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}
