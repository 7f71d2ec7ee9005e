// Package scheduler is the conformance suite for Bosun schedulers: a
// replacement binds pods through the apiserver's BindPod and respects every
// constraint it claims, checked through the API only.
//
// TestScheduler runs the suite against the implementation under test: the
// binary in BOSUN_CONFORMANCE_SCHEDULER (its own arguments in
// BOSUN_CONFORMANCE_SCHEDULER_ARGS, the optional behaviours it claims in
// BOSUN_CONFORMANCE_CAPABILITIES), or Bosun's own scheduler built from
// services/scheduler when that is unset. TestMinimalScheduler runs it
// against tests/minimalscheduler, which claims only the required
// constraints and leader election:
//
//	go test ./conformance/scheduler -run Minimal
//	BOSUN_CONFORMANCE_SCHEDULER=/path/to/my-scheduler \
//	BOSUN_CONFORMANCE_CAPABILITIES=conditions,affinity \
//	  go test ./conformance/scheduler -run '^TestScheduler$' -v
//
// docs/replacing-a-service.md describes the contract.
package scheduler

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/tests/conformance/harness"
)

// The environment that selects the implementation under test.
const (
	EnvScheduler    = "BOSUN_CONFORMANCE_SCHEDULER"
	EnvCapabilities = "BOSUN_CONFORMANCE_CAPABILITIES"
)

const (
	bosunScheduler   = "bosun.dev/services/scheduler/cmd/scheduler"
	minimalScheduler = "bosun.dev/tests/minimalscheduler/cmd/minimal-scheduler"
)

// bosunCapabilities are those Bosun's scheduler claims; bosunArgs shorten
// its retry back-off so that pods that become schedulable are bound
// quickly.
var (
	bosunCapabilities = strings.Join(KnownCapabilities, ",")
	bosunArgs         = []string{"--pod-initial-backoff=100ms", "--pod-max-backoff=1s"}
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}

// TestScheduler runs the suite against BOSUN_CONFORMANCE_SCHEDULER, or
// Bosun's own scheduler.
func TestScheduler(t *testing.T) {
	skipShort(t)
	impl := harness.FromEnv(t, EnvScheduler, bosunScheduler, bosunArgs)
	list, ok := os.LookupEnv(EnvCapabilities)
	if !ok {
		list = ""
		if os.Getenv(EnvScheduler) == "" {
			list = bosunCapabilities
		}
	}
	caps, err := harness.ParseCapabilities(list, KnownCapabilities)
	if err != nil {
		t.Fatalf("%s: %v", EnvCapabilities, err)
	}
	runSuite(t, impl, caps)
}

// TestMinimalScheduler runs the suite against the minimal scheduler in
// tests/minimalscheduler.
func TestMinimalScheduler(t *testing.T) {
	skipShort(t)
	impl := harness.Implementation{Name: minimalScheduler, Binary: harness.Build(t, minimalScheduler)}
	caps, err := harness.ParseCapabilities(CapLeaderElection, KnownCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	runSuite(t, impl, caps)
}

// The minimal scheduler proves that gen/ and pkg/ suffice: it imports no
// service and nothing else from tests/.
func TestMinimalSchedulerImportsOnlyGenAndPkg(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", minimalScheduler).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps returned %d packages: %q", len(deps), out)
	}
	for _, d := range deps {
		if !strings.HasPrefix(d, "bosun.dev/") {
			continue
		}
		ok := strings.HasPrefix(d, "bosun.dev/gen/") || strings.HasPrefix(d, "bosun.dev/pkg/") ||
			strings.HasPrefix(d, "bosun.dev/tests/minimalscheduler")
		if !ok {
			t.Errorf("the minimal scheduler depends on %s; it may use only bosun.dev/gen and bosun.dev/pkg", d)
		}
	}
}

// Capability lists are checked: a misspelt name is an error that names it.
func TestParseCapabilities(t *testing.T) {
	caps, err := harness.ParseCapabilities(" conditions, spread ,", KnownCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	if !caps[CapConditions] || !caps[CapSpread] || len(caps) != 2 {
		t.Errorf("parsed %v, want conditions and spread", caps)
	}
	if _, err := harness.ParseCapabilities("conditions,afinity", KnownCapabilities); err == nil ||
		!strings.Contains(err.Error(), `"afinity"`) || !strings.Contains(err.Error(), "affinity") {
		t.Errorf("a misspelt capability gave %v; want an error naming it and the known ones", err)
	}
	if caps, err := harness.ParseCapabilities("", KnownCapabilities); err != nil || len(caps) != 0 {
		t.Errorf("empty list: %v %v", caps, err)
	}
}

func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the implementation, then starts an apiserver and the implementation per case")
	}
}

// leaseHolder reads the holder of the scheduler's leader election Lease.
func leaseHolder(e *env) (string, error) {
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	defer cancel()
	l, err := client.For[*coordinationv1.Lease](e.cluster.Admin).Get(ctx, "bosun-system", "scheduler")
	if err != nil {
		return "", err
	}
	return l.GetSpec().GetHolderIdentity(), nil
}
