package registry

import (
	"context"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
)

// hooks are the rules of the kinds that differ from the generic ones.
type hooks struct {
	// keepStatusOnCreate keeps a status given on create (nodes register with theirs).
	keepStatusOnCreate bool
	// triggerPath is the field path the watch cache indexes watchers by.
	triggerPath string
	// gracePeriod returns how long deletion waits (0: delete now).
	gracePeriod func(cur api.Object, requested *int64) int64
	// beforeDelete may refuse a delete.
	beforeDelete func(ctx context.Context, reg *Registry, cur api.Object) error
	// finalizeOnDelete may add finalizers to an object about to be deleted.
	finalizeOnDelete func(ctx context.Context, reg *Registry, next api.Object)
	// markDeleting updates an object marked for deletion (a namespace's phase).
	markDeleting func(next api.Object)
}

// ReservedNamespaces exist from the start and cannot be deleted: default for
// users, bosun-system for the control plane's own objects (leader-election
// leases, events) and bosun-node-lease for the leases node-agents renew.
var ReservedNamespaces = []string{"default", "bosun-system", "bosun-node-lease"}

// FinalizerNamespace holds a namespace that still has objects until the
// namespace controller has deleted them.
const FinalizerNamespace = "kubernetes"

// DefaultGracePeriodSeconds is a pod's grace period when it sets none.
const DefaultGracePeriodSeconds = 30

func hooksFor(k *api.Kind) hooks {
	switch k.Kind {
	case "Pod":
		return hooks{triggerPath: "spec.nodeName", gracePeriod: podGracePeriod}
	case "Node":
		return hooks{keepStatusOnCreate: true}
	case "Namespace":
		return hooks{
			beforeDelete: func(_ context.Context, _ *Registry, cur api.Object) error {
				for _, n := range ReservedNamespaces {
					if cur.GetMetadata().GetName() == n {
						return apierrors.Reserved("Namespace", n)
					}
				}
				return nil
			},
			finalizeOnDelete: func(_ context.Context, reg *Registry, next api.Object) {
				if reg.namespaceInUse(next.GetMetadata().GetName()) {
					m := api.Meta(next)
					m.Finalizers = addString(m.Finalizers, FinalizerNamespace)
				}
			},
			markDeleting: func(next api.Object) {
				ns := next.(*corev1.Namespace)
				if ns.Status == nil {
					ns.Status = &corev1.NamespaceStatus{}
				}
				ns.Status.Phase = "Terminating"
			},
		}
	}
	return hooks{}
}

// podGracePeriod: pods that never reached a node, or have finished, go at
// once; others get the requested period, else their own, else 30 s.
func podGracePeriod(cur api.Object, requested *int64) int64 {
	pod := cur.(*corev1.Pod)
	if pod.GetSpec().GetNodeName() == "" {
		return 0
	}
	switch pod.GetStatus().GetPhase() {
	case "Succeeded", "Failed":
		return 0
	}
	if requested != nil {
		return *requested
	}
	if g := pod.GetSpec().TerminationGracePeriodSeconds; g != nil {
		return *g
	}
	return DefaultGracePeriodSeconds
}

// namespaceInUse reports whether any namespaced object lives in namespace.
func (r *Registry) namespaceInUse(namespace string) bool {
	for k, res := range r.resources {
		if k.Namespaced && res.cache.HasNamespace(namespace) {
			return true
		}
	}
	return false
}
