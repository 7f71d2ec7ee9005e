package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"bosun.dev/pkg/client"
	"bosun.dev/pkg/version"
)

// Flags are the flags every Bosun control-plane service and the node-agent take.
type Flags struct {
	// APIServer says how to reach the apiserver.
	APIServer client.Config
	// Listen is the service's own gRPC address (health, and its API if any).
	Listen string
	// MetricsListen serves /metrics, /healthz, /readyz and pprof; "" disables.
	MetricsListen string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// Version asks to print the version and exit.
	Version bool
	// TLS secures the service's own gRPC listener (mutual TLS with a client CA).
	TLS TLSFlags
}

// Register adds the flags to fs with defaultListen as --listen's default.
func (f *Flags) Register(fs *flag.FlagSet, defaultListen string) {
	f.RegisterClient(fs)
	fs.StringVar(&f.Listen, "listen", defaultListen, "gRPC address of this service (health and its own API)")
	fs.StringVar(&f.MetricsListen, "metrics-listen", "", "HTTP address of /metrics, /healthz, /readyz and pprof (\"\" disables them)")
	f.TLS.Register(fs)
}

// RegisterClient adds only the flags of a program that talks to the
// apiserver but serves nothing itself (the node simulator): the apiserver
// connection, --log-level and --version.
func (f *Flags) RegisterClient(fs *flag.FlagSet) {
	fs.StringVar(&f.APIServer.Server, "apiserver", "127.0.0.1:6443", "apiserver gRPC address, host:port")
	fs.BoolVar(&f.APIServer.Insecure, "insecure", false, "plaintext and no authentication: connect to the apiserver in plaintext and, without --tls-cert-file, serve gRPC in plaintext (local experiments only)")
	fs.StringVar(&f.APIServer.CAFile, "apiserver-ca-file", "", "CA that signs the apiserver's certificate (default: the system's roots)")
	fs.StringVar(&f.APIServer.CertFile, "client-cert-file", "", "client certificate presented to the apiserver")
	fs.StringVar(&f.APIServer.KeyFile, "client-key-file", "", "key of --client-cert-file")
	fs.StringVar(&f.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&f.Version, "version", false, "print the version and exit")
}

// Service is what a service's body is handed once the apiserver answers.
type Service struct {
	// Conn is the connection to the apiserver.
	Conn *grpc.ClientConn
	// Server is the service's own gRPC server, already serving health.
	Server *Server
	// Log carries the service's name.
	Log *slog.Logger
	// Ready, when Setup sets it, holds health at NOT_SERVING after the
	// apiserver answers until it is closed.
	Ready <-chan struct{}
	// Flags are the shared flags the service was started with.
	Flags Flags
}

// Spec describes a service to Run.
type Spec struct {
	// Name names the service in logs, traces and metrics.
	Name string
	// DefaultListen is the default of --listen.
	DefaultListen string
	// Flags, when not nil, registers the service's own flags beside the
	// shared ones.
	Flags func(*flag.FlagSet)
	// Check, when not nil, validates the parsed flags before anything
	// starts; its error is printed and the process exits with code 2.
	Check func() error
	// Prepare, when not nil, runs once logging is set up and before the TLS
	// files are loaded and the apiserver is dialled: the place to obtain
	// what those need (a node-agent requests its own certificate here). Its
	// error exits the process with code 1.
	Prepare func(ctx context.Context, log *slog.Logger) error
	// Setup, when not nil, runs once the connection to the apiserver is
	// dialled (the apiserver may not answer yet) and before serving starts:
	// the place to build what the service's gRPC services need, register
	// them, and set Service.Ready when readiness needs more than the
	// apiserver answering.
	Setup func(context.Context, *Service) error
	// Body, when not nil, is the service's work once the apiserver answers.
	Body func(context.Context, *Service) error
}

// Run starts a service the way every Bosun service starts: parse the shared
// and the service's flags, print the version if asked, check the flags, set
// up logs and tracing, prepare, serve gRPC health (NOT_SERVING at first), dial the
// apiserver and wait until it answers, then mark itself SERVING and run the
// body until SIGINT/SIGTERM. It exits the process with a non-zero code on
// failure.
func Run(spec Spec) {
	var f Flags
	fs := flag.NewFlagSet(spec.Name, flag.ExitOnError)
	f.Register(fs, spec.DefaultListen)
	if spec.Flags != nil {
		spec.Flags(fs)
	}
	_ = fs.Parse(os.Args[1:])
	if f.Version {
		fmt.Println(spec.Name, version.String())
		return
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "%s: unexpected arguments %q; every setting is a flag\n", spec.Name, fs.Args())
		os.Exit(2)
	}
	if err := f.checkListenerSecurity(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", spec.Name, err)
		os.Exit(2)
	}
	if spec.Check != nil {
		if err := spec.Check(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", spec.Name, err)
			os.Exit(2)
		}
	}
	if err := runService(spec, f); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", spec.Name, err)
		os.Exit(1)
	}
}

func runService(spec Spec, f Flags) error {
	ctx, stop := SignalContext()
	defer stop()
	log := NewLogger(f.LogLevel, os.Stderr).With("service", spec.Name)
	if f.APIServer.Insecure {
		log.Warn("--insecure: talking to the apiserver in plaintext; use only for local experiments")
	}
	shutdownTracing, err := SetupTracing(ctx, spec.Name)
	if err != nil {
		return err
	}
	defer func() { _ = shutdownTracing(context.WithoutCancel(ctx)) }()

	if spec.Prepare != nil {
		if err := spec.Prepare(ctx, log); err != nil {
			return err
		}
	}
	tlsConfig, err := f.TLS.Config()
	if err != nil {
		return err
	}
	if tlsConfig == nil {
		log.Warn("--insecure: serving gRPC in plaintext with no client authentication; use only for local experiments", "listen", f.Listen)
	} else if f.TLS.ClientCAFile == "" {
		log.Warn("--insecure: serving gRPC over TLS without client authentication", "listen", f.Listen)
	}
	srv, err := New(Options{Name: spec.Name, GRPCListen: f.Listen, MetricsListen: f.MetricsListen, Logger: log, TLS: tlsConfig})
	if err != nil {
		return err
	}
	srv.Health().SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	conn, err := client.Dial(f.APIServer)
	if err != nil {
		return err
	}
	defer conn.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	svc := &Service{Conn: conn, Server: srv, Log: log, Flags: f}
	if spec.Setup != nil {
		if err := spec.Setup(ctx, svc); err != nil {
			return err
		}
	}
	bodyErr := make(chan error, 1)
	go func() {
		if err := WaitForAPIServer(ctx, conn, log); err != nil {
			bodyErr <- nil // ctx ended while waiting: shutting down
			return
		}
		log.InfoContext(ctx, "connected to apiserver", "apiserver", f.APIServer.Server)
		go markServing(ctx, srv, svc.Ready)
		if spec.Body == nil {
			bodyErr <- nil
			return
		}
		err := spec.Body(ctx, svc)
		if err != nil && ctx.Err() == nil {
			cancel() // a failed body stops the service
		}
		bodyErr <- err
	}()
	runErr := srv.Run(ctx)
	cancel()
	if err := <-bodyErr; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return runErr
}

// checkListenerSecurity refuses a listener without mutual TLS unless
// --insecure asks for one: services are secure by default.
func (f Flags) checkListenerSecurity() error {
	if f.APIServer.Insecure {
		return nil
	}
	if f.TLS.CertFile == "" || f.TLS.KeyFile == "" || f.TLS.ClientCAFile == "" {
		return errors.New("--tls-cert-file, --tls-private-key-file and --client-ca-file are required: every Bosun service serves mutual TLS " +
			"(`bosun certs init DIR` makes the certificates); --insecure serves plaintext for local experiments")
	}
	return nil
}

// markServing sets health to SERVING once ready is closed (at once when nil).
func markServing(ctx context.Context, srv *Server, ready <-chan struct{}) {
	if ready != nil {
		select {
		case <-ready:
		case <-ctx.Done():
			return
		}
	}
	srv.Health().SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
}
