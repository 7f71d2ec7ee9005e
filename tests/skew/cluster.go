package skew

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/tests/conformance/harness"
	"bosun.dev/tests/internal/testproc"
)

// healthEndpointAnnotation on a Node tells the health-checker where to
// send the node's gRPC health checks (the health-checker's
// probe.EndpointAnnotation). The simulated node advertises an address that
// is not on this machine, so the test serves its health on loopback.
const healthEndpointAnnotation = "health.bosun.dev/endpoint"

// Component is one binary of a mixed cluster and the tree it comes from.
type Component struct {
	// Binary is the executable's path.
	Binary string
	// From names its tree in test output: the baseline's name or "current".
	From string
}

// Cluster is a running mixed cluster: an apiserver on embedded etcd in a
// temporary directory (plaintext, no authentication), the scheduler,
// controller, health-checker and service-proxy connected to it, and one
// simulated node. Everything stops when the test ends.
type Cluster struct {
	// Addr is the apiserver's gRPC address; Conn an administrator's
	// connection to it.
	Addr string
	Conn *grpc.ClientConn
	// ProxyAddr is the service-proxy's gRPC (xDS) address.
	ProxyAddr string
	// Node is the simulated node's name.
	Node string

	nodesim *testproc.Process
	health  *health.Server
}

// StartCluster starts a cluster running the binaries in parts, by command
// name (the keys of Commands), and waits until its node is Ready.
func StartCluster(t *testing.T, parts map[string]Component) *Cluster {
	t.Helper()
	for name := range Commands {
		if parts[name].Binary == "" {
			t.Fatalf("no binary for %s", name)
		}
	}
	dir := t.TempDir()
	began := time.Now()
	c := &Cluster{Addr: harness.FreePort(t), Node: "skew-0"}
	api := startProcess(t, "apiserver ("+parts["apiserver"].From+")", parts["apiserver"].Binary,
		"--data-dir", filepath.Join(dir, "etcd"), "--insecure", "--listen", c.Addr, "--http-listen", "", "--log-level", "warn")
	// Retry the connection every 50 ms instead of grpc-go's 1 s while the
	// apiserver starts listening.
	conn, err := client.Dial(client.Config{Server: c.Addr, Insecure: true}, grpc.WithConnectParams(grpc.ConnectParams{
		Backoff: backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, MaxDelay: time.Second}, MinConnectTimeout: time.Second,
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c.Conn = conn
	harness.Eventually(t, 60*time.Second, "apiserver serving", func() error {
		if api.Exited() {
			t.Fatalf("the apiserver exited before serving: %v", api.Err())
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := client.For[*corev1.Namespace](conn).Get(ctx, "", "default")
		return err
	})
	apiUp := time.Now()

	// The services connect with --insecure, which every release accepts:
	// it both talks plaintext to the apiserver and serves plaintext.
	hc := &harness.Cluster{Addr: c.Addr, Admin: conn}
	for _, svc := range []string{"scheduler", "controller", "health-checker", "service-proxy"} {
		p := hc.Start(t, harness.Implementation{
			Name: svc + " (" + parts[svc].From + ")", Binary: parts[svc].Binary, Args: []string{"--log-level", "warn"},
		}, "bosun-"+svc)
		if svc == "service-proxy" {
			c.ProxyAddr = p.Listen
		}
	}
	servicesUp := time.Now()
	c.startNode(t, parts["nodesim"])
	t.Logf("apiserver serving in %v, the four services in %v more, node Ready in %v more",
		apiUp.Sub(began).Round(time.Millisecond), servicesUp.Sub(apiUp).Round(time.Millisecond), time.Since(servicesUp).Round(time.Millisecond))
	return c
}

// startNode registers the node with its health endpoint on a loopback
// server of the test, starts the simulator and waits until the node is
// Ready.
func (c *Cluster) startNode(t *testing.T, sim Component) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	c.health = health.NewServer()
	healthpb.RegisterHealthServer(srv, c.health)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = client.For[*corev1.Node](c.Conn).Create(ctx, &corev1.Node{Metadata: &metav1.ObjectMeta{
		Name: c.Node, Annotations: map[string]string{healthEndpointAnnotation: l.Addr().String()},
	}})
	if err != nil {
		t.Fatalf("creating node %s: %v", c.Node, err)
	}
	c.nodesim = startProcess(t, "node-agent pod workers, nodesim ("+sim.From+")", sim.Binary,
		"--apiserver", c.Addr, "--insecure", "--log-level", "warn",
		"-nodes", "1", "-prefix", strings.TrimSuffix(c.Node, "0"), "-zones", "0",
		"-lease-duration", "10s", "-lease-renew-interval", "1s", "-report", "0")
	c.WaitNode(t, "Ready", func(n *corev1.Node) error {
		if s := condition(n, "Ready"); s != "True" {
			return fmt.Errorf("condition Ready is %q", s)
		}
		return nil
	})
}

// StopNode stops the simulated node and its health endpoint, as if the
// machine were lost.
func (c *Cluster) StopNode() {
	c.nodesim.Stop(10 * time.Second)
	c.health.Shutdown()
}

// WaitNode waits until check accepts the node.
func (c *Cluster) WaitNode(t *testing.T, what string, check func(*corev1.Node) error) {
	t.Helper()
	harness.Eventually(t, 60*time.Second, "node "+c.Node+" "+what, func() error {
		if c.nodesim.ExitedOnItsOwn() {
			t.Fatalf("the node simulator exited: %v", c.nodesim.Err())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := client.For[*corev1.Node](c.Conn).Get(ctx, "", c.Node)
		if err != nil {
			return err
		}
		return check(n)
	})
}

// condition is the status of the node's condition typ, "" when absent.
func condition(n *corev1.Node, typ string) string {
	for _, cond := range n.GetStatus().GetConditions() {
		if cond.GetType() == typ {
			return cond.GetStatus()
		}
	}
	return ""
}

// startProcess runs bin with args. When the test ends it is stopped with
// SIGTERM (SIGKILL after 10 s), its output is logged if the test failed,
// and the test fails if it exited on its own before.
func startProcess(t *testing.T, name, bin string, args ...string) *testproc.Process {
	t.Helper()
	p, err := testproc.Start(name, exec.Command(bin, args...))
	if err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	t.Cleanup(func() {
		if p.ExitedOnItsOwn() {
			t.Errorf("%s exited during the test: %v", name, p.Err())
		}
		p.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("%s: %s %s\noutput:\n%s", name, bin, strings.Join(args, " "), p.Tail(32<<10))
		}
	})
	return p
}
