package checker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	clocktesting "k8s.io/utils/clock/testing"

	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/services/apiserver/apiserver"
	"bosun.dev/services/health-checker/internal/lease"
	"bosun.dev/services/health-checker/internal/nodestatus"
	"bosun.dev/services/health-checker/internal/probe"
)

// startAPIServer runs a real apiserver on embedded etcd for the test.
func startAPIServer(t *testing.T) *grpc.ClientConn {
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
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); cancel(); <-done })
	eventually(t, "apiserver serving", func() error {
		_, err := client.For[*corev1.Namespace](conn).Get(ctx, "", "default")
		return err
	})
	// The apiserver keeps the node-lease namespace from its start.
	if _, err := client.For[*corev1.Namespace](conn).Get(ctx, "", lease.DefaultNamespace); err != nil {
		t.Fatal(err)
	}
	return conn
}

// eventually polls f until it succeeds, failing the test after 30 s.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// agent plays a node-agent: it registers its Node, renews its Lease and
// serves gRPC health on loopback.
type agent struct {
	w      *world
	name   string
	srv    *grpc.Server
	health *health.Server
	paused chan struct{} // closed = answering; replaced while paused
	mu     sync.Mutex
}

// world is an apiserver, a fake clock, node-agents played by the test, and
// a health-checker whose passes the test drives.
type world struct {
	t      *testing.T
	ctx    context.Context
	conn   *grpc.ClientConn
	clock  *clocktesting.FakeClock
	chk    *Checker
	prober *probe.Prober
	agents map[string]*agent
	nodes  *client.Resource[*corev1.Node]
	pods   *client.Resource[*corev1.Pod]
	leases *client.Resource[*coordinationv1.Lease]
	events *client.Resource[*corev1.Event]
}

func testOptions() Options {
	o := DefaultOptions()
	o.LeaderElect = false
	o.ProbeTimeout = 300 * time.Millisecond
	return o
}

func newWorld(t *testing.T, opts Options) *world {
	t.Helper()
	conn := startAPIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	w := &world{
		t: t, ctx: ctx, conn: conn, clock: clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		agents: map[string]*agent{},
		nodes:  client.For[*corev1.Node](conn), pods: client.For[*corev1.Pod](conn),
		leases: client.For[*coordinationv1.Lease](conn), events: client.For[*corev1.Event](conn),
	}
	chk, err := New(Config{Conn: conn, Options: opts, Identity: "test", Clock: w.clock,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	w.chk = chk
	stopped := chk.runInformers(ctx)
	if !chk.WaitForSync(ctx) {
		t.Fatal("informers did not sync")
	}
	w.prober = chk.BeginTerm()
	t.Cleanup(func() {
		cancel()
		stopped()
		w.prober.Close()
		for _, a := range w.agents {
			a.stop()
		}
	})
	return w
}

// addNode starts an agent for a new node: its health server, its Node (with
// the health port in status.daemonEndpoints) and its Lease.
func (w *world) addNode(name string) *agent {
	w.t.Helper()
	a := &agent{w: w, name: name}
	port := a.serve()
	node := &corev1.Node{
		Metadata: &metav1.ObjectMeta{Name: name},
		Status: &corev1.NodeStatus{
			Addresses:       []*corev1.NodeAddress{{Type: "InternalIP", Address: "127.0.0.1"}},
			DaemonEndpoints: &corev1.NodeDaemonEndpoints{KubeletEndpoint: &corev1.DaemonEndpoint{Port: int32(port)}},
			Conditions:      []*corev1.NodeCondition{{Type: "MemoryPressure", Status: "False", Reason: "AgentHasSufficientMemory"}},
		},
	}
	if _, err := w.nodes.Create(w.ctx, node); err != nil {
		w.t.Fatal(err)
	}
	l := &coordinationv1.Lease{
		Metadata: &metav1.ObjectMeta{Namespace: lease.DefaultNamespace, Name: name},
		Spec: &coordinationv1.LeaseSpec{HolderIdentity: proto.String(name), LeaseDurationSeconds: proto.Int32(4),
			RenewTime: timestamppb.New(w.clock.Now())},
	}
	created, err := w.leases.Create(w.ctx, l)
	if err != nil {
		w.t.Fatal(err)
	}
	w.agents[name] = a
	w.waitLeaseSeen(name, created.GetMetadata().GetResourceVersion())
	w.settle()
	return a
}

// serve starts the agent's health server on a new loopback port.
func (a *agent) serve() int {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		a.w.t.Fatal(err)
	}
	a.mu.Lock()
	a.health = health.NewServer()
	a.paused = make(chan struct{})
	close(a.paused)
	a.srv = grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		a.mu.Lock()
		p := a.paused
		a.mu.Unlock()
		select { // a paused process answers nothing
		case <-p:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(a.srv, a.health)
	srv := a.srv
	a.mu.Unlock()
	go func() { _ = srv.Serve(lis) }()
	return lis.Addr().(*net.TCPAddr).Port
}

// stop is kill -9: the health server goes away at once.
func (a *agent) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.srv != nil {
		a.srv.Stop()
		a.srv = nil
	}
}

// pause is SIGSTOP: the server keeps its socket but answers nothing.
func (a *agent) pause() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.paused = make(chan struct{})
}

// resume is SIGCONT.
func (a *agent) resume() {
	a.mu.Lock()
	defer a.mu.Unlock()
	close(a.paused)
}

// restart starts a new health server and re-registers the node's endpoint,
// as a restarted node-agent does.
func (a *agent) restart() {
	a.stop()
	port := a.serve()
	err := client.RetryOnConflict(a.w.ctx, client.DefaultRetry, func() error {
		n, err := a.w.nodes.Get(a.w.ctx, "", a.name)
		if err != nil {
			return err
		}
		n.Status.DaemonEndpoints = &corev1.NodeDaemonEndpoints{KubeletEndpoint: &corev1.DaemonEndpoint{Port: int32(port)}}
		_, err = a.w.nodes.UpdateStatus(a.w.ctx, n)
		return err
	})
	if err != nil {
		a.w.t.Fatal(err)
	}
	a.renew()
	a.w.settle()
}

// restartAgent restarts a's agent and runs a pass so the checker learns its
// new endpoint, then probes until the agent has answered.
func (w *world) restartAgent(a *agent) {
	w.t.Helper()
	a.restart()
	w.pass()
	w.awaitProbe(a.name)
}

// awaitProbe probes, without moving the fake clock, until node's agent has
// answered: on a loaded machine a first connection may outlast a probe's
// timeout.
func (w *world) awaitProbe(node string) {
	w.t.Helper()
	eventually(w.t, "probe of "+node+" answered", func() error {
		w.prober.ProbeAll(w.ctx)
		if r, ok := w.prober.Result(node); !ok || r.Err != nil || !r.Answered() {
			return fmt.Errorf("result %+v (target %v)", r, ok)
		}
		return nil
	})
}

// renew renews the agent's Lease at the fake now and waits until the
// health-checker has seen it.
func (a *agent) renew() {
	w := a.w
	var rv string
	err := client.RetryOnConflict(w.ctx, client.DefaultRetry, func() error {
		l, err := w.leases.Get(w.ctx, lease.DefaultNamespace, a.name)
		if err != nil {
			return err
		}
		l.Spec.RenewTime = timestamppb.New(w.clock.Now())
		u, err := w.leases.Update(w.ctx, l)
		if err == nil {
			rv = u.GetMetadata().GetResourceVersion()
		}
		return err
	})
	if err != nil {
		w.t.Fatal(err)
	}
	w.waitLeaseSeen(a.name, rv)
}

func (w *world) waitLeaseSeen(node, rv string) {
	w.t.Helper()
	eventually(w.t, "lease of "+node+" seen", func() error {
		if o, ok := w.chk.tracker.Get(node); !ok || o.ResourceVersion != rv {
			return fmt.Errorf("tracker has %+v, want resource version %s", o, rv)
		}
		return nil
	})
}

// step advances the fake clock by d while the live agents renew, then runs
// one probe round and one pass.
func (w *world) step(d time.Duration, live ...*agent) {
	w.t.Helper()
	w.clock.Step(d)
	for _, a := range live {
		a.renew()
	}
	w.pass()
}

// pass runs one probe round and one checker pass, and waits until the
// informers have seen what it wrote.
func (w *world) pass() {
	w.t.Helper()
	w.prober.ProbeAll(w.ctx)
	if err := w.chk.Sync(w.ctx); err != nil {
		w.t.Fatal(err)
	}
	w.settle()
}

// settle waits until the checker's caches hold every Node and Pod as the
// apiserver has them.
func (w *world) settle() {
	w.t.Helper()
	eventually(w.t, "caches settle", func() error {
		nodes, _, err := w.nodes.ListAll(w.ctx, client.ListOptions{})
		if err != nil {
			return err
		}
		for _, n := range nodes {
			c, ok := w.chk.nodes.Get("", n.GetMetadata().GetName())
			if !ok || c.GetMetadata().GetResourceVersion() != n.GetMetadata().GetResourceVersion() {
				return fmt.Errorf("node %s not in step", n.GetMetadata().GetName())
			}
		}
		pods, _, err := w.pods.ListAll(w.ctx, client.ListOptions{})
		if err != nil {
			return err
		}
		if len(pods) != len(w.chk.pods.List()) {
			return fmt.Errorf("pod cache holds %d pods, apiserver %d", len(w.chk.pods.List()), len(pods))
		}
		for _, p := range pods {
			c, ok := w.chk.pods.Get(p.GetMetadata().GetNamespace(), p.GetMetadata().GetName())
			if !ok || c.GetMetadata().GetResourceVersion() != p.GetMetadata().GetResourceVersion() {
				return fmt.Errorf("pod %s not in step", p.GetMetadata().GetName())
			}
		}
		return nil
	})
}

// podOn creates a pod bound to node, controlled by a controller of kind
// ownerKind ("" for none), with tolerations.
func (w *world) podOn(node, name, ownerKind string, tols ...*corev1.Toleration) *corev1.Pod {
	w.t.Helper()
	p := &corev1.Pod{
		Metadata: &metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: &corev1.PodSpec{NodeName: node, Tolerations: tols,
			Containers: []*corev1.Container{{Name: "app", Image: "registry.local/hello:v1"}}},
	}
	if ownerKind != "" {
		p.Metadata.OwnerReferences = []*metav1.OwnerReference{{ApiVersion: "apps/v1", Kind: ownerKind, Name: "owner",
			Uid: "owner-uid", Controller: proto.Bool(true)}}
	}
	created, err := w.pods.Create(w.ctx, p)
	if err != nil {
		w.t.Fatal(err)
	}
	return created
}

func (w *world) node(name string) *corev1.Node {
	w.t.Helper()
	n, err := w.nodes.Get(w.ctx, "", name)
	if err != nil {
		w.t.Fatal(err)
	}
	return n
}

func (w *world) ready(name string) string { return nodestatus.ReadyStatus(w.node(name)) }

// podState is "gone", "terminating" or "present".
func (w *world) podState(name string) string {
	w.t.Helper()
	p, err := w.pods.Get(w.ctx, "default", name)
	switch {
	case apierrors.IsNotFound(err):
		return "gone"
	case err != nil:
		w.t.Fatal(err)
	case p.GetMetadata().GetDeletionTimestamp() != nil:
		return "terminating"
	}
	return "present"
}

// eventsWith lists the Events with reason in namespace.
func (w *world) eventsWith(namespace, reason string) []*corev1.Event {
	w.t.Helper()
	evs, _, err := w.events.ListAll(w.ctx, client.ListOptions{Namespace: namespace})
	if err != nil {
		w.t.Fatal(err)
	}
	var out []*corev1.Event
	for _, e := range evs {
		if e.GetReason() == reason {
			out = append(out, e)
		}
	}
	return out
}

func taintKeys(n *corev1.Node) map[string]bool {
	out := map[string]bool{}
	for _, t := range n.GetSpec().GetTaints() {
		out[t.GetKey()+":"+t.GetEffect()] = true
	}
	return out
}

func (w *world) setTaint(node string, t *corev1.Taint, add bool) {
	w.t.Helper()
	err := client.RetryOnConflict(w.ctx, client.DefaultRetry, func() error {
		n, err := w.nodes.Get(w.ctx, "", node)
		if err != nil {
			return err
		}
		var kept []*corev1.Taint
		for _, x := range n.GetSpec().GetTaints() {
			if x.GetKey() != t.GetKey() || x.GetEffect() != t.GetEffect() {
				kept = append(kept, x)
			}
		}
		if add {
			kept = append(kept, t)
		}
		if n.Spec == nil {
			n.Spec = &corev1.NodeSpec{}
		}
		n.Spec.Taints = kept
		_, err = w.nodes.Update(w.ctx, n)
		return err
	})
	if err != nil {
		w.t.Fatal(err)
	}
	w.settle()
}

func secs(n int64) *int64 { return &n }

func itoa(i int) string { return strconv.Itoa(i) }
