// Package serviceproxy is the conformance suite for Bosun service-proxies:
// an implementation serves correct, consistent xDS for Services and
// Endpoints, to proxyless gRPC clients and to Envoy.
//
// Each case starts a fresh apiserver, writes Services and Endpoints
// through the API as an administrator (no controller runs), starts the
// implementation as bosun-service-proxy and talks xDS to it on its
// --listen address, where it also serves gRPC health, with real
// consumers:
//
//   - ProxylessClient: grpc-go's own xDS client dialing xds:///name.namespace
//     reaches in-process gRPC backends on 127.0.0.1 listed as ready
//     endpoints, spreads over all of them, stops using one that turns not
//     ready or leaves, starts using a new one, loses no request meanwhile,
//     and fails with UNAVAILABLE once the Service is deleted;
//   - Configuration: an Envoy-like ADS client (wildcard Listeners and
//     Clusters, then the Routes and ClusterLoadAssignments they name)
//     receives resources that pass their generated ValidateAll, are
//     consistent, hold only ready endpoints and carry the virtual host
//     domains name, name.namespace and name.namespace.svc.cluster.local
//     with and without the port; with capability delta the delta variant
//     serves the same resources;
//   - NACK: a rejected Listener or ClusterLoadAssignment is not sent again,
//     and the next change still arrives (delta too, with capability delta);
//   - Replicas: two replicas serve the same resources, and a gRPC client
//     whose control plane connection moves from one to the other keeps
//     working and follows later changes.
//
// TestServiceProxy runs the cases against the binary in
// BOSUN_CONFORMANCE_SERVICE_PROXY (its own arguments in
// BOSUN_CONFORMANCE_SERVICE_PROXY_ARGS, the optional behaviours it claims
// in BOSUN_CONFORMANCE_CAPABILITIES), or against Bosun's own service-proxy
// built from services/service-proxy when that is unset:
//
//	go test ./conformance/serviceproxy -v
//	BOSUN_CONFORMANCE_SERVICE_PROXY=/path/to/my-proxy \
//	BOSUN_CONFORMANCE_CAPABILITIES=delta \
//	  go test ./conformance/serviceproxy -v
//
// docs/replacing-a-service.md describes the contract.
package serviceproxy

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"bosun.dev/tests/conformance/harness"
)

// The environment that selects the implementation under test.
const (
	EnvServiceProxy = "BOSUN_CONFORMANCE_SERVICE_PROXY"
	EnvCapabilities = "BOSUN_CONFORMANCE_CAPABILITIES"
)

// CapDelta is the one optional behaviour: the delta (incremental)
// variant of ADS, DeltaAggregatedResources.
const CapDelta = "delta"

// KnownCapabilities lists what an implementation may claim.
var KnownCapabilities = []string{CapDelta}

const (
	bosunServiceProxy = "bosun.dev/services/service-proxy/cmd/service-proxy"
	serviceProxyUser  = "bosun-service-proxy"
)

// The contract's names and the suite's bounds.
const (
	namespace      = "shop"
	otherNamespace = "outlet"
	// clusterDomain is the implementation's default DNS suffix.
	clusterDomain = "cluster.local"
	// waitFor bounds every wait for the implementation or a client to act.
	waitFor = 30 * time.Second
	// quietPeriod is how long a NACKed stream is watched for resends.
	quietPeriod = 2 * time.Second
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}

// TestServiceProxy runs every case against BOSUN_CONFORMANCE_SERVICE_PROXY,
// or Bosun's own service-proxy.
func TestServiceProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the implementation and runs it against an apiserver for about a minute")
	}
	impl := harness.FromEnv(t, EnvServiceProxy, bosunServiceProxy, nil)
	list, ok := os.LookupEnv(EnvCapabilities)
	if !ok {
		list = ""
		if os.Getenv(EnvServiceProxy) == "" {
			list = strings.Join(KnownCapabilities, ",")
		}
	}
	caps, err := harness.ParseCapabilities(list, KnownCapabilities)
	if err != nil {
		t.Fatalf("%s: %v", EnvCapabilities, err)
	}
	t.Logf("implementation %s %v, capabilities %s", impl.Name, impl.Args, caps)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, newEnv(t, impl), caps) })
	}
}

// Capability lists are checked: a misspelt name is an error that names it.
func TestParseCapabilities(t *testing.T) {
	caps, err := harness.ParseCapabilities(" delta ,", KnownCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	if !caps[CapDelta] || len(caps) != 1 {
		t.Errorf("parsed %v, want delta", caps)
	}
	if _, err := harness.ParseCapabilities("delta,incremental", KnownCapabilities); err == nil ||
		!strings.Contains(err.Error(), `"incremental"`) || !strings.Contains(err.Error(), "known: delta") {
		t.Errorf("a misspelt capability gave %v; want an error naming it and the known ones", err)
	}
}

// The suite judges every implementation with the same code: it imports
// nothing from services/, only gen/, pkg/, the harness and third-party
// modules.
func TestSuiteImportsNoService(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}{{"\n"}}{{join .TestImports "\n"}}{{"\n"}}{{join .XTestImports "\n"}}`, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	imports := strings.Fields(string(out))
	if !slices.Contains(imports, "bosun.dev/tests/conformance/harness") {
		t.Fatalf("go list found no import of the harness in %q", out)
	}
	for _, imp := range imports {
		if !strings.HasPrefix(imp, "bosun.dev/") {
			continue
		}
		if !strings.HasPrefix(imp, "bosun.dev/gen/") && !strings.HasPrefix(imp, "bosun.dev/pkg/") &&
			imp != "bosun.dev/tests/conformance/harness" {
			t.Errorf("the suite imports %s; it may use only bosun.dev/gen, bosun.dev/pkg and the harness", imp)
		}
	}
}
