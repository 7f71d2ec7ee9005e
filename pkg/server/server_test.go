package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"bosun.dev/pkg/apitest"
	"bosun.dev/pkg/server"
)

type running struct {
	srv  *server.Server
	conn *grpc.ClientConn
	ctx  context.Context
}

func start(t *testing.T) *running {
	t.Helper()
	srv, err := server.New(server.Options{
		Name: "test", GRPCListen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0",
		Logger: server.NewLogger("error", io.Discard), ShutdownTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	return &running{srv: srv, conn: conn, ctx: ctx}
}

func (r *running) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + r.srv.MetricsAddr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestHealthAndReflection(t *testing.T) {
	r := start(t)
	hc := healthpb.NewHealthClient(r.conn)
	resp, err := hc.Check(r.ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v; want SERVING", resp, err)
	}
	if code, _ := r.get(t, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d while serving", code)
	}
	r.srv.Health().SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	if resp, _ := hc.Check(r.ctx, &healthpb.HealthCheckRequest{}); resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health = %v after NOT_SERVING", resp)
	}
	if code, _ := r.get(t, "/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d while not serving", code)
	}
	if code, _ := r.get(t, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
	if code, _ := r.get(t, "/debug/pprof/"); code != http.StatusOK {
		t.Fatalf("/debug/pprof/ = %d", code)
	}

	stream, err := reflectionpb.NewServerReflectionClient(r.conn).ServerReflectionInfo(r.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	rr, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range rr.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !slices.Contains(names, "grpc.health.v1.Health") {
		t.Fatalf("reflection lists %v, without the health service", names)
	}
	_ = stream.CloseSend()
}

func TestMetrics(t *testing.T) {
	r := start(t)
	if _, err := healthpb.NewHealthClient(r.conn).Check(r.ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	code, body := r.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	handled := families["grpc_server_handled_total"]
	if handled == nil {
		t.Fatalf("no grpc_server_handled_total in /metrics")
	}
	found := false
	for _, m := range handled.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["grpc_service"] == "grpc.health.v1.Health" && labels["grpc_method"] == "Check" && labels["grpc_code"] == "OK" && m.GetCounter().GetValue() >= 1 {
			found = true
		}
	}
	if !found {
		t.Fatalf("no count of the Check call in %v", handled)
	}
	if families["grpc_server_handling_seconds"] == nil || families["bosun_build_info"] == nil || families["go_goroutines"] == nil {
		t.Fatal("latency histogram, build info or Go metrics missing")
	}
}

func TestLoggerAddsTraceIDs(t *testing.T) {
	var buf bytes.Buffer
	log := server.NewLogger("debug", &buf).With("component", "x")
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
		TraceFlags: trace.FlagsSampled,
	})
	log.InfoContext(trace.ContextWithSpanContext(context.Background(), sc), "traced")
	log.DebugContext(context.Background(), "untraced")
	dec := json.NewDecoder(&buf)
	var traced, untraced map[string]any
	if err := dec.Decode(&traced); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&untraced); err != nil {
		t.Fatal(err)
	}
	if traced["trace_id"] != sc.TraceID().String() || traced["span_id"] != sc.SpanID().String() || traced["component"] != "x" {
		t.Fatalf("traced record %v", traced)
	}
	if _, ok := untraced["trace_id"]; ok {
		t.Fatalf("untraced record has a trace id: %v", untraced)
	}
	buf.Reset()
	server.NewLogger("warn", &buf).Info("dropped")
	if buf.Len() != 0 {
		t.Fatalf("info logged at level warn: %s", buf.String())
	}
}

func TestWaitForAPIServer(t *testing.T) {
	api := apitest.NewServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := server.WaitForAPIServer(ctx, api.Conn(), nil); err != nil {
		t.Fatalf("WaitForAPIServer: %v", err)
	}

	// Nothing listens here: the wait retries until its context ends.
	conn, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := server.WaitForAPIServer(ctx, conn, server.NewLogger("info", io.Discard)); err == nil {
		t.Fatal("WaitForAPIServer succeeded with no server")
	}
}

func TestSetupTracingWithoutEndpointIsNoop(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	shutdown, err := server.SetupTracing(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestStopEndsOpenStreams: a stream that would stay open for ever (a health
// Watch here, a resource watch or an xDS stream in the services) ends when
// the server stops, so the graceful stop finishes without being cut off.
func TestStopEndsOpenStreams(t *testing.T) {
	var logs bytes.Buffer
	srv, err := server.New(server.Options{
		Name: "test", GRPCListen: "127.0.0.1:0",
		Logger: server.NewLogger("warn", &logs), ShutdownTimeout: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	watch, err := healthpb.NewHealthClient(conn).Watch(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatalf("first health status: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run still waiting for an open stream 30 s after its context ended")
	}
	if bytes.Contains(logs.Bytes(), []byte("graceful stop timed out")) {
		t.Fatalf("the stop cut the stream off instead of ending it: %s", logs.String())
	}
	for {
		if _, err := watch.Recv(); err != nil {
			break // the stream ended, as it should
		}
	}
}
