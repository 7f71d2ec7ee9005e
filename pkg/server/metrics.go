package server

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// grpcMetrics counts and times the calls a server handles, by service,
// method and status code.
type grpcMetrics struct {
	started *prometheus.CounterVec
	handled *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

func newGRPCMetrics(reg prometheus.Registerer) *grpcMetrics {
	m := &grpcMetrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_started_total", Help: "gRPC calls started on the server.",
		}, []string{"grpc_type", "grpc_service", "grpc_method"}),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_handled_total", Help: "gRPC calls completed on the server, by status code.",
		}, []string{"grpc_type", "grpc_service", "grpc_method", "grpc_code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "grpc_server_handling_seconds",
			Help:    "Time from the start of a gRPC call to its completion on the server.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"grpc_type", "grpc_service", "grpc_method", "grpc_code"}),
	}
	reg.MustRegister(m.started, m.handled, m.latency)
	return m
}

func splitMethod(full string) (service, method string) {
	full = strings.TrimPrefix(full, "/")
	if i := strings.LastIndex(full, "/"); i >= 0 {
		return full[:i], full[i+1:]
	}
	return "unknown", full
}

func streamType(info *grpc.StreamServerInfo) string {
	switch {
	case info.IsClientStream && info.IsServerStream:
		return "bidi_stream"
	case info.IsClientStream:
		return "client_stream"
	default:
		return "server_stream"
	}
}

func (m *grpcMetrics) observe(typ, fullMethod string, start time.Time, err error) {
	svc, method := splitMethod(fullMethod)
	code := status.Code(err).String()
	m.handled.WithLabelValues(typ, svc, method, code).Inc()
	m.latency.WithLabelValues(typ, svc, method, code).Observe(time.Since(start).Seconds())
}

func (m *grpcMetrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	svc, method := splitMethod(info.FullMethod)
	m.started.WithLabelValues("unary", svc, method).Inc()
	start := time.Now()
	resp, err := handler(ctx, req)
	m.observe("unary", info.FullMethod, start, err)
	return resp, err
}

func (m *grpcMetrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	typ := streamType(info)
	svc, method := splitMethod(info.FullMethod)
	m.started.WithLabelValues(typ, svc, method).Inc()
	start := time.Now()
	err := handler(srv, ss)
	m.observe(typ, info.FullMethod, start, err)
	return err
}
