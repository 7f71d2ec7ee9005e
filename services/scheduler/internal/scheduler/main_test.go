package scheduler_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/services/apiserver/apiserver"
	"bosun.dev/services/scheduler/internal/framework"
	"bosun.dev/services/scheduler/internal/scheduler"
)

// cluster is a real apiserver on embedded etcd in a temporary directory.
type cluster struct {
	t     *testing.T
	api   *apiserver.APIServer
	conn  *grpc.ClientConn
	pods  *client.Resource[*corev1.Pod]
	nodes *client.Resource[*corev1.Node]
}

func startCluster(t *testing.T, interceptors ...grpc.UnaryServerInterceptor) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts an apiserver on embedded etcd; not a unit test")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := apiserver.New(ctx, apiserver.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Insecure: true,
		CompactionInterval: -1, BookmarkInterval: 100 * time.Millisecond, UnaryInterceptors: interceptors})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); cancel(); <-done })
	c := &cluster{t: t, api: s, conn: conn, pods: client.For[*corev1.Pod](conn), nodes: client.For[*corev1.Node](conn)}
	eventually(t, 30*time.Second, func() error {
		_, err := client.For[*corev1.Namespace](conn).Get(ctx, "", "default")
		return err
	})
	return c
}

func eventually(t *testing.T, limit time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
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

type nodeOpt func(*corev1.Node)

func withLabels(kv ...string) nodeOpt {
	return func(n *corev1.Node) {
		for i := 0; i+1 < len(kv); i += 2 {
			n.Metadata.Labels[kv[i]] = kv[i+1]
		}
	}
}

func withTaint(key, value, effect string) nodeOpt {
	return func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, &corev1.Taint{Key: key, Value: value, Effect: effect})
	}
}

func (c *cluster) addNode(name, cpu, mem string, opts ...nodeOpt) *corev1.Node {
	c.t.Helper()
	n := &corev1.Node{
		Metadata: &metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Spec:     &corev1.NodeSpec{},
		Status: &corev1.NodeStatus{
			Capacity:    map[string]string{"cpu": cpu, "memory": mem, "pods": "110"},
			Allocatable: map[string]string{"cpu": cpu, "memory": mem, "pods": "110"},
			Conditions:  []*corev1.NodeCondition{{Type: "Ready", Status: "True"}},
		},
	}
	for _, o := range opts {
		o(n)
	}
	out, err := c.nodes.Create(context.Background(), n)
	if err != nil {
		c.t.Fatalf("creating node %s: %v", name, err)
	}
	return out
}

type podOpt func(*corev1.Pod)

func requests(cpu, mem string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources = &corev1.ResourceRequirements{Requests: map[string]string{"cpu": cpu, "memory": mem}}
	}
}

func priority(v int32) podOpt { return func(p *corev1.Pod) { p.Spec.Priority = &v } }

func schedulerName(n string) podOpt { return func(p *corev1.Pod) { p.Spec.SchedulerName = n } }

func podLabels(kv ...string) podOpt {
	return func(p *corev1.Pod) {
		if p.Metadata.Labels == nil {
			p.Metadata.Labels = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Metadata.Labels[kv[i]] = kv[i+1]
		}
	}
}

func (c *cluster) addPod(name string, opts ...podOpt) *corev1.Pod {
	c.t.Helper()
	p := &corev1.Pod{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:     &corev1.PodSpec{Containers: []*corev1.Container{{Name: "c", Image: "img:1"}}},
	}
	for _, o := range opts {
		o(p)
	}
	out, err := c.pods.Create(context.Background(), p)
	if err != nil {
		c.t.Fatalf("creating pod %s: %v", name, err)
	}
	return out
}

func (c *cluster) pod(name string) *corev1.Pod {
	c.t.Helper()
	p, err := c.pods.Get(context.Background(), "default", name)
	if err != nil {
		c.t.Fatal(err)
	}
	return p
}

// waitBound waits until the pod is bound and returns its node.
func (c *cluster) waitBound(name string) string {
	c.t.Helper()
	var node string
	eventually(c.t, 30*time.Second, func() error {
		p := c.pod(name)
		if node = p.GetSpec().GetNodeName(); node == "" {
			return fmt.Errorf("pod %s is not bound", name)
		}
		return nil
	})
	return node
}

// startScheduler runs a scheduler against the cluster until the test ends.
func (c *cluster) startScheduler(cfg scheduler.Config) *scheduler.Scheduler {
	c.t.Helper()
	cfg.Conn = c.conn
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.InitialBackoff == 0 {
		cfg.InitialBackoff, cfg.MaxBackoff = 50*time.Millisecond, 200*time.Millisecond
	}
	s, err := scheduler.New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	c.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			c.t.Errorf("scheduler: %v", err)
		}
	})
	return s
}

func condition(p *corev1.Pod, typ string) *corev1.PodCondition {
	for _, c := range p.GetStatus().GetConditions() {
		if c.GetType() == typ {
			return c
		}
	}
	return nil
}

var _ = framework.DefaultSchedulerName

var clientListAll = client.ListOptions{Namespace: "default"}
