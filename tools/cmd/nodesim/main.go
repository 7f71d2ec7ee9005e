// Command nodesim runs many simulated node-agents in one process for scale
// tests and benchmarks: each registers a Node with its own pod CIDR, renews
// its Lease and runs the pods bound to it on an in-memory runtime, reporting
// them Running at once.
//
//	nodesim [-nodes N] [-prefix sim-] [-zones Z] [-cpu 32] [-memory 256Gi] [-pods 110]
//	        [-lease-duration 40s] [-lease-renew-interval 10s] [-report 10s]
//	        [--apiserver HOST:PORT] [--insecure] [--apiserver-ca-file FILE] ...
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"bosun.dev/pkg/server"
	"bosun.dev/pkg/version"
	"bosun.dev/tools/internal/nodesim"
)

func main() {
	var (
		f   server.Flags
		cfg nodesim.Config
	)
	fs := flag.NewFlagSet("nodesim", flag.ExitOnError)
	f.RegisterClient(fs)
	fs.IntVar(&cfg.Nodes, "nodes", 100, "number of simulated nodes")
	fs.StringVar(&cfg.Prefix, "prefix", "sim-", "node name prefix (nodes are PREFIX0, PREFIX1, ...)")
	fs.IntVar(&cfg.Zones, "zones", 3, "spread nodes over this many topology.kubernetes.io/zone labels (0: none)")
	fs.StringVar(&cfg.CPU, "cpu", "32", "CPU capacity of each node")
	fs.StringVar(&cfg.Memory, "memory", "256Gi", "memory capacity of each node")
	fs.StringVar(&cfg.Pods, "pods", "110", "pods capacity of each node")
	fs.DurationVar(&cfg.LeaseDuration, "lease-duration", 40*time.Second, "validity of each node's Lease")
	fs.DurationVar(&cfg.RenewInterval, "lease-renew-interval", 10*time.Second, "each Lease is renewed this often (renewals are spread over the interval)")
	fs.DurationVar(&cfg.ReportInterval, "report", 10*time.Second, "print progress this often (0: only when ready)")
	_ = fs.Parse(os.Args[1:])
	if f.Version {
		fmt.Println("nodesim", version.String())
		return
	}
	cfg.APIServer = f.APIServer
	ctx, stop := server.SignalContext()
	defer stop()
	log := server.NewLogger(f.LogLevel, os.Stderr).With("service", "nodesim")
	if err := nodesim.Run(ctx, cfg, log, os.Stdout, nil); err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "nodesim:", err)
		os.Exit(1)
	}
}
