// Command health-checker watches node liveness (Leases and active gRPC
// health checks of every node-agent), sets node Ready conditions and
// unreachable / not-ready taints, and evicts pods from lost nodes, with
// leader election among replicas.
package main

import (
	"context"

	"bosun.dev/pkg/server"
	"bosun.dev/services/health-checker/internal/checker"
)

func main() {
	opts := checker.DefaultOptions()
	server.Run(server.Spec{
		Name:          "health-checker",
		DefaultListen: "127.0.0.1:10253",
		Flags:         opts.RegisterFlags,
		Check:         opts.Validate,
		Body: func(ctx context.Context, s *server.Service) error {
			if opts.NodeAgentCAFile == "" && !s.Flags.APIServer.Insecure {
				// Node-agents serve mutual TLS with certificates of the
				// cluster CA: probe them with this service's own identity.
				opts.NodeAgentCAFile = s.Flags.TLS.ClientCAFile
				opts.NodeAgentCertFile, opts.NodeAgentKeyFile = s.Flags.APIServer.CertFile, s.Flags.APIServer.KeyFile
			}
			chk, err := checker.New(checker.Config{Conn: s.Conn, Options: opts, Logger: s.Log, Registerer: s.Server.Registry()})
			if err != nil {
				return err
			}
			return chk.Run(ctx)
		},
	})
}
