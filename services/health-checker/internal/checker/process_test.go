package checker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/services/health-checker/internal/lease"
	"bosun.dev/services/health-checker/internal/nodestatus"
)

// Environment of the stand-in node-agent process the test binary becomes.
const (
	envAgentNode      = "BOSUN_TEST_AGENT_NODE"
	envAgentAPIServer = "BOSUN_TEST_AGENT_APISERVER"
	envAgentRenew     = "BOSUN_TEST_AGENT_RENEW"
)

func TestMain(m *testing.M) {
	if node := os.Getenv(envAgentNode); node != "" {
		if err := runStandInAgent(node, os.Getenv(envAgentAPIServer), os.Getenv(envAgentRenew)); err != nil {
			fmt.Fprintln(os.Stderr, "agent:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runStandInAgent is what a node-agent does for the health-checker:
// register its Node with its health port, serve gRPC health, and renew its
// Lease, until it is killed.
func runStandInAgent(node, apiserver, renew string) error {
	every, err := time.ParseDuration(renew)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(apiserver, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	ctx := context.Background()
	nodes, leases := client.For[*corev1.Node](conn), client.For[*coordinationv1.Lease](conn)
	port := int32(lis.Addr().(*net.TCPAddr).Port)
	status := &corev1.NodeStatus{
		Addresses:       []*corev1.NodeAddress{{Type: "InternalIP", Address: "127.0.0.1"}},
		DaemonEndpoints: &corev1.NodeDaemonEndpoints{KubeletEndpoint: &corev1.DaemonEndpoint{Port: port}},
	}
	_, err = nodes.Create(ctx, &corev1.Node{Metadata: &metav1.ObjectMeta{Name: node}, Status: status})
	if apierrors.IsAlreadyExists(err) {
		err = client.RetryOnConflict(ctx, client.DefaultRetry, func() error {
			n, err := nodes.Get(ctx, "", node)
			if err != nil {
				return err
			}
			n.Status.Addresses, n.Status.DaemonEndpoints = status.Addresses, status.DaemonEndpoints
			_, err = nodes.UpdateStatus(ctx, n)
			return err
		})
	}
	if err != nil {
		return err
	}
	_, err = leases.Create(ctx, &coordinationv1.Lease{
		Metadata: &metav1.ObjectMeta{Namespace: lease.DefaultNamespace, Name: node},
		Spec:     &coordinationv1.LeaseSpec{HolderIdentity: proto.String(node), RenewTime: timestamppb.Now()},
	})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	fmt.Println("ready")
	for {
		_ = client.RetryOnConflict(ctx, client.DefaultRetry, func() error {
			l, err := leases.Get(ctx, lease.DefaultNamespace, node)
			if err != nil {
				return err
			}
			l.Spec.RenewTime = timestamppb.Now()
			_, err = leases.Update(ctx, l)
			return err
		})
		time.Sleep(every)
	}
}

// agentProcess is a stand-in node-agent running as its own process.
type agentProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startAgentProcess(t *testing.T, apiserver, node string, renew time.Duration) *agentProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envAgentNode+"="+node, envAgentAPIServer+"="+apiserver, envAgentRenew+"="+renew.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &agentProcess{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(p.kill)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("agent %s did not start: %q %v", node, line, err)
	}
	return p
}

// kill is kill -9, and waits for the process to be reaped.
func (p *agentProcess) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *agentProcess) signal(t *testing.T, s syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(s); err != nil {
		t.Fatal(err)
	}
}

// Node-agents as real processes, the health-checker running for real:
// SIGSTOP of one agent for less than the grace period changes nothing;
// kill -9 of another makes its node Unknown and evicts its pod; a restarted
// agent makes the node Ready again and its taint goes.
func TestAgentProcessesStopAndKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs agent processes for about 10 s")
	}
	opts := DefaultOptions()
	opts.LeaderElect = false
	opts.GracePeriod = 2 * time.Second
	opts.MonitorPeriod = 100 * time.Millisecond
	opts.ProbeInterval = 250 * time.Millisecond
	opts.ProbeTimeout = 250 * time.Millisecond
	opts.DefaultTolerationSeconds = 1
	const renew = 250 * time.Millisecond
	const pause = 800 * time.Millisecond

	w := newWorld(t, testOptions())
	addr := w.conn.Target()
	chk, err := New(Config{Conn: w.conn, Options: opts, Identity: "hc", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(w.ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = chk.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })

	a1 := startAgentProcess(t, addr, "a1", renew)
	a2 := startAgentProcess(t, addr, "a2", renew)
	startAgentProcess(t, addr, "a3", renew)
	for _, n := range []string{"a1", "a2", "a3"} {
		eventually(t, n+" Ready", func() error {
			if got := w.ready(n); got != nodestatus.StatusTrue {
				return fmt.Errorf("Ready=%s", got)
			}
			return nil
		})
	}
	w.podOn("a1", "web-1", "ReplicaSet")
	w.podOn("a2", "web-2", "ReplicaSet")
	before := nodestatus.Ready(w.node("a2")).GetLastTransitionTime().AsTime()

	a2.signal(t, syscall.SIGSTOP)
	time.Sleep(pause)
	a2.signal(t, syscall.SIGCONT)
	// Watch well past grace + toleration for any reaction to the pause.
	watchUntil := time.Now().Add(opts.GracePeriod + time.Duration(opts.DefaultTolerationSeconds)*time.Second + time.Second)
	for time.Now().Before(watchUntil) {
		n := w.node("a2")
		if r := nodestatus.Ready(n); r.GetStatus() != nodestatus.StatusTrue || !r.GetLastTransitionTime().AsTime().Equal(before) {
			t.Fatalf("a2 paused %v (grace %v): Ready became %v", pause, opts.GracePeriod, r)
		}
		if len(n.GetSpec().GetTaints()) != 0 || w.podState("web-2") != "present" {
			t.Fatalf("a2 paused %v: taints %v, pod %s", pause, taintKeys(n), w.podState("web-2"))
		}
		time.Sleep(50 * time.Millisecond)
	}

	a1.kill()
	killed := time.Now()
	eventually(t, "a1 Unknown", func() error {
		if got := w.ready("a1"); got != nodestatus.StatusUnknown {
			return fmt.Errorf("Ready=%s", got)
		}
		return nil
	})
	detected := time.Since(killed)
	eventually(t, "web-1 evicted", func() error {
		if s := w.podState("web-1"); s != "gone" {
			return errors.New(s)
		}
		return nil
	})
	t.Logf("kill -9: node Unknown after %v (grace %v), pod evicted after %v (toleration %ds)",
		detected, opts.GracePeriod, time.Since(killed), opts.DefaultTolerationSeconds)
	if !taintKeys(w.node("a1"))[unreachableNoExecute] {
		t.Errorf("a1 taints %v, want unreachable", taintKeys(w.node("a1")))
	}

	startAgentProcess(t, addr, "a1", renew)
	eventually(t, "a1 Ready and untainted again", func() error {
		n := w.node("a1")
		if got := nodestatus.ReadyStatus(n); got != nodestatus.StatusTrue || len(n.GetSpec().GetTaints()) != 0 {
			return fmt.Errorf("Ready=%s taints=%v", got, taintKeys(n))
		}
		return nil
	})
	if s := w.podState("web-2"); s != "present" {
		t.Errorf("web-2 on the paused node is %s, want present", s)
	}
}
