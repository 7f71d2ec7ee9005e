package observability

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/server"
)

// testService names the test process in its spans.
const testService = "observability-test"

// TestTracesAndMetrics runs every service as its own process, each writing
// spans to a file; creates a Deployment inside a span of the test's own;
// waits for its pods to be bound; then checks the traces that cross
// processes and scrapes /metrics of every service.
func TestTracesAndMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every service as a process; not with -short")
	}
	dir := t.TempDir()
	testTracer(t, filepath.Join(dir, testService+".jsonl"))

	apiAddr := freePort(t)
	procs := map[string]*proc{}
	procs["apiserver"] = start(t, dir, "apiserver", "--insecure", "--data-dir", filepath.Join(dir, "data"),
		"--listen", apiAddr, "--http-listen", "", "--log-level", "warn")
	// The test traces with its own in-memory provider rather than the
	// environment, so it adds the handler client.Dial adds only when the
	// environment asks for traces.
	conn, err := client.Dial(client.Config{Server: apiAddr, Insecure: true}, grpc.WithStatsHandler(otelgrpc.NewClientHandler()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	eventually(t, 60*time.Second, "apiserver answering", func() error {
		ctx, cancel := ctxTimeout()
		defer cancel()
		_, err := client.For[*corev1.Namespace](conn).Get(ctx, "", "default")
		return err
	})
	for _, n := range []string{"obs-node-1", "obs-node-2"} {
		createNode(t, conn, n)
	}
	shared := func(extra ...string) []string {
		return append([]string{"--apiserver", apiAddr, "--insecure", "--listen", freePort(t), "--log-level", "warn"}, extra...)
	}
	procs["scheduler"] = start(t, dir, "scheduler", shared()...)
	procs["controller"] = start(t, dir, "controller", shared()...)

	// The request: a Deployment created inside a span of the test.
	ctx, span := otel.Tracer("bosun.dev/tests/observability").Start(context.Background(), "create deployment")
	createDeployment(t, ctx, conn, "web", 2)
	span.End()
	clientTrace := span.SpanContext().TraceID().String()
	waitBound(t, conn, "app=web", 2)

	// The services that need no pods of ours, for their metrics.
	procs["health-checker"] = start(t, dir, "health-checker", shared()...)
	procs["service-proxy"] = start(t, dir, "service-proxy", shared()...)
	procs["node-agent"] = start(t, dir, "node-agent", shared("--node-name", "obs-agent", "--node-ip", "127.0.0.1",
		"--containerd-address", filepath.Join(dir, "no-containerd.sock"),
		"--root-dir", filepath.Join(dir, "agent"), "--log-dir", filepath.Join(dir, "agent-logs"))...)

	t.Run("client trace reaches the apiserver and etcd", func(t *testing.T) {
		var tr *trace
		eventually(t, 30*time.Second, "the test's trace in the apiserver's spans", func() error {
			traces, err := readTraces(dir, procs)
			if err != nil {
				return err
			}
			tr = traces[clientTrace]
			if tr == nil || tr.find("apiserver", "bosun.apps.v1.DeploymentService/CreateDeployment", "server") == nil {
				return fmt.Errorf("no apiserver span of CreateDeployment in trace %s", clientTrace)
			}
			return nil
		})
		srv := tr.find("apiserver", "bosun.apps.v1.DeploymentService/CreateDeployment", "server")
		cli := tr.find(testService, "bosun.apps.v1.DeploymentService/CreateDeployment", "client")
		if cli == nil || srv.ParentID != cli.SpanID || !srv.Remote {
			t.Errorf("the apiserver's CreateDeployment span %s is not a remote child of the test's client span %+v", srv.SpanID, cli)
		}
		if etcd := tr.childOf("apiserver", srv.SpanID, "etcdserverpb."); etcd == nil {
			t.Errorf("CreateDeployment made no etcd call in its trace; spans:\n%s", tr)
		}
	})

	t.Run("CLI trace reaches the apiserver and etcd", func(t *testing.T) {
		manifest := filepath.Join(dir, "cm.yaml")
		if err := os.WriteFile(manifest, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: traced\n  namespace: default\ndata:\n  a: b\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		spans := filepath.Join(dir, "bosun.jsonl")
		cmd := exec.Command(filepath.Join(bin, "bosun"), "--server", apiAddr, "--insecure", "apply", "-f", manifest)
		cmd.Env = append(os.Environ(), server.EnvTracesFile+"="+spans, "BOSUN_CONFIG="+filepath.Join(dir, "no-config"), "HOME="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("bosun apply: %v\n%s", err, out)
		}
		cli, err := readSpans(spans)
		if err != nil {
			t.Fatal(err)
		}
		var root *server.FileSpan
		for i, s := range cli {
			if s.Name == "bosun apply" && s.ParentID == "" {
				root = &cli[i]
			}
		}
		if root == nil {
			t.Fatalf("no root span \"bosun apply\" among the CLI's spans %+v", cli)
		}
		eventually(t, 30*time.Second, "the CLI's trace in the apiserver's spans", func() error {
			spans, err := readSpans(procs["apiserver"].traces)
			if err != nil {
				return err
			}
			tr := &trace{id: root.TraceID}
			for _, s := range append(cli, spans...) {
				if s.TraceID == root.TraceID {
					tr.spans = append(tr.spans, s)
				}
			}
			for _, s := range tr.spans {
				if s.Service != "apiserver" || s.Kind != "server" || !s.Remote {
					continue
				}
				if tr.childOf("apiserver", s.SpanID, "etcdserverpb.") != nil {
					return nil
				}
			}
			return fmt.Errorf("no apiserver span with an etcd call in the CLI's trace; spans:\n%s", tr)
		})
	})

	t.Run("one trace crosses controller, apiserver and scheduler", func(t *testing.T) {
		var tr *trace
		eventually(t, 30*time.Second, "a trace from a reconcile to a bind", func() error {
			traces, err := readTraces(dir, procs)
			if err != nil {
				return err
			}
			for _, c := range traces {
				if c.find("scheduler", "bosun.core.v1.PodService/BindPod", "client") != nil &&
					c.find("controller", "bosun.core.v1.PodService/CreatePod", "client") != nil &&
					c.find("apiserver", "bosun.core.v1.PodService/BindPod", "server") != nil {
					tr = c
					return nil
				}
			}
			return fmt.Errorf("no trace holds the controller's CreatePod, the scheduler's BindPod and the apiserver's BindPod among %d traces", len(traces))
		})
		if got := tr.services(); len(got) < 3 {
			t.Fatalf("trace %s crosses %v, want at least 3 services", tr.id, got)
		}
		t.Logf("trace %s crosses %v in %d spans", tr.id, tr.services(), len(tr.spans))
		// controller.Reconcile -> CreatePod (controller client) -> CreatePod (apiserver server) -> etcd
		rec := tr.find("controller", "controller.Reconcile", "")
		create := tr.find("controller", "bosun.core.v1.PodService/CreatePod", "client")
		if rec == nil || create.ParentID != rec.SpanID {
			t.Fatalf("the controller's CreatePod call is not a child of its reconcile span; spans:\n%s", tr)
		}
		if s := tr.childOf("apiserver", create.SpanID, "bosun.core.v1.PodService/CreatePod"); s == nil || !s.Remote {
			t.Errorf("the apiserver's CreatePod span is not a remote child of the controller's call; spans:\n%s", tr)
		} else if tr.childOf("apiserver", s.SpanID, "etcdserverpb.") == nil {
			t.Errorf("the apiserver's CreatePod made no etcd call in the trace; spans:\n%s", tr)
		}
		// controller.Reconcile -> (pod annotation) scheduler.SchedulingCycle -> BindingCycle -> BindPod -> apiserver
		cycle := tr.childOf("scheduler", rec.SpanID, "scheduler.SchedulingCycle")
		if cycle == nil || !cycle.Remote {
			t.Fatalf("the scheduling cycle does not continue the reconcile span through the pod's %s annotation; spans:\n%s",
				server.TraceParentAnnotation, tr)
		}
		binding := tr.childOf("scheduler", cycle.SpanID, "scheduler.BindingCycle")
		if binding == nil {
			t.Fatalf("no binding cycle under the scheduling cycle; spans:\n%s", tr)
		}
		bind := tr.childOf("scheduler", binding.SpanID, "bosun.core.v1.PodService/BindPod")
		if bind == nil {
			t.Fatalf("no BindPod call under the binding cycle; spans:\n%s", tr)
		}
		if s := tr.childOf("apiserver", bind.SpanID, "bosun.core.v1.PodService/BindPod"); s == nil || !s.Remote {
			t.Errorf("the apiserver's BindPod span is not a remote child of the scheduler's call; spans:\n%s", tr)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		docs, err := documentedMetrics(filepath.Join("..", "..", "docs", "observability.md"))
		if err != nil {
			t.Fatal(err)
		}
		for name, p := range procs {
			t.Run(name, func(t *testing.T) {
				// One call, so that the gRPC server metrics have values.
				healthCheck(t, p.listen)
				want := docs.required(name)
				if len(want) == 0 {
					t.Fatalf("docs/observability.md lists no metrics for %s", name)
				}
				var missing []string
				eventually(t, 30*time.Second, name+" /metrics with every documented metric", func() error {
					body, err := scrape(p.metrics)
					if err != nil {
						return err
					}
					families, err := parseMetrics(body)
					if err != nil {
						t.Fatalf("%s /metrics does not parse: %v", name, err)
					}
					missing = missing[:0]
					for _, m := range want {
						if _, ok := families[m]; !ok {
							missing = append(missing, m)
						}
					}
					if len(missing) > 0 {
						return fmt.Errorf("missing %v", missing)
					}
					return nil
				})
			})
		}
	})
}

// testTracer installs a tracer provider for the test process that writes
// its spans to path, and the W3C propagator, as a Bosun service does.
func testTracer(t *testing.T, path string) {
	t.Helper()
	exp, err := server.NewFileExporter(path)
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", testService))))
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(server.Propagator())
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		otel.SetTracerProvider(prevTP)
		otel.SetTextMapPropagator(prevProp)
	})
}

// healthCheck makes one gRPC health call to addr.
func healthCheck(t *testing.T, addr string) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := ctxTimeout()
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("gRPC health check of %s: %v", addr, err)
	}
}

func createNode(t *testing.T, conn grpc.ClientConnInterface, name string) {
	t.Helper()
	n := &corev1.Node{
		Metadata: &metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Spec:     &corev1.NodeSpec{},
		Status: &corev1.NodeStatus{
			Conditions:  []*corev1.NodeCondition{{Type: "Ready", Status: "True", Reason: "NodeAgentReady"}},
			Addresses:   []*corev1.NodeAddress{{Type: "InternalIP", Address: "127.0.0.1"}},
			Allocatable: map[string]string{"cpu": "4", "memory": "8Gi", "pods": "110"},
			Capacity:    map[string]string{"cpu": "4", "memory": "8Gi", "pods": "110"},
		},
	}
	ctx, cancel := ctxTimeout()
	defer cancel()
	if _, err := client.For[*corev1.Node](conn).Create(ctx, n); err != nil {
		t.Fatalf("creating node %s: %v", name, err)
	}
}

func createDeployment(t *testing.T, ctx context.Context, conn grpc.ClientConnInterface, name string, replicas int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	d := &appsv1.Deployment{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: &appsv1.DeploymentSpec{
			Replicas: proto.Int32(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: &corev1.PodTemplateSpec{
				Metadata: &metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:     &corev1.PodSpec{Containers: []*corev1.Container{{Name: name, Image: "registry.invalid/" + name + ":1"}}},
			},
		},
	}
	if _, err := client.For[*appsv1.Deployment](conn).Create(ctx, d); err != nil {
		t.Fatalf("creating deployment %s: %v", name, err)
	}
}

// waitBound waits until n pods matching selector are bound to a node.
func waitBound(t *testing.T, conn grpc.ClientConnInterface, selector string, n int) {
	t.Helper()
	eventually(t, 60*time.Second, fmt.Sprintf("%d pods %s bound", n, selector), func() error {
		ctx, cancel := ctxTimeout()
		defer cancel()
		pods, _, err := client.For[*corev1.Pod](conn).ListAll(ctx, client.ListOptions{Namespace: "default", LabelSelector: selector})
		if err != nil {
			return err
		}
		bound := 0
		for _, p := range pods {
			if p.GetSpec().GetNodeName() != "" {
				bound++
			}
		}
		if bound < n {
			return fmt.Errorf("%d of %d pods bound", bound, len(pods))
		}
		return nil
	})
}

// trace is the spans of one trace id from every process's file.
type trace struct {
	id    string
	spans []server.FileSpan
}

// readTraces groups the spans of every file by trace id. A span's service
// is the process whose file holds it.
func readTraces(dir string, procs map[string]*proc) (map[string]*trace, error) {
	files := map[string]string{testService: filepath.Join(dir, testService+".jsonl")}
	for name, p := range procs {
		files[name] = p.traces
	}
	out := map[string]*trace{}
	for name, path := range files {
		spans, err := readSpans(path)
		if err != nil {
			return nil, err
		}
		for _, s := range spans {
			if s.Service != name {
				return nil, fmt.Errorf("%s holds a span of service %q", path, s.Service)
			}
			tr := out[s.TraceID]
			if tr == nil {
				tr = &trace{id: s.TraceID}
				out[s.TraceID] = tr
			}
			tr.spans = append(tr.spans, s)
		}
	}
	return out, nil
}

// find returns a span of service named name (of kind, when not ""), nil
// when there is none.
func (tr *trace) find(service, name, kind string) *server.FileSpan {
	for i, s := range tr.spans {
		if s.Service == service && s.Name == name && (kind == "" || s.Kind == kind) {
			return &tr.spans[i]
		}
	}
	return nil
}

// childOf returns a span of service whose parent is parent and whose name
// starts with prefix.
func (tr *trace) childOf(service, parent, prefix string) *server.FileSpan {
	for i, s := range tr.spans {
		if s.Service == service && s.ParentID == parent && strings.HasPrefix(s.Name, prefix) {
			return &tr.spans[i]
		}
	}
	return nil
}

// services are the processes with spans in the trace.
func (tr *trace) services() []string {
	seen := map[string]bool{}
	for _, s := range tr.spans {
		seen[s.Service] = true
	}
	var out []string
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func (tr *trace) String() string {
	var b strings.Builder
	for _, s := range tr.spans {
		fmt.Fprintf(&b, "  %s %s %s span=%s parent=%s remote=%v\n", s.Service, s.Kind, s.Name, s.SpanID, s.ParentID, s.Remote)
	}
	return b.String()
}
