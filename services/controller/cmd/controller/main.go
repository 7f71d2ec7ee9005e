// Command controller runs Bosun's controllers: ReplicaSet, Deployment,
// DaemonSet, StatefulSet, Job, Endpoints, garbage collection, namespaces and
// node IPAM.
//
// It connects to the apiserver, waits until it answers, then campaigns for
// the controller Lease and runs the controllers while it leads. It serves
// its own gRPC health and, with --metrics-listen, metrics (including every
// controller's work queue) until SIGINT or SIGTERM.
package main

import (
	"context"

	"bosun.dev/pkg/server"
	"bosun.dev/services/controller/internal/manager"
)

func main() {
	var o options
	var m *manager.Manager
	server.Run(server.Spec{
		Name:          "controller",
		DefaultListen: "127.0.0.1:10252",
		Flags:         o.register,
		Setup: func(_ context.Context, s *server.Service) error {
			cfg, err := o.config(s.Conn, s.Server.Registry(), s.Log)
			if err != nil {
				return err
			}
			m, err = manager.New(cfg)
			return err
		},
		Body: func(ctx context.Context, _ *server.Service) error { return m.Run(ctx) },
	})
}
