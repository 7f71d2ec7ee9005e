// Command bosun is the command-line client of a Bosun cluster: apply
// manifests, get, describe and delete objects, in the manner of kubectl.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"go.opentelemetry.io/otel"

	"bosun.dev/pkg/server"
	"bosun.dev/tools/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// With OTEL_EXPORTER_OTLP_ENDPOINT or BOSUN_TRACES_FILE set, a command
	// is one trace through the apiserver and its etcd calls.
	shutdown, err := server.SetupTracing(ctx, "bosun")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bosun:", err)
		os.Exit(1)
	}
	ctx, span := otel.Tracer("bosun.dev/tools/bosun").Start(ctx, spanName(os.Args[1:]))
	code := cli.Run(ctx, os.Args[1:], cli.DefaultDeps())
	span.End()
	_ = shutdown(context.WithoutCancel(ctx))
	stop()
	os.Exit(code)
}

// spanName is "bosun" and the command's first word, e.g. "bosun apply".
// The global flags that take a value (--server, --config, --namespace)
// may come before it.
func spanName(args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--server" || a == "--config" || a == "--namespace" || a == "-n":
			i++ // skip the flag's value
		case strings.HasPrefix(a, "-"):
		default:
			return "bosun " + a
		}
	}
	return "bosun"
}
