package cli

import (
	"context"
	"errors"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	corev1 "bosun.dev/gen/bosun/core/v1"
)

type logsOptions struct {
	container  string
	follow     bool
	tail       int64
	previous   bool
	limitBytes int64
}

func (s *session) newLogsCommand() *cobra.Command {
	var o logsOptions
	cmd := &cobra.Command{
		Use:   "logs POD",
		Short: "Print a container's logs",
		Long: "Print the logs of a container of a pod, read from the node-agent of the pod's node\n" +
			"through the apiserver. -f keeps streaming new output.",
		Example: "  bosun logs web-7d9f\n  bosun logs -f --tail 20 -c sidecar web-7d9f\n  bosun logs --previous crashy",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return s.logs(cmd.Context(), args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.container, "container", "c", "", "container name (needed when the pod has several)")
	f.BoolVarP(&o.follow, "follow", "f", false, "stream new output until interrupted or the container ends")
	f.Int64Var(&o.tail, "tail", -1, "print only the last N lines (-1: all)")
	f.BoolVarP(&o.previous, "previous", "p", false, "print the logs of the previous attempt of a restarted container")
	f.Int64Var(&o.limitBytes, "limit-bytes", 0, "stop after this many bytes (0: no limit)")
	return cmd
}

func (s *session) logs(ctx context.Context, pod string, o logsOptions) error {
	conn, err := s.connect()
	if err != nil {
		return err
	}
	ns, err := s.namespace()
	if err != nil {
		return err
	}
	req := &corev1.ContainerLogsRequest{Namespace: ns, Pod: pod, Container: o.container, Follow: o.follow,
		Previous: o.previous, LimitBytes: o.limitBytes}
	if o.tail >= 0 {
		req.TailLines = &o.tail
	}
	return notProxied(streamLogs(ctx, conn, req, s.deps.Stdout))
}

// notProxied explains the answer of an apiserver that does not serve
// bosun.core.v1.NodeAgentService. There is no way around it: node-agents
// are reached only through the apiserver, which authorizes each call (get
// pods/log, create nodes/images) and knows how to reach and trust them.
func notProxied(err error) error {
	if status.Code(err) == codes.Unimplemented {
		return status.Errorf(codes.Unimplemented, "the apiserver does not proxy bosun.core.v1.NodeAgentService (it is older than this bosun): upgrade it (%s)", status.Convert(err).Message())
	}
	return err
}

func streamLogs(ctx context.Context, conn grpc.ClientConnInterface, req *corev1.ContainerLogsRequest, out io.Writer) error {
	st, err := corev1.NewNodeAgentServiceClient(conn).ContainerLogs(ctx, req)
	if err != nil {
		return err
	}
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted while following
			}
			return err
		}
		if _, err := out.Write(m.GetData()); err != nil {
			return err
		}
	}
}
