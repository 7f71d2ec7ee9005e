package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
)

func (s *session) newCreateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create an object from the command line",
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "namespace NAME",
		Aliases: []string{"ns"},
		Short:   "Create a namespace",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := s.connect()
			if err != nil {
				return err
			}
			ns := &corev1.Namespace{Metadata: &metav1.ObjectMeta{Name: args[0]}}
			if _, err := client.For[*corev1.Namespace](conn).Create(cmd.Context(), ns); err != nil {
				return err
			}
			fmt.Fprintf(s.deps.Stdout, "namespace/%s created\n", args[0])
			return nil
		},
	})
	return cmd
}
