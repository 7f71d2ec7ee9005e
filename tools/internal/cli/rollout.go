package cli

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/client"
)

// The Deployment controller's annotations and labels (see the controller
// service's deployment package).
const (
	revisionAnnotation    = "deployment.kubernetes.io/revision"
	changeCauseAnnotation = "kubernetes.io/change-cause"
	podTemplateHashLabel  = "pod-template-hash"
)

// rolloutPollInterval is how often `rollout status` reads the Deployment.
var rolloutPollInterval = 250 * time.Millisecond

func (s *session) newRolloutCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Follow, pause, resume and roll back Deployment rollouts",
	}
	var timeout time.Duration
	status := &cobra.Command{
		Use:   "status deployment/NAME",
		Short: "Follow a rollout until it finishes; exit non-zero when its progress deadline is exceeded",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return s.withDeployment(args, func(res *client.Resource[*appsv1.Deployment], ns, name string) error {
				return s.rolloutStatus(cmd.Context(), res, ns, name, timeout)
			})
		},
	}
	status.Flags().DurationVar(&timeout, "timeout", 0, "give up after this long (0: wait for the rollout or its deadline)")
	var revision int64
	history := &cobra.Command{
		Use:   "history deployment/NAME",
		Short: "List a Deployment's revisions",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return s.withDeployment(args, func(res *client.Resource[*appsv1.Deployment], ns, name string) error {
				return s.rolloutHistory(cmd.Context(), res, ns, name, revision)
			})
		},
	}
	history.Flags().Int64Var(&revision, "revision", 0, "show the pod template of this revision")
	var toRevision int64
	undo := &cobra.Command{
		Use:   "undo deployment/NAME [--to-revision N]",
		Short: "Roll a Deployment back to its previous revision, or to --to-revision",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if toRevision < 0 {
				return fmt.Errorf("--to-revision: %d: must be 0 (the previous revision) or more", toRevision)
			}
			return s.withDeployment(args, func(res *client.Resource[*appsv1.Deployment], ns, name string) error {
				return s.rolloutUndo(cmd.Context(), res, ns, name, toRevision)
			})
		},
	}
	undo.Flags().Int64Var(&toRevision, "to-revision", 0, "the revision to roll back to (default: the previous one)")
	pause := func(use string, paused bool, done string) *cobra.Command {
		return &cobra.Command{
			Use:   use + " deployment/NAME",
			Short: strings.ToUpper(use[:1]) + use[1:] + " a Deployment's rollout",
			Args:  cobra.RangeArgs(1, 2),
			RunE: func(cmd *cobra.Command, args []string) error {
				return s.withDeployment(args, func(res *client.Resource[*appsv1.Deployment], ns, name string) error {
					changed := false
					err := client.RetryOnConflict(cmd.Context(), client.DefaultRetry, func() error {
						d, err := res.Get(cmd.Context(), ns, name)
						if err != nil {
							return err
						}
						if d.GetSpec().GetPaused() == paused {
							return nil
						}
						d.Spec.Paused = paused
						changed = true
						_, err = res.Update(cmd.Context(), d)
						return err
					})
					if err != nil {
						return err
					}
					if !changed {
						fmt.Fprintf(s.deps.Stdout, "deployment.apps/%s is already %s\n", name, done)
						return nil
					}
					fmt.Fprintf(s.deps.Stdout, "deployment.apps/%s %s\n", name, done)
					return nil
				})
			},
		}
	}
	cmd.AddCommand(status, history, undo, pause("pause", true, "paused"), pause("resume", false, "resumed"))
	return cmd
}

func (s *session) withDeployment(args []string, fn func(res *client.Resource[*appsv1.Deployment], ns, name string) error) error {
	_, name, err := workloadTarget(args, "Deployment")
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
	return fn(client.For[*appsv1.Deployment](conn), ns, name)
}

// rolloutLine describes where a rollout is; done when it finished, failed
// when its progress deadline passed.
func rolloutLine(d *appsv1.Deployment) (line string, done bool, failed bool) {
	name := d.GetMetadata().GetName()
	st := d.GetStatus()
	if st.GetObservedGeneration() < d.GetMetadata().GetGeneration() {
		return "Waiting for deployment spec update to be observed...", false, false
	}
	for _, c := range st.GetConditions() {
		if c.GetType() == "Progressing" && c.GetReason() == "ProgressDeadlineExceeded" {
			return fmt.Sprintf("deployment %q exceeded its progress deadline", name), false, true
		}
	}
	want := d.GetSpec().GetReplicas()
	switch {
	case st.GetUpdatedReplicas() < want:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d out of %d new replicas have been updated...", name, st.GetUpdatedReplicas(), want), false, false
	case st.GetReplicas() > st.GetUpdatedReplicas():
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d old replicas are pending termination...", name, st.GetReplicas()-st.GetUpdatedReplicas()), false, false
	case st.GetAvailableReplicas() < st.GetUpdatedReplicas():
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d of %d updated replicas are available...", name, st.GetAvailableReplicas(), st.GetUpdatedReplicas()), false, false
	}
	return fmt.Sprintf("deployment %q successfully rolled out", name), true, false
}

func (s *session) rolloutStatus(ctx context.Context, res *client.Resource[*appsv1.Deployment], ns, name string, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	last := ""
	for {
		d, err := res.Get(ctx, ns, name)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("timed out waiting for the rollout of deployment %q", name)
			}
			return err
		}
		line, done, failed := rolloutLine(d)
		if failed {
			return fmt.Errorf("%s", line)
		}
		if line != last {
			fmt.Fprintln(s.deps.Stdout, line)
			last = line
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for the rollout of deployment %q", name)
		case <-time.After(rolloutPollInterval):
		}
	}
}

// ownedReplicaSets returns the ReplicaSets d controls, by revision.
func (s *session) ownedReplicaSets(ctx context.Context, d *appsv1.Deployment) (map[int64]*appsv1.ReplicaSet, error) {
	conn, err := s.connect()
	if err != nil {
		return nil, err
	}
	sets, _, err := client.For[*appsv1.ReplicaSet](conn).ListAll(ctx, client.ListOptions{Namespace: d.GetMetadata().GetNamespace()})
	if err != nil {
		return nil, err
	}
	out := map[int64]*appsv1.ReplicaSet{}
	for _, rs := range sets {
		for _, r := range rs.GetMetadata().GetOwnerReferences() {
			if r.GetController() && r.GetUid() == d.GetMetadata().GetUid() {
				rev, err := strconv.ParseInt(rs.GetMetadata().GetAnnotations()[revisionAnnotation], 10, 64)
				if err == nil {
					out[rev] = rs
				}
			}
		}
	}
	return out, nil
}

func sortedRevisions(m map[int64]*appsv1.ReplicaSet) []int64 {
	out := make([]int64, 0, len(m))
	for r := range m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (s *session) rolloutHistory(ctx context.Context, res *client.Resource[*appsv1.Deployment], ns, name string, revision int64) error {
	d, err := res.Get(ctx, ns, name)
	if err != nil {
		return err
	}
	sets, err := s.ownedReplicaSets(ctx, d)
	if err != nil {
		return err
	}
	if revision > 0 {
		rs, ok := sets[revision]
		if !ok {
			return unknownRevision("--revision", name, revision, sets)
		}
		c := rs.GetSpec().GetTemplate().GetSpec().GetContainers()
		fmt.Fprintf(s.deps.Stdout, "deployment.apps/%s with revision #%d\n", name, revision)
		for _, ct := range c {
			fmt.Fprintf(s.deps.Stdout, "  Container %s: image %s\n", ct.GetName(), ct.GetImage())
		}
		return nil
	}
	fmt.Fprintf(s.deps.Stdout, "deployment.apps/%s\n", name)
	tw := tabwriter.NewWriter(s.deps.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tCHANGE-CAUSE")
	for _, r := range sortedRevisions(sets) {
		cause := sets[r].GetMetadata().GetAnnotations()[changeCauseAnnotation]
		if cause == "" {
			cause = "<none>"
		}
		fmt.Fprintf(tw, "%d\t%s\n", r, cause)
	}
	return tw.Flush()
}

func unknownRevision(flag, name string, revision int64, sets map[int64]*appsv1.ReplicaSet) error {
	var have []string
	for _, r := range sortedRevisions(sets) {
		have = append(have, strconv.FormatInt(r, 10))
	}
	return fmt.Errorf("%s: revision %d of deployment %q not found (revisions kept: %s)", flag, revision, name, strings.Join(have, ", "))
}

func (s *session) rolloutUndo(ctx context.Context, res *client.Resource[*appsv1.Deployment], ns, name string, to int64) error {
	var target int64
	err := client.RetryOnConflict(ctx, client.DefaultRetry, func() error {
		d, err := res.Get(ctx, ns, name)
		if err != nil {
			return err
		}
		sets, err := s.ownedReplicaSets(ctx, d)
		if err != nil {
			return err
		}
		current, _ := strconv.ParseInt(d.GetMetadata().GetAnnotations()[revisionAnnotation], 10, 64)
		target = to
		if target == 0 {
			for _, r := range sortedRevisions(sets) {
				if r != current {
					target = r
				}
			}
			if target == 0 {
				return fmt.Errorf("deployment %q has no previous revision to roll back to", name)
			}
		}
		rs, ok := sets[target]
		if !ok {
			return unknownRevision("--to-revision", name, target, sets)
		}
		tmpl := proto.Clone(rs.GetSpec().GetTemplate()).(*corev1.PodTemplateSpec)
		if tmpl.GetMetadata() != nil {
			delete(tmpl.Metadata.Labels, podTemplateHashLabel)
		}
		d.Spec.Template = tmpl
		_, err = res.Update(ctx, d)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(s.deps.Stdout, "deployment.apps/%s rolled back to revision %d\n", name, target)
	return nil
}
