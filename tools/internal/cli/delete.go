package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
)

// cascadePolicies map --cascade to the API's propagation policy.
var cascadePolicies = map[string]metav1.DeletePropagation{
	"background": metav1.DeletePropagation_DELETE_PROPAGATION_BACKGROUND,
	"foreground": metav1.DeletePropagation_DELETE_PROPAGATION_FOREGROUND,
	"orphan":     metav1.DeletePropagation_DELETE_PROPAGATION_ORPHAN,
}

func (s *session) newDeleteCommand() *cobra.Command {
	var (
		files          []string
		gracePeriod    int64
		cascade        string
		ignoreNotFound bool
	)
	cmd := &cobra.Command{
		Use:   "delete (TYPE NAME... | TYPE/NAME... | -f FILENAME)",
		Short: "Delete objects by name or by manifest",
		Example: "  bosun delete pod web\n  bosun delete deploy/web svc/web\n" +
			"  bosun delete -f web.yaml\n  bosun delete pod web --grace-period=0 --cascade=foreground",
		RunE: func(cmd *cobra.Command, args []string) error {
			policy, ok := cascadePolicies[cascade]
			if !ok {
				return fmt.Errorf("invalid --cascade %q: use background, foreground or orphan", cascade)
			}
			opts := client.DeleteOptions{PropagationPolicy: policy}
			if gracePeriod >= 0 {
				opts.GracePeriodSeconds = &gracePeriod
			}
			ns, err := s.namespace()
			if err != nil {
				return err
			}
			var refs []objectRef
			namespaces := map[int]string{}
			switch {
			case len(files) > 0 && len(args) > 0:
				return fmt.Errorf("give either -f or TYPE NAME, not both")
			case len(files) > 0:
				objs, err := readManifests(files, s.deps.Stdin)
				if err != nil {
					return err
				}
				for _, obj := range objs {
					k, err := api.KindOf(obj)
					if err != nil {
						return err
					}
					if objNS := obj.GetMetadata().GetNamespace(); objNS != "" {
						namespaces[len(refs)] = objNS
					}
					refs = append(refs, objectRef{k, obj.GetMetadata().GetName()})
				}
			default:
				ra, err := parseResourceArgs(args)
				if err != nil {
					return err
				}
				if len(ra.refs) == 0 {
					return fmt.Errorf("resource(s) were provided, but no name was specified")
				}
				refs = ra.refs
			}
			conn, err := s.connect()
			if err != nil {
				return err
			}
			failed := false
			for i, ref := range refs {
				objNS := ns
				if n, ok := namespaces[i]; ok {
					objNS = n
				}
				if !ref.kind.Namespaced {
					objNS = ""
				}
				_, err := client.ForKind(conn, ref.kind).Delete(cmd.Context(), objNS, ref.name, opts)
				if err != nil {
					if ignoreNotFound && apierrors.IsNotFound(err) {
						continue
					}
					fmt.Fprintln(s.deps.Stderr, formatError(err))
					failed = true
					continue
				}
				fmt.Fprintf(s.deps.Stdout, "%s %q deleted\n", qualifiedKind(ref.kind), ref.name)
			}
			if failed {
				return errReported
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&files, "filename", "f", nil, "delete the objects of a manifest file, directory or - for stdin")
	f.Int64Var(&gracePeriod, "grace-period", -1, "seconds a pod has to stop; -1 keeps the pod's own, 0 deletes at once")
	f.StringVar(&cascade, "cascade", "background", "how dependents are deleted: background, foreground or orphan")
	f.BoolVar(&ignoreNotFound, "ignore-not-found", false, "treat a missing object as deleted")
	return cmd
}
