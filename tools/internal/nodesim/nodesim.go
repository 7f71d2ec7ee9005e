// Package nodesim is the node simulator command's body: it connects to the
// apiserver and runs many simulated node-agents (package
// bosun.dev/services/node-agent/sim) that register Nodes, renew Leases and
// run the pods bound to them on the fake runtime, reporting progress.
package nodesim

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"bosun.dev/pkg/client"
	"bosun.dev/pkg/server"
	"bosun.dev/services/node-agent/sim"
)

// Config is the simulator's configuration (its flags).
type Config struct {
	APIServer client.Config
	// Nodes, Prefix, Zones, Capacity and the lease timing are as in sim.Options.
	Nodes                        int
	Prefix                       string
	Zones                        int
	CPU, Memory, Pods            string
	LeaseDuration, RenewInterval time.Duration
	// ReportInterval is how often progress is printed; 0 prints only once
	// ready.
	ReportInterval time.Duration
}

// Run simulates the nodes until ctx ends. ready, when set, is called once
// every node is registered and pods are being run.
func Run(ctx context.Context, cfg Config, log *slog.Logger, out io.Writer, ready func(*sim.Sim)) error {
	conn, err := client.Dial(cfg.APIServer)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := server.WaitForAPIServer(ctx, conn, log); err != nil {
		return err
	}
	s, err := sim.New(conn, sim.Options{
		Nodes: cfg.Nodes, Prefix: cfg.Prefix, Zones: cfg.Zones,
		Capacity:      map[string]string{"cpu": cfg.CPU, "memory": cfg.Memory, "pods": cfg.Pods, "ephemeral-storage": "1Ti"},
		LeaseDuration: cfg.LeaseDuration, RenewInterval: cfg.RenewInterval, Logger: log,
	})
	if err != nil {
		return err
	}
	start := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-s.Ready():
	}
	fmt.Fprintf(out, "%d simulated nodes ready in %s (%s0 .. %s%d)\n", cfg.Nodes, time.Since(start).Round(time.Millisecond), cfg.Prefix, cfg.Prefix, cfg.Nodes-1)
	if ready != nil {
		ready(s)
	}
	var tick <-chan time.Time
	if cfg.ReportInterval > 0 {
		t := time.NewTicker(cfg.ReportInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case err := <-errc:
			return err
		case <-tick:
			fmt.Fprintf(out, "%s: %d pods on %d simulated nodes\n", time.Now().UTC().Format(time.TimeOnly), s.Pods(), cfg.Nodes)
		}
	}
}
