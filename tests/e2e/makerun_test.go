package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// makeRunPortOffset moves every port of scripts/run.sh away from the
// defaults of a `make run` that may be running on the machine, and keeps
// them below the ephemeral range (32768 and up) that other tests draw from.
const makeRunPortOffset = "10000"

// requireNode skips unless containers can run here.
func requireNode(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping the local cluster test in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("skipping: scripts/run.sh needs root to run containerd and CNI (run the tests as root, as .ci/run does)")
	}
	for _, b := range []string{"containerd", "ctr", "runc", "iptables", "setsid", "ip"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("skipping: %s is not installed (apt-get install -y containerd runc containernetworking-plugins iptables)", b)
		}
	}
	found := false
	for _, d := range []string{"/usr/lib/cni", "/opt/cni/bin"} {
		if _, err := os.Stat(filepath.Join(d, "bridge")); err == nil {
			found = true
		}
	}
	if !found {
		t.Skip("skipping: the CNI plugins are not installed (apt-get install -y containernetworking-plugins)")
	}
}

// repoRoot is the folder with go.work above the test's directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "scripts", "run.sh")); err != nil {
		t.Fatalf("no scripts/run.sh in %s", dir)
	}
	return dir
}

// hostRoutes are the destinations of the host's IPv4 routes, every table.
func hostRoutes(t *testing.T) []netip.Prefix {
	t.Helper()
	out, err := exec.Command("ip", "-4", "route", "show", "table", "all").Output()
	if err != nil {
		t.Fatalf("ip route: %v", err)
	}
	var routes []netip.Prefix
	for _, line := range strings.Split(string(out), "\n") {
		for _, f := range strings.Fields(line) {
			if !strings.Contains(f, ".") {
				continue
			}
			if !strings.Contains(f, "/") {
				f += "/32"
			}
			if p, err := netip.ParsePrefix(f); err == nil {
				routes = append(routes, p)
			}
			break
		}
	}
	return routes
}

// freeClusterCIDR picks a /20 (room for the nodes' /24 and 15 pod CIDRs) in
// 10.100.0.0-10.199.255.255 that no route of the host overlaps. Other tests
// (tests/multinode, cli_test.go) draw their /24s from 10.200.0.0/13 and
// `make run` itself defaults to 10.199.0.0/16: 10.199 is left out too.
func freeClusterCIDR(t *testing.T) string {
	t.Helper()
	routes := hostRoutes(t)
	for try := 0; try < 100; try++ {
		n, _ := rand.Int(rand.Reader, big.NewInt(99*16))
		p := netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/20", 100+n.Int64()/16, 16*(n.Int64()%16)))
		free := true
		for _, r := range routes {
			if r.Overlaps(p) {
				free = false
			}
		}
		if free {
			return p.String()
		}
	}
	t.Fatal("no free /20 in 10.100.0.0-10.198.255.255")
	return ""
}

// localCluster is one scripts/run.sh in the foreground.
type localCluster struct {
	cmd    *exec.Cmd
	out    *lockedLog
	exited chan struct{}
}

type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startRun starts scripts/run.sh in a process group of its own, as a
// terminal would, with env added.
func startRun(t *testing.T, root string, env []string) *localCluster {
	t.Helper()
	cmd := exec.Command(filepath.Join(root, "scripts", "run.sh"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	lc := &localCluster{cmd: cmd, out: &lockedLog{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = lc.out, lc.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(lc.exited) }()
	return lc
}

// interrupt sends SIGINT to the script's process group, as Ctrl-C does,
// and waits for it to exit.
func (lc *localCluster) interrupt(t *testing.T) {
	t.Helper()
	_ = syscall.Kill(-lc.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-lc.exited:
	case <-time.After(2 * time.Minute):
		_ = syscall.Kill(-lc.cmd.Process.Pid, syscall.SIGKILL)
		<-lc.exited
		t.Errorf("scripts/run.sh did not stop within 2 minutes of SIGINT:\n%s", lc.out.String())
	}
}

var curlLine = regexp.MustCompile(`for ip in ([0-9. ]+); do curl`)

// waitReady waits until the script says the demo runs and returns the pod
// IPs it printed.
func (lc *localCluster) waitReady(t *testing.T) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		out := lc.out.String()
		if strings.Contains(out, "Press Ctrl-C to stop") {
			m := curlLine.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("scripts/run.sh printed no curl line for the pods:\n%s", out)
			}
			return strings.Fields(m[1])
		}
		select {
		case <-lc.exited:
			t.Fatalf("scripts/run.sh exited before the demo ran:\n%s", out)
		case <-time.After(500 * time.Millisecond):
		}
	}
	t.Fatalf("the demo did not run within 5 minutes:\n%s", lc.out.String())
	return nil
}

// hello fetches the app's answer from a pod.
func hello(t *testing.T, ip string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + ip + ":5000/")
	if err != nil {
		t.Fatalf("curl http://%s:5000/: %v", ip, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("http://%s:5000/: %s %s", ip, resp.Status, b)
	}
	return strings.TrimSpace(string(b))
}

// findProcess returns the pid of the process running bin with an argument
// that contains arg.
func findProcess(t *testing.T, bin, arg string) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if args[0] == bin && strings.Contains(string(b), arg) {
			var pid int
			if _, err := fmt.Sscanf(filepath.Base(filepath.Dir(p)), "%d", &pid); err == nil {
				return pid
			}
		}
	}
	t.Fatalf("no process %s running with %s", bin, arg)
	return 0
}

// leftovers lists what a stopped local cluster left on the machine: its
// processes, the host bridge, the nodes' veths and network namespaces (with
// the CNI masquerade rules inside them), host routes through the bridge or
// into the cluster's range, host iptables rules, mounts under the run
// directory, the pods' network namespaces, CNI results, the cgroups and
// runc state folders of the nodes' containerd namespaces.
func leftovers(t *testing.T, runDir, bridge, cidr string) []string {
	t.Helper()
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), runDir) {
			out = append(out, "process "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	nodeName := regexp.MustCompile("^" + bridge + `(-|v)[0-9]+$`) // BRIDGE-N namespaces, BRIDGEvN veths
	if links, err := exec.Command("ip", "-o", "link", "show").Output(); err == nil {
		for _, line := range strings.Split(string(links), "\n") {
			if f := strings.Fields(line); len(f) > 1 {
				name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
				if name == bridge {
					out = append(out, "bridge "+bridge)
				} else if nodeName.MatchString(name) {
					out = append(out, "veth "+name)
				}
			}
		}
	}
	if nsList, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(nsList), "\n") {
			if f := strings.Fields(line); len(f) > 0 && nodeName.MatchString(f[0]) {
				out = append(out, "node netns "+f[0])
				rules, _ := exec.Command("nsenter", "--net=/run/netns/"+f[0], "iptables-save", "-t", "nat").Output()
				for _, r := range strings.Split(string(rules), "\n") {
					if strings.Contains(r, "bosun-"+bridge) {
						out = append(out, "iptables in "+f[0]+": "+r)
					}
				}
			}
		}
	}
	if routes, err := exec.Command("ip", "-4", "route", "show", "table", "all").Output(); err == nil {
		rng := netip.MustParsePrefix(cidr)
		for _, line := range strings.Split(string(routes), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			dst := f[0]
			if (dst == "local" || dst == "broadcast") && len(f) > 1 {
				dst = f[1]
			}
			if !strings.Contains(dst, "/") {
				dst += "/32"
			}
			p, err := netip.ParsePrefix(dst)
			if (err == nil && p.Overlaps(rng)) || strings.Contains(line, " dev "+bridge+" ") {
				out = append(out, "route "+line)
			}
		}
	}
	if rules, err := exec.Command("iptables-save").Output(); err == nil {
		for _, line := range strings.Split(string(rules), "\n") {
			if strings.Contains(line, "bosun-"+bridge) {
				out = append(out, "iptables "+line)
			}
		}
	}
	if mounts, err := os.ReadFile("/proc/self/mounts"); err == nil {
		sc := bufio.NewScanner(strings.NewReader(string(mounts)))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) > 1 && strings.HasPrefix(f[1], runDir+"/") {
				out = append(out, "mount "+f[1])
			}
		}
	}
	if ns, _ := filepath.Glob(filepath.Join(runDir, "node-agent", "*", "netns", "*")); len(ns) > 0 {
		out = append(out, fmt.Sprintf("%d pod network namespaces", len(ns)))
	}
	if res, _ := filepath.Glob("/var/lib/cni/results/bosun-" + bridge + "-*"); len(res) > 0 {
		out = append(out, fmt.Sprintf("CNI results %v", res))
	}
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + bridge + "-*")
	more, _ := filepath.Glob("/sys/fs/cgroup/" + bridge + "-*")
	runc, _ := filepath.Glob("/run/containerd/runc/" + bridge + "-*")
	for _, d := range append(append(dirs, more...), runc...) {
		if nodeName.MatchString(filepath.Base(d)) {
			out = append(out, "cgroup or runc state "+d)
		}
	}
	return out
}

// podLine is a line of `bosun get pods -o wide` for a ready hello pod:
// its IP and node.
var podLine = regexp.MustCompile(`(?m)^hello-\S+\s+1/1\s+Running\s+\d+\s+\S+\s+(\S+)\s+(\S+)\s*$`)

// podNodes maps the IPs of the ready hello pods in the script's output to
// their nodes.
func podNodes(out string) map[string]string {
	m := map[string]string{}
	for _, f := range podLine.FindAllStringSubmatch(out, -1) {
		m[f[1]] = f[2]
	}
	return m
}

var demoLine = regexp.MustCompile(`(?m)^\s+GRPC_XDS_BOOTSTRAP=(\S+) (\S+/hello-client) (.*)$`)

// grpcDemo runs the proxyless gRPC demo command the script printed and
// returns the pods named in the replies, with how often each answered.
func grpcDemo(t *testing.T, out string) map[string]int {
	t.Helper()
	m := demoLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("scripts/run.sh printed no proxyless gRPC demo command:\n%s", out)
	}
	cmd := exec.Command(m[2], strings.Fields(m[3])...)
	cmd.Env = append(os.Environ(), "GRPC_XDS_BOOTSTRAP="+m[1])
	start := time.Now()
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", m[0], err, b)
	}
	pods := map[string]int{}
	reply := regexp.MustCompile(`^hello from (hello-[a-z0-9]+-[a-z0-9]+) \(version v1\)$`)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, l := range lines[:len(lines)-1] {
		r := reply.FindStringSubmatch(l)
		if r == nil {
			t.Fatalf("%s: unexpected reply %q in:\n%s", strings.TrimSpace(m[0]), l, b)
		}
		pods[r[1]]++
	}
	if want := fmt.Sprintf("%d replies from %d pods", len(lines)-1, len(pods)); lines[len(lines)-1] != want {
		t.Errorf("hello-client's last line %q, want %q", lines[len(lines)-1], want)
	}
	t.Logf("gRPC demo: %d replies through xDS in %.2f s: %v", len(lines)-1, time.Since(start).Seconds(), pods)
	return pods
}

// TestMakeRun runs scripts/run.sh (what `make run` runs) four times on one
// state directory: each time the demo's three pods answer on the addresses
// it prints, from three different pods, the proxyless gRPC demo command it
// prints gets replies from several pods through the service-proxy, and
// Ctrl-C leaves nothing behind. Rounds 1 and 2 run one node, 3 and 4 three
// (NODES=3), whose pods must land on more than one node and answer from the
// other nodes' network namespaces. In the second round the node-agent is
// killed (SIGKILL) before Ctrl-C, so the script itself has to remove the
// pods' containers and networking, and the third round starts on the state
// that left, with other nodes. In the fourth the script itself is killed
// and `scripts/run.sh --clean` removes what it left.
func TestMakeRun(t *testing.T) {
	requireNode(t)
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("skipping: nsenter is not installed (apt-get install -y util-linux)")
	}
	root := repoRoot(t)
	binDir := t.TempDir()
	build := exec.Command("go", "build", "-o", binDir+string(filepath.Separator),
		"bosun.dev/services/apiserver/cmd/apiserver", "bosun.dev/services/scheduler/cmd/scheduler",
		"bosun.dev/services/controller/cmd/controller", "bosun.dev/services/health-checker/cmd/health-checker",
		"bosun.dev/services/service-proxy/cmd/service-proxy", "bosun.dev/services/node-agent/cmd/node-agent",
		"bosun.dev/tools/cmd/bosun", "bosun.dev/tools/cmd/devregistry", "bosun.dev/tools/cmd/hello-client")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the binaries: %v\n%s", err, out)
	}
	runDir, err := os.MkdirTemp("", "bosun-makerun-")
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	bridge := "bmr" + hex.EncodeToString(b)
	cidr := freeClusterCIDR(t)
	env := []string{
		"BOSUN_RUN_DIR=" + runDir, "BOSUN_PORT_OFFSET=" + makeRunPortOffset, "BOSUN_BIN_DIR=" + binDir,
		"BOSUN_NODE=makerun-test", "BOSUN_CIDR=" + cidr, "BOSUN_BRIDGE=" + bridge,
		"BOSUN_CONFIG=" + filepath.Join(runDir, "cli-config"), "BOSUN_NO_INSTALL=1",
	}
	var current *localCluster
	t.Cleanup(func() {
		if current != nil {
			select {
			case <-current.exited:
			default:
				current.interrupt(t)
			}
		}
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(runDir, "logs", "*.log"))
			for _, l := range logs {
				if b, err := os.ReadFile(l); err == nil {
					if len(b) > 3000 {
						b = b[len(b)-3000:]
					}
					t.Logf("%s:\n%s", filepath.Base(l), b)
				}
			}
		}
		if left := leftovers(t, runDir, bridge, cidr); len(left) > 0 {
			// Only a failed run gets here with something left; remove it.
			clean := exec.Command(filepath.Join(root, "scripts", "run.sh"), "--clean")
			clean.Dir, clean.Env = root, append(os.Environ(), env...)
			if out, err := clean.CombinedOutput(); err != nil {
				t.Logf("scripts/run.sh --clean: %v\n%s", err, out)
			}
			_ = exec.Command("ip", "link", "del", bridge).Run()
		}
		_ = os.RemoveAll(runDir)
	})

	for round := 1; round <= 4; round++ {
		nodes := 1
		if round >= 3 {
			nodes = 3
		}
		started := time.Now()
		current = startRun(t, root, append(env, fmt.Sprintf("NODES=%d", nodes)))
		ips := current.waitReady(t)
		ready := time.Since(started)
		if len(ips) != 3 {
			t.Fatalf("round %d: %d pod addresses printed, want 3: %v", round, len(ips), ips)
		}
		answers := map[string]bool{}
		for _, ip := range ips {
			a := hello(t, ip)
			if !regexp.MustCompile(`^hello from hello-[a-z0-9]+-[a-z0-9]+ \(version v1\)$`).MatchString(a) {
				t.Errorf("round %d: http://%s:5000/ answered %q", round, ip, a)
			}
			answers[a] = true
		}
		if len(answers) != 3 {
			t.Errorf("round %d: want answers from 3 different pods, got %v", round, answers)
		}
		out := current.out.String()
		onNodes := map[string]bool{}
		for _, ip := range ips {
			n, ok := podNodes(out)[ip]
			if !ok {
				t.Fatalf("round %d: pod %s not in the pods the script printed:\n%s", round, ip, out)
			}
			onNodes[n] = true
		}
		if nodes == 1 && (len(onNodes) != 1 || !onNodes["makerun-test"]) {
			t.Errorf("round %d: one node makerun-test, pods on %v", round, onNodes)
		}
		if nodes == 3 {
			for n := range onNodes {
				if !regexp.MustCompile(`^makerun-test-[123]$`).MatchString(n) {
					t.Errorf("round %d: a pod on node %q, want makerun-test-1, -2 or -3", round, n)
				}
			}
			if len(onNodes) < 2 {
				t.Errorf("round %d: three nodes, all pods on %v", round, onNodes)
			}
			// Between the nodes: each pod answers from the namespace of
			// another node, through the routes between them.
			for ip, n := range podNodes(out) {
				from := bridge + "-1"
				if n == "makerun-test-1" {
					from = bridge + "-2"
				}
				get := exec.Command("nsenter", "--net=/run/netns/"+from, "bash", "-c",
					`exec 3<>"/dev/tcp/$1/5000" && printf "GET /healthz HTTP/1.0\r\n\r\n" >&3 && cat <&3`, "_", ip)
				if b, err := get.CombinedOutput(); err != nil || !strings.HasSuffix(strings.TrimSpace(string(b)), "ok") {
					t.Errorf("round %d: pod %s on %s from the namespace %s: %v\n%s", round, ip, n, from, err, b)
				}
			}
		}
		if pods := grpcDemo(t, out); len(pods) < 2 {
			t.Errorf("round %d: the gRPC demo got replies from %d pod(s), want 2 or more: %v", round, len(pods), pods)
		}
		// What the check below must find gone is there while it runs.
		running := strings.Join(leftovers(t, runDir, bridge, cidr), "\n")
		want := []string{"bridge " + bridge, "containerd --config", "containerd-shim", "pod network namespaces",
			"iptables in " + bridge + "-", "route ", "cgroup or runc state "}
		for i := 1; i <= nodes; i++ {
			want = append(want, fmt.Sprintf("node netns %s-%d", bridge, i), fmt.Sprintf("veth %sv%d", bridge, i))
		}
		for _, w := range want {
			if !strings.Contains(running, w) {
				t.Errorf("round %d: while running, %q not found among:\n%s", round, w, running)
			}
		}
		if round == 2 {
			agent := findProcess(t, filepath.Join(binDir, "node-agent"), runDir)
			if err := syscall.Kill(agent, syscall.SIGKILL); err != nil {
				t.Fatalf("killing the node-agent %d: %v", agent, err)
			}
			t.Logf("round 2: killed the node-agent (pid %d)", agent)
		}
		start := time.Now()
		if round == 4 {
			_ = current.cmd.Process.Kill()
			<-current.exited
			if left := leftovers(t, runDir, bridge, cidr); len(left) == 0 {
				t.Fatalf("round 4: killing the script stopped everything; --clean has nothing to show")
			}
			clean := exec.Command(filepath.Join(root, "scripts", "run.sh"), "--clean")
			clean.Dir, clean.Env = root, append(os.Environ(), env...)
			out, err := clean.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "cleaned up") {
				t.Fatalf("scripts/run.sh --clean: %v\n%s", err, out)
			}
			if left := leftovers(t, runDir, bridge, cidr); len(left) > 0 {
				t.Fatalf("round 4: left behind after --clean:\n%s\n\noutput:\n%s", strings.Join(left, "\n"), out)
			}
			t.Logf("round 4 (%d nodes, pods on %d): ready %.1f s after start; killed the script; --clean removed what it left in %.1f s",
				nodes, len(onNodes), ready.Seconds(), time.Since(start).Seconds())
			break
		}
		current.interrupt(t)
		t.Logf("round %d (%d nodes, pods on %d): ready %.1f s after start, pods %v answered; stopped %.1f s after SIGINT",
			round, nodes, len(onNodes), ready.Seconds(), ips, time.Since(start).Seconds())
		if !strings.Contains(current.out.String(), "stopped;") {
			t.Errorf("round %d: no 'stopped' message after SIGINT:\n%s", round, current.out.String())
		}
		if left := leftovers(t, runDir, bridge, cidr); len(left) > 0 {
			t.Fatalf("round %d: left behind after Ctrl-C:\n%s\n\noutput:\n%s", round, strings.Join(left, "\n"), current.out.String())
		}
	}
}

// TestMakeRunNamesMissingPackages runs scripts/run.sh as root on a PATH
// without containerd, runc, iptables, ip and nsenter, with installing turned
// off: it names the packages and the apt-get line, and starts nothing.
func TestMakeRunNamesMissingPackages(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: without root scripts/run.sh runs the control plane only and needs no packages")
	}
	root := repoRoot(t)
	pathDir := t.TempDir()
	for _, tool := range []string{"bash", "dirname", "mkdir", "hostname", "tr", "id", "cat", "tail"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("skipping: %s is not installed", tool)
		}
		if err := os.Symlink(p, filepath.Join(pathDir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	runDir := t.TempDir()
	cmd := exec.Command(filepath.Join(root, "scripts", "run.sh"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "PATH="+pathDir, "BOSUN_RUN_DIR="+runDir, "BOSUN_NO_INSTALL=1",
		"BOSUN_CONFIG="+filepath.Join(runDir, "cli-config"), "BOSUN_PORT_OFFSET="+makeRunPortOffset)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("scripts/run.sh without containerd succeeded:\n%s", out)
	}
	want := "missing: containerd runc iptables"
	cni := false
	for _, d := range []string{"/usr/lib/cni", "/opt/cni/bin"} {
		if _, err := os.Stat(filepath.Join(d, "bridge")); err == nil {
			cni = true
		}
	}
	if !cni {
		want += " containernetworking-plugins"
	}
	want += " iproute2 util-linux"
	if !strings.Contains(string(out), want+"; install them with: apt-get install -y "+strings.TrimPrefix(want, "missing: ")) {
		t.Errorf("output does not name the packages (%q):\n%s", want, out)
	}
	if _, err := os.Stat(filepath.Join(runDir, "containerd")); err == nil {
		t.Errorf("containerd's directory was made although containerd is missing")
	}
	if _, err := os.Stat(filepath.Join(runDir, "pki")); err == nil {
		t.Errorf("certificates were made although the script stopped at the package check")
	}
}

// TestMakeRunRefusesBadSettings runs scripts/run.sh with settings it must
// refuse before it starts anything: each error names the setting.
func TestMakeRunRefusesBadSettings(t *testing.T) {
	root := repoRoot(t)
	tests := []struct {
		env  []string
		want string
	}{
		{[]string{"NODES=0"}, "NODES=0: want a number of nodes from 1 to 99"},
		{[]string{"NODES=three"}, "NODES=three: want a number of nodes"},
		{[]string{"BOSUN_CIDR=10.1.2.3/16"}, "BOSUN_CIDR=10.1.2.3/16: host bits are set; did you mean 10.1.0.0/16?"},
		{[]string{"BOSUN_CIDR=10.1.0.0/24"}, "BOSUN_CIDR=10.1.0.0/24: want an IPv4 range from /8 to /23"},
		{[]string{"BOSUN_CIDR=10.1.256.0/23"}, "BOSUN_CIDR=10.1.256.0/23: want an IPv4 range"},
		{[]string{"BOSUN_CIDR=10.1.0.0/23", "NODES=2"}, "BOSUN_CIDR=10.1.0.0/23 holds 2 /24s; 2 nodes need 3"},
		{[]string{"BOSUN_BRIDGE=bridge-with-dash"}, "BOSUN_BRIDGE=bridge-with-dash: want a letter and at most 11 more"},
	}
	for _, tt := range tests {
		runDir := t.TempDir()
		cmd := exec.Command(filepath.Join(root, "scripts", "run.sh"))
		cmd.Dir = root
		cmd.Env = append(append(os.Environ(), "BOSUN_RUN_DIR="+runDir, "BOSUN_NO_INSTALL=1",
			"BOSUN_CONFIG="+filepath.Join(runDir, "cli-config"), "BOSUN_PORT_OFFSET="+makeRunPortOffset), tt.env...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tt.want) {
			t.Errorf("%v: %v, want an error with %q:\n%s", tt.env, err, tt.want, out)
		}
		if ents, _ := os.ReadDir(filepath.Join(runDir, "pids")); len(ents) > 0 {
			t.Errorf("%v: %d processes were started", tt.env, len(ents))
		}
	}
}

// TestMakeRunRefusesRoutedCIDR gives scripts/run.sh a range that overlaps a
// route of the host: it names the route and starts nothing.
func TestMakeRunRefusesRoutedCIDR(t *testing.T) {
	requireNode(t)
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("skipping: nsenter is not installed (apt-get install -y util-linux)")
	}
	// A range of the smallest size the script takes, /23, around a route.
	var taken netip.Prefix
	for _, r := range hostRoutes(t) {
		if r.Bits() >= 8 && r.Addr().Is4() && !r.Addr().IsLoopback() {
			taken = netip.PrefixFrom(r.Addr(), min(r.Bits(), 23)).Masked()
			break
		}
	}
	if !taken.IsValid() {
		t.Skip("skipping: the host has no IPv4 route to clash with")
	}
	root := repoRoot(t)
	runDir, binDir := t.TempDir(), t.TempDir()
	// The script checks that these exist before the range; they never run.
	for _, b := range []string{"devregistry", "node-agent"} {
		if err := os.WriteFile(filepath.Join(binDir, b), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	bridge := "bmr" + hex.EncodeToString(b)
	cmd := exec.Command(filepath.Join(root, "scripts", "run.sh"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "BOSUN_RUN_DIR="+runDir, "BOSUN_NO_INSTALL=1", "BOSUN_BIN_DIR="+binDir,
		"BOSUN_CONFIG="+filepath.Join(runDir, "cli-config"), "BOSUN_PORT_OFFSET="+makeRunPortOffset,
		"BOSUN_BRIDGE="+bridge, "BOSUN_CIDR="+taken.String())
	out, err := cmd.CombinedOutput()
	want := "the cluster's range " + taken.String() + " overlaps the route to "
	if err == nil || !strings.Contains(string(out), want) {
		t.Errorf("BOSUN_CIDR=%s: %v, want an error with %q:\n%s", taken, err, want, out)
	}
	// Routes into the range are the host's own: the clash itself.
	var left []string
	for _, l := range leftovers(t, runDir, bridge, taken.String()) {
		if !strings.HasPrefix(l, "route ") {
			left = append(left, l)
		}
	}
	if len(left) > 0 {
		t.Errorf("left behind:\n%s", strings.Join(left, "\n"))
	}
}
