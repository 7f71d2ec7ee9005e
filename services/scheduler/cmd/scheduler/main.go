// Command scheduler binds unscheduled pods to nodes.
//
// This build connects to the apiserver, waits until it is serving, and then
// serves its own gRPC health (and, with --metrics-listen, metrics) until
// SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"bosun.dev/pkg/client"
	"bosun.dev/pkg/server"
	"bosun.dev/pkg/version"
)

const name = "scheduler"

func main() {
	apiserver := flag.String("apiserver", "127.0.0.1:6443", "apiserver gRPC address, host:port")
	insecure := flag.Bool("insecure", false, "connect to the apiserver in plaintext")
	listen := flag.String("listen", "127.0.0.1:10251", "gRPC address for this service's health")
	metricsListen := flag.String("metrics-listen", "", "HTTP address for /metrics, /healthz, /readyz and pprof; empty disables")
	logLevel := flag.String("log-level", "info", "debug, info, warn or error")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(name, version.String())
		return
	}
	if err := run(*apiserver, *insecure, *listen, *metricsListen, *logLevel); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

func run(apiserver string, insecure bool, listen, metricsListen, logLevel string) error {
	ctx, stop := server.SignalContext()
	defer stop()
	log := server.NewLogger(logLevel, os.Stderr).With("service", name)
	shutdownTracing, err := server.SetupTracing(ctx, name)
	if err != nil {
		return err
	}
	defer func() { _ = shutdownTracing(context.WithoutCancel(ctx)) }()

	srv, err := server.New(server.Options{Name: name, GRPCListen: listen, MetricsListen: metricsListen, Logger: log})
	if err != nil {
		return err
	}
	srv.Health().SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	conn, err := client.Dial(client.Config{Server: apiserver, Insecure: insecure})
	if err != nil {
		return err
	}
	defer conn.Close()

	go func() {
		if err := server.WaitForAPIServer(ctx, conn, log); err != nil {
			return // ctx ended: Run is shutting down
		}
		log.InfoContext(ctx, "connected to apiserver", "apiserver", apiserver)
		srv.Health().SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	}()
	return srv.Run(ctx)
}
