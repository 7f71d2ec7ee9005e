package server

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// restoreOTel puts back the global tracer provider and propagator when the
// test ends.
func restoreOTel(t *testing.T) {
	tp, prop := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	t.Cleanup(func() { otel.SetTracerProvider(tp); otel.SetTextMapPropagator(prop) })
}

func TestTracesFileHoldsEverySpan(t *testing.T) {
	restoreOTel(t)
	path := filepath.Join(t.TempDir(), "spans.jsonl")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv(EnvTracesFile, path)
	shutdown, err := SetupTracing(context.Background(), "svc")
	if err != nil {
		t.Fatal(err)
	}
	ctx, parent := otel.Tracer("test").Start(context.Background(), "parent")
	_, child := otel.Tracer("test").Start(ctx, "child", trace.WithAttributes(attribute.String("k", "v")))
	child.End()
	parent.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var spans []FileSpan
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var s FileSpan
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		spans = append(spans, s)
	}
	if len(spans) != 2 {
		t.Fatalf("got %d spans, want 2: %+v", len(spans), spans)
	}
	c, p := spans[0], spans[1]
	if c.Name != "child" || p.Name != "parent" || c.Service != "svc" || p.Service != "svc" {
		t.Fatalf("spans %+v", spans)
	}
	if c.TraceID != parent.SpanContext().TraceID().String() || c.TraceID != p.TraceID {
		t.Errorf("trace ids %s, %s; want %s", c.TraceID, p.TraceID, parent.SpanContext().TraceID())
	}
	if c.ParentID != p.SpanID || c.Remote || p.ParentID != "" {
		t.Errorf("child's parent %q (remote %v), want %q; parent's parent %q", c.ParentID, c.Remote, p.SpanID, p.ParentID)
	}
	if c.Attrs["k"] != "v" || c.Kind != "internal" || c.End.Before(c.Start) {
		t.Errorf("child %+v", c)
	}
}

func TestTracesFileInAMissingDirectoryFails(t *testing.T) {
	restoreOTel(t)
	t.Setenv(EnvTracesFile, filepath.Join(t.TempDir(), "no", "such", "dir", "spans.jsonl"))
	_, err := SetupTracing(context.Background(), "svc")
	if err == nil || !strings.Contains(err.Error(), EnvTracesFile) {
		t.Fatalf("SetupTracing = %v, want an error naming %s", err, EnvTracesFile)
	}
}

func TestTraceParentAnnotationCarriesTheSpan(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	ctx, span := tp.Tracer("test").Start(context.Background(), "reconcile")
	defer span.End()

	ann := InjectTraceParent(ctx, map[string]string{"keep": "me"})
	sc := span.SpanContext()
	want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"
	if ann[TraceParentAnnotation] != want || ann["keep"] != "me" {
		t.Fatalf("annotations %v, want %s=%s beside keep=me", ann, TraceParentAnnotation, want)
	}
	got := trace.SpanContextFromContext(ContextWithTraceParent(context.Background(), ann))
	if got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() || !got.IsRemote() || !got.IsSampled() {
		t.Fatalf("extracted %+v, want the remote span %+v", got, sc)
	}
	_, next := tp.Tracer("test").Start(ContextWithTraceParent(context.Background(), ann), "schedule")
	defer next.End()
	if next.SpanContext().TraceID() != sc.TraceID() {
		t.Errorf("a span started from the annotation is in trace %s, want %s", next.SpanContext().TraceID(), sc.TraceID())
	}
}

func TestTraceParentAnnotationWithoutASpan(t *testing.T) {
	if ann := InjectTraceParent(context.Background(), nil); ann != nil {
		t.Errorf("InjectTraceParent without a span = %v, want nil", ann)
	}
	for _, ann := range []map[string]string{nil, {}, {TraceParentAnnotation: "garbage"}, {TraceParentAnnotation: "00-00000000000000000000000000000000-0000000000000000-01"}} {
		if sc := trace.SpanContextFromContext(ContextWithTraceParent(context.Background(), ann)); sc.IsValid() {
			t.Errorf("ContextWithTraceParent(%v) carries %+v, want no span", ann, sc)
		}
	}
}
