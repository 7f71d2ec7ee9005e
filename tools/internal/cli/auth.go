package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	authorizationv1 "bosun.dev/gen/bosun/authorization/v1"
	"bosun.dev/pkg/api"
)

func (s *session) newAuthCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "auth",
		Short: "Inspect authorization",
	}
	var (
		as       string
		asGroups []string
		all      bool
	)
	canI := &cobra.Command{
		Use:   "can-i VERB KIND [NAME]",
		Short: "Say whether you (or --as another user) may do something",
		Long: `can-i asks the apiserver's authorizers whether an action is allowed and prints
yes or no (exit code 0 or 1). VERB is get, list, watch, create, update, delete
or bind; KIND is a kind as get takes it, optionally with a subresource
(pods/status). --as asks about another user, and needs the right to list
ClusterRoleBindings.

  bosun auth can-i create pods -n team-a
  bosun auth can-i update nodes/status node1 --as system:node:node1 --as-group system:nodes`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &authorizationv1.ReviewAccessRequest{Verb: args[0], Resource: args[1], User: as, Groups: asGroups}
			if len(args) == 3 {
				req.Name = args[2]
			}
			kindName, _, _ := strings.Cut(args[1], "/")
			k, err := api.Lookup(kindName)
			if err != nil {
				return err
			}
			if k.Namespaced && !all {
				if req.Namespace, err = s.namespace(); err != nil {
					return err
				}
			}
			conn, err := s.connect()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			resp, err := authorizationv1.NewAccessReviewServiceClient(conn).ReviewAccess(ctx, req)
			if err != nil {
				return err
			}
			if resp.GetAllowed() {
				fmt.Fprintln(s.deps.Stdout, "yes")
				return nil
			}
			fmt.Fprintln(s.deps.Stdout, "no")
			if resp.GetReason() != "" {
				fmt.Fprintln(s.deps.Stderr, resp.GetReason())
			}
			return errReported
		},
	}
	canI.Flags().StringVar(&as, "as", "", "user to ask about instead of yourself")
	canI.Flags().StringArrayVar(&asGroups, "as-group", nil, "group of the --as user (repeatable)")
	canI.Flags().BoolVarP(&all, "all-namespaces", "A", false, "ask about every namespace")
	cmd.AddCommand(canI)
	return cmd
}
