// Package taints keeps the NoExecute taints that follow a node's Ready
// condition, as Kubernetes' node lifecycle controller does:
//
//   - node.kubernetes.io/unreachable:NoExecute while Ready is Unknown;
//   - node.kubernetes.io/not-ready:NoExecute while Ready is False;
//   - neither while Ready is True: both are removed on recovery.
//
// The scheduler does not place pods that do not tolerate them, and the
// eviction package evicts pods that do not tolerate them for long enough.
// Other taints, such as node.kubernetes.io/out-of-service set by
// `bosun node out-of-service`, are left alone.
package taints

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/health-checker/internal/nodestatus"
)

// Taint keys and effects.
const (
	Unreachable  = "node.kubernetes.io/unreachable"
	NotReady     = "node.kubernetes.io/not-ready"
	OutOfService = "node.kubernetes.io/out-of-service"

	NoExecute  = "NoExecute"
	NoSchedule = "NoSchedule"
)

// ForReady is the health-checker's taint key for a Ready status, "" for
// True.
func ForReady(status string) string {
	switch status {
	case nodestatus.StatusTrue:
		return ""
	case nodestatus.StatusFalse:
		return NotReady
	default:
		return Unreachable
	}
}

// Owned reports whether t is one of the taints this package manages.
func Owned(t *corev1.Taint) bool {
	return t.GetEffect() == NoExecute && (t.GetKey() == Unreachable || t.GetKey() == NotReady)
}

// Reconcile makes spec carry exactly the taint that readyStatus calls for,
// stamped with now when added, and keeps every other taint. It reports
// whether spec changed.
func Reconcile(spec *corev1.NodeSpec, readyStatus string, now time.Time) bool {
	want := ForReady(readyStatus)
	changed := false
	kept := spec.Taints[:0:0]
	have := false
	for _, t := range spec.Taints {
		if Owned(t) {
			if t.GetKey() == want {
				have = true
			} else {
				changed = true
				continue
			}
		}
		kept = append(kept, t)
	}
	if want != "" && !have {
		kept = append(kept, &corev1.Taint{Key: want, Effect: NoExecute, TimeAdded: timestamppb.New(now)})
		changed = true
	}
	if changed {
		spec.Taints = kept
	}
	return changed
}

// Has reports whether spec carries a taint with key and effect.
func Has(spec *corev1.NodeSpec, key, effect string) bool {
	return Find(spec, key, effect) != nil
}

// Find returns spec's taint with key and effect, nil when absent.
func Find(spec *corev1.NodeSpec, key, effect string) *corev1.Taint {
	for _, t := range spec.GetTaints() {
		if t.GetKey() == key && t.GetEffect() == effect {
			return t
		}
	}
	return nil
}

// OutOfServiceSet reports whether an operator declared the node out of
// service (node.kubernetes.io/out-of-service with effect NoExecute, any value).
func OutOfServiceSet(n *corev1.Node) bool {
	return Has(n.GetSpec(), OutOfService, NoExecute)
}
