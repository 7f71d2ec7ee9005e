package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"bosun.dev/pkg/client"
	"bosun.dev/pkg/version"
)

// EnvTracesFile names the environment variable that, when set to a path,
// makes SetupTracing append every finished span to that file as one JSON
// object a line (see FileSpan), beside OTLP when that is configured too.
const EnvTracesFile = client.EnvTracesFile

// TraceParentAnnotation is the annotation that carries a W3C traceparent from
// the request that caused an object to the service that acts on it later:
// the replicaset controller stamps it on the pods it creates, and the
// scheduler continues that trace in the pod's scheduling and binding cycle.
const TraceParentAnnotation = "bosun.dev/traceparent"

// Propagator is the W3C trace-context and baggage propagator every Bosun
// process installs globally.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// SetupTracing installs the process's OpenTelemetry tracer provider and the
// W3C trace-context and baggage propagators, so that the otelgrpc client and
// server handlers continue a caller's trace across processes. Spans are
// exported over OTLP/gRPC when OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, configured by the standard
// OTEL_* variables, and written to a file when BOSUN_TRACES_FILE is set;
// with neither the provider is a no-op, and the gRPC servers and clients of
// pkg/server and pkg/client carry no OpenTelemetry handlers at all
// (client.TracingConfigured). Call shutdown before exiting to flush
// spans.
func SetupTracing(ctx context.Context, serviceName string) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(Propagator())
	var opts []sdktrace.TracerProviderOption
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
		exp, err := otlptracegrpc.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("creating the OTLP trace exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	if path := os.Getenv(EnvTracesFile); path != "" {
		exp, err := NewFileExporter(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvTracesFile, err)
		}
		// Synchronous export: a span is in the file once it has ended,
		// which is what a test reading the file needs.
		opts = append(opts, sdktrace.WithSyncer(exp))
	}
	if len(opts) == 0 {
		otel.SetTracerProvider(noop.NewTracerProvider())
		return func(context.Context) error { return nil }, nil
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", serviceName),
		attribute.String("service.version", version.Version),
	))
	if err != nil {
		return nil, fmt.Errorf("describing the service for tracing: %w", err)
	}
	tp := sdktrace.NewTracerProvider(append(opts, sdktrace.WithResource(res))...)
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// FileSpan is one line of a BOSUN_TRACES_FILE: a finished span.
type FileSpan struct {
	Service  string            `json:"service"`
	Name     string            `json:"name"`
	Kind     string            `json:"kind"`
	TraceID  string            `json:"trace_id"`
	SpanID   string            `json:"span_id"`
	ParentID string            `json:"parent_span_id,omitempty"`
	Remote   bool              `json:"parent_remote,omitempty"`
	Start    time.Time         `json:"start"`
	End      time.Time         `json:"end"`
	Status   string            `json:"status,omitempty"`
	Attrs    map[string]string `json:"attributes,omitempty"`
	Links    []string          `json:"links,omitempty"`
}

// FileExporter writes finished spans to a file as JSON lines.
type FileExporter struct {
	mu sync.Mutex
	f  *os.File
}

// NewFileExporter opens path for appending (creating it with mode 0600).
func NewFileExporter(path string) (*FileExporter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	return &FileExporter{f: f}, nil
}

// ExportSpans implements sdktrace.SpanExporter.
func (e *FileExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	var buf []byte
	for _, s := range spans {
		fs := FileSpan{
			Name: s.Name(), Kind: s.SpanKind().String(),
			TraceID: s.SpanContext().TraceID().String(), SpanID: s.SpanContext().SpanID().String(),
			Start: s.StartTime(), End: s.EndTime(), Status: s.Status().Code.String(),
		}
		if r := s.Resource(); r != nil {
			if v, ok := r.Set().Value("service.name"); ok {
				fs.Service = v.AsString()
			}
		}
		if p := s.Parent(); p.IsValid() {
			fs.ParentID, fs.Remote = p.SpanID().String(), p.IsRemote()
		}
		if attrs := s.Attributes(); len(attrs) > 0 {
			fs.Attrs = make(map[string]string, len(attrs))
			for _, a := range attrs {
				fs.Attrs[string(a.Key)] = a.Value.Emit()
			}
		}
		for _, l := range s.Links() {
			fs.Links = append(fs.Links, l.SpanContext.TraceID().String()+"-"+l.SpanContext.SpanID().String())
		}
		line, err := json.Marshal(fs)
		if err != nil {
			return err
		}
		buf = append(append(buf, line...), '\n')
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.f == nil {
		return errors.New("trace file exporter is shut down")
	}
	_, err := e.f.Write(buf)
	return err
}

// Shutdown implements sdktrace.SpanExporter; it closes the file.
func (e *FileExporter) Shutdown(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.f == nil {
		return nil
	}
	err := e.f.Close()
	e.f = nil
	return err
}

// InjectTraceParent records the span context of ctx in annotations under
// TraceParentAnnotation and returns the (possibly new) map. It leaves
// annotations alone when ctx carries no valid span.
func InjectTraceParent(ctx context.Context, annotations map[string]string) map[string]string {
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	tp := carrier.Get("traceparent")
	if tp == "" {
		return annotations
	}
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[TraceParentAnnotation] = tp
	return annotations
}

// ContextWithTraceParent returns ctx carrying the remote span context that
// annotations record under TraceParentAnnotation, so that spans started
// from it continue that trace; ctx itself when there is none or it does
// not parse.
func ContextWithTraceParent(ctx context.Context, annotations map[string]string) context.Context {
	tp := annotations[TraceParentAnnotation]
	if tp == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": tp})
}
