package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"bosun.dev/pkg/version"
)

// serverVersionHeader is the response header in which the apiserver may
// report its version.
const serverVersionHeader = "bosun-version"

func (s *session) newVersionCommand() *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client's version and, when reachable, the server's",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(s.deps.Stdout, "Client Version: %s\n", version.String())
			if clientOnly {
				return nil
			}
			conn, err := s.connect()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
			defer cancel()
			var header metadata.MD
			_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&header))
			if err != nil {
				return err
			}
			server := "unknown (the server did not report one)"
			if v := header.Get(serverVersionHeader); len(v) > 0 {
				server = v[0]
			}
			fmt.Fprintf(s.deps.Stdout, "Server Version: %s\n", server)
			return nil
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "print only the client's version")
	return cmd
}
