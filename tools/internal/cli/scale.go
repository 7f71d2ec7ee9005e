package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"bosun.dev/pkg/api"
	"bosun.dev/pkg/client"
)

func (s *session) newScaleCommand() *cobra.Command {
	var replicas int
	cmd := &cobra.Command{
		Use:   "scale (deployment|replicaset|statefulset)/NAME --replicas N",
		Short: "Set the number of replicas of a Deployment, ReplicaSet or StatefulSet",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("replicas") {
				return fmt.Errorf("--replicas is required")
			}
			if replicas < 0 {
				return fmt.Errorf("--replicas: %d: must be 0 or more", replicas)
			}
			k, name, err := workloadTarget(args, "Deployment", "ReplicaSet", "StatefulSet")
			if err != nil {
				return err
			}
			ns, err := s.namespace()
			if err != nil {
				return err
			}
			conn, err := s.connect()
			if err != nil {
				return err
			}
			res := client.ForKind(conn, k)
			err = client.RetryOnConflict(cmd.Context(), client.DefaultRetry, func() error {
				obj, err := res.Get(cmd.Context(), ns, name)
				if err != nil {
					return err
				}
				next := proto.Clone(obj).(api.Object)
				msg := next.ProtoReflect()
				spec := msg.Mutable(msg.Descriptor().Fields().ByName("spec")).Message()
				spec.Set(spec.Descriptor().Fields().ByName("replicas"), protoreflect.ValueOfInt32(int32(replicas)))
				_, err = res.Update(cmd.Context(), next)
				return err
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(s.deps.Stdout, "%s scaled\n", qualified(k, name))
			return nil
		},
	}
	cmd.Flags().IntVar(&replicas, "replicas", 0, "the new number of replicas")
	return cmd
}
