// Package nodeagent is the conformance suite for Bosun node-agents: a
// replacement runs the pods bound to its node and reports their status
// truthfully. The suite starts one node-agent against a real apiserver (as
// the user system:node:NAME in the group system:nodes, so the Node
// authorizer confines it), on a private containerd with a CNI bridge of its
// own and a registry serving the suite's pod image (internal/app), and then
// checks only through the API and by talking to the pods over the network:
// the pod answers HTTP on the IP the agent reports, exits and restarts it
// causes are reported with the right exit code, reason and restart count,
// a readiness probe it fails makes it not Ready, environment from ConfigMaps
// and Secrets is what it sees, a deleted pod stops answering and its object
// goes away, pods of other nodes are left alone, and bad specs are reported
// with a reason while the agent goes on. Every version of every pod the
// agent wrote is checked against the earlier ones too (a pod IP that moves,
// a phase after Succeeded, a restart count going down).
//
// TestNodeAgent runs it against the binary in BOSUN_CONFORMANCE_NODE_AGENT
// (its arguments in BOSUN_CONFORMANCE_NODE_AGENT_ARGS, where $NODE_NAME,
// $POD_CIDR, ... name the node the suite prepared: multinode.Node.Env), or
// against Bosun's own node-agent built from services/node-agent with
// defaultArgs. docs/replacing-a-service.md describes the contract.
package nodeagent

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"bosun.dev/tests/conformance/harness"
	"bosun.dev/tests/multinode"
)

// EnvNodeAgent names the implementation under test.
const EnvNodeAgent = "BOSUN_CONFORMANCE_NODE_AGENT"

const bosunNodeAgent = "bosun.dev/services/node-agent/cmd/node-agent"

// defaultArgs run Bosun's node-agent on the node the suite prepared, with a
// short Lease renewal and restart back-off so that the suite sees renewals
// and restarts within seconds. A replacement gets
// BOSUN_CONFORMANCE_NODE_AGENT_ARGS, expanded the same way.
var defaultArgs = []string{
	"--node-name=$NODE_NAME", "--node-ip=$NODE_IP", "--pod-cidr=$POD_CIDR",
	"--cni-bridge=$CNI_BRIDGE", "--containerd-address=$CONTAINERD_ADDRESS",
	"--containerd-namespace=$CONTAINERD_NAMESPACE", "--root-dir=$ROOT_DIR",
	"--log-dir=$LOG_DIR", "--insecure-registries=$REGISTRY",
	"--lease-renew-interval=1s", "--crash-backoff-base=1s", "--crash-backoff-max=2s",
}

// nodeName is the Node the agent registers; the apiserver is the suite's
// own, and the runtime's names (containerd namespace, bridge) are random.
const nodeName = "conformance-node"

func TestMain(m *testing.M) {
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}

func TestNodeAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a node-agent on containerd for about 20 s")
	}
	multinode.Require(t)
	type built struct {
		app []byte
		err error
	}
	appc := make(chan built, 1)
	go func() { app, err := buildApp(); appc <- built{app, err} }()
	impl := harness.FromEnv(t, EnvNodeAgent, bosunNodeAgent, defaultArgs)
	b := <-appc
	if b.err != nil {
		t.Fatal(b.err)
	}
	app := b.app
	c := harness.StartCluster(t)
	rt := multinode.StartRuntime(t, app)
	node := rt.NewNode(t, nodeName)
	args, err := expand(impl.Args, node.Env())
	if err != nil {
		t.Fatalf("%s_ARGS: %v", EnvNodeAgent, err)
	}
	t.Logf("implementation %s %v", impl.Name, args)
	t.Logf("node %s, image %s", node, rt.Image)
	s := newSuite(t, c, rt, node)
	s.startAgent(t, impl.Binary, args)
	h := s.recordHistory(t)

	if !t.Run("RegistersNode", s.registersNode) {
		t.Fatal("the node never became Ready: skipping the pod cases")
	}
	t.Run("RunsPod", s.runsPod)
	t.Run("EnvFromConfigMapAndSecret", s.envFromConfigMapAndSecret)
	t.Run("ContainerExits", s.containerExits)
	t.Run("ReadinessProbe", s.readinessProbe)
	t.Run("DeletesPod", s.deletesPod)
	t.Run("IgnoresOtherNodesPods", s.ignoresOtherNodesPods)
	t.Run("ReportsBadSpecs", s.reportsBadSpecs)
	t.Run("ConsistentStatusHistory", s.consistentHistory(h))
}

// nodeVariables lists the variables the implementation's arguments may
// use, as $NAME; multinode.Node.Env describes them.
func nodeVariables(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k := range env {
		out = append(out, "$"+k)
	}
	sort.Strings(out)
	return out
}

// expand replaces $VAR and ${VAR} in every argument by the node's values;
// an unknown variable is an error.
func expand(args []string, env map[string]string) ([]string, error) {
	out := make([]string, len(args))
	for i, a := range args {
		var unknown []string
		out[i] = os.Expand(a, func(k string) string {
			v, ok := env[k]
			if !ok {
				unknown = append(unknown, "$"+k)
			}
			return v
		})
		if len(unknown) > 0 {
			return nil, fmt.Errorf("argument %q: unknown variable %s; known: %s", a,
				strings.Join(unknown, ", "), strings.Join(nodeVariables(env), ", "))
		}
	}
	return out, nil
}

// buildApp compiles internal/app statically for the pod image.
func buildApp() ([]byte, error) {
	_, file, _, _ := goruntime.Caller(0)
	dir, err := os.MkdirTemp("", "bosun-conformance-app")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "app")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./internal/app")
	cmd.Dir = filepath.Dir(file)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the pod app: %v\n%s", err, b)
	}
	return os.ReadFile(out)
}

// since formats the time from start to now for the figures the suite logs.
func since(start time.Time) string { return time.Since(start).Round(time.Millisecond).String() }

func TestExpandArgs(t *testing.T) {
	env := map[string]string{"NODE_NAME": "n1", "POD_CIDR": "10.1.2.0/24"}
	got, err := expand([]string{"--node-name=$NODE_NAME", "--cidr", "${POD_CIDR}", "plain"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"--node-name=n1", "--cidr", "10.1.2.0/24", "plain"}; !slices.Equal(got, want) {
		t.Errorf("expand = %q, want %q", got, want)
	}
	_, err = expand([]string{"--x=$NODE_NAME", "--y=$NODE_NAMES"}, env)
	if err == nil || !strings.Contains(err.Error(), "unknown variable $NODE_NAMES") ||
		!strings.Contains(err.Error(), "known: $NODE_NAME, $POD_CIDR") {
		t.Errorf("expand with an unknown variable: err = %v, want it named and the known ones listed", err)
	}
}
