// Package multinode runs a Bosun cluster of real processes on one machine
// for fault tests: an etcd cluster (one member, or three), the apiserver
// (--insecure, on that etcd), the scheduler, the controller and the
// health-checker with their default timings (one replica each, or more,
// electing leaders), one private containerd, and several node-agents
// sharing it. Each node is a network namespace of its own joined to a
// bridge on the host by a veth (network.go), with its own address, pod
// CIDR, containerd namespace, root directory (sandboxes, pod network
// namespaces, IPAM leases) and pods' bridge; the host and the other nodes
// route its pod CIDR via its address, so the test process reaches every
// pod. The apiserver and the registry listen on the host's address on that
// bridge. The pod image is built in-process from internal/podapp.
//
// Faults: Node.Kill, Node.Pause, Node.Partition; KillAPIServer and
// RestartAPIServer; EtcdMember.Kill; the Control processes' Kill.
// Robustness checks (robustness.go) for every scenario: RecordWatches then
// WatchRecorder.Check compares the watch streams with etcd's history;
// CheckFinalState compares the runtime with the API.
//
// Everything started is stopped and removed when the test ends: processes
// by PID, pods (deleted while their node-agents run, so that the agents
// remove containers, network namespaces, IPAM leases and masquerade rules
// themselves), then whatever a failed test left: containerd namespaces,
// pod network namespaces, CNI result caches, iptables chains, bridges,
// mounts, cgroups, and the nodes' network namespaces, veths, host routes
// and the host bridge.
package multinode

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ctrd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/netns"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"google.golang.org/grpc"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/tests/conformance/harness"
)

// cniPluginDirs are where the node-agent looks for the CNI plugins.
var cniPluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// Require skips the test unless real node-agents can run here: root,
// containerd, runc, iptables and the CNI plugins.
func Require(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping the multi-node test on real containerd in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to run containerd and CNI (run the tests as root, as .ci/run does)")
	}
	for _, bin := range []string{"containerd", "runc", "iptables", "ip", "nsenter"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("skipping: %s is not installed (apt-get install containerd runc containernetworking-plugins iptables iproute2 util-linux)", bin)
		}
	}
	for _, p := range []string{"bridge", "host-local", "portmap", "loopback"} {
		found := false
		for _, d := range cniPluginDirs {
			if _, err := os.Stat(filepath.Join(d, p)); err == nil {
				found = true
			}
		}
		if !found {
			t.Skipf("skipping: CNI plugin %s not found in %v (apt-get install containernetworking-plugins)", p, cniPluginDirs)
		}
	}
}

// Cluster is the control plane, a containerd and the nodes.
type Cluster struct {
	// Addr is the apiserver's gRPC address.
	Addr string
	// Conn is a client connection to the apiserver.
	Conn *grpc.ClientConn
	// Image is the pod image's reference (serve PORT).
	Image string
	// Nodes are the node-agents, in the order they were added.
	Nodes []*Node
	// Etcd are the members of the etcd cluster the apiserver uses.
	Etcd []*EtcdMember
	// Control are the control-plane processes by service (scheduler,
	// controller, health-checker), in the order they were started.
	Control map[string][]*Process

	t          *testing.T
	dir        string
	ctrdAddr   string
	registry   string
	agentBin   string
	controlBin map[string]string
	apiserver  *Process
	apiArgs    []string
	restartAPI func()

	// The cluster's network (network.go).
	hostBridge string
	hostIP     netip.Addr
	nodeNet    netip.Prefix
	nextNodeIP netip.Addr
}

// Node is one node-agent in a network namespace of its own, with its own
// address, containerd namespace, root directory, pods' bridge, pod CIDR.
type Node struct {
	Name string
	// Namespace is the node's containerd namespace.
	Namespace string
	// Bridge is the pods' bridge, inside the node's network namespace.
	Bridge  string
	PodCIDR string
	RootDir string
	// Listen is the node-agent's address: the node's IP and a port.
	Listen string
	// NetworkNamespace is the name of the node's network namespace
	// (/run/netns/NAME); IP is its address on the cluster's network.
	NetworkNamespace string
	IP               string
	hostVeth         string
	c                *Cluster
	args             []string
	proc             *Process
	procs            []*Process // every start, for the cleanup
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Layout is the shape of the cluster StartLayout starts.
type Layout struct {
	// Nodes is the number of nodes.
	Nodes int
	// EtcdMembers is the size of the etcd cluster (default 1).
	EtcdMembers int
	// Replicas is how many replicas of the scheduler, the controller and
	// the health-checker run (default 1); they elect leaders.
	Replicas int
}

// Start builds the binaries and starts etcd, the apiserver, containerd,
// the registry with the pod image, the scheduler, the controller and the
// health-checker (default timings), then nodes node-agents, and waits
// until every node is Ready.
func Start(t *testing.T, nodes int) *Cluster {
	t.Helper()
	return StartLayout(t, Layout{Nodes: nodes})
}

// StartLayout is Start for a cluster of the given layout.
func StartLayout(t *testing.T, l Layout) *Cluster {
	t.Helper()
	Require(t)
	if l.Nodes < 0 || l.EtcdMembers < 0 || l.Replicas < 0 {
		t.Fatalf("invalid cluster layout %+v: negative count", l)
	}
	l.EtcdMembers, l.Replicas = max(l.EtcdMembers, 1), max(l.Replicas, 1)
	dir, err := os.MkdirTemp("", "bosun-multinode-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, dir: dir, controlBin: map[string]string{}, Control: map[string][]*Process{}}
	t.Cleanup(func() { removeDir(t, dir) })

	var wg sync.WaitGroup
	var podapp []byte
	var podErr error
	wg.Add(1)
	go func() { defer wg.Done(); podapp, podErr = buildPodApp(dir) }()
	for _, svc := range []string{"apiserver", "scheduler", "controller", "health-checker", "node-agent"} {
		c.controlBin[svc] = harness.Build(t, "bosun.dev/services/"+svc+"/cmd/"+svc)
	}
	wg.Wait()
	if podErr != nil {
		t.Fatal(podErr)
	}
	c.agentBin = c.controlBin["node-agent"]

	c.startNetwork(t)
	c.startEtcd(t, l.EtcdMembers)
	c.startAPIServer(t)
	c.startContainerd(t)
	c.startRegistry(t, podapp)
	for _, svc := range []string{"scheduler", "controller", "health-checker"} {
		for i := 0; i < l.Replicas; i++ {
			c.startControl(t, svc)
		}
	}
	for i := 0; i < l.Nodes; i++ {
		c.AddNode(t, fmt.Sprintf("node-%d", i+1))
	}
	for _, n := range c.Nodes {
		c.WaitNode(t, n.Name, 60*time.Second, "Ready", func(nd *corev1.Node) error {
			if s := ReadyStatus(nd); s != "True" {
				return fmt.Errorf("Ready=%q", s)
			}
			return nil
		})
	}
	return c
}

func (c *Cluster) startAPIServer(t *testing.T) {
	t.Helper()
	c.Addr = freePortOn(t, c.hostIP)
	c.apiArgs = []string{"--insecure", "--listen", c.Addr, "--http-listen", "", "--log-level", "warn"}
	if len(c.Etcd) > 0 {
		// No compaction: the watch checks compare with etcd's whole history.
		c.apiArgs = append(c.apiArgs, "--etcd-endpoints", strings.Join(c.EtcdEndpoints(), ","), "--compaction-interval", "0")
	} else {
		c.apiArgs = append(c.apiArgs, "--data-dir", filepath.Join(c.dir, "etcd"))
	}
	var procs []*Process
	t.Cleanup(func() {
		for _, p := range procs {
			p.Stop()
			p.logOnFailure(t)
		}
	})
	c.apiserver = launch(t, "apiserver", exec.Command(c.controlBin["apiserver"], c.apiArgs...))
	procs = append(procs, c.apiserver)
	c.restartAPI = func() {
		c.apiserver = launch(t, "apiserver", exec.Command(c.controlBin["apiserver"], c.apiArgs...))
		procs = append(procs, c.apiserver)
	}
	conn, err := client.Dial(client.Config{Server: c.Addr, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c.Conn = conn
	c.waitAPIServer(t)
}

// waitAPIServer waits until the apiserver serves reads.
func (c *Cluster) waitAPIServer(t *testing.T) {
	t.Helper()
	harness.Eventually(t, 60*time.Second, "apiserver serving", func() error {
		if c.apiserver.Exited() {
			t.Fatalf("apiserver exited:\n%s", c.apiserver.Output())
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := client.For[*corev1.Namespace](c.Conn).Get(ctx, "", "default")
		return err
	})
}

// KillAPIServer sends SIGKILL to the apiserver and waits for it to exit.
func (c *Cluster) KillAPIServer() { c.apiserver.Kill() }

// RestartAPIServer starts the apiserver again (same flags, same address,
// same etcd) after KillAPIServer, and waits until it serves.
func (c *Cluster) RestartAPIServer(t *testing.T) {
	t.Helper()
	c.apiserver.Stop()
	c.restartAPI()
	c.waitAPIServer(t)
}

// startControl runs a control-plane service with its default timings.
func (c *Cluster) startControl(t *testing.T, svc string) {
	t.Helper()
	c.StartControl(t, svc)
}

// StartControl runs one more replica of a control-plane service
// (scheduler, controller or health-checker) with its default timings and
// returns it; it is also in Control[svc]. The scheduler's and the
// controller's leader election identity is SVC-N (N from 1 in start
// order), the holder their Leases name.
func (c *Cluster) StartControl(t *testing.T, svc string) *Process {
	t.Helper()
	args := []string{"--apiserver", c.Addr, "--insecure", "--listen", harness.FreePort(t), "--log-level", "warn"}
	identity := fmt.Sprintf("%s-%d", svc, len(c.Control[svc])+1)
	switch svc {
	case "scheduler":
		args = append(args, "--leader-elect-identity", identity)
	case "controller":
		args = append(args, "--identity", identity)
	}
	p := StartProcess(t, identity, exec.Command(c.controlBin[svc], args...))
	t.Cleanup(func() { p.Stop() })
	if c.Control == nil {
		c.Control = map[string][]*Process{}
	}
	c.Control[svc] = append(c.Control[svc], p)
	return p
}

// startContainerd runs a private containerd: its own root, state, socket
// and config in the cluster's directory.
func (c *Cluster) startContainerd(t *testing.T) {
	t.Helper()
	d := filepath.Join(c.dir, "containerd")
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatal(err)
	}
	c.ctrdAddr = filepath.Join(d, "containerd.sock")
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  address = ""
[metrics]
  address = ""
`, filepath.Join(d, "root"), filepath.Join(d, "state"), c.ctrdAddr, c.ctrdAddr+".ttrpc")
	if err := os.WriteFile(filepath.Join(d, "config.toml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	p := StartProcess(t, "containerd", exec.Command("containerd", "--config", filepath.Join(d, "config.toml")))
	t.Cleanup(func() {
		// After the nodes' cleanup (registered later, run earlier): remove
		// what remains in every node's namespace, then stop the daemon.
		for _, n := range c.Nodes {
			c.purgeNamespace(t, n.Namespace)
		}
		p.Stop()
		for _, n := range c.Nodes {
			_ = os.RemoveAll(filepath.Join("/run/containerd/runc", n.Namespace))
			if err := removeCgroups(n.Namespace); err != nil {
				t.Errorf("removing the cgroups of %s: %v", n.Name, err)
			}
		}
	})
	harness.Eventually(t, 20*time.Second, "containerd answering", func() error {
		if p.Exited() {
			t.Fatalf("containerd exited:\n%s", p.Output())
		}
		cl, err := ctrd.New(c.ctrdAddr, ctrd.WithTimeout(time.Second))
		if err != nil {
			return err
		}
		defer cl.Close()
		_, err = cl.Version(context.Background())
		return err
	})
}

// Containerd connects to the cluster's containerd; the caller closes it.
func (c *Cluster) Containerd(t *testing.T) *ctrd.Client {
	t.Helper()
	cl, err := ctrd.New(c.ctrdAddr)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// purgeNamespace removes every task, container and image of ns and ns.
func (c *Cluster) purgeNamespace(t *testing.T, ns string) {
	cl, err := ctrd.New(c.ctrdAddr, ctrd.WithTimeout(5*time.Second))
	if err != nil {
		t.Logf("containerd cleanup: %v", err)
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), ns), 30*time.Second)
	defer cancel()
	cs, _ := cl.Containers(ctx)
	for _, x := range cs {
		if task, err := x.Task(ctx, nil); err == nil {
			_, _ = task.Delete(ctx, ctrd.WithProcessKill)
		}
		_ = x.Delete(ctx, ctrd.WithSnapshotCleanup)
	}
	imgs, _ := cl.ImageService().List(ctx)
	for _, img := range imgs {
		_ = cl.ImageService().Delete(ctx, img.Name)
	}
	_ = cl.NamespaceService().Delete(ctx, ns)
}

// startRegistry serves the pod image from an in-process registry.
func (c *Cluster) startRegistry(t *testing.T, podapp []byte) {
	t.Helper()
	srv := httptest.NewUnstartedServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	srv.Listener.Close()
	srv.Listener = c.listenOnHost(t)
	srv.Start()
	t.Cleanup(srv.Close)
	c.registry = strings.TrimPrefix(srv.URL, "http://")
	img, err := podImage(podapp)
	if err != nil {
		t.Fatal(err)
	}
	c.Image = c.registry + "/podapp:v1"
	tag, err := name.NewTag(c.Image, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatalf("pushing %s: %v", c.Image, err)
	}
}

// buildPodApp compiles internal/podapp statically.
func buildPodApp(dir string) ([]byte, error) {
	_, file, _, _ := goruntime.Caller(0)
	out := filepath.Join(dir, "podapp")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./internal/podapp")
	cmd.Dir = filepath.Dir(file)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building podapp: %v: %s", err, b)
	}
	defer os.Remove(out)
	return os.ReadFile(out)
}

// podImage is one layer holding binary as /app (the entrypoint, serving
// on 8080), /tmp and /etc/passwd.
func podImage(binary []byte) (v1.Image, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	for _, d := range []struct {
		name string
		mode int64
	}{{"etc/", 0o755}, {"tmp/", 0o1777}} {
		if err := tw.WriteHeader(&tar.Header{Name: d.name, Typeflag: tar.TypeDir, Mode: d.mode, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{
		{"app", 0o755, binary},
		{"etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/app\nnobody:x:65534:65534:nobody:/:/app\n")},
		{"etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		return nil, err
	}
	base, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cfg, err := base.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", goruntime.GOARCH
	cfg.Config.Entrypoint = []string{"/app"}
	cfg.Config.Cmd = []string{"serve", "8080"}
	cfg.Config.Env = []string{"PATH=/"}
	return mutate.ConfigFile(base, cfg)
}

// AddNode starts a node-agent named name in a network namespace of its
// own, with an address, containerd namespace, root directory, bridge and
// pod CIDR of its own.
func (c *Cluster) AddNode(t *testing.T, name string) *Node {
	t.Helper()
	n := &Node{
		Name: name, Namespace: "bosun-mn-" + randomHex(4), Bridge: "bmn" + randomHex(4),
		PodCIDR: c.freeCIDR(t), RootDir: filepath.Join(c.dir, name, "root"), c: c,
	}
	// Registered first, so it runs after the node-agent's cleanup below.
	c.startNodeNetwork(t, n)
	n.Listen = n.IP + ":10250"
	n.args = []string{"--apiserver", c.Addr, "--insecure", "--listen", n.Listen, "--log-level", "info",
		"--node-name", name, "--node-ip", n.IP, "--pod-cidr", n.PodCIDR,
		"--containerd-address", c.ctrdAddr, "--containerd-namespace", n.Namespace,
		"--root-dir", n.RootDir, "--log-dir", filepath.Join(c.dir, name, "logs"),
		"--cni-bridge", n.Bridge, "--insecure-registries", c.registry,
		"--allowed-host-path-prefixes", filepath.Join(c.dir, name, "hostpath")}
	c.Nodes = append(c.Nodes, n)
	// Runs after the pods' removal (registered later) and before
	// containerd's cleanup (registered earlier).
	t.Cleanup(func() {
		for _, p := range n.procs {
			p.Stop()
			p.logOnFailure(t)
		}
		n.removeLeftovers(t)
	})
	n.Start(t)
	return n
}

// Start (re)starts the node-agent with the node's flags. It is stopped
// when the test ends, after the pods' removal, whenever it was started.
func (n *Node) Start(t *testing.T) {
	t.Helper()
	n.proc = launch(t, "node-agent "+n.Name, n.InNetNS(n.c.agentBin, n.args...))
	n.procs = append(n.procs, n.proc)
}

// Kill sends SIGKILL to the node-agent and waits for it to exit.
func (n *Node) Kill() { n.proc.Kill() }

// Pause stops the node-agent with SIGSTOP for d, then lets it go on with
// SIGCONT: a node that stalls, not one that dies.
func (n *Node) Pause(t *testing.T, d time.Duration) {
	t.Helper()
	if err := n.proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("pausing %s: %v", n.Name, err)
	}
	time.Sleep(d)
	if err := n.proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("resuming %s: %v", n.Name, err)
	}
}

// Output is what the node-agent printed since its last start.
func (n *Node) Output() string { return n.proc.Output() }

// TaskPIDs lists the PIDs of the running tasks in the node's containerd
// namespace, by pod UID (the label the node-agent puts on containers).
func (n *Node) TaskPIDs(t *testing.T) map[string][]uint32 {
	t.Helper()
	cl := n.c.Containerd(t)
	defer cl.Close()
	ctx := namespaces.WithNamespace(context.Background(), n.Namespace)
	cs, err := cl.Containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]uint32{}
	for _, x := range cs {
		labels, err := x.Labels(ctx)
		if err != nil {
			continue
		}
		task, err := x.Task(ctx, nil)
		if err != nil {
			continue
		}
		st, err := task.Status(ctx)
		if err != nil || st.Status != ctrd.Running {
			continue
		}
		uid := labels["bosun.dev/pod-uid"]
		out[uid] = append(out[uid], task.Pid())
	}
	return out
}

// ShimPIDs lists the PIDs of the containerd shims serving the node's
// containerd namespace (found by their command line: -namespace NS and
// -address of the cluster's containerd).
func (n *Node) ShimPIDs() []int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var out []int
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) == 0 || !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") {
			continue
		}
		var ns, addr string
		for i := 1; i+1 < len(args); i++ {
			switch args[i] {
			case "-namespace":
				ns = args[i+1]
			case "-address":
				addr = args[i+1]
			}
		}
		if ns == n.Namespace && addr == n.c.ctrdAddr {
			var pid int
			if _, err := fmt.Sscanf(filepath.Base(filepath.Dir(p)), "%d", &pid); err == nil {
				out = append(out, pid)
			}
		}
	}
	return out
}

// Containers lists the containers in the node's containerd namespace by
// pod UID.
func (n *Node) Containers(t *testing.T) map[string][]string {
	t.Helper()
	cl := n.c.Containerd(t)
	defer cl.Close()
	ctx := namespaces.WithNamespace(context.Background(), n.Namespace)
	cs, err := cl.Containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, x := range cs {
		labels, err := x.Labels(ctx)
		if err != nil {
			continue
		}
		uid := labels["bosun.dev/pod-uid"]
		out[uid] = append(out[uid], x.ID())
	}
	return out
}

// removeLeftovers removes what pods of a failed test left on the node's
// network and root directory: network namespaces, CNI result caches,
// masquerade chains, the bridge, mounts.
func (n *Node) removeLeftovers(t *testing.T) {
	nsDir := filepath.Join(n.RootDir, "netns")
	if ents, err := os.ReadDir(nsDir); err == nil {
		for _, e := range ents {
			if err := netns.LoadNetNS(filepath.Join(nsDir, e.Name())).Remove(); err != nil {
				t.Logf("removing network namespace %s: %v", e.Name(), err)
			}
		}
	}
	netName := "bosun-" + n.Bridge
	if ents, err := os.ReadDir("/var/lib/cni/results"); err == nil {
		for _, e := range ents {
			if id, ok := strings.CutPrefix(e.Name(), netName+"-"); ok {
				id = strings.TrimSuffix(id, "-eth0")
				_ = os.Remove(filepath.Join("/var/lib/cni/results", e.Name()))
				_ = os.Remove(filepath.Join("/var/lib/cni/results", "cni-loopback-"+id+"-lo"))
			}
		}
	}
	for _, rule := range n.NATRules() {
		if !strings.HasPrefix(rule, "-A POSTROUTING ") {
			continue
		}
		f := strings.Fields(rule)
		chain := f[len(f)-1]
		_ = n.InNetNS("sh", "-c", "iptables -t nat "+strings.Replace(rule, "-A", "-D", 1)).Run()
		_ = n.InNetNS("iptables", "-t", "nat", "-F", chain).Run()
		_ = n.InNetNS("iptables", "-t", "nat", "-X", chain).Run()
	}
	_ = n.InNetNS("ip", "link", "del", n.Bridge).Run()
}

// NATRules lists the nat rules of the node's network (the bridge plugin's
// masquerade rules of its pods), in the node's network namespace.
func (n *Node) NATRules() []string {
	out, err := n.InNetNS("iptables", "-t", "nat", "-S").Output()
	if err != nil {
		return []string{"iptables: " + err.Error()}
	}
	var rules []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, `name: \"bosun-`+n.Bridge+`\"`) {
			rules = append(rules, line)
		}
	}
	return rules
}

// NetNS lists the network namespace files left in the node's root.
func (n *Node) NetNS() []string {
	ents, _ := os.ReadDir(filepath.Join(n.RootDir, "netns"))
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// Leases lists host-local's address leases on the node (files named by
// IP in ROOT_DIR/ipam).
func (n *Node) Leases() []string {
	var out []string
	_ = filepath.Walk(filepath.Join(n.RootDir, "ipam"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			if _, err := netip.ParseAddr(filepath.Base(p)); err == nil {
				out = append(out, filepath.Base(p))
			}
		}
		return nil
	})
	return out
}

// freeCIDR picks a /24 in 10.200-254.x.0 that no route of the host and no
// other node of the cluster overlaps.
func (c *Cluster) freeCIDR(t *testing.T) string {
	t.Helper()
	for try := 0; try < 100; try++ {
		r, _ := rand.Int(rand.Reader, big.NewInt(254*55))
		cidr := fmt.Sprintf("10.%d.%d.0/24", 200+r.Int64()/254, 1+r.Int64()%254)
		taken := routed(cidr)
		for _, n := range c.Nodes {
			taken = taken || n.PodCIDR == cidr
		}
		if !taken {
			return cidr
		}
	}
	t.Fatal("no free /24 in 10.200.0.0/13 for a node")
	return ""
}

// routed reports whether a route of the host overlaps cidr.
func routed(cidr string) bool {
	p := netip.MustParsePrefix(cidr)
	out, err := exec.Command("ip", "-4", "route", "show", "table", "all").Output()
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == "default" {
			continue
		}
		dst := f[0]
		if dst == "broadcast" || dst == "local" || dst == "unreachable" || dst == "blackhole" {
			if len(f) < 2 {
				continue
			}
			dst = f[1]
		}
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		if q, err := netip.ParsePrefix(dst); err == nil && q.Overlaps(p) {
			return true
		}
	}
	return false
}

// removeCgroups removes the cgroups runc made for containerd namespace ns
// (the namespace's own level is left behind when its containers go), in
// every cgroup v1 hierarchy and in the unified one.
func removeCgroups(ns string) error {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", ns))
	dirs = append(dirs, filepath.Join("/sys/fs/cgroup", ns))
	var errs []string
	for _, d := range dirs {
		if err := removeCgroup(d); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// removeCgroup removes a cgroup directory and its children, deepest first.
func removeCgroup(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := removeCgroup(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return syscall.Rmdir(dir)
}

// removeDir unmounts what remains under dir and removes it.
func removeDir(t *testing.T, dir string) {
	if b, err := os.ReadFile("/proc/self/mounts"); err == nil {
		var mounts []string
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], dir) {
				mounts = append(mounts, f[1])
			}
		}
		for i := len(mounts) - 1; i >= 0; i-- {
			_ = syscall.Unmount(mounts[i], syscall.MNT_DETACH)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Errorf("removing %s: %v", dir, err)
	}
}

// ReadyStatus is the status of the node's Ready condition ("" without one).
func ReadyStatus(n *corev1.Node) string {
	for _, cond := range n.GetStatus().GetConditions() {
		if cond.GetType() == "Ready" {
			return cond.GetStatus()
		}
	}
	return ""
}

// WaitNode polls the Node until check passes, failing the test after
// timeout.
func (c *Cluster) WaitNode(t *testing.T, node string, timeout time.Duration, what string, check func(*corev1.Node) error) {
	t.Helper()
	harness.Eventually(t, timeout, node+" "+what, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		nd, err := client.For[*corev1.Node](c.Conn).Get(ctx, "", node)
		if err != nil {
			return err
		}
		return check(nd)
	})
}
