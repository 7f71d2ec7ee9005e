package agent_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	ctrdclient "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/services/node-agent/internal/agent"
	"bosun.dev/services/node-agent/internal/containerdtest"
	"bosun.dev/services/node-agent/internal/nodeapi"
)

// cluster is an apiserver, a private containerd, a registry holding the
// test app, and a node-agent.
type cluster struct {
	conn  *grpc.ClientConn
	image string
	d     *containerdtest.Daemon
	nw    *containerdtest.Network
	agent *agent.Agent
	node  string
}

func startCluster(tb testing.TB) *cluster {
	tb.Helper()
	containerdtest.Require(tb)
	addr := containerdtest.StartAPIServer(tb)
	d := containerdtest.StartContainerd(tb)
	nw := containerdtest.NewNetwork(tb)
	reg := containerdtest.StartRegistry(tb)
	img, err := containerdtest.Image(containerdtest.TestApp(tb))
	if err != nil {
		tb.Fatal(err)
	}
	c := &cluster{image: reg.Push(tb, "testapp:v1", img), d: d, nw: nw, node: "agent-test"}
	conn, err := client.Dial(client.Config{Server: addr, Insecure: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	c.conn = conn
	dir := tb.TempDir()
	cfg := agent.Config{
		NodeName: c.node, NodeIP: "127.0.0.1", PodCIDR: nw.Options.PodCIDR, Port: 10250,
		ContainerdAddress: d.Address, ContainerdNamespace: d.Namespace,
		// The test network's directories are the agent's netns and ipam.
		RootDir: filepath.Dir(nw.Options.NetNSDir), LogDir: filepath.Join(dir, "logs"),
		Bridge: nw.Options.Bridge, InsecureRegistries: []string{reg.Host}, MaxPods: 110,
		LeaseDuration: 10 * time.Second, RenewInterval: time.Second, StatusInterval: 10 * time.Second,
		ResyncInterval: 10 * time.Second, BackoffBase: time.Second, BackoffMax: 10 * time.Second,
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *agent.Agent, 1)
	done := make(chan error, 1)
	level := slog.LevelWarn
	if os.Getenv("BOSUN_AGENT_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	go func() { done <- agent.Run(ctx, conn, cfg, log, func(a *agent.Agent) { ready <- a }) }()
	tb.Cleanup(func() {
		// Pods outlive a stopped agent: delete them while it runs, so it
		// removes their containers and sandboxes.
		cleanupPods(tb, conn, c.node)
		if c.agent != nil {
			deadline := time.Now().Add(60 * time.Second)
			for c.agent.Pods.Count() > 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
		}
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("agent: %v", err)
		}
	})
	select {
	case c.agent = <-ready:
	case err := <-done:
		tb.Fatalf("agent stopped: %v", err)
	case <-time.After(60 * time.Second):
		tb.Fatal("agent not ready within 60s")
	}
	return c
}

func cleanupPods(tb testing.TB, conn *grpc.ClientConn, node string) {
	ctx := context.Background()
	pods := client.For[*corev1.Pod](conn)
	all, _, err := pods.ListAll(ctx, client.ListOptions{FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		return
	}
	zero := int64(0)
	for _, p := range all {
		_, _ = pods.Delete(ctx, p.GetMetadata().GetNamespace(), p.GetMetadata().GetName(), client.DeleteOptions{GracePeriodSeconds: &zero})
	}
}

func (c *cluster) createBound(ctx context.Context, name string, args ...string) error {
	pods := client.For[*corev1.Pod](c.conn)
	grace := int64(1)
	_, err := pods.Create(ctx, &corev1.Pod{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: &corev1.PodSpec{TerminationGracePeriodSeconds: &grace,
			Containers: []*corev1.Container{{Name: "app", Image: c.image, Args: args}}},
	})
	if err != nil {
		return err
	}
	_, err = corev1.NewPodServiceClient(c.conn).BindPod(ctx, &corev1.BindPodRequest{Namespace: "default", Name: name, NodeName: c.node})
	return err
}

func eventually(tb testing.TB, timeout time.Duration, f func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The node-agent registers its node and lease with the real apiserver,
// runs a pod bound to it, reports it Running with its IP, and on delete
// stops it and removes the object.
func TestAgentRunsPodsThroughTheAPIServer(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	// The node turns Ready at the next heartbeat after the runtime and the
	// network are up.
	eventually(t, 10*time.Second, func() error {
		n, err := client.For[*corev1.Node](c.conn).Get(ctx, "", c.node)
		if err != nil {
			return err
		}
		ready := ""
		for _, cond := range n.GetStatus().GetConditions() {
			if cond.GetType() == "Ready" {
				ready = cond.GetStatus()
			}
		}
		if ready != "True" || n.GetStatus().GetNodeInfo().GetContainerRuntimeVersion() == "" || n.GetStatus().GetCapacity()["pods"] != "110" {
			return fmt.Errorf("node status %v", n.GetStatus())
		}
		return nil
	})
	if _, err := client.For[*coordinationv1.Lease](c.conn).Get(ctx, "bosun-node-lease", c.node); err != nil {
		t.Errorf("node lease: %v", err)
	}
	if err := c.createBound(ctx, "web", "serve", "8080"); err != nil {
		t.Fatal(err)
	}
	pods := client.For[*corev1.Pod](c.conn)
	var ip string
	eventually(t, 60*time.Second, func() error {
		p, err := pods.Get(ctx, "default", "web")
		if err != nil {
			return err
		}
		if p.GetStatus().GetPhase() != "Running" || p.GetStatus().GetPodIp() == "" {
			return fmt.Errorf("status %v", p.GetStatus())
		}
		ip = p.GetStatus().GetPodIp()
		return nil
	})
	eventually(t, 20*time.Second, func() error {
		resp, err := (&http.Client{Timeout: time.Second}).Get("http://" + ip + ":8080/")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "hello from web\n" {
			return fmt.Errorf("body %q", b)
		}
		return nil
	})
	if _, err := pods.Delete(ctx, "default", "web", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, func() error {
		_, err := pods.Get(ctx, "default", "web")
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("pod still there (%v)", err)
	})
	if left := c.d.Leftovers(t); len(left) != 0 {
		t.Errorf("left in containerd: %v", left)
	}
	if left := append(append(c.nw.NetNSFiles(), c.nw.Leases()...), c.nw.NATRules()...); len(left) != 0 {
		t.Errorf("network state left: %v", left)
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p)
	return s[i]
}

// BenchmarkPodStartup measures pod create -> Running seen through a watch,
// one pod at a time, next to raw containerd create+start of the same image
// in the same run, and writes the figures to the file named by
// $BOSUN_BENCH_OUT (the section node-agent-pod-startup of
// docs/benchmarks.md) when it is set.
//
//	go test -run '^$' -bench PodStartup -benchtime 1x ./internal/agent/
func BenchmarkPodStartup(b *testing.B) {
	const pods = 50
	c := startCluster(b)
	ctx := context.Background()
	podClient := client.For[*corev1.Pod](c.conn)
	// Warm up: the first pod pulls the image.
	if err := c.createBound(ctx, "warmup", "serve", "8080"); err != nil {
		b.Fatal(err)
	}
	eventually(b, 60*time.Second, func() error {
		p, err := podClient.Get(ctx, "default", "warmup")
		if err != nil {
			return err
		}
		if p.GetStatus().GetPhase() != "Running" {
			return fmt.Errorf("warm-up pod not running: node %q, status %v", p.GetSpec().GetNodeName(), p.GetStatus())
		}
		return nil
	})
	b.ResetTimer()
	var agentLat, rawLat []time.Duration
	for it := 0; it < b.N; it++ {
		agentLat, rawLat = agentLat[:0], rawLat[:0]
		for i := 0; i < pods; i++ {
			// Alternate: a raw containerd start, then a pod through Bosun.
			raw, err := rawCreateStart(ctx, c, fmt.Sprintf("raw-%d-%d", it, i))
			if err != nil {
				b.Fatal(err)
			}
			rawLat = append(rawLat, raw)
			name := fmt.Sprintf("bench-%d-%d", it, i)
			list, err := podClient.List(ctx, client.ListOptions{Namespace: "default", PageSize: 1})
			if err != nil {
				b.Fatal(err)
			}
			w, err := podClient.Watch(ctx, client.WatchOptions{Namespace: "default", FieldSelector: "metadata.name=" + name, ResourceVersion: list.ResourceVersion})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if err := c.createBound(ctx, name, "serve", "8080"); err != nil {
				b.Fatal(err)
			}
			for {
				ev, err := w.Next()
				if err != nil {
					b.Fatal(err)
				}
				if ev.Object.GetStatus().GetPhase() == "Running" {
					agentLat = append(agentLat, time.Since(start))
					break
				}
			}
			w.Stop()
			zero := int64(0)
			_, _ = podClient.Delete(ctx, "default", name, client.DeleteOptions{GracePeriodSeconds: &zero})
		}
	}
	b.StopTimer()
	ap50, ap99 := percentile(agentLat, 0.5), percentile(agentLat, 0.99)
	rp50, rp99 := percentile(rawLat, 0.5), percentile(rawLat, 0.99)
	b.ReportMetric(float64(ap50.Microseconds())/1000, "pod-p50-ms")
	b.ReportMetric(float64(ap99.Microseconds())/1000, "pod-p99-ms")
	b.ReportMetric(float64(rp50.Microseconds())/1000, "raw-p50-ms")
	b.ReportMetric(float64(rp99.Microseconds())/1000, "raw-p99-ms")
	b.Logf("pod create -> Running via watch: p50 %s p99 %s; raw containerd create+start: p50 %s p99 %s", ap50, ap99, rp50, rp99)
	if out := os.Getenv("BOSUN_BENCH_OUT"); out != "" {
		if err := writeSection(out, benchSection(ap50, ap99, rp50, rp99, pods)); err != nil {
			b.Fatal(err)
		}
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func benchSection(ap50, ap99, rp50, rp99 time.Duration, n int) string {
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "missed"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## node-agent-pod-startup: pod create -> Running seen through a watch, real containerd\n\n")
	fmt.Fprintf(&b, "- Date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(&b, "- Machine: %d CPUs, %s/%s, %s; load average at the end %s\n", goruntime.NumCPU(), goruntime.GOOS, goruntime.GOARCH, goruntime.Version(), strings.Join(strings.Fields(string(load))[:3], " "))
	fmt.Fprintf(&b, "- Reproduce (as root, containerd, runc and the CNI plugins installed): `cd services/node-agent && BOSUN_BENCH_OUT=$PWD/../../docs/benchmarks.md go test -run '^$' -bench PodStartup -benchtime 1x ./internal/agent/`\n")
	fmt.Fprintf(&b, "- Parameters: %d pods, one at a time, each alternating with one raw containerd create+start of the same image (already pulled)\n\n", n)
	b.WriteString("The apiserver binary runs with an embedded etcd; the node-agent runs in the bench process against a private containerd 1.6 (overlayfs, runc, cgroupfs) with a CNI bridge network. ")
	b.WriteString("**Pod**: from the `CreatePod` call, through `BindPod`, the agent's watch, sandbox (network namespace + CNI ADD), container create and start, to the `Running` status arriving on a watch of the pod. ")
	b.WriteString("**Raw**: the containerd client's `NewContainer` (snapshot + spec) + `NewTask` + `Start` of the same image, no network.\n\n")
	b.WriteString("| | p50 | p99 |\n|---|--:|--:|\n")
	fmt.Fprintf(&b, "| raw containerd create+start | %s | %s |\n", ms(rp50), ms(rp99))
	fmt.Fprintf(&b, "| pod create -> Running via watch | %s | %s |\n", ms(ap50), ms(ap99))
	fmt.Fprintf(&b, "| difference (pod - raw) | %s | %s |\n", ms(ap50-rp50), ms(ap99-rp99))
	fmt.Fprintf(&b, "| ratio (pod / raw) | %.2f | %.2f |\n\n", float64(ap50)/float64(rp50), float64(ap99)/float64(rp99))
	fmt.Fprintf(&b, "Targets: p50 within 150 ms of raw containerd (%s: %s over); p99 <= 1 s (%s: %s).\n",
		verdict(ap50-rp50 <= 150*time.Millisecond), ms(ap50-rp50), verdict(ap99 <= time.Second), ms(ap99))
	return b.String()
}

// writeSection replaces (or appends) the benchmark's marked section of the
// results file, keeping the rest.
func writeSection(path, body string) error {
	const begin, end = "<!-- bench:node-agent-pod-startup begin -->", "<!-- bench:node-agent-pod-startup end -->"
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	doc := string(old)
	section := begin + "\n" + strings.TrimRight(body, "\n") + "\n" + end
	bi, ei := strings.Index(doc, begin), strings.Index(doc, end)
	switch {
	case bi < 0 && ei < 0:
		doc = strings.TrimRight(doc, "\n") + "\n\n" + section + "\n"
	case bi < 0 || ei < bi:
		return fmt.Errorf("%s: the node-agent-pod-startup markers are out of order", path)
	default:
		doc = doc[:bi] + section + doc[ei+len(end):]
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}

// rawCreateStart times containerd's own create+start of the test image
// (already pulled by the agent), then removes the container.
func rawCreateStart(ctx context.Context, c *cluster, id string) (time.Duration, error) {
	cl, err := ctrdclient.New(c.d.Address, ctrdclient.WithDefaultNamespace(c.d.Namespace))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx = namespaces.WithNamespace(ctx, c.d.Namespace)
	img, err := cl.GetImage(ctx, c.image)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	ctr, err := cl.NewContainer(ctx, id, ctrdclient.WithImage(img), ctrdclient.WithNewSnapshot(id, img),
		ctrdclient.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("/app", "serve", "8080")))
	if err != nil {
		return 0, err
	}
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err != nil {
		return 0, err
	}
	if err := task.Start(ctx); err != nil {
		return 0, err
	}
	d := time.Since(start)
	if _, err := task.Delete(ctx, ctrdclient.WithProcessKill); err != nil {
		return 0, err
	}
	return d, ctr.Delete(ctx, ctrdclient.WithSnapshotCleanup)
}

// NodeAgentService on a real node: logs of a container stream (-f
// delivers lines written after the call started), and an OCI tarball
// uploaded in chunks loads and runs with imagePullPolicy Never.
func TestAgentAPI(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := grpc.NewServer()
	srv := nodeapi.Register(s)
	srv.SetBackend(c.agent.APIBackend())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(l) }()
	defer s.Stop()
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := c.createBound(ctx, "chatty", "log"); err != nil {
		t.Fatal(err)
	}
	lc := corev1.NewNodeAgentServiceClient(conn)
	var st grpc.ServerStreamingClient[corev1.ContainerLogsResponse]
	eventually(t, 30*time.Second, func() error {
		var err error
		st, err = lc.ContainerLogs(ctx, &corev1.ContainerLogsRequest{Namespace: "default", Pod: "chatty", Follow: true, TailLines: ptr(int64(1))})
		if err != nil {
			return err
		}
		_, err = st.Recv() // the call succeeded once there is a line
		return err
	})
	// Lines keep coming: see three different ones after the first.
	seen := map[string]bool{}
	var buf strings.Builder
	for len(seen) < 3 {
		m, err := st.Recv()
		if err != nil {
			t.Fatalf("stream ended after %q: %v", buf.String(), err)
		}
		buf.Write(m.GetData())
		for _, line := range strings.Split(buf.String(), "\n") {
			if strings.HasPrefix(line, "line ") {
				seen[line] = true
			}
		}
	}

	// Load an image from a tarball, in chunks, and run it without a pull.
	img, err := containerdtest.Image(containerdtest.TestApp(t))
	if err != nil {
		t.Fatal(err)
	}
	const ref = "bosun.test/loaded:v2"
	tarball, err := containerdtest.OCIArchive(img, ref)
	if err != nil {
		t.Fatal(err)
	}
	load := func(node string, data []byte) (*corev1.LoadImagesResponse, error) {
		up, err := lc.LoadImages(ctx)
		if err != nil {
			return nil, err
		}
		for i := 0; i < len(data) || i == 0; i += 64 << 10 {
			req := &corev1.LoadImagesRequest{Data: data[i:min(i+64<<10, len(data))]}
			if i == 0 {
				req.Node = node
			}
			if err := up.Send(req); err != nil {
				break // the server answered early; CloseAndRecv says why
			}
		}
		return up.CloseAndRecv()
	}
	resp, err := load(c.node, tarball)
	if err != nil || len(resp.GetImages()) != 1 || resp.GetImages()[0].GetNames()[0] != ref || resp.GetImages()[0].GetSizeBytes() == 0 {
		t.Fatalf("load: %v %v", resp, err)
	}
	if _, err := load("another-node", tarball); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), `node: "another-node" is not this node`) {
		t.Errorf("load for another node: %v", err)
	}
	if _, err := load(c.node, []byte("not a tarball")); status.Code(err) != codes.InvalidArgument {
		t.Errorf("load of garbage: %v", err)
	}
	pods := client.For[*corev1.Pod](c.conn)
	_, err = pods.Create(ctx, &corev1.Pod{
		Metadata: &metav1.ObjectMeta{Name: "loaded", Namespace: "default"},
		Spec:     &corev1.PodSpec{NodeName: c.node, Containers: []*corev1.Container{{Name: "app", Image: ref, ImagePullPolicy: "Never", Args: []string{"serve", "8080"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		p, err := pods.Get(ctx, "default", "loaded")
		if err != nil {
			return err
		}
		if p.GetStatus().GetPhase() != "Running" {
			return fmt.Errorf("status %v", p.GetStatus())
		}
		return nil
	})
}

func ptr[T any](v T) *T { return &v }

// The node-agent binary killed with SIGKILL and started again adopts its
// running pod: same container, same start time, no restart; the pod keeps
// answering throughout, and deleting it afterwards leaves nothing behind.
func TestAgentBinarySurvivesKill9(t *testing.T) {
	containerdtest.Require(t)
	addr := containerdtest.StartAPIServer(t)
	d := containerdtest.StartContainerd(t)
	nw := containerdtest.NewNetwork(t)
	reg := containerdtest.StartRegistry(t)
	img, err := containerdtest.Image(containerdtest.TestApp(t))
	if err != nil {
		t.Fatal(err)
	}
	image := reg.Push(t, "testapp:v1", img)
	bin := containerdtest.BuildBinary(t, "bosun.dev/services/node-agent/cmd/node-agent")
	dir := t.TempDir()
	const nodeName = "kill-test"
	start := func() *containerdtest.Process {
		return containerdtest.StartProcess(t, exec.Command(bin, "--apiserver", addr, "--insecure", "--listen", "127.0.0.1:0",
			"--node-name", nodeName, "--node-ip", "127.0.0.1", "--pod-cidr", nw.Options.PodCIDR, "--cni-bridge", nw.Options.Bridge,
			"--containerd-address", d.Address, "--containerd-namespace", d.Namespace,
			"--root-dir", filepath.Dir(nw.Options.NetNSDir), "--log-dir", filepath.Join(dir, "logs"),
			"--insecure-registries", reg.Host, "--sync-interval", "1s", "--lease-duration", "5s", "--lease-renew-interval", "500ms"))
	}
	conn, err := client.Dial(client.Config{Server: addr, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	pods := client.For[*corev1.Pod](conn)
	leases := client.For[*coordinationv1.Lease](conn)

	agent1 := start()
	c := &cluster{conn: conn, image: image, d: d, node: nodeName}
	eventually(t, 60*time.Second, func() error {
		_, err := leases.Get(ctx, "bosun-node-lease", nodeName)
		return err
	})
	if err := c.createBound(ctx, "web", "serve", "8080"); err != nil {
		t.Fatal(err)
	}
	var before *corev1.ContainerStatus
	var ip string
	eventually(t, 60*time.Second, func() error {
		p, err := pods.Get(ctx, "default", "web")
		if err != nil {
			return err
		}
		if p.GetStatus().GetPhase() != "Running" || len(p.GetStatus().GetContainerStatuses()) != 1 {
			return fmt.Errorf("status %v", p.GetStatus())
		}
		before, ip = p.GetStatus().GetContainerStatuses()[0], p.GetStatus().GetPodIp()
		return nil
	})

	agent1.Signal(syscall.SIGKILL)
	killedAt := time.Now()
	if _, err := http.Get("http://" + ip + ":8080/healthz"); err != nil {
		t.Errorf("the pod stopped answering when the agent died: %v", err)
	}
	agent2 := start()
	// Wait until the new agent is up: it renews the lease.
	eventually(t, 60*time.Second, func() error {
		l, err := leases.Get(ctx, "bosun-node-lease", nodeName)
		if err != nil {
			return err
		}
		if !l.GetSpec().GetRenewTime().AsTime().After(killedAt) {
			return fmt.Errorf("lease not renewed since the kill")
		}
		return nil
	})
	time.Sleep(3 * time.Second) // three pod syncs of the new agent
	p, err := pods.Get(ctx, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	after := p.GetStatus().GetContainerStatuses()[0]
	if after.GetContainerId() != before.GetContainerId() || after.GetRestartCount() != 0 ||
		!after.GetState().GetRunning().GetStartedAt().AsTime().Equal(before.GetState().GetRunning().GetStartedAt().AsTime()) {
		t.Errorf("container not adopted as it ran:\nbefore %v\nafter  %v", before, after)
	}
	// The binary serves NodeAgentService on the port its Node publishes.
	n, err := client.For[*corev1.Node](conn).Get(ctx, "", nodeName)
	if err != nil {
		t.Fatal(err)
	}
	// It listens on the node IP, so no health endpoint annotation is needed.
	if a, ok := n.GetMetadata().GetAnnotations()["health.bosun.dev/endpoint"]; ok {
		t.Errorf("health endpoint annotation %q on a node-agent listening on its node IP", a)
	}
	endpoint := fmt.Sprintf("%s:%d", n.GetStatus().GetAddresses()[0].GetAddress(), n.GetStatus().GetDaemonEndpoints().GetKubeletEndpoint().GetPort())
	nc, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	st, err := corev1.NewNodeAgentServiceClient(nc).ContainerLogs(ctx, &corev1.ContainerLogsRequest{Namespace: "default", Pod: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := st.Recv(); err != nil || string(m.GetData()) != "listening on 8080\n" {
		t.Errorf("logs through the binary: %q %v", m.GetData(), err)
	}
	if left := d.Leftovers(t); len(left) != 3 { // the container, its task and its snapshot
		t.Errorf("containerd holds %v, want the one container, its task and snapshot", left)
	}
	if _, err := pods.Delete(ctx, "default", "web", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, func() error {
		if _, err := pods.Get(ctx, "default", "web"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("pod still there (%v)", err)
		}
		return nil
	})
	agent2.Signal(syscall.SIGTERM)
	if !agent2.Wait(20 * time.Second) {
		t.Error("the agent did not stop on SIGTERM")
	}
	if left := d.Leftovers(t); len(left) != 0 {
		t.Errorf("left in containerd: %v", left)
	}
	if left := nw.NetNSFiles(); len(left) != 0 {
		t.Errorf("network namespaces left: %v", left)
	}
	if left := nw.Leases(); len(left) != 0 {
		t.Errorf("IPAM leases left: %v", left)
	}
	if left := nw.NATRules(); len(left) != 0 {
		t.Errorf("iptables rules left: %v", left)
	}
}

// Without containerd the node is still registered and heartbeats, NotReady
// with the reason, while the agent keeps retrying.
func TestAgentWithoutContainerdReportsNotReady(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an apiserver")
	}
	addr := containerdtest.StartAPIServer(t)
	conn, err := client.Dial(client.Config{Server: addr, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-containerd.sock")
	cfg := agent.Config{
		NodeName: "lonely", NodeIP: "127.0.0.1", PodCIDR: "10.250.0.0/24", Port: 10250,
		ContainerdAddress: missing, RootDir: filepath.Join(dir, "root"), LogDir: filepath.Join(dir, "logs"),
		MaxPods: 10, LeaseDuration: 5 * time.Second, RenewInterval: 200 * time.Millisecond,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() {
		done <- agent.Run(ctx, conn, cfg, log, func(*agent.Agent) { t.Error("ready without containerd") })
	}()
	eventually(t, 20*time.Second, func() error {
		n, err := client.For[*corev1.Node](conn).Get(ctx, "", "lonely")
		if err != nil {
			return err
		}
		for _, c := range n.GetStatus().GetConditions() {
			if c.GetType() == "Ready" && c.GetStatus() == "False" && strings.Contains(c.GetMessage(), "container runtime is not connected (containerd at "+missing+")") {
				return nil
			}
		}
		return fmt.Errorf("conditions %v", n.GetStatus().GetConditions())
	})
	var first time.Time
	eventually(t, 10*time.Second, func() error {
		l, err := client.For[*coordinationv1.Lease](conn).Get(ctx, "bosun-node-lease", "lonely")
		if err != nil {
			return err
		}
		if first.IsZero() {
			first = l.GetSpec().GetRenewTime().AsTime()
		}
		if !l.GetSpec().GetRenewTime().AsTime().After(first) {
			return errors.New("lease not renewed yet")
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("agent: %v", err)
	}
}
