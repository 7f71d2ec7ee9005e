// Package server is the bootstrap every Bosun service's main uses: a gRPC
// server with OpenTelemetry tracing, Prometheus metrics, the gRPC health and
// reflection services; an HTTP endpoint for /metrics, /healthz, /readyz and
// pprof; signal handling; tracing and logging set-up; and waiting for the
// apiserver.
//
// A main reads its flags, then:
//
//	ctx, stop := server.SignalContext()
//	defer stop()
//	log := server.NewLogger(*logLevel, os.Stderr)
//	shutdown, err := server.SetupTracing(ctx, "scheduler")
//	srv, err := server.New(server.Options{Name: "scheduler", GRPCListen: *listen, Logger: log})
//	// register services on srv.GRPC()
//	err = srv.Run(ctx)
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"bosun.dev/pkg/client"
	"bosun.dev/pkg/version"
)

// DefaultShutdownTimeout bounds the graceful stop when Options.ShutdownTimeout
// is zero.
const DefaultShutdownTimeout = 10 * time.Second

// streamWorkers is the number of goroutines kept to run calls (see New). A
// long-lived stream (a watch, an xDS stream) holds its worker until it ends,
// so on an apiserver with more watches than workers, calls run on new
// goroutines as without workers: slower, never blocked.
const streamWorkers = 256

// Options configure a Server.
type Options struct {
	// Name is the service's name, used in logs and metrics.
	Name string
	// Version is reported in the build-info metric; version.Version when "".
	Version string
	// GRPCListen is the gRPC address, host:port; port 0 picks a free port.
	GRPCListen string
	// MetricsListen is the HTTP address of /metrics, /healthz, /readyz and
	// /debug/pprof/; "" serves none of them.
	MetricsListen string
	// Logger receives the server's logs; slog.Default() when nil.
	Logger *slog.Logger
	// TLS secures the gRPC listener; nil serves plaintext.
	TLS *tls.Config
	// UnaryInterceptors and StreamInterceptors run after the metrics
	// interceptors, in order.
	UnaryInterceptors  []grpc.UnaryServerInterceptor
	StreamInterceptors []grpc.StreamServerInterceptor
	// ShutdownTimeout bounds the graceful stop after Run's context ends,
	// after which open calls are cut. DefaultShutdownTimeout when zero.
	ShutdownTimeout time.Duration
}

// Server is a service's gRPC server and its metrics endpoint.
type Server struct {
	opts     Options
	log      *slog.Logger
	grpc     *grpc.Server
	health   *health.Server
	registry *prometheus.Registry
	lis      net.Listener
	http     *http.Server
	httpLis  net.Listener
	runOnce  sync.Once

	// streamsCtx ends every open stream's context when the server stops, so
	// long-lived streams (watches, xDS) end instead of holding up the
	// graceful stop until its timeout; their clients reconnect elsewhere.
	streamsCtx context.Context
	endStreams context.CancelFunc
}

// New listens on the configured addresses and builds the server. Register
// services on GRPC() before calling Run.
func New(opts Options) (*Server, error) {
	if opts.Version == "" {
		opts.Version = version.Version
	}
	if opts.ShutdownTimeout == 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{opts: opts, log: log, registry: prometheus.NewRegistry(), health: health.NewServer()}
	s.streamsCtx, s.endStreams = context.WithCancel(context.Background())

	s.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bosun_build_info", Help: "Build of the running service; always 1.",
	}, []string{"service", "version", "revision"})
	buildInfo.WithLabelValues(opts.Name, opts.Version, version.Revision).Set(1)
	s.registry.MustRegister(buildInfo)
	m := newGRPCMetrics(s.registry)
	c, err := newCodec()
	if err != nil {
		return nil, err
	}

	sopts := []grpc.ServerOption{
		grpc.ForceServerCodecV2(c),
		// Calls run on long-lived workers rather than a new goroutine
		// each: a handler's stack, grown once by the etcd client's depth,
		// is kept instead of being grown again on every call (stack copying
		// was 8% of the apiserver's CPU under load). Past this many
		// concurrent calls grpc-go starts goroutines as before.
		grpc.NumStreamWorkers(streamWorkers),
		// Accept the keepalive pings of Bosun's clients (pkg/client: every
		// 10 s, also without streams); grpc-go's default would answer
		// them with GOAWAY "too many pings".
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		// And find dead clients, whose watches would otherwise hold their
		// resources until TCP gives up.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.ChainUnaryInterceptor(append([]grpc.UnaryServerInterceptor{m.unary}, opts.UnaryInterceptors...)...),
		grpc.ChainStreamInterceptor(append([]grpc.StreamServerInterceptor{s.endStreamOnStop, m.stream}, opts.StreamInterceptors...)...),
	}
	if client.TracingConfigured() {
		sopts = append(sopts, grpc.StatsHandler(otelgrpc.NewServerHandler()))
	}
	if opts.TLS != nil {
		sopts = append(sopts, grpc.Creds(credentials.NewTLS(opts.TLS)))
	}
	s.grpc = grpc.NewServer(sopts...)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)

	if s.lis, err = net.Listen("tcp", opts.GRPCListen); err != nil {
		return nil, fmt.Errorf("listening for gRPC on %q: %w", opts.GRPCListen, err)
	}
	if opts.MetricsListen != "" {
		if s.httpLis, err = net.Listen("tcp", opts.MetricsListen); err != nil {
			_ = s.lis.Close()
			return nil, fmt.Errorf("listening for metrics on %q: %w", opts.MetricsListen, err)
		}
		s.http = &http.Server{Handler: s.httpHandler(), ReadHeaderTimeout: 10 * time.Second}
	}
	return s, nil
}

// endStreamOnStop gives a stream a context that also ends when the server
// stops.
func (s *Server) endStreamOnStop(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	stop := context.AfterFunc(s.streamsCtx, cancel)
	defer stop()
	return handler(srv, &stoppableStream{ServerStream: ss, ctx: ctx})
}

type stoppableStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stoppableStream) Context() context.Context { return s.ctx }

// GRPC is the gRPC server, for registering services.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Health is the gRPC health service. The overall status ("") starts as
// SERVING; a service that is not ready sets it to NOT_SERVING until it is.
// /readyz reports the same status.
func (s *Server) Health() *health.Server { return s.health }

// Registry is the server's Prometheus registry, served on /metrics. Register
// the service's own metrics here.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Addr is the gRPC listener's address.
func (s *Server) Addr() net.Addr { return s.lis.Addr() }

// MetricsAddr is the metrics listener's address, nil when disabled.
func (s *Server) MetricsAddr() net.Addr {
	if s.httpLis == nil {
		return nil
	}
	return s.httpLis.Addr()
}

func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{Registry: s.registry}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		resp, err := s.health.Check(r.Context(), &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// Run serves until ctx ends or serving fails. When ctx ends it reports
// NOT_SERVING, stops gracefully within the shutdown timeout and then cuts
// the remaining calls. It returns nil after a shutdown caused by ctx. Run may
// be called once.
func (s *Server) Run(ctx context.Context) error {
	err := errors.New("server: Run called twice")
	s.runOnce.Do(func() { err = s.run(ctx) })
	return err
}

func (s *Server) run(ctx context.Context) error {
	errc := make(chan error, 2)
	go func() { errc <- s.grpc.Serve(s.lis) }()
	if s.http != nil {
		go func() {
			if err := s.http.Serve(s.httpLis); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("metrics server: %w", err)
			}
		}()
	}
	metrics := "off"
	if a := s.MetricsAddr(); a != nil {
		metrics = a.String()
	}
	s.log.Info("serving", "version", s.opts.Version, "grpc", s.Addr().String(), "metrics", metrics)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	s.health.Shutdown()
	s.endStreams()
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	timer := time.NewTimer(s.opts.ShutdownTimeout)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		s.log.Warn("graceful stop timed out; cutting open calls", "timeout", s.opts.ShutdownTimeout)
		s.grpc.Stop()
		<-stopped
	}
	if s.http != nil {
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = s.http.Shutdown(hctx)
	}
	s.log.Info("stopped")
	return serveErr
}
