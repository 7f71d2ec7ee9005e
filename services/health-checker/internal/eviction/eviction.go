// Package eviction decides which pods leave a tainted node, and when.
//
// A pod on a node with NoExecute taints stays until the taint it tolerates
// for the shortest time runs out, counted from the taint's time_added:
//
//   - a toleration that matches the taint and sets tolerationSeconds allows
//     that long (the smallest, when several match); one without
//     tolerationSeconds allows forever. This is the per-workload override:
//     put the toleration in the workload's pod template;
//   - a pod with no matching toleration of the unreachable or not-ready
//     taint gets Config.DefaultTolerationSeconds; of any other NoExecute
//     taint (out-of-service included), none;
//   - DaemonSet pods tolerate unreachable and not-ready forever: they belong
//     to their node.
//
// When a pod's time is up:
//
//   - a StatefulSet pod is deleted gracefully (marked) but never forced while
//     its node might still run it, so its identity never runs twice: its
//     replacement waits until the node-agent confirms it gone (the object is
//     then removed), the node is declared out of service, or the Node is
//     deleted; then it is force-deleted;
//   - any other pod on an unreachable (Unknown) or out-of-service node is
//     force-deleted (grace period 0) so its controller replaces it at once;
//     the node-agent, if it comes back, stops pods no longer bound to it;
//   - on a node that answers but is not ready, pods are deleted gracefully:
//     its node-agent stops them.
//
// Pods that have finished (Succeeded, Failed) are left alone. Brake and the
// rate limiter guard the whole: see Brake.
package eviction

import (
	"fmt"
	"time"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/health-checker/internal/nodestatus"
	"bosun.dev/services/health-checker/internal/taints"
)

// Defaults. The default toleration is chosen for the 15 s goal: a node that
// dies is Unknown after the grace period (4 s, plus at most one monitor
// period), its pods are force-deleted DefaultTolerationSeconds later, and
// the remaining seconds are for the controller, the scheduler and the new
// node's agent to start the replacements.
const (
	DefaultTolerationSeconds  = 3
	DefaultUnhealthyThreshold = 0.55
	DefaultEvictionRate       = 50.0 // pods per second
	DefaultEvictionBurst      = 100
)

// Config tunes Plan.
type Config struct {
	// DefaultTolerationSeconds is how long a pod without a matching
	// toleration stays on an unreachable or not-ready node.
	DefaultTolerationSeconds int64
}

// Action is what to do with a pod.
type Action int

// Actions.
const (
	// Keep leaves the pod: it tolerates the taints, for now or forever.
	Keep Action = iota
	// Evict deletes the pod gracefully.
	Evict
	// ForceDelete deletes the pod with a zero grace period.
	ForceDelete
)

func (a Action) String() string {
	switch a {
	case Evict:
		return "Evict"
	case ForceDelete:
		return "ForceDelete"
	default:
		return "Keep"
	}
}

// Decision is the plan for one pod.
type Decision struct {
	Pod    *corev1.Pod
	Action Action
	// Due is when a kept pod's time runs out; zero when it tolerates forever
	// or the action is not Keep.
	Due time.Time
	// Reason says why, for events and logs.
	Reason string
	// Operator is true when the action follows from an operator's decision
	// (out-of-service, Node deleted) rather than from detected failure: such
	// actions go ahead even while the brake holds.
	Operator bool
}

// Plan decides for each pod bound to node. node is nil when the Node was
// deleted: its pods are then known to be gone and are force-deleted.
func Plan(cfg Config, node *corev1.Node, nodeName string, pods []*corev1.Pod, now time.Time) []Decision {
	var out []Decision
	for _, pod := range pods {
		switch pod.GetStatus().GetPhase() {
		case "Succeeded", "Failed":
			continue
		}
		if node == nil {
			out = append(out, Decision{Pod: pod, Action: ForceDelete, Operator: true,
				Reason: fmt.Sprintf("node %s was deleted", nodeName)})
			continue
		}
		out = append(out, planPod(cfg, node, pod, now))
	}
	return out
}

func planPod(cfg Config, node *corev1.Node, pod *corev1.Pod, now time.Time) Decision {
	due, forever, why := dueTime(cfg, node, pod, now)
	if forever {
		return Decision{Pod: pod, Action: Keep, Reason: "tolerates the node's taints"}
	}
	if now.Before(due) {
		return Decision{Pod: pod, Action: Keep, Due: due, Reason: why}
	}
	terminating := pod.GetMetadata().GetDeletionTimestamp() != nil
	outOfService := taints.OutOfServiceSet(node)
	unreachable := nodestatus.ReadyStatus(node) == nodestatus.StatusUnknown
	if IsStatefulSetPod(pod) {
		if outOfService {
			return Decision{Pod: pod, Action: ForceDelete, Operator: true,
				Reason: fmt.Sprintf("node %s is out of service", node.GetMetadata().GetName())}
		}
		if terminating {
			return Decision{Pod: pod, Action: Keep,
				Reason: "StatefulSet pod waits until its node-agent confirms it stopped or the node is declared out of service"}
		}
		return Decision{Pod: pod, Action: Evict, Reason: why}
	}
	if outOfService {
		return Decision{Pod: pod, Action: ForceDelete, Operator: true,
			Reason: fmt.Sprintf("node %s is out of service", node.GetMetadata().GetName())}
	}
	if unreachable {
		return Decision{Pod: pod, Action: ForceDelete, Reason: why}
	}
	if terminating {
		return Decision{Pod: pod, Action: Keep, Reason: "being deleted by its node-agent"}
	}
	return Decision{Pod: pod, Action: Evict, Reason: why}
}

// dueTime is when pod's toleration of node's NoExecute taints runs out.
func dueTime(cfg Config, node *corev1.Node, pod *corev1.Pod, now time.Time) (due time.Time, forever bool, why string) {
	forever = true
	for _, t := range node.GetSpec().GetTaints() {
		if t.GetEffect() != taints.NoExecute {
			continue
		}
		lifecycle := t.GetKey() == taints.Unreachable || t.GetKey() == taints.NotReady
		if lifecycle && IsDaemonSetPod(pod) {
			continue
		}
		secs, tolerated, limited := tolerationSeconds(pod.GetSpec().GetTolerations(), t)
		switch {
		case tolerated && !limited:
			continue
		case !tolerated && lifecycle:
			secs = cfg.DefaultTolerationSeconds
		case !tolerated:
			secs = 0
		}
		added := now
		if ta := t.GetTimeAdded(); ta != nil {
			added = ta.AsTime()
		}
		d := added.Add(time.Duration(secs) * time.Second)
		if forever || d.Before(due) {
			due, forever = d, false
			why = fmt.Sprintf("node %s has taint %s:%s since %s; tolerated for %ds",
				node.GetMetadata().GetName(), t.GetKey(), t.GetEffect(), added.UTC().Format(time.RFC3339), secs)
		}
	}
	return due, forever, why
}

// tolerationSeconds returns how long tols tolerate t: tolerated is false
// when none matches; limited is false when a match allows forever.
func tolerationSeconds(tols []*corev1.Toleration, t *corev1.Taint) (secs int64, tolerated, limited bool) {
	for _, tol := range tols {
		if !Tolerates(tol, t) {
			continue
		}
		if !tolerated {
			tolerated = true
		}
		if tol.TolerationSeconds == nil {
			continue
		}
		s := max(tol.GetTolerationSeconds(), 0)
		if !limited || s < secs {
			secs, limited = s, true
		}
	}
	return secs, tolerated, limited
}

// Tolerates reports whether tol matches taint, with Kubernetes' rules: an
// empty key with operator Exists matches every key, an empty effect every
// effect; Equal (the default) compares values.
func Tolerates(tol *corev1.Toleration, taint *corev1.Taint) bool {
	if tol.GetEffect() != "" && tol.GetEffect() != taint.GetEffect() {
		return false
	}
	if tol.GetKey() != "" && tol.GetKey() != taint.GetKey() {
		return false
	}
	switch tol.GetOperator() {
	case "Exists":
		return true
	case "", "Equal":
		return tol.GetKey() != "" && tol.GetValue() == taint.GetValue()
	}
	return false
}

func controllerKind(pod *corev1.Pod) string {
	for _, ref := range pod.GetMetadata().GetOwnerReferences() {
		if ref.GetController() {
			return ref.GetKind()
		}
	}
	return ""
}

// IsDaemonSetPod reports whether a DaemonSet controls pod.
func IsDaemonSetPod(pod *corev1.Pod) bool { return controllerKind(pod) == "DaemonSet" }

// IsStatefulSetPod reports whether a StatefulSet controls pod.
func IsStatefulSetPod(pod *corev1.Pod) bool { return controllerKind(pod) == "StatefulSet" }

// Brake reports whether evictions must stop: more than threshold (a share
// of 1) of the total nodes are unhealthy at once, which more likely means
// the control plane lost them than that they all died.
func Brake(total, unhealthy int, threshold float64) bool {
	return total > 0 && float64(unhealthy) > threshold*float64(total)
}
