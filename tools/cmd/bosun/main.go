// Command bosun is the command-line client of a Bosun cluster: apply
// manifests, get, describe and delete objects, in the manner of kubectl.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"bosun.dev/tools/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.DefaultDeps())
	stop()
	os.Exit(code)
}
