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

// freePodCIDR picks a /24 in 10.200-254.x.0 that no route of the host
// overlaps.
func freePodCIDR(t *testing.T) string {
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
	for try := 0; try < 100; try++ {
		n, _ := rand.Int(rand.Reader, big.NewInt(254*55))
		p := netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", 200+n.Int64()/254, 1+n.Int64()%254))
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
	t.Fatal("no free /24 in 10.200.0.0/13")
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

// leftovers lists what a stopped local cluster left on the machine.
func leftovers(t *testing.T, runDir, bridge string) []string {
	t.Helper()
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), runDir) {
			out = append(out, "process "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	if exec.Command("ip", "link", "show", bridge).Run() == nil {
		out = append(out, "bridge "+bridge)
	}
	if rules, err := exec.Command("iptables-save", "-t", "nat").Output(); err == nil {
		for _, line := range strings.Split(string(rules), "\n") {
			if strings.Contains(line, `"bosun-`+bridge+`\"`) { // the comment: name: \"bosun-BRIDGE\"
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
	if ns, _ := os.ReadDir(filepath.Join(runDir, "node-agent", "netns")); len(ns) > 0 {
		out = append(out, fmt.Sprintf("%d network namespaces", len(ns)))
	}
	if res, _ := filepath.Glob("/var/lib/cni/results/bosun-" + bridge + "-*"); len(res) > 0 {
		out = append(out, fmt.Sprintf("CNI results %v", res))
	}
	return out
}

// TestMakeRun runs scripts/run.sh (what `make run` runs) four times on one
// state directory: each time the demo's three pods answer on the addresses
// it prints, from three different pods, and Ctrl-C leaves nothing behind.
// In the second round the node-agent is killed (SIGKILL) before Ctrl-C, so
// the script itself has to remove the pods' containers and networking, and
// the third round starts on the state that left. In the fourth the script
// itself is killed and `scripts/run.sh --clean` removes what it left.
func TestMakeRun(t *testing.T) {
	requireNode(t)
	root := repoRoot(t)
	binDir := t.TempDir()
	build := exec.Command("go", "build", "-o", binDir+string(filepath.Separator),
		"bosun.dev/services/apiserver/cmd/apiserver", "bosun.dev/services/scheduler/cmd/scheduler",
		"bosun.dev/services/controller/cmd/controller", "bosun.dev/services/health-checker/cmd/health-checker",
		"bosun.dev/services/service-proxy/cmd/service-proxy", "bosun.dev/services/node-agent/cmd/node-agent",
		"bosun.dev/tools/cmd/bosun", "bosun.dev/tools/cmd/devregistry")
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
	env := []string{
		"BOSUN_RUN_DIR=" + runDir, "BOSUN_PORT_OFFSET=" + makeRunPortOffset, "BOSUN_BIN_DIR=" + binDir,
		"BOSUN_NODE=makerun-test", "BOSUN_POD_CIDR=" + freePodCIDR(t), "BOSUN_BRIDGE=" + bridge,
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
		if left := leftovers(t, runDir, bridge); len(left) > 0 {
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
		current = startRun(t, root, env)
		ips := current.waitReady(t)
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
		// What the check below must find gone is there while it runs.
		running := strings.Join(leftovers(t, runDir, bridge), "\n")
		for _, want := range []string{"bridge " + bridge, "containerd --config", "containerd-shim", "network namespaces", "iptables "} {
			if !strings.Contains(running, want) {
				t.Errorf("round %d: while running, %q not found among:\n%s", round, want, running)
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
			if left := leftovers(t, runDir, bridge); len(left) == 0 {
				t.Fatalf("round 4: killing the script stopped everything; --clean has nothing to show")
			}
			clean := exec.Command(filepath.Join(root, "scripts", "run.sh"), "--clean")
			clean.Dir, clean.Env = root, append(os.Environ(), env...)
			out, err := clean.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "cleaned up") {
				t.Fatalf("scripts/run.sh --clean: %v\n%s", err, out)
			}
			if left := leftovers(t, runDir, bridge); len(left) > 0 {
				t.Fatalf("round 4: left behind after --clean:\n%s\n\noutput:\n%s", strings.Join(left, "\n"), out)
			}
			t.Logf("round 4: killed the script; --clean removed what it left in %.1f s", time.Since(start).Seconds())
			break
		}
		current.interrupt(t)
		t.Logf("round %d: pods %v answered; stopped %.1f s after SIGINT", round, ips, time.Since(start).Seconds())
		if !strings.Contains(current.out.String(), "stopped;") {
			t.Errorf("round %d: no 'stopped' message after SIGINT:\n%s", round, current.out.String())
		}
		if left := leftovers(t, runDir, bridge); len(left) > 0 {
			t.Fatalf("round %d: left behind after Ctrl-C:\n%s\n\noutput:\n%s", round, strings.Join(left, "\n"), current.out.String())
		}
	}
}

// TestMakeRunNamesMissingPackages runs scripts/run.sh as root on a PATH
// without containerd, runc and iptables, with installing turned off: it
// names the packages and the apt-get line, and starts nothing.
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
