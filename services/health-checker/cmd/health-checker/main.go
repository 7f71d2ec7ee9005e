// Command health-checker watches node liveness (Leases and active gRPC
// health checks of every node-agent), sets node Ready conditions and
// unreachable / not-ready taints, and evicts pods from lost nodes, with
// leader election among replicas.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"bosun.dev/pkg/client"
	"bosun.dev/pkg/server"
	"bosun.dev/pkg/version"
	"bosun.dev/services/health-checker/internal/checker"
)

const name = "health-checker"

func main() {
	var f server.Flags
	opts := checker.DefaultOptions()
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	f.Register(fs, "127.0.0.1:10253")
	opts.RegisterFlags(fs)
	_ = fs.Parse(os.Args[1:])
	if f.Version {
		fmt.Println(name, version.String())
		return
	}
	if err := run(f, opts); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// run starts the service the way server.Main does, with the checker as its
// body: health NOT_SERVING until the apiserver answers, then SERVING.
func run(f server.Flags, opts checker.Options) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	ctx, stop := server.SignalContext()
	defer stop()
	log := server.NewLogger(f.LogLevel, os.Stderr).With("service", name)
	if f.APIServer.Insecure {
		log.Warn("--insecure: talking to the apiserver in plaintext; use only for local experiments")
	}
	shutdownTracing, err := server.SetupTracing(ctx, name)
	if err != nil {
		return err
	}
	defer func() { _ = shutdownTracing(context.WithoutCancel(ctx)) }()
	srv, err := server.New(server.Options{Name: name, GRPCListen: f.Listen, MetricsListen: f.MetricsListen, Logger: log})
	if err != nil {
		return err
	}
	srv.Health().SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	conn, err := client.Dial(f.APIServer)
	if err != nil {
		return err
	}
	defer conn.Close()
	chk, err := checker.New(checker.Config{Conn: conn, Options: opts, Logger: log, Registerer: srv.Registry()})
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bodyErr := make(chan error, 1)
	go func() {
		if err := server.WaitForAPIServer(ctx, conn, log); err != nil {
			bodyErr <- nil
			return
		}
		log.InfoContext(ctx, "connected to apiserver", "apiserver", f.APIServer.Server)
		srv.Health().SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
		err := chk.Run(ctx)
		if err != nil && ctx.Err() == nil {
			cancel()
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
