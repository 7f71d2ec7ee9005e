package pods_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/services/node-agent/internal/agenttest"
	"bosun.dev/services/node-agent/internal/containerdtest"
	"bosun.dev/services/node-agent/internal/images"
	"bosun.dev/services/node-agent/internal/network"
	"bosun.dev/services/node-agent/internal/pods"
	"bosun.dev/services/node-agent/internal/runtime"
	ctrd "bosun.dev/services/node-agent/internal/runtime/containerd"
	"bosun.dev/services/node-agent/internal/volumes"
)

// real is a node on a private containerd with a CNI network of its own.
type real struct {
	t       *testing.T
	daemon  *containerdtest.Daemon
	net     *containerdtest.Network
	cni     *network.CNI
	reg     *containerdtest.Registry
	image   string // the test app, pushed to reg
	api     *agenttest.API
	dir     string
	rt      *ctrd.Runtime
	m       *pods.Manager
	cancel  context.CancelFunc
	done    chan struct{}
	backoff time.Duration
}

func newReal(t *testing.T) *real {
	t.Helper()
	containerdtest.Require(t)
	r := &real{t: t, api: agenttest.NewAPI(), dir: t.TempDir(), backoff: 500 * time.Millisecond}
	r.daemon = containerdtest.StartContainerd(t)
	r.net = containerdtest.NewNetwork(t)
	var err error
	if r.cni, err = network.NewCNI(r.net.Options); err != nil {
		t.Fatal(err)
	}
	r.reg = containerdtest.StartRegistry(t)
	img, err := containerdtest.Image(containerdtest.TestApp(t))
	if err != nil {
		t.Fatal(err)
	}
	r.image = r.reg.Push(t, "testapp:v1", img)
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *real) start() {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wake atomic.Pointer[pods.Manager]
	rt, err := ctrd.New(ctx, ctrd.Options{Address: r.daemon.Address, Namespace: r.daemon.Namespace,
		Notify: func(uid string) {
			if m := wake.Load(); m != nil {
				m.Wake(uid)
			}
		}})
	if err != nil {
		cancel()
		r.t.Fatal(err)
	}
	m := pods.New(pods.Options{
		NodeName: node, HostIP: "127.0.0.1",
		Runtime: rt, Network: r.cni,
		Images:     images.New(rt, images.Options{InsecureRegistries: []string{r.reg.Host}}),
		Volumes:    volumes.New(r.api, []string{filepath.Join(r.dir, "hostpath")}, agenttest.IsNotFound),
		Objects:    r.api,
		IsNotFound: agenttest.IsNotFound,
		API:        r.api,
		PodsDir:    filepath.Join(r.dir, "pods"),
		LogDir:     filepath.Join(r.dir, "logs"),
		// Exits come as events; the resync is a safety net.
		ResyncInterval: time.Second,
		BackoffBase:    r.backoff,
		BackoffMax:     8 * r.backoff,
	})
	wake.Store(m)
	r.rt, r.m, r.cancel, r.done = rt, m, cancel, make(chan struct{})
	go func() { defer close(r.done); _ = m.Run(ctx) }()
}

// stop ends the agent as kill -9 would: containers keep running.
func (r *real) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	_ = r.rt.Close()
	r.cancel = nil
}

func (r *real) run(p *corev1.Pod) {
	r.api.AddPod(p)
	r.m.Update(r.api.Pod(p.GetMetadata().GetUid()))
}

func (r *real) waitPhase(uid, phase string) *corev1.Pod {
	r.t.Helper()
	var p *corev1.Pod
	agenttest.Eventually(r.t, 60*time.Second, func() error {
		p = r.api.Pod(uid)
		if got := p.GetStatus().GetPhase(); got != phase {
			return fmt.Errorf("phase %q, want %q; status %v", got, phase, p.GetStatus())
		}
		return nil
	})
	return p
}

func (r *real) containerStatus(uid, name string, timeout time.Duration, ok func(*corev1.ContainerStatus) error) *corev1.ContainerStatus {
	r.t.Helper()
	var cs *corev1.ContainerStatus
	agenttest.Eventually(r.t, timeout, func() error {
		var err error
		cs, err = agenttest.ContainerStatus(r.api.Pod(uid), name)
		if err != nil {
			return err
		}
		return ok(cs)
	})
	return cs
}

// delete marks the pod as the apiserver does and waits for the agent to
// remove it; it returns how long that took.
func (r *real) delete(uid string, grace int64) time.Duration {
	r.t.Helper()
	p := r.api.Pod(uid)
	p.Metadata.DeletionTimestamp = timestamppb.New(time.Now().Add(time.Duration(grace) * time.Second))
	p.Metadata.DeletionGracePeriodSeconds = &grace
	r.api.AddPod(p)
	start := time.Now()
	r.m.Update(p)
	agenttest.Eventually(r.t, 60*time.Second, func() error {
		if r.api.Pod(uid) != nil {
			return errors.New("pod object not deleted yet")
		}
		return nil
	})
	return time.Since(start)
}

// assertClean checks that nothing of any pod is left: containers, tasks,
// snapshots, network namespaces, IPAM leases, pod directories.
func (r *real) assertClean() {
	r.t.Helper()
	if left := r.daemon.Leftovers(r.t); len(left) != 0 {
		r.t.Errorf("left in containerd: %v", left)
	}
	if left := r.net.NetNSFiles(); len(left) != 0 {
		r.t.Errorf("network namespaces left: %v", left)
	}
	if left := r.net.Leases(); len(left) != 0 {
		r.t.Errorf("IPAM leases left: %v", left)
	}
	if left := r.net.NATRules(); len(left) != 0 {
		r.t.Errorf("iptables rules left: %v", left)
	}
	if ents, _ := os.ReadDir(filepath.Join(r.dir, "pods")); len(ents) != 0 {
		r.t.Errorf("pod directories left: %d", len(ents))
	}
}

func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b), err
}

func appContainer(name, image string, args ...string) *corev1.Container {
	return &corev1.Container{Name: name, Image: image, Args: args}
}

func realPod(uid, name string, cs ...*corev1.Container) *corev1.Pod {
	p := agenttest.Pod(uid, name, node, cs...)
	g := int64(2)
	p.Spec.TerminationGracePeriodSeconds = &g
	return p
}

// A pod from a registry image runs, answers HTTP on its IP from the host,
// its two containers talk over localhost, env comes from a ConfigMap and a
// Secret; deleting it leaves nothing behind.
func TestRealPodServesAndSharesLocalhost(t *testing.T) {
	r := newReal(t)
	r.api.PutConfigMap(&corev1.ConfigMap{Metadata: &metav1.ObjectMeta{Name: "cfg", Namespace: "default"}, Data: map[string]string{"GREETING": "hi"}})
	r.api.PutSecret(&corev1.Secret{Metadata: &metav1.ObjectMeta{Name: "s", Namespace: "default"}, Data: map[string][]byte{"token": []byte("t0k3n")}})
	web := appContainer("web", r.image, "serve", "8080")
	web.Env = []*corev1.EnvVar{
		{Name: "GREETING", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Name: "cfg", Key: "GREETING"}}},
		{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Name: "s", Key: "token"}}},
	}
	side := appContainer("side", r.image, "serve", "9090")
	r.run(realPod("u1", "web", web, side))
	p := r.waitPhase("u1", "Running")
	ip := p.GetStatus().GetPodIp()
	if ip == "" {
		t.Fatal("no pod IP")
	}
	var body string
	agenttest.Eventually(t, 20*time.Second, func() (err error) {
		body, err = httpGet("http://" + ip + ":8080/")
		return err
	})
	if body != "hello from web\n" {
		t.Errorf("body %q, want the pod's hostname", body)
	}
	// web reaches side over the pod's loopback.
	body, err := httpGet("http://" + ip + ":8080/get?url=http://127.0.0.1:9090/")
	if err != nil || body != "hello from web\n" {
		t.Errorf("localhost between containers: %q %v", body, err)
	}
	env, err := httpGet("http://" + ip + ":8080/env")
	if err != nil || !strings.Contains(env, "GREETING=hi\n") || !strings.Contains(env, "TOKEN=t0k3n\n") {
		t.Errorf("env %q %v", env, err)
	}
	hosts, err := httpGet("http://" + ip + ":8080/file?path=/etc/hosts")
	if err != nil || !strings.Contains(hosts, ip+"\tweb") {
		t.Errorf("/etc/hosts %q %v", hosts, err)
	}
	if cs, _ := agenttest.ContainerStatus(r.api.Pod("u1"), "web"); !strings.HasPrefix(cs.GetImageId(), "sha256:") {
		t.Errorf("image id %q", cs.GetImageId())
	}
	r.delete("u1", 2)
	if _, err := httpGet("http://" + ip + ":8080/"); err == nil {
		t.Error("the pod still answers after deletion")
	}
	r.assertClean()
}

// A container exceeding its memory limit is OOM-killed, and the status
// says so.
func TestRealMemoryLimitOOMKills(t *testing.T) {
	r := newReal(t)
	c := appContainer("hog", r.image, "hog")
	c.Resources = &corev1.ResourceRequirements{Limits: map[string]string{"memory": "32Mi"}}
	p := realPod("u1", "hog", c)
	p.Spec.RestartPolicy = "Never"
	r.run(p)
	got := r.waitPhase("u1", "Failed")
	cs, _ := agenttest.ContainerStatus(got, "hog")
	term := cs.GetState().GetTerminated()
	if term.GetReason() != "OOMKilled" || term.GetExitCode() != 137 {
		t.Errorf("terminated = %v, want OOMKilled exit 137", term)
	}
	// A finished pod gives its address back before it is deleted.
	agenttest.Eventually(t, 10*time.Second, func() error {
		if l := r.net.Leases(); len(l) != 0 {
			return fmt.Errorf("leases of a finished pod: %v", l)
		}
		if n := r.net.NetNSFiles(); len(n) != 0 {
			return fmt.Errorf("network namespace of a finished pod: %v", n)
		}
		return nil
	})
	r.delete("u1", 0)
	r.assertClean()
}

// A crashing container restarts with a growing back-off, and its restart
// count and last state are reported.
func TestRealCrashLoopBackOff(t *testing.T) {
	r := newReal(t)
	r.run(realPod("u1", "crash", appContainer("c", r.image, "crash", "0.2", "3")))
	var delays []string
	for i := 1; i <= 3; i++ {
		cs := r.containerStatus("u1", "c", 60*time.Second, func(cs *corev1.ContainerStatus) error {
			if w := cs.GetState().GetWaiting(); w.GetReason() == "CrashLoopBackOff" && int(cs.GetRestartCount()) == i {
				return nil
			}
			return fmt.Errorf("want CrashLoopBackOff after %d restarts, have %v", i, cs)
		})
		delays = append(delays, strings.Fields(cs.GetState().GetWaiting().GetMessage())[1])
		if lt := cs.GetLastState().GetTerminated(); lt.GetExitCode() != 3 || lt.GetReason() != "Error" || lt.GetFinishedAt() == nil {
			t.Errorf("last state %v, want exit 3 Error", lt)
		}
	}
	if want := "500ms 1s 2s"; strings.Join(delays, " ") != want {
		t.Errorf("back-off delays %v, want %s", delays, want)
	}
	r.delete("u1", 1)
	r.assertClean()
}

// Readiness follows the probe both ways; a failing liveness probe
// restarts the container.
func TestRealProbes(t *testing.T) {
	r := newReal(t)
	web := appContainer("web", r.image, "serve", "8080")
	web.ReadinessProbe = &corev1.Probe{HttpGet: &corev1.HTTPGetAction{Path: "/ready", Port: &metav1.IntOrString{IntVal: 8080}}, PeriodSeconds: 1}
	live := appContainer("live", r.image, "serve", "8081")
	live.LivenessProbe = &corev1.Probe{TcpSocket: &corev1.TCPSocketAction{Port: &metav1.IntOrString{IntVal: 9999}}, PeriodSeconds: 1, FailureThreshold: 2}
	r.run(realPod("u1", "probes", web, live))
	r.waitPhase("u1", "Running")
	ready := func(want string) {
		t.Helper()
		agenttest.Eventually(t, 20*time.Second, func() error {
			p := r.api.Pod("u1")
			cs, _ := agenttest.ContainerStatus(p, "web")
			if got := agenttest.Condition(p, "Ready"); got != want || (cs.GetReady() != (want == "True")) {
				return fmt.Errorf("Ready %q, web ready %v; want %s", got, cs.GetReady(), want)
			}
			return nil
		})
	}
	id := runtime.ContainerID("u1", "web", 0)
	ready("False")
	if res, err := r.rt.Exec(context.Background(), id, []string{"/app", "touch", "/tmp/ready"}, 5*time.Second); err != nil || res.ExitCode != 0 {
		t.Fatalf("exec touch: %v %v %s", err, res.ExitCode, res.Output)
	}
	ready("True")
	if res, err := r.rt.Exec(context.Background(), id, []string{"/app", "rm", "/tmp/ready"}, 5*time.Second); err != nil || res.ExitCode != 0 {
		t.Fatalf("exec rm: %v %v %s", err, res.ExitCode, res.Output)
	}
	ready("False")
	// Nothing listens on 9999: the liveness probe fails and the container
	// is restarted.
	cs := r.containerStatus("u1", "live", 30*time.Second, func(cs *corev1.ContainerStatus) error {
		if cs.GetRestartCount() < 1 || cs.GetLastState().GetTerminated() == nil {
			return fmt.Errorf("not restarted yet: %v", cs)
		}
		return nil
	})
	if cs.GetLastState().GetTerminated().GetExitCode() == 0 {
		t.Errorf("a liveness kill reported exit 0: %v", cs.GetLastState())
	}
	r.delete("u1", 1)
	r.assertClean()
}

// Delete sends SIGTERM, waits the grace period for a container that
// ignores it, then kills it.
func TestRealGracefulDeletion(t *testing.T) {
	r := newReal(t)
	r.run(realPod("u1", "polite", appContainer("c", r.image, "term", "0")))
	r.run(realPod("u2", "stubborn", appContainer("c", r.image, "term", "-1")))
	r.waitPhase("u1", "Running")
	r.waitPhase("u2", "Running")
	logOf := func(uid, name string) string {
		b, _ := os.ReadFile(r.m.LogPath(r.api.Pod(uid), "c", 0))
		return string(b)
	}
	agenttest.Eventually(t, 10*time.Second, func() error {
		if !strings.Contains(logOf("u2", "stubborn"), "waiting for SIGTERM") {
			return errors.New("the stubborn container has not started listening yet")
		}
		return nil
	})
	stubbornLog := make(chan string, 1)
	go func() {
		// Read the log while the grace period runs, before it is removed.
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			path := filepath.Join(r.m.PodLogDir("default", "stubborn", "u2"), "c", "0.log")
			if b, _ := os.ReadFile(path); strings.Contains(string(b), "got SIGTERM") {
				stubbornLog <- string(b)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		stubbornLog <- ""
	}()
	const grace = 3
	if d := r.delete("u1", 30); d >= 30*time.Second {
		t.Errorf("a container that exits on SIGTERM took the whole grace period (%s)", d)
	}
	if d := r.delete("u2", grace); d < grace*time.Second {
		t.Errorf("a container ignoring SIGTERM was removed after %s, before its %ds grace period", d, grace)
	}
	if l := <-stubbornLog; !strings.Contains(l, "got SIGTERM") {
		t.Errorf("the container never saw SIGTERM: %q", l)
	}
	r.assertClean()
}

// A nonexistent image is reported with the registry's message, the pod
// stays Pending, nothing crashes.
func TestRealMissingImage(t *testing.T) {
	r := newReal(t)
	r.run(realPod("u1", "missing", appContainer("c", r.reg.Host+"/nope:v1")))
	seen := map[string]string{}
	r.containerStatus("u1", "c", 60*time.Second, func(cs *corev1.ContainerStatus) error {
		if w := cs.GetState().GetWaiting(); w != nil && w.GetReason() != "ContainerCreating" {
			seen[w.GetReason()] = w.GetMessage()
		}
		if seen["ErrImagePull"] == "" || seen["ImagePullBackOff"] == "" {
			return fmt.Errorf("seen %v", seen)
		}
		return nil
	})
	if msg := seen["ErrImagePull"]; !strings.Contains(msg, "not found") || !strings.Contains(msg, "nope:v1") {
		t.Errorf("message %q does not carry the registry's answer", msg)
	}
	if got := r.api.Pod("u1").GetStatus().GetPhase(); got != "Pending" {
		t.Errorf("phase %q", got)
	}
	r.delete("u1", 0)
	r.assertClean()
}

// runAsUser and readOnlyRootFilesystem apply; an OCI tarball loads and
// runs with imagePullPolicy Never.
func TestRealSecurityContextAndImageLoad(t *testing.T) {
	r := newReal(t)
	img, err := containerdtest.Image(containerdtest.TestApp(t))
	if err != nil {
		t.Fatal(err)
	}
	const ref = "bosun.test/loaded:v1"
	tarball, err := containerdtest.OCIArchive(img, ref)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := images.New(r.rt, images.Options{}).Load(context.Background(), strings.NewReader(string(tarball)))
	if err != nil || len(loaded) != 1 || loaded[0].Ref != ref {
		t.Fatalf("loaded %v, %v", loaded, err)
	}
	c := appContainer("c", ref, "id")
	c.ImagePullPolicy = "Never"
	uid := int64(65534)
	ro := true
	c.SecurityContext = &corev1.SecurityContext{RunAsUser: &uid, RunAsGroup: &uid, ReadOnlyRootFilesystem: &ro}
	r.run(realPod("u1", "sec", c))
	r.waitPhase("u1", "Running")
	agenttest.Eventually(t, 10*time.Second, func() error {
		b, _ := os.ReadFile(r.m.LogPath(r.api.Pod("u1"), "c", 0))
		if !strings.Contains(string(b), "uid=65534 gid=65534") {
			return fmt.Errorf("log %q", b)
		}
		return nil
	})
	res, err := r.rt.Exec(context.Background(), runtime.ContainerID("u1", "c", 0), []string{"/app", "touch", "/x"}, 5*time.Second)
	if err != nil || res.ExitCode == 0 || !strings.Contains(string(res.Output), "read-only file system") {
		t.Errorf("write to a read-only root: exit %d %q %v", res.ExitCode, res.Output, err)
	}
	r.delete("u1", 0)
	r.assertClean()
}

// After kill -9 the agent adopts running containers without restarting
// them, keeps restart counts, and removes what belongs to pods deleted
// while it was down. A containerd restart is survived too.
func TestRealAgentRestartAdopts(t *testing.T) {
	r := newReal(t)
	r.run(realPod("u1", "keep", appContainer("c", r.image, "serve", "8080")))
	r.run(realPod("u2", "gone", appContainer("c", r.image, "serve", "8080")))
	ip := r.waitPhase("u1", "Running").GetStatus().GetPodIp()
	goneIP := r.waitPhase("u2", "Running").GetStatus().GetPodIp()
	before, err := r.rt.ContainerStatus(context.Background(), runtime.ContainerID("u1", "c", 0))
	if err != nil {
		t.Fatal(err)
	}
	r.stop()
	// While the agent is down, u2 is force-deleted and containerd restarts.
	gone := r.api.Pod("u2")
	if err := r.api.DeletePod(context.Background(), "default", "gone", "u2"); err != nil {
		t.Fatal(err)
	}
	r.daemon.Restart(t)
	r.start()
	r.m.Update(r.api.Pod("u1"))
	if n, err := r.m.Cleanup(context.Background(), func(uid string) bool { return uid == "u1" }); err != nil || n != 2 {
		t.Errorf("cleanup removed %d things (want the container and sandbox of %s): %v", n, gone.GetMetadata().GetName(), err)
	}
	if _, err := httpGet("http://" + ip + ":8080/healthz"); err != nil {
		t.Errorf("adopted pod does not answer: %v", err)
	}
	time.Sleep(2 * time.Second) // two resyncs of the adopted pod
	after, err := r.rt.ContainerStatus(context.Background(), runtime.ContainerID("u1", "c", 0))
	if err != nil || after.State != runtime.StateRunning || !after.StartedAt.Equal(before.StartedAt) {
		t.Errorf("container was not adopted as it ran: before %+v, after %+v, %v", before, after, err)
	}
	cs, _ := agenttest.ContainerStatus(r.api.Pod("u1"), "c")
	if cs.GetRestartCount() != 0 || cs.GetState().GetRunning() == nil {
		t.Errorf("status after adoption: %v", cs)
	}
	if _, err := httpGet("http://" + goneIP + ":8080/healthz"); err == nil {
		t.Error("the deleted pod still answers")
	}
	for _, l := range r.net.Leases() {
		if l == goneIP {
			t.Errorf("IPAM lease of the deleted pod left: %s", l)
		}
	}
	r.delete("u1", 1)
	r.assertClean()
}

// hostPort maps a node port to the pod through portmap; deleting the pod
// removes its iptables rules.
func TestRealHostPort(t *testing.T) {
	r := newReal(t)
	containerdtest.CleanPortmapChains(t)
	hostIP := localIP(t)
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	hostPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	c := appContainer("web", r.image, "serve", "8080")
	c.Ports = []*corev1.ContainerPort{{ContainerPort: 8080, HostPort: int32(hostPort)}}
	r.run(realPod("u1", "hp", c))
	r.waitPhase("u1", "Running")
	url := fmt.Sprintf("http://%s:%d/", hostIP, hostPort)
	agenttest.Eventually(t, 20*time.Second, func() error {
		body, err := httpGet(url)
		if err == nil && body != "hello from hp\n" {
			return fmt.Errorf("body %q", body)
		}
		return err
	})
	if !strings.Contains(natRules(t), fmt.Sprintf("--dport %d", hostPort)) {
		t.Fatalf("no DNAT rule for host port %d", hostPort)
	}
	r.delete("u1", 1)
	if rules := natRules(t); strings.Contains(rules, fmt.Sprintf("--dport %d", hostPort)) {
		t.Errorf("iptables rules for host port %d left behind:\n%s", hostPort, rules)
	}
	r.assertClean()
}

func natRules(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("iptables", "-t", "nat", "-S").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables: %v %s", err, out)
	}
	return string(out)
}

// localIP is a non-loopback address of this host (portmap's DNAT applies
// to locally generated traffic to local addresses).
func localIP(t *testing.T) string {
	t.Helper()
	c, err := net.Dial("udp", "192.0.2.1:9")
	if err != nil {
		t.Skip("no non-loopback address to reach a host port on")
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String()
}

// A containerd restart under a running agent is survived: the task keeps
// serving, and the agent still stops and removes the pod afterwards.
func TestRealContainerdRestart(t *testing.T) {
	r := newReal(t)
	r.run(realPod("u1", "web", appContainer("web", r.image, "serve", "8080")))
	ip := r.waitPhase("u1", "Running").GetStatus().GetPodIp()
	r.daemon.Restart(t)
	if _, err := httpGet("http://" + ip + ":8080/healthz"); err != nil {
		t.Errorf("the pod stopped answering across a containerd restart: %v", err)
	}
	// The agent notices exits again once it has resubscribed.
	r.run(realPod("u2", "crash", appContainer("c", r.image, "crash", "0.2", "1")))
	r.containerStatus("u2", "c", 60*time.Second, func(cs *corev1.ContainerStatus) error {
		if cs.GetRestartCount() < 1 {
			return fmt.Errorf("not restarted yet: %v", cs)
		}
		return nil
	})
	r.delete("u1", 1)
	r.delete("u2", 1)
	r.assertClean()
}

// Image garbage collection removes unused images from containerd and keeps
// the ones containers use.
func TestRealImageGC(t *testing.T) {
	r := newReal(t)
	ctx := context.Background()
	used := appContainer("c", r.image, "serve", "8080")
	r.run(realPod("u1", "keep", used))
	r.waitPhase("u1", "Running")
	img, err := containerdtest.Image(containerdtest.TestApp(t), "VARIANT=unused")
	if err != nil {
		t.Fatal(err)
	}
	unused := r.reg.Push(t, "testapp:unused", img)
	gc := images.New(r.rt, images.Options{InsecureRegistries: []string{r.reg.Host}, GCHighBytes: 1, GCLowBytes: 1})
	if _, err := gc.Ensure(ctx, unused, "IfNotPresent"); err != nil {
		t.Fatal(err)
	}
	removed, err := gc.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != unused {
		t.Errorf("removed %v, want only %s", removed, unused)
	}
	if _, err := r.rt.GetImage(ctx, unused); err == nil {
		t.Error("the unused image is still in containerd")
	}
	if _, err := r.rt.GetImage(ctx, r.image); err != nil {
		t.Errorf("the image in use was removed: %v", err)
	}
	r.delete("u1", 1)
	r.assertClean()
}
