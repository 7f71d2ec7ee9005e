// Package nodestatus decides a node's Ready condition from its two liveness
// signals, its Lease and its node-agent's gRPC health, and writes it into
// the node's status.
//
// The verdicts:
//
//   - Unknown (reason NodeStatusUnknown): the Lease has not been renewed, or
//     the health endpoint has failed every probe, for longer than the grace
//     period.
//     Both signals must be alive for a node to be Ready: a node-agent that
//     renews its Lease but cannot be reached is not trusted with pods.
//   - False (reason NodeAgentNotReady): the agent answers but reports
//     NOT_SERVING; or the agent itself wrote Ready=False with a reason of its
//     own, which is kept.
//   - True (reason NodeAgentReady): both signals are alive. A Ready=True
//     already present is left as it is, whoever wrote it.
//
// A node about which nothing has been learned yet since monitoring began
// (a new leader, a new node) keeps its condition until the grace period has
// passed. The pressure conditions (MemoryPressure, DiskPressure, PIDPressure)
// belong to the node-agent and are passed through untouched.
package nodestatus

import (
	"fmt"
	"strings"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/health-checker/internal/lease"
	"bosun.dev/services/health-checker/internal/probe"
)

// Condition types and statuses.
const (
	ConditionReady = "Ready"

	StatusTrue    = "True"
	StatusFalse   = "False"
	StatusUnknown = "Unknown"
)

// Reasons of the Ready conditions the health-checker writes.
const (
	ReasonReady    = "NodeAgentReady"
	ReasonNotReady = "NodeAgentNotReady"
	ReasonUnknown  = "NodeStatusUnknown"
)

// Signals are what is known about one node at Now.
type Signals struct {
	Now time.Time
	// Grace is how long a node may be silent before it is Unknown.
	Grace time.Duration
	// Since is when monitoring of this node began: silence is never counted
	// from before it.
	Since time.Time
	// Lease is the node's Lease, when one was seen.
	Lease      lease.Observation
	LeaseKnown bool
	// Probe is the result of probing the node's health endpoint, when the
	// node has one.
	Probe      probe.Result
	ProbeKnown bool
}

// Verdict is a Ready condition to write.
type Verdict struct {
	Status, Reason, Message string
}

// Evaluate returns the node's Ready verdict given its signals and current
// Ready condition (nil when it has none). ok is false when nothing can be
// concluded yet and the condition should be left alone.
func Evaluate(s Signals, current *corev1.NodeCondition) (v Verdict, ok bool) {
	grace := s.Grace
	var silent []string
	if s.Now.Sub(later(s.Lease.Seen, s.Since)) > grace {
		if !s.LeaseKnown {
			silent = append(silent, fmt.Sprintf("no node Lease seen within the grace period %v", grace))
		} else {
			silent = append(silent, fmt.Sprintf("node-agent stopped renewing its Lease (last renewal %s, grace period %v)",
				stamp(s.Lease.RenewTime, s.Lease.Seen), grace))
		}
	}
	// The health endpoint counts as silent only when probes failed: a node
	// the prober has not got round to (a backlog behind unreachable nodes)
	// is judged by its Lease alone until it has been probed.
	if s.ProbeKnown && s.Probe.Err != nil && s.Now.Sub(later(later(s.Probe.LastAnswer, s.Probe.Added), s.Since)) > grace {
		msg := fmt.Sprintf("node-agent health endpoint %s has not answered within the grace period %v", s.Probe.Endpoint, grace)
		if s.Probe.Err != nil {
			msg += ": " + s.Probe.Err.Error()
		}
		silent = append(silent, msg)
	}
	if len(silent) > 0 {
		return Verdict{StatusUnknown, ReasonUnknown, strings.Join(silent, "; ")}, true
	}
	if !s.LeaseKnown {
		// No Lease yet, but within the grace period.
		return Verdict{}, false
	}
	if s.ProbeKnown && !s.Probe.Answered() {
		// The probe has not answered yet, but is within its grace period.
		return Verdict{}, false
	}
	if s.ProbeKnown && s.Probe.Status != healthpb.HealthCheckResponse_SERVING {
		return Verdict{StatusFalse, ReasonNotReady, "node-agent health reports " + s.Probe.Status.String()}, true
	}
	if current != nil && current.GetStatus() == StatusFalse && !Owned(current.GetReason()) {
		return Verdict{StatusFalse, current.GetReason(), current.GetMessage()}, true
	}
	if current != nil && current.GetStatus() == StatusTrue {
		return Verdict{StatusTrue, current.GetReason(), current.GetMessage()}, true
	}
	return Verdict{StatusTrue, ReasonReady, "node-agent renews its Lease and answers health checks"}, true
}

// Owned reports whether reason is one the health-checker writes.
func Owned(reason string) bool {
	switch reason {
	case ReasonReady, ReasonNotReady, ReasonUnknown:
		return true
	}
	return false
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func stamp(renew, seen time.Time) string {
	if renew.IsZero() {
		return "seen at " + seen.UTC().Format(time.RFC3339Nano)
	}
	return renew.UTC().Format(time.RFC3339Nano)
}

// Ready returns the node's Ready condition, nil when it has none.
func Ready(n *corev1.Node) *corev1.NodeCondition {
	return Find(n.GetStatus(), ConditionReady)
}

// Find returns the condition of type t in st, nil when absent.
func Find(st *corev1.NodeStatus, t string) *corev1.NodeCondition {
	for _, c := range st.GetConditions() {
		if c.GetType() == t {
			return c
		}
	}
	return nil
}

// ReadyStatus is the status of the node's Ready condition, Unknown when it
// has none.
func ReadyStatus(n *corev1.Node) string {
	if c := Ready(n); c != nil && c.GetStatus() != "" {
		return c.GetStatus()
	}
	return StatusUnknown
}

// Differs reports whether writing v would change cur: a different status or
// reason. Messages alone do not cause writes, since they carry details
// (errors) that change from probe to probe.
func Differs(cur *corev1.NodeCondition, v Verdict) bool {
	return cur == nil || cur.GetStatus() != v.Status || cur.GetReason() != v.Reason
}

// SetReady writes v as st's Ready condition at now, keeping the transition
// time when the status did not change. heartbeat is the node's last
// heartbeat (zero: now). It reports whether anything changed.
func SetReady(st *corev1.NodeStatus, v Verdict, now, heartbeat time.Time) bool {
	cur := Find(st, ConditionReady)
	if !Differs(cur, v) {
		return false
	}
	if heartbeat.IsZero() {
		heartbeat = now
	}
	if cur == nil {
		cur = &corev1.NodeCondition{Type: ConditionReady}
		st.Conditions = append(st.Conditions, cur)
	}
	if cur.GetStatus() != v.Status || cur.LastTransitionTime == nil {
		cur.LastTransitionTime = timestamppb.New(now)
	}
	cur.Status, cur.Reason, cur.Message = v.Status, v.Reason, v.Message
	cur.LastHeartbeatTime = timestamppb.New(heartbeat)
	return true
}
