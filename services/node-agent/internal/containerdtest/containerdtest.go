// Package containerdtest gives the node-agent's tests the real stack of a
// node: a private containerd daemon (its own root, state, socket and
// config under a temporary directory, in a containerd namespace of its
// own), test images built in-process from a static Go program with
// go-containerregistry, an in-process OCI registry on loopback that serves
// them, and a CNI network (bridge, pod CIDR, IPAM directory) of the test's
// own. Everything is removed when the test ends.
//
// Tests that need it call Require first: it skips, naming what is missing,
// unless the test runs as root with containerd, runc and the CNI plugins
// installed.
package containerdtest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
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

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/netns"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"bosun.dev/services/node-agent/internal/apiservertest"
	"bosun.dev/services/node-agent/internal/network"
)

// Require skips the test unless the real stack can run here.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping the real containerd test in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to run containerd and CNI (run the tests as root, as .ci/run does)")
	}
	for _, bin := range []string{"containerd", "runc", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("skipping: %s is not installed (apt-get install containerd runc containernetworking-plugins iptables)", bin)
		}
	}
	if !network.PluginsPresent(network.DefaultPluginDirs) {
		t.Skipf("skipping: CNI plugins bridge, host-local, portmap, loopback not found in %v (apt-get install containernetworking-plugins)", network.DefaultPluginDirs)
	}
}

// Daemon is a private containerd.
type Daemon struct {
	Address   string
	Namespace string
	dir       string
	cmd       *exec.Cmd
	exited    chan struct{}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// StartContainerd starts a containerd with its own root, state and socket
// under a temporary directory. When the test ends every task and container
// in its namespace is removed and the daemon is stopped.
func StartContainerd(t testing.TB) *Daemon {
	t.Helper()
	dir, err := os.MkdirTemp("", "bosun-ctrd-")
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{Address: filepath.Join(dir, "containerd.sock"), Namespace: "bosun-test-" + randomHex(4), dir: dir}
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
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), d.Address, d.Address+".ttrpc")
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	d.start(t)
	t.Cleanup(func() { d.cleanup(t) })
	return d
}

func (d *Daemon) start(t testing.TB) {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(d.dir, "containerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("containerd", "--config", filepath.Join(d.dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	release, err := apiservertest.StartOnOwnThread(cmd)
	if err != nil {
		t.Fatalf("starting containerd: %v", err)
	}
	d.cmd, d.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); release(); close(d.exited) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := client.New(d.Address, client.WithTimeout(time.Second))
		if err == nil {
			_, err = c.Version(context.Background())
			c.Close()
			if err == nil {
				return
			}
		}
		select {
		case <-d.exited:
			log, _ := os.ReadFile(filepath.Join(d.dir, "containerd.log"))
			t.Fatalf("containerd exited at start: %s", tail(string(log)))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not answer on %s: %v", d.Address, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}

// Stop stops the daemon (SIGTERM); tasks keep running in their shims.
func (d *Daemon) Stop(t testing.TB) {
	t.Helper()
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
	d.cmd = nil
}

// Restart stops and starts the daemon again.
func (d *Daemon) Restart(t testing.TB) {
	t.Helper()
	d.Stop(t)
	d.start(t)
}

// Client connects to the daemon; the caller closes it.
func (d *Daemon) Client(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.New(d.Address, client.WithDefaultNamespace(d.Namespace))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Leftovers lists what remains in the test's namespace: containers, tasks
// and snapshots.
func (d *Daemon) Leftovers(t testing.TB) []string {
	t.Helper()
	c := d.Client(t)
	defer c.Close()
	ctx := namespaces.WithNamespace(context.Background(), d.Namespace)
	var out []string
	cs, err := c.Containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range cs {
		out = append(out, "container "+x.ID())
	}
	tasks, err := c.TaskService().List(ctx, nil)
	if err == nil {
		for _, x := range tasks.GetTasks() {
			out = append(out, "task "+x.GetID())
		}
	}
	_ = c.SnapshotService("overlayfs").Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if info.Kind == snapshots.KindActive {
			out = append(out, "snapshot "+info.Name)
		}
		return nil
	})
	return out
}

func (d *Daemon) cleanup(t testing.TB) {
	if d.cmd != nil {
		if c, err := client.New(d.Address, client.WithDefaultNamespace(d.Namespace)); err == nil {
			ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), d.Namespace), 30*time.Second)
			cs, _ := c.Containers(ctx)
			for _, x := range cs {
				if task, err := x.Task(ctx, nil); err == nil {
					_, _ = task.Delete(ctx, client.WithProcessKill)
				}
				_ = x.Delete(ctx, client.WithSnapshotCleanup)
			}
			imgs, _ := c.ImageService().List(ctx)
			for _, img := range imgs {
				_ = c.ImageService().Delete(ctx, img.Name)
			}
			_ = c.NamespaceService().Delete(ctx, d.Namespace)
			cancel()
			c.Close()
		}
		d.Stop(t)
	}
	// Unmount anything left under the root before removing it.
	if b, err := os.ReadFile("/proc/self/mounts"); err == nil {
		var mounts []string
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], d.dir) {
				mounts = append(mounts, f[1])
			}
		}
		for i := len(mounts) - 1; i >= 0; i-- {
			_ = syscall.Unmount(mounts[i], syscall.MNT_DETACH)
		}
	}
	_ = os.RemoveAll(filepath.Join(d.dir, "root"))
	_ = os.RemoveAll(filepath.Join(d.dir, "state"))
	if err := os.RemoveAll(d.dir); err != nil {
		t.Errorf("removing containerd directory: %v", err)
	}
	// runc keeps its state per namespace here.
	_ = os.RemoveAll(filepath.Join("/run/containerd/runc", d.Namespace))
	// containerd makes a cgroup per namespace in every hierarchy; it
	// outlives the containers.
	if err := RemoveCgroups(d.Namespace); err != nil {
		t.Errorf("removing the cgroups of namespace %s: %v", d.Namespace, err)
	}
}

// RemoveCgroups removes the cgroup directories named after a containerd
// namespace, in every hierarchy, deepest first. They must be empty of
// processes: a cgroup with a process left in it is reported.
func RemoveCgroups(namespace string) error {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", namespace))
	dirs = append(dirs, filepath.Join("/sys/fs/cgroup", namespace))
	var errs []error
	for _, d := range dirs {
		if err := removeCgroup(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

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

var (
	buildOnce sync.Once
	buildBin  []byte
	buildErr  error
)

// TestApp compiles testapp statically and returns the binary.
func TestApp(t testing.TB) []byte {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bosun-testapp-")
		if err != nil {
			buildErr = err
			return
		}
		defer os.RemoveAll(dir)
		_, file, _, _ := goruntime.Caller(0)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, "app"), "./testapp")
		cmd.Dir = filepath.Dir(file)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building testapp: %v: %s", err, out)
			return
		}
		buildBin, buildErr = os.ReadFile(filepath.Join(dir, "app"))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// Image builds an image holding binary as /app (its entrypoint), with
// /tmp and /etc/passwd, and the given labels distinguishing versions.
func Image(binary []byte, env ...string) (v1.Image, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Unix(0, 0)
	for _, dir := range []string{"etc/", "tmp/"} {
		mode := int64(0o755)
		if dir == "tmp/" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: mode, ModTime: now}); err != nil {
			return nil, err
		}
	}
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"app", 0o755, binary},
		{"etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/app\nnobody:x:65534:65534:nobody:/:/app\n")},
		{"etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")},
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
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
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", goruntime.GOARCH
	cfg.Config.Entrypoint = []string{"/app"}
	cfg.Config.Cmd = []string{"serve", "8080"}
	cfg.Config.Env = append([]string{"PATH=/"}, env...)
	return mutate.ConfigFile(img, cfg)
}

// Registry is an in-process OCI registry on loopback.
type Registry struct {
	// Host is host:port, to be listed as an insecure registry.
	Host string
}

// StartRegistry serves an empty registry until the test ends.
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return &Registry{Host: strings.TrimPrefix(srv.URL, "http://")}
}

// Push stores img as repo:tag and returns its reference.
func (r *Registry) Push(t testing.TB, repoTag string, img v1.Image) string {
	t.Helper()
	ref := r.Host + "/" + repoTag
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return ref
}

// OCIArchive writes img as an OCI image-layout tarball naming it ref.
func OCIArchive(img v1.Image, ref string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "bosun-oci-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return nil, err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref,
		"io.containerd.image.name":          ref,
	})); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err = filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = rel
		if info.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Network is a CNI network of the test's own: a bridge, a pod CIDR and an
// IPAM directory. When the test ends the bridge is deleted.
type Network struct {
	Options network.CNIOptions
}

// NewNetwork picks a /24 in 10.200-254.x.0 that no route of the host
// overlaps, and a bridge name of its own.
func NewNetwork(t testing.TB) *Network {
	t.Helper()
	var cidr string
	for try := 0; ; try++ {
		n, _ := rand.Int(rand.Reader, big.NewInt(254*55))
		cidr = fmt.Sprintf("10.%d.%d.0/24", 200+n.Int64()/254, 1+n.Int64()%254)
		if !routed(cidr) {
			break
		}
		if try == 50 {
			t.Fatalf("no free /24 in 10.200.0.0/13 for a test network")
		}
	}
	dir := t.TempDir()
	nw := &Network{Options: network.CNIOptions{
		PodCIDR:  cidr,
		Bridge:   "bst" + randomHex(4),
		NetNSDir: filepath.Join(dir, "netns"),
		IPAMDir:  filepath.Join(dir, "ipam"),
		IPMasq:   true,
	}}
	t.Cleanup(func() { nw.removeLeftovers(t) })
	return nw
}

// removeLeftovers removes whatever pods of a failed test left on the
// network: namespaces, CNI result caches, masquerade chains, the bridge.
// Passing tests check that the node-agent removed everything itself before
// this runs.
func (n *Network) removeLeftovers(t testing.TB) {
	for _, name := range n.NetNSFiles() {
		if err := netns.LoadNetNS(filepath.Join(n.Options.NetNSDir, name)).Remove(); err != nil {
			t.Logf("removing network namespace %s: %v", name, err)
		}
	}
	netName := "bosun-" + n.Options.Bridge
	if ents, err := os.ReadDir("/var/lib/cni/results"); err == nil {
		for _, e := range ents {
			if id, ok := strings.CutPrefix(e.Name(), netName+"-"); ok {
				id = strings.TrimSuffix(id, "-eth0")
				_ = os.Remove(filepath.Join("/var/lib/cni/results", e.Name()))
				_ = os.Remove(filepath.Join("/var/lib/cni/results", "cni-loopback-"+id+"-lo"))
			}
		}
	}
	if out, err := exec.Command("iptables", "-t", "nat", "-S").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if !strings.HasPrefix(line, "-A POSTROUTING ") || !strings.Contains(line, `name: \"`+netName+`\"`) {
				continue
			}
			f := strings.Fields(line)
			chain := f[len(f)-1]
			_ = exec.Command("sh", "-c", "iptables -t nat "+strings.Replace(line, "-A", "-D", 1)).Run()
			_ = exec.Command("iptables", "-t", "nat", "-F", chain).Run()
			_ = exec.Command("iptables", "-t", "nat", "-X", chain).Run()
		}
	}
	_ = exec.Command("ip", "link", "del", n.Options.Bridge).Run()
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
		if len(f) == 0 {
			continue
		}
		dst := f[0]
		if dst == "default" || dst == "broadcast" || dst == "local" {
			if len(f) < 2 || dst == "default" {
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

// NetNSFiles lists the namespace files left in the network's netns
// directory.
func (n *Network) NetNSFiles() []string {
	ents, _ := os.ReadDir(n.Options.NetNSDir)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// Leases lists host-local's address leases (files named by IP).
func (n *Network) Leases() []string {
	var out []string
	_ = filepath.Walk(n.Options.IPAMDir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			base := filepath.Base(p)
			if strings.Count(base, ".") == 3 { // an IPv4 address
				out = append(out, base)
			}
		}
		return nil
	})
	return out
}

// portmapChains are the nat chains the portmap plugin creates once and
// shares between pods.
var portmapChains = []string{"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"}

// CleanPortmapChains removes, when the test ends, the shared nat chains
// the portmap plugin created during the test, if no other pod uses them.
// Chains that existed before the test are left alone.
func CleanPortmapChains(t testing.TB) {
	t.Helper()
	if exec.Command("iptables", "-t", "nat", "-S", "CNI-HOSTPORT-DNAT").Run() == nil {
		return // there before us
	}
	t.Cleanup(func() {
		out, err := exec.Command("iptables", "-t", "nat", "-S", "CNI-HOSTPORT-DNAT").Output()
		if err != nil {
			return
		}
		if strings.Count(string(out), "\n-A ") > 0 || strings.HasPrefix(string(out), "-A") {
			t.Errorf("portmap chain CNI-HOSTPORT-DNAT still has rules:\n%s", out)
			return
		}
		for _, args := range [][]string{
			{"-D", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"},
			{"-D", "OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"},
			{"-D", "POSTROUTING", "-m", "comment", "--comment", "CNI portfwd requiring masquerade", "-j", "CNI-HOSTPORT-MASQ"},
		} {
			_ = exec.Command("iptables", append([]string{"-t", "nat"}, args...)...).Run()
		}
		for _, c := range portmapChains {
			_ = exec.Command("iptables", "-t", "nat", "-F", c).Run()
		}
		for _, c := range portmapChains {
			if out, err := exec.Command("iptables", "-t", "nat", "-X", c).CombinedOutput(); err != nil {
				t.Errorf("removing chain %s: %v %s", c, err, out)
			}
		}
	})
}

// Process is a child process the test started.
type Process struct {
	Cmd    *exec.Cmd
	exited chan struct{}
	logs   *apiservertest.LockedBuffer
}

// StartProcess starts cmd (output kept for the test's log on failure) and
// kills it when the test ends if it still runs.
func StartProcess(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{Cmd: cmd, exited: make(chan struct{}), logs: &apiservertest.LockedBuffer{}}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	release, err := apiservertest.StartOnOwnThread(cmd)
	if err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	go func() { _ = cmd.Wait(); release(); close(p.exited) }()
	t.Cleanup(func() {
		p.Signal(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(cmd.Path), tail(p.logs.String()))
		}
	})
	return p
}

// Signal sends sig and, for SIGKILL, waits for the process to exit.
func (p *Process) Signal(sig syscall.Signal) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.Cmd.Process.Signal(sig)
	if sig == syscall.SIGKILL {
		<-p.exited
	}
}

// Wait waits up to timeout for the process to exit and reports whether it did.
func (p *Process) Wait(timeout time.Duration) bool {
	select {
	case <-p.exited:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Output is what the process printed so far.
func (p *Process) Output() string { return p.logs.String() }

// BuildBinary builds a command of the workspace (e.g.
// bosun.dev/services/node-agent/cmd/node-agent) into a temporary directory.
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, b)
	}
	return out
}

// NATRules lists the nat rules that mention this network (the bridge
// plugin's masquerade rules of its pods).
func (n *Network) NATRules() []string {
	out, err := exec.Command("iptables", "-t", "nat", "-S").Output()
	if err != nil {
		return []string{"iptables: " + err.Error()}
	}
	var rules []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, `name: \"bosun-`+n.Options.Bridge+`\"`) {
			rules = append(rules, line)
		}
	}
	return rules
}
