package pods_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"bosun.dev/pkg/server"
	"bosun.dev/services/node-agent/internal/agenttest"
)

// TestPodStartPhasesContinueThePodsTrace: the sandbox, pull, create and
// start phases are spans in the trace the pod's traceparent annotation
// names, and each is timed by phase.
func TestPodStartPhasesContinueThePodsTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev); _ = tp.Shutdown(context.Background()) })

	ctx, parent := tp.Tracer("test").Start(context.Background(), "reconcile")
	parent.End()
	h := setup(t)
	p := agenttest.Pod("u1", "web", node, ctr("a", "reg.local/app:v1"))
	p.Metadata.Annotations = server.InjectTraceParent(ctx, p.Metadata.Annotations)
	h.run(p)
	h.waitPhase("u1", "Running")

	want := map[string]bool{"node-agent.sandbox": false, "node-agent.pull": false, "node-agent.create": false, "node-agent.start": false}
	agenttest.Eventually(t, 5*time.Second, func() error {
		for _, s := range rec.Ended() {
			if _, ok := want[s.Name()]; !ok {
				continue
			}
			if s.SpanContext().TraceID() != parent.SpanContext().TraceID() || s.Parent().SpanID() != parent.SpanContext().SpanID() {
				return fmt.Errorf("span %s in trace %s under %s, want under the pod's span %s/%s", s.Name(),
					s.SpanContext().TraceID(), s.Parent().SpanID(), parent.SpanContext().TraceID(), parent.SpanContext().SpanID())
			}
			want[s.Name()] = true
		}
		for name, seen := range want {
			if !seen {
				return fmt.Errorf("no span %s", name)
			}
		}
		return nil
	})
	if n := testutil.CollectAndCount(h.metrics.PhaseSeconds); n != 4 {
		t.Errorf("bosun_node_agent_pod_start_phase_seconds has %d phases, want 4 (pull, sandbox, create, start)", n)
	}
}
