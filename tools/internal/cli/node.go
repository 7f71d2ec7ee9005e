package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
)

// The out-of-service taint, as in Kubernetes: an operator's statement that
// a node is down for good, so that its pods, StatefulSet pods included, may
// be replaced elsewhere at once.
const (
	outOfServiceTaintKey   = "node.kubernetes.io/out-of-service"
	outOfServiceTaintValue = "nodeshutdown"
	noExecute              = "NoExecute"
)

// drainPollInterval is how often drain checks whether evicted pods are gone.
const drainPollInterval = 200 * time.Millisecond

// updateNode applies change to the node, re-reading and retrying on
// conflicts. change reports whether it changed anything; an unchanged node
// is not written. It returns whether a write happened.
func (s *session) updateNode(ctx context.Context, name string, change func(*corev1.Node) bool) (bool, error) {
	conn, err := s.connect()
	if err != nil {
		return false, err
	}
	nodes := client.For[*corev1.Node](conn)
	wrote := false
	err = client.RetryOnConflict(ctx, client.DefaultRetry, func() error {
		n, err := nodes.Get(ctx, "", name)
		if err != nil {
			return err
		}
		if n.Spec == nil {
			n.Spec = &corev1.NodeSpec{}
		}
		if !change(n) {
			return nil
		}
		if _, err := nodes.Update(ctx, n); err != nil {
			return err
		}
		wrote = true
		return nil
	})
	return wrote, err
}

func setUnschedulable(v bool) func(*corev1.Node) bool {
	return func(n *corev1.Node) bool {
		if n.Spec.Unschedulable == v {
			return false
		}
		n.Spec.Unschedulable = v
		return true
	}
}

// cordon marks the node unschedulable and reports what it did.
func (s *session) cordon(ctx context.Context, name string, on bool) error {
	wrote, err := s.updateNode(ctx, name, setUnschedulable(on))
	if err != nil {
		return err
	}
	verb := map[bool]string{true: "cordoned", false: "uncordoned"}[on]
	if !wrote {
		fmt.Fprintf(s.deps.Stdout, "node/%s already %s\n", name, verb)
		return nil
	}
	fmt.Fprintf(s.deps.Stdout, "node/%s %s\n", name, verb)
	return nil
}

func (s *session) newCordonCommand(on bool) *cobra.Command {
	use, short := "cordon NODE", "Mark a node unschedulable: no new pods are placed on it"
	if !on {
		use, short = "uncordon NODE", "Mark a node schedulable again"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactlyOneNode,
		RunE: func(cmd *cobra.Command, args []string) error {
			return s.cordon(cmd.Context(), args[0], on)
		},
	}
}

func exactlyOneNode(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%s needs exactly one node name, got %d arguments", cmd.Name(), len(args))
	}
	return nil
}

func (s *session) newDrainCommand() *cobra.Command {
	var (
		gracePeriod int64
		timeout     time.Duration
		force       bool
	)
	cmd := &cobra.Command{
		Use:   "drain NODE",
		Short: "Cordon a node and evict its pods, each with its graceful termination period",
		Long: "drain cordons NODE, then deletes every pod bound to it, letting each stop within its\n" +
			"grace period (terminationGracePeriodSeconds, unless --grace-period is given), and waits\n" +
			"until they are gone. Pods of DaemonSets are left: they belong to the node. Pods that no\n" +
			"controller would replace are refused unless --force is given.",
		Example: "  bosun drain node-3\n  bosun drain node-3 --grace-period 10 --timeout 2m",
		Args:    exactlyOneNode,
		RunE: func(cmd *cobra.Command, args []string) error {
			if gracePeriod < -1 {
				return fmt.Errorf("invalid --grace-period %d: use -1 (each pod's own), 0 or more seconds", gracePeriod)
			}
			if timeout < 0 {
				return fmt.Errorf("invalid --timeout %v: must not be negative (0 waits forever)", timeout)
			}
			return s.drain(cmd.Context(), args[0], gracePeriod, timeout, force)
		},
	}
	f := cmd.Flags()
	f.Int64Var(&gracePeriod, "grace-period", -1, "seconds each pod has to stop; -1 keeps the pod's own")
	f.DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the pods to be gone; 0 waits forever")
	f.BoolVar(&force, "force", false, "also delete pods that no controller manages (they are not recreated)")
	return cmd
}

func podController(p *corev1.Pod) *metav1.OwnerReference {
	for _, ref := range p.GetMetadata().GetOwnerReferences() {
		if ref.GetController() {
			return ref
		}
	}
	return nil
}

func (s *session) drain(ctx context.Context, node string, gracePeriod int64, timeout time.Duration, force bool) error {
	if err := s.cordon(ctx, node, true); err != nil {
		return err
	}
	conn, err := s.connect()
	if err != nil {
		return err
	}
	pods := client.For[*corev1.Pod](conn)
	all, _, err := pods.ListAll(ctx, client.ListOptions{FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		return err
	}
	var evict, unmanaged []*corev1.Pod
	for _, p := range all {
		if p.GetSpec().GetNodeName() != node {
			continue
		}
		ctrl := podController(p)
		switch {
		case ctrl == nil:
			unmanaged = append(unmanaged, p)
		case ctrl.GetKind() == "DaemonSet":
			fmt.Fprintf(s.deps.Stdout, "ignoring DaemonSet pod %s/%s\n", p.GetMetadata().GetNamespace(), p.GetMetadata().GetName())
		default:
			evict = append(evict, p)
		}
	}
	if len(unmanaged) > 0 && !force {
		var names []string
		for _, p := range unmanaged {
			names = append(names, p.GetMetadata().GetNamespace()+"/"+p.GetMetadata().GetName())
		}
		sort.Strings(names)
		return fmt.Errorf("cannot drain node %s: pods not managed by a controller would be lost: %s (use --force to delete them anyway)",
			node, strings.Join(names, ", "))
	}
	evict = append(evict, unmanaged...)
	opts := client.DeleteOptions{}
	if gracePeriod >= 0 {
		opts.GracePeriodSeconds = &gracePeriod
	}
	for _, p := range evict {
		md := p.GetMetadata()
		o := opts
		o.Preconditions = &metav1.Preconditions{Uid: md.GetUid()}
		if _, err := pods.Delete(ctx, md.GetNamespace(), md.GetName(), o); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("evicting pod %s/%s: %w", md.GetNamespace(), md.GetName(), err)
		}
		fmt.Fprintf(s.deps.Stdout, "evicting pod %s/%s\n", md.GetNamespace(), md.GetName())
	}
	if err := waitPodsGone(ctx, pods, evict, timeout); err != nil {
		return fmt.Errorf("draining node %s: %w", node, err)
	}
	fmt.Fprintf(s.deps.Stdout, "node/%s drained\n", node)
	return nil
}

// waitPodsGone polls until none of pods exists any more with the same uid.
func waitPodsGone(ctx context.Context, pods *client.Resource[*corev1.Pod], want []*corev1.Pod, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	left := want
	for {
		var still []*corev1.Pod
		for _, p := range left {
			md := p.GetMetadata()
			cur, err := pods.Get(ctx, md.GetNamespace(), md.GetName())
			switch {
			case apierrors.IsNotFound(err):
			case err != nil && ctx.Err() == nil:
				return err
			case err == nil && cur.GetMetadata().GetUid() != md.GetUid():
			default:
				still = append(still, p)
			}
		}
		if len(still) == 0 {
			return nil
		}
		left = still
		select {
		case <-ctx.Done():
			var names []string
			for _, p := range still {
				names = append(names, p.GetMetadata().GetNamespace()+"/"+p.GetMetadata().GetName())
			}
			return fmt.Errorf("timed out after %v waiting for pods to stop: %s", timeout, strings.Join(names, ", "))
		case <-time.After(drainPollInterval):
		}
	}
}

// nodeCommands are cordon, uncordon, drain and node.
func (s *session) nodeCommands() []*cobra.Command {
	return []*cobra.Command{s.newCordonCommand(true), s.newCordonCommand(false), s.newDrainCommand(), s.newNodeCommand()}
}

func (s *session) newNodeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Node operations: out-of-service",
	}
	var clear bool
	oos := &cobra.Command{
		Use:   "out-of-service NODE",
		Short: "Declare a node down for good, so its pods (StatefulSet pods too) are replaced elsewhere",
		Long: "out-of-service adds the taint node.kubernetes.io/out-of-service=nodeshutdown:NoExecute to NODE.\n" +
			"Only do this when the machine is known to be off or fenced: the health-checker then deletes\n" +
			"its pods at once, including StatefulSet pods whose identity would otherwise wait until the\n" +
			"node-agent confirms them stopped. --clear removes the taint when the node is back in service.",
		Example: "  bosun node out-of-service node-3\n  bosun node out-of-service node-3 --clear",
		Args:    exactlyOneNode,
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			wrote, err := s.updateNode(cmd.Context(), name, func(n *corev1.Node) bool {
				var kept []*corev1.Taint
				had := false
				for _, t := range n.Spec.Taints {
					if t.GetKey() == outOfServiceTaintKey && t.GetEffect() == noExecute {
						had = true
						continue
					}
					kept = append(kept, t)
				}
				if clear {
					n.Spec.Taints = kept
					return had
				}
				if had {
					return false
				}
				n.Spec.Taints = append(kept, &corev1.Taint{Key: outOfServiceTaintKey, Value: outOfServiceTaintValue, Effect: noExecute})
				return true
			})
			if err != nil {
				return err
			}
			switch {
			case clear && wrote:
				fmt.Fprintf(s.deps.Stdout, "node/%s back in service\n", name)
			case clear:
				fmt.Fprintf(s.deps.Stdout, "node/%s was not out of service\n", name)
			case wrote:
				fmt.Fprintf(s.deps.Stdout, "node/%s out of service\n", name)
			default:
				fmt.Fprintf(s.deps.Stdout, "node/%s already out of service\n", name)
			}
			return nil
		},
	}
	oos.Flags().BoolVar(&clear, "clear", false, "remove the out-of-service taint")
	cmd.AddCommand(oos)
	return cmd
}
