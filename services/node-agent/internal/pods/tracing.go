package pods

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/server"
)

var tracer = otel.Tracer("bosun.dev/services/node-agent")

// phase runs one step of starting a pod (pull, sandbox, create, start) in
// a span that continues the trace the pod carries (the one that created
// and scheduled it, server.TraceParentAnnotation) and, when it succeeds,
// times it in bosun_node_agent_pod_start_phase_seconds.
func (w *worker) phase(ctx context.Context, pod *corev1.Pod, name string, f func(context.Context) error) error {
	md := pod.GetMetadata()
	ctx, span := tracer.Start(server.ContextWithTraceParent(ctx, md.GetAnnotations()), "node-agent."+name,
		trace.WithAttributes(attribute.String("bosun.pod", md.GetNamespace()+"/"+md.GetName())))
	defer span.End()
	start := w.m.opts.Clock.Now()
	err := f(ctx)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	} else if mt := w.m.metrics; mt != nil {
		mt.PhaseSeconds.WithLabelValues(name).Observe(w.m.opts.Clock.Since(start).Seconds())
	}
	return err
}
