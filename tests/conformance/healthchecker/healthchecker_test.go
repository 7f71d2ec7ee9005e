// Package healthchecker is the conformance suite for Bosun health-checkers:
// the suite plays the node-agents (it registers Nodes, renews their Leases
// in bosun-node-lease and serves gRPC health on loopback), stops one, and
// checks through the API that the implementation marks the node Unknown,
// taints it node.kubernetes.io/unreachable:NoExecute, evicts the pods that
// do not tolerate that, keeps DaemonSet pods and tolerating pods, clears
// the taint when the agent comes back, and marks an agent that answers
// NOT_SERVING Ready=False with the not-ready taint, and one that renews its
// Lease but does not answer health checks Unknown.
//
// TestHealthChecker runs it against the binary in
// BOSUN_CONFORMANCE_HEALTH_CHECKER (its arguments in
// BOSUN_CONFORMANCE_HEALTH_CHECKER_ARGS), or against Bosun's own
// health-checker built from services/health-checker with short grace
// flags (defaultArgs). docs/replacing-a-service.md describes the contract.
package healthchecker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/tests/conformance/harness"
)

// EnvHealthChecker names the implementation under test.
const EnvHealthChecker = "BOSUN_CONFORMANCE_HEALTH_CHECKER"

const bosunHealthChecker = "bosun.dev/services/health-checker/cmd/health-checker"

// defaultArgs make Bosun's health-checker decide in seconds: a node is
// Unknown 2 s after its last sign of life and its pods are evicted 1 s
// later. A replacement is run with the arguments in
// BOSUN_CONFORMANCE_HEALTH_CHECKER_ARGS and must decide within waitFor.
var defaultArgs = []string{
	"--node-grace-period=2s", "--node-monitor-period=100ms",
	"--probe-interval=250ms", "--probe-timeout=250ms",
	"--default-toleration-seconds=1",
}

// The contract's names.
const (
	leaseNamespace      = "bosun-node-lease"
	endpointAnnotation  = "health.bosun.dev/endpoint"
	unreachableTaint    = "node.kubernetes.io/unreachable"
	notReadyTaint       = "node.kubernetes.io/not-ready"
	renewEvery          = 250 * time.Millisecond
	waitFor             = 30 * time.Second
	namespace           = "default"
	stayObservationTime = 2 * time.Second
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}

// suite is the cluster, the implementation and the node-agents the test plays.
type suite struct {
	t       *testing.T
	ctx     context.Context
	cluster *harness.Cluster
	nodes   *client.Resource[*corev1.Node]
	pods    *client.Resource[*corev1.Pod]
	leases  *client.Resource[*coordinationv1.Lease]
}

// agent is a node-agent as the health-checker sees one: a Node, a Lease it
// renews and a gRPC health server on loopback.
type agent struct {
	s      *suite
	name   string
	addr   string
	health *health.Server
	srv    *grpc.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startAgent registers node name (the first time) and starts serving
// health and renewing its Lease. With byAnnotation the health endpoint is
// advertised in the annotation health.bosun.dev/endpoint instead of
// status.daemonEndpoints.
func (s *suite) startAgent(name string, byAnnotation bool) *agent {
	s.t.Helper()
	a := &agent{s: s, name: name}
	a.serve("127.0.0.1:0")
	port := int32(0)
	annotations := map[string]string{}
	if byAnnotation {
		annotations[endpointAnnotation] = a.addr
	} else {
		port = int32(a.lisPort())
	}
	node := &corev1.Node{
		Metadata: &metav1.ObjectMeta{Name: name, Annotations: annotations,
			Labels: map[string]string{"kubernetes.io/hostname": name}},
		Spec: &corev1.NodeSpec{},
		Status: &corev1.NodeStatus{
			Addresses:       []*corev1.NodeAddress{{Type: "InternalIP", Address: "127.0.0.1"}},
			DaemonEndpoints: &corev1.NodeDaemonEndpoints{KubeletEndpoint: &corev1.DaemonEndpoint{Port: port}},
			Allocatable:     map[string]string{"cpu": "4", "memory": "8Gi", "pods": "110"},
		},
	}
	if _, err := s.nodes.Create(s.ctx, node); err != nil {
		s.t.Fatalf("registering node %s: %v", name, err)
	}
	_, err := s.leases.Create(s.ctx, &coordinationv1.Lease{
		Metadata: &metav1.ObjectMeta{Namespace: leaseNamespace, Name: name},
		Spec: &coordinationv1.LeaseSpec{HolderIdentity: proto.String(name),
			LeaseDurationSeconds: proto.Int32(2), RenewTime: timestamppb.Now()},
	})
	if err != nil {
		s.t.Fatalf("creating lease %s/%s: %v", leaseNamespace, name, err)
	}
	a.renew()
	s.t.Cleanup(a.stop)
	return a
}

func (a *agent) lisPort() int {
	_, p, _ := net.SplitHostPort(a.addr)
	var port int
	fmt.Sscan(p, &port)
	return port
}

// serve starts the gRPC health server on addr (the agent's old address
// when it comes back).
func (a *agent) serve(addr string) {
	a.s.t.Helper()
	var lis net.Listener
	var err error
	harness.Eventually(a.s.t, 10*time.Second, "listening on "+addr, func() error {
		lis, err = net.Listen("tcp", addr)
		return err
	})
	a.addr = lis.Addr().String()
	a.health = health.NewServer()
	// Like a node-agent: mutual TLS with a certificate naming the node.
	a.srv = grpc.NewServer(a.s.cluster.NodeServerOptions(a.s.t, a.name)...)
	healthpb.RegisterHealthServer(a.srv, a.health)
	go func() { _ = a.srv.Serve(lis) }()
}

// renew starts renewing the Lease every renewEvery.
func (a *agent) renew() {
	ctx, cancel := context.WithCancel(a.s.ctx)
	a.cancel = cancel
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		t := time.NewTicker(renewEvery)
		defer t.Stop()
		for {
			_ = client.RetryOnConflict(ctx, client.DefaultRetry, func() error {
				l, err := a.s.leases.Get(ctx, leaseNamespace, a.name)
				if err != nil {
					return err
				}
				l.Spec.RenewTime = timestamppb.Now()
				_, err = a.s.leases.Update(ctx, l)
				return err
			})
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// stop is the agent dying: no more renewals, no more answers.
func (a *agent) stop() {
	if a.cancel == nil {
		return
	}
	a.cancel()
	a.wg.Wait()
	a.srv.Stop()
	a.cancel = nil
}

// restart is the agent coming back on the same address.
func (a *agent) restart() {
	a.serve(a.addr)
	a.renew()
}

func (s *suite) node(name string) *corev1.Node {
	s.t.Helper()
	n, err := s.nodes.Get(s.ctx, "", name)
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}

func ready(n *corev1.Node) *corev1.NodeCondition {
	for _, c := range n.GetStatus().GetConditions() {
		if c.GetType() == "Ready" {
			return c
		}
	}
	return nil
}

func hasTaint(n *corev1.Node, key, effect string) bool {
	for _, t := range n.GetSpec().GetTaints() {
		if t.GetKey() == key && t.GetEffect() == effect {
			return true
		}
	}
	return false
}

// expectNode waits until node name's Ready status is want and it carries
// exactly the NoExecute taint taint ("" for none of the two).
func (s *suite) expectNode(name, want, taint string) {
	s.t.Helper()
	harness.Eventually(s.t, waitFor, fmt.Sprintf("node %s Ready=%s with taint %q", name, want, taint), func() error {
		n := s.node(name)
		if got := ready(n).GetStatus(); got != want {
			return fmt.Errorf("Ready=%q (%v)", got, ready(n))
		}
		for _, k := range []string{unreachableTaint, notReadyTaint} {
			if has := hasTaint(n, k, "NoExecute"); has != (k == taint) {
				return fmt.Errorf("taints %v", n.GetSpec().GetTaints())
			}
		}
		return nil
	})
}

type podOpt func(*corev1.Pod)

func ownedBy(kind string) podOpt {
	return func(p *corev1.Pod) {
		p.Metadata.OwnerReferences = []*metav1.OwnerReference{{
			ApiVersion: "apps/v1", Kind: kind, Name: "owner-" + p.Metadata.Name,
			Uid: "uid-owner-" + p.Metadata.Name, Controller: proto.Bool(true),
		}}
	}
}

func tolerates(key string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Tolerations = append(p.Spec.Tolerations, &corev1.Toleration{Key: key, Operator: "Exists", Effect: "NoExecute"})
	}
}

// pod creates a pod already bound to node, as the scheduler would leave it.
func (s *suite) pod(name, node string, opts ...podOpt) {
	s.t.Helper()
	p := &corev1.Pod{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: &corev1.PodSpec{NodeName: node,
			Containers: []*corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}}},
	}
	for _, o := range opts {
		o(p)
	}
	if _, err := s.pods.Create(s.ctx, p); err != nil {
		s.t.Fatalf("creating pod %s: %v", name, err)
	}
}

// evicted reports whether pod name is gone or marked for deletion.
func (s *suite) evicted(name string) (bool, error) {
	p, err := s.pods.Get(s.ctx, namespace, name)
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return p.GetMetadata().GetDeletionTimestamp() != nil, nil
}

func (s *suite) expectEvicted(names ...string) {
	s.t.Helper()
	for _, name := range names {
		harness.Eventually(s.t, waitFor, "pod "+name+" evicted", func() error {
			gone, err := s.evicted(name)
			if err == nil && !gone {
				err = errors.New("still there")
			}
			return err
		})
	}
}

// expectStay fails if any named pod is evicted within stayObservationTime
// (the pods evicted alongside them are already gone when this runs).
func (s *suite) expectStay(names ...string) {
	s.t.Helper()
	until := time.Now().Add(stayObservationTime)
	for {
		for _, name := range names {
			gone, err := s.evicted(name)
			if err != nil {
				s.t.Fatal(err)
			}
			if gone {
				s.t.Fatalf("pod %s was evicted; it must stay", name)
			}
		}
		if time.Now().After(until) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestHealthChecker(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the implementation and runs it for about 25 s")
	}
	impl := harness.FromEnv(t, EnvHealthChecker, bosunHealthChecker, defaultArgs)
	t.Logf("implementation %s %v", impl.Name, impl.Args)
	c := harness.StartCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := &suite{t: t, ctx: ctx, cluster: c, nodes: client.For[*corev1.Node](c.Admin), pods: client.For[*corev1.Pod](c.Admin),
		leases: client.For[*coordinationv1.Lease](c.Admin)}
	// bosun-node-lease is reserved by Bosun's apiserver; create it if absent.
	ns := &corev1.Namespace{Metadata: &metav1.ObjectMeta{Name: leaseNamespace}}
	if _, err := client.For[*corev1.Namespace](c.Admin).Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	c.Start(t, impl, "bosun-health-checker")

	lost := s.startAgent("lost", false)
	steady := s.startAgent("steady", true)
	flaky := s.startAgent("flaky", false)
	for _, n := range []string{"lost", "steady", "flaky"} {
		s.expectNode(n, "True", "")
	}
	s.pod("lost-replica", "lost", ownedBy("ReplicaSet"))
	s.pod("lost-bare", "lost")
	s.pod("lost-daemon", "lost", ownedBy("DaemonSet"))
	s.pod("lost-tolerant", "lost", tolerates(unreachableTaint))
	s.pod("steady-replica", "steady", ownedBy("ReplicaSet"))

	t.Log("stopping the agent of node lost: no Lease renewals, no health answers")
	lost.stop()
	s.expectNode("lost", "Unknown", unreachableTaint)
	s.expectEvicted("lost-replica", "lost-bare")
	s.expectStay("lost-daemon", "lost-tolerant", "steady-replica")
	if got := ready(s.node("steady")).GetStatus(); got != "True" {
		t.Errorf("node steady, whose agent kept answering, is Ready=%s", got)
	}

	t.Log("restarting the agent of node lost")
	lost.restart()
	s.expectNode("lost", "True", "")
	s.expectStay("lost-daemon", "lost-tolerant")

	t.Log("the agent of node flaky answers NOT_SERVING")
	flaky.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	s.expectNode("flaky", "False", notReadyTaint)
	flaky.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.expectNode("flaky", "True", "")

	t.Log("the agent of node steady (endpoint in the annotation) stops answering but still renews its Lease")
	steady.srv.Stop()
	s.expectNode("steady", "Unknown", unreachableTaint)
	s.expectEvicted("steady-replica")
}
