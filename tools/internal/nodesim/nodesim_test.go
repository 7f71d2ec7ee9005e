package nodesim

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/services/node-agent/sim"
)

// startAPIServer builds and runs the apiserver binary with an embedded
// etcd in a temporary directory, plaintext on a free loopback port.
func startAPIServer(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "apiserver"), "bosun.dev/services/apiserver/cmd/apiserver")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the apiserver: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var logs bytes.Buffer
	cmd := exec.Command(filepath.Join(dir, "apiserver"), "--data-dir", filepath.Join(dir, "data"), "--insecure",
		"--listen", addr, "--http-listen", "", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("apiserver logs:\n%s", logs.String())
		}
	})
	return addr
}

func TestSimulatedNodesRegisterAndRunPods(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an apiserver")
	}
	addr := startAPIServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const nodes = 20
	var out bytes.Buffer
	var outMu sync.Mutex
	readyc := make(chan *sim.Sim, 1)
	errc := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() {
		errc <- Run(ctx, Config{
			APIServer: client.Config{Server: addr, Insecure: true}, Nodes: nodes, Prefix: "sim-", Zones: 2,
			CPU: "8", Memory: "32Gi", Pods: "50", LeaseDuration: 10 * time.Second, RenewInterval: time.Second,
		}, log, &lockedWriter{w: &out, mu: &outMu}, func(s *sim.Sim) { readyc <- s })
	}()
	select {
	case err := <-errc:
		t.Fatal(err)
	case <-readyc:
	case <-time.After(60 * time.Second):
		t.Fatal("simulated nodes not ready within 60s")
	}
	conn, err := client.Dial(client.Config{Server: addr, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	ns, _, err := client.For[*corev1.Node](conn).ListAll(ctx, client.ListOptions{LabelSelector: "bosun.dev/simulated=true"})
	if err != nil || len(ns) != nodes {
		t.Fatalf("%d simulated nodes registered, want %d (%v)", len(ns), nodes, err)
	}
	for _, n := range ns {
		if n.GetStatus().GetCapacity()["pods"] != "50" || n.GetSpec().GetPodCidr() == "" || n.GetMetadata().GetLabels()["topology.kubernetes.io/zone"] == "" {
			t.Errorf("node %s: %v %v", n.GetMetadata().GetName(), n.GetSpec(), n.GetStatus().GetCapacity())
		}
	}
	lease, err := client.For[*coordinationv1.Lease](conn).Get(ctx, "bosun-node-lease", "sim-7")
	if err != nil || lease.GetSpec().GetHolderIdentity() != "sim-7" {
		t.Fatalf("lease of sim-7: %v %v", lease, err)
	}
	outMu.Lock()
	if !strings.Contains(out.String(), "20 simulated nodes ready") {
		t.Errorf("output %q", out.String())
	}
	outMu.Unlock()

	// Pods bound to simulated nodes run and get an address of the node's CIDR.
	pods := client.For[*corev1.Pod](conn)
	bind := corev1.NewPodServiceClient(conn)
	for i := 0; i < 10; i++ {
		p := &corev1.Pod{
			Metadata: &metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i), Namespace: "default"},
			Spec:     &corev1.PodSpec{Containers: []*corev1.Container{{Name: "c", Image: "registry.local/app:v1"}}},
		}
		if _, err := pods.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		if _, err := bind.BindPod(ctx, &corev1.BindPodRequest{Namespace: "default", Name: p.Metadata.Name, NodeName: fmt.Sprintf("sim-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, func() error {
		for i := 0; i < 10; i++ {
			p, err := pods.Get(ctx, "default", fmt.Sprintf("p%d", i))
			if err != nil {
				return err
			}
			st := p.GetStatus()
			if st.GetPhase() != "Running" {
				return fmt.Errorf("pod p%d phase %q", i, st.GetPhase())
			}
			ip, err := netip.ParseAddr(st.GetPodIp())
			if err != nil || !netip.MustParsePrefix(sim.PodCIDR(i)).Contains(ip) {
				return fmt.Errorf("pod p%d IP %q not in %s", i, st.GetPodIp(), sim.PodCIDR(i))
			}
		}
		return nil
	})
	// Deleting a pod goes through the simulated node, which removes it.
	if _, err := pods.Delete(ctx, "default", "p3", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() error {
		_, err := pods.Get(ctx, "default", "p3")
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("p3 still there: %v", err)
	})
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
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
		time.Sleep(50 * time.Millisecond)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
