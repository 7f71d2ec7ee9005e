package skew

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/tests/conformance/harness"
)

// mixes are the clusters TestVersionSkew runs, by subtest name: the
// commands (keys of Commands) taken from the baseline; the rest are
// current. The first six take one service from the baseline each (the
// node-agent as nodesim, its pod workers on the in-memory runtime); the
// last is the cluster halfway through an upgrade in the documented order,
// the apiserver upgraded and nothing else yet.
var mixes = []struct {
	name string
	old  []string
}{
	{"apiserver", []string{"apiserver"}},
	{"scheduler", []string{"scheduler"}},
	{"controller", []string{"controller"}},
	{"health-checker", []string{"health-checker"}},
	{"service-proxy", []string{"service-proxy"}},
	{"node-agent", []string{"nodesim"}},
	{"apiserver-upgraded-first", []string{"scheduler", "controller", "health-checker", "service-proxy", "nodesim"}},
}

// manifest is the workload each mixed cluster runs: two replicas behind a
// Service, as a user applies them.
const manifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: registry.skew.invalid/web:v1
        ports:
        - {name: http, containerPort: 8080}
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
`

// The names the manifest's objects get in the service-proxy's xDS
// configuration: NAME.NAMESPACE:PORT.
const xdsName = "web.default:80"

// TestVersionSkew builds the services from the baseline and from the
// current tree and runs the end-to-end check in each of mixes: once per
// service with that service from the baseline and the rest current, and
// once with only the apiserver current.
func TestVersionSkew(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the version-skew test in -short mode: it builds every service twice")
	}
	start := time.Now()
	ctx := context.Background()
	repo, err := git(ctx, ".", "rev-parse", "--show-toplevel")
	if err != nil {
		t.Skipf("skipping: the source is not a git work tree, so there is no previous release to build: %v", err)
	}
	base, err := FindBaseline(ctx, repo, os.Getenv(EnvBaseline))
	if errors.Is(err, ErrNoBaseline) {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("baseline %s, current tree at HEAD %.12s", base, base.Head)

	work, err := os.MkdirTemp("", "bosun-skew-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	oldTree := Tree{Dir: filepath.Join(work, "baseline"), Version: strings.ReplaceAll(base.Name, " ", "_"), Revision: base.Commit[:12]}
	if err := os.Mkdir(oldTree.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Export(ctx, repo, base.Commit, oldTree.Dir); err != nil {
		t.Fatal(err)
	}
	newTree := Tree{Dir: repo, Version: "current", Revision: base.Head[:12]}

	var current, old []string
	for _, pkg := range Commands {
		current = append(current, pkg)
		if oldTree.Has(pkg) {
			old = append(old, pkg)
		}
	}
	slices.Sort(current)
	slices.Sort(old)
	current = append(current, CLI)
	built := time.Now()
	newBins, err := Build(ctx, newTree, current, filepath.Join(work, "bin", "current"))
	if err != nil {
		t.Fatalf("building the current tree: %v", err)
	}
	t.Logf("current tree built in %v", time.Since(built).Round(time.Second))
	built = time.Now()
	oldBins, err := Build(ctx, oldTree, old, filepath.Join(work, "bin", "baseline"))
	if err != nil {
		t.Fatalf("building the baseline %s: %v", base, err)
	}
	t.Logf("baseline built in %v", time.Since(built).Round(time.Second))
	logVersions(t, newBins, oldBins)

	for _, mix := range mixes {
		t.Run(mix.name, func(t *testing.T) {
			parts := map[string]Component{}
			for cmd, pkg := range Commands {
				parts[cmd] = Component{Binary: newBins[pkg], From: "current"}
			}
			for _, cmd := range mix.old {
				bin, ok := oldBins[Commands[cmd]]
				if !ok {
					t.Skipf("the baseline %s has no %s", base, Commands[cmd])
				}
				parts[cmd] = Component{Binary: bin, From: base.Name}
			}
			var names []string
			for _, cmd := range mix.old {
				if cmd == "nodesim" {
					cmd = "node-agent (nodesim)"
				}
				names = append(names, cmd)
			}
			what := strings.Join(names, ", ") + " from " + base.Name + ", the rest current"
			began := time.Now()
			c := StartCluster(t, parts)
			t.Logf("cluster with %s up in %v", what, time.Since(began).Round(time.Millisecond))
			runEndToEnd(t, c, newBins[CLI])
			t.Logf("end to end with %s passed in %v", what, time.Since(began).Round(time.Millisecond))
		})
	}
	t.Logf("version skew against %s: %v in all", base, time.Since(start).Round(time.Second))
}

// logVersions logs what each service binary says it is, so the output
// shows which releases were mixed.
func logVersions(t *testing.T, sets ...map[string]string) {
	t.Helper()
	for _, bins := range sets {
		var pkgs []string
		for pkg := range bins {
			if pkg != CLI {
				pkgs = append(pkgs, pkg)
			}
		}
		slices.Sort(pkgs)
		for _, pkg := range pkgs {
			out, err := exec.Command(bins[pkg], "--version").CombinedOutput()
			if err != nil {
				t.Fatalf("%s --version: %v\n%s", bins[pkg], err, out)
			}
			t.Logf("%s: %s", pkg, strings.TrimSpace(string(out)))
		}
	}
}

// runEndToEnd applies the manifest with the CLI and follows the life of the
// deployment through every service, then deletes it and loses the node.
func runEndToEnd(t *testing.T, c *Cluster, cli string) {
	dir := t.TempDir()
	file := filepath.Join(dir, "web.yaml")
	if err := os.WriteFile(file, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	bosun := func(args ...string) {
		t.Helper()
		cmd := exec.Command(cli, append([]string{"--config", filepath.Join(dir, "no-config"), "--server", c.Addr, "--insecure"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bosun %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("bosun %s: %s", strings.Join(args, " "), strings.TrimSpace(string(out)))
	}
	ads, err := WatchADS(c.ProxyAddr, "skew-proxy")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ads.Close)

	// Deployment -> ReplicaSet -> Pods (controller), bound (scheduler),
	// Running with an address (node-agent).
	applied := time.Now()
	bosun("apply", "-f", file)
	var podIPs []string
	eventually(t, "two pods of Deployment web Running on "+c.Node, func(ctx context.Context) error {
		pods, err := client.For[*corev1.Pod](c.Conn).List(ctx, client.ListOptions{Namespace: "default", LabelSelector: "app=web"})
		if err != nil {
			return err
		}
		rss, err := client.For[*appsv1.ReplicaSet](c.Conn).List(ctx, client.ListOptions{Namespace: "default"})
		if err != nil {
			return err
		}
		owned := map[string]bool{}
		for _, rs := range rss.Items {
			if controllerOf(rs.GetMetadata().GetOwnerReferences()) == "Deployment/web" {
				owned["ReplicaSet/"+rs.GetMetadata().GetName()] = true
			}
		}
		var ips []string
		for _, p := range pods.Items {
			name := p.GetMetadata().GetName()
			if owner := controllerOf(p.GetMetadata().GetOwnerReferences()); !owned[owner] {
				return fmt.Errorf("pod %s is controlled by %q, not a ReplicaSet of Deployment web", name, owner)
			}
			if n := p.GetSpec().GetNodeName(); n != c.Node {
				return fmt.Errorf("pod %s is bound to %q", name, n)
			}
			if ph := p.GetStatus().GetPhase(); ph != "Running" || p.GetStatus().GetPodIp() == "" {
				return fmt.Errorf("pod %s is %s with address %q", name, ph, p.GetStatus().GetPodIp())
			}
			ips = append(ips, p.GetStatus().GetPodIp())
		}
		if len(ips) != 2 {
			return fmt.Errorf("%d pods Running, want 2", len(ips))
		}
		slices.Sort(ips)
		podIPs = ips
		return nil
	})
	t.Logf("pods Running %v after apply, at %v", time.Since(applied).Round(time.Millisecond), podIPs)

	want := make([]string, len(podIPs))
	for i, ip := range podIPs {
		want[i] = ip + ":8080"
	}
	// Endpoints (controller).
	eventually(t, "Endpoints web listing the pods", func(ctx context.Context) error {
		ep, err := client.For[*corev1.Endpoints](c.Conn).Get(ctx, "default", "web")
		if err != nil {
			return err
		}
		var got []string
		for _, s := range ep.GetSubsets() {
			for _, a := range s.GetAddresses() {
				for _, p := range s.GetPorts() {
					got = append(got, fmt.Sprintf("%s:%d", a.GetIp(), p.GetPort()))
				}
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return fmt.Errorf("ready addresses %v, want %v", got, want)
		}
		return nil
	})
	// xDS (service-proxy).
	eventually(t, "the ADS stream sent cluster "+xdsName+" with the pods", func(context.Context) error {
		if err := ads.Err(); err != nil {
			t.Fatalf("the ADS stream ended: %v", err)
		}
		if _, ok := ads.Cluster(xdsName); !ok {
			return fmt.Errorf("no cluster %s", xdsName)
		}
		got, ok := ads.Endpoints(xdsName)
		if !ok {
			return fmt.Errorf("no assignment %s", xdsName)
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("assignment %s has %v, want %v", xdsName, got, want)
		}
		return nil
	})
	t.Logf("endpoints %v served over xDS %v after apply", want, time.Since(applied).Round(time.Millisecond))

	// Deletion: the garbage collector removes the ReplicaSets, the node
	// its pods, the controller the Endpoints, the service-proxy the cluster.
	deleted := time.Now()
	bosun("delete", "-f", file)
	eventually(t, "the workload deleted", func(ctx context.Context) error {
		pods, err := client.For[*corev1.Pod](c.Conn).List(ctx, client.ListOptions{Namespace: "default"})
		if err != nil {
			return err
		}
		if n := len(pods.Items); n > 0 {
			return fmt.Errorf("%d pods left, the first %s", n, pods.Items[0].GetMetadata().GetName())
		}
		rss, err := client.For[*appsv1.ReplicaSet](c.Conn).List(ctx, client.ListOptions{Namespace: "default"})
		if err != nil {
			return err
		}
		if n := len(rss.Items); n > 0 {
			return fmt.Errorf("%d ReplicaSets left", n)
		}
		if _, err := client.For[*corev1.Endpoints](c.Conn).Get(ctx, "default", "web"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("Endpoints web: want NotFound, got %v", err)
		}
		if _, ok := ads.Cluster(xdsName); ok {
			return fmt.Errorf("the ADS stream still has cluster %s", xdsName)
		}
		return nil
	})
	t.Logf("workload gone %v after delete", time.Since(deleted).Round(time.Millisecond))

	// Node loss (health-checker): no Lease renewals, no health answers.
	lost := time.Now()
	c.StopNode()
	c.WaitNode(t, "Unknown and tainted unreachable", func(n *corev1.Node) error {
		if s := condition(n, "Ready"); s != "Unknown" {
			return fmt.Errorf("condition Ready is %q", s)
		}
		for _, taint := range n.GetSpec().GetTaints() {
			if taint.GetKey() == "node.kubernetes.io/unreachable" {
				return nil
			}
		}
		return fmt.Errorf("no unreachable taint among %v", n.GetSpec().GetTaints())
	})
	t.Logf("node marked unreachable %v after it stopped", time.Since(lost).Round(time.Millisecond))
}

// eventually polls f with a fresh 5-second context until it returns nil,
// failing the test after a minute: a generous "it is broken" bound.
func eventually(t *testing.T, what string, f func(context.Context) error) {
	t.Helper()
	harness.Eventually(t, time.Minute, what, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return f(ctx)
	})
}

// controllerOf is "Kind/name" of the controlling owner reference, "" when
// there is none.
func controllerOf(refs []*metav1.OwnerReference) string {
	for _, r := range refs {
		if r.GetController() {
			return r.GetKind() + "/" + r.GetName()
		}
	}
	return ""
}
