package nodestatus

import (
	"errors"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/health-checker/internal/lease"
	"bosun.dev/services/health-checker/internal/probe"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const grace = 4 * time.Second

func signals(leaseAge, answerAge time.Duration, status healthpb.HealthCheckResponse_ServingStatus) Signals {
	now := t0.Add(time.Hour)
	return Signals{
		Now: now, Grace: grace, Since: t0,
		Lease: lease.Observation{Seen: now.Add(-leaseAge)}, LeaseKnown: true,
		Probe:      probe.Result{Endpoint: "10.0.0.1:10250", Added: t0, LastAnswer: now.Add(-answerAge), Status: status},
		ProbeKnown: true,
	}
}

func TestEvaluate(t *testing.T) {
	serving, notServing := healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_NOT_SERVING
	readyTrue := &corev1.NodeCondition{Type: "Ready", Status: "True", Reason: "SomeAgentReason"}
	agentFalse := &corev1.NodeCondition{Type: "Ready", Status: "False", Reason: "RuntimeDown", Message: "containerd is down"}
	oursFalse := &corev1.NodeCondition{Type: "Ready", Status: "False", Reason: ReasonNotReady}
	leaseOnly := signals(time.Second, 0, serving)
	leaseOnly.ProbeKnown = false
	leaseOnlyStale := signals(5*time.Second, 0, serving)
	leaseOnlyStale.ProbeKnown = false
	newLeader := signals(10*time.Second, 10*time.Second, serving)
	newLeader.Since = newLeader.Now.Add(-3 * time.Second)
	noLease := signals(0, 0, serving)
	noLease.LeaseKnown, noLease.Lease = false, lease.Observation{}
	noLease.Since = noLease.Now.Add(-time.Second)
	noLeaseLong := noLease
	noLeaseLong.Since = noLease.Now.Add(-5 * time.Second)
	probeFailing := signals(0, grace+time.Millisecond, serving)
	probeFailing.Probe.Err = errors.New("context deadline exceeded")
	newEndpoint := signals(time.Second, time.Hour, serving)
	newEndpoint.Probe.Added = newEndpoint.Now.Add(-time.Second)
	newEndpoint.Probe.LastAnswer = time.Time{}

	tests := []struct {
		name    string
		s       Signals
		cur     *corev1.NodeCondition
		want    string // status; "" for no verdict
		reason  string
		message string
	}{
		{"both alive", signals(time.Second, time.Second, serving), nil, "True", ReasonReady, ""},
		{"silent just under the grace period", signals(grace, grace, serving), readyTrue, "True", "SomeAgentReason", ""},
		{"lease stale", signals(grace+time.Millisecond, 0, serving), readyTrue, "Unknown", ReasonUnknown, "stopped renewing its Lease"},
		{"probe failing", probeFailing, readyTrue, "Unknown", ReasonUnknown, "has not answered"},
		{"probe not attempted lately (backlog): lease decides", signals(0, grace+time.Second, serving), readyTrue, "True", "SomeAgentReason", ""},
		{"agent answers NOT_SERVING", signals(0, 0, notServing), readyTrue, "False", ReasonNotReady, "NOT_SERVING"},
		{"agent's own False is kept", signals(0, 0, serving), agentFalse, "False", "RuntimeDown", "containerd is down"},
		{"our False clears when serving", signals(0, 0, serving), oursFalse, "True", ReasonReady, ""},
		{"lease only, fresh", leaseOnly, nil, "True", ReasonReady, ""},
		{"lease only, stale", leaseOnlyStale, nil, "Unknown", ReasonUnknown, ""},
		{"a new leader counts silence from its start", newLeader, readyTrue, "True", "SomeAgentReason", ""},
		{"no lease yet within grace: no verdict", noLease, nil, "", "", ""},
		{"no lease at all past grace", noLeaseLong, nil, "Unknown", ReasonUnknown, "no node Lease"},
		{"new endpoint not answered yet: no verdict", newEndpoint, readyTrue, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := Evaluate(tt.s, tt.cur)
			if tt.want == "" {
				if ok {
					t.Fatalf("verdict %+v, want none", v)
				}
				return
			}
			if !ok || v.Status != tt.want || v.Reason != tt.reason || !strings.Contains(v.Message, tt.message) {
				t.Fatalf("verdict %+v (ok %v), want %s/%s with message containing %q", v, ok, tt.want, tt.reason, tt.message)
			}
		})
	}
	s := signals(0, grace+time.Second, serving)
	s.Probe.Err = errors.New("connection refused")
	if v, _ := Evaluate(s, nil); !strings.Contains(v.Message, "connection refused") {
		t.Errorf("message %q does not carry the probe's error", v.Message)
	}
}

func TestSetReady(t *testing.T) {
	st := &corev1.NodeStatus{Conditions: []*corev1.NodeCondition{{Type: "MemoryPressure", Status: "False"}}}
	if !SetReady(st, Verdict{"True", ReasonReady, "ok"}, t0, time.Time{}) {
		t.Fatal("first SetReady reported no change")
	}
	if len(st.Conditions) != 2 || Find(st, "MemoryPressure") == nil {
		t.Fatalf("conditions = %v, want MemoryPressure kept and Ready added", st.Conditions)
	}
	if SetReady(st, Verdict{"True", ReasonReady, "other words"}, t0.Add(time.Second), time.Time{}) {
		t.Error("a changed message alone caused a write")
	}
	if !SetReady(st, Verdict{"Unknown", ReasonUnknown, "silent"}, t0.Add(2*time.Second), t0.Add(time.Second)) {
		t.Fatal("status change reported no change")
	}
	r := Find(st, "Ready")
	if !r.LastTransitionTime.AsTime().Equal(t0.Add(2*time.Second)) || !r.LastHeartbeatTime.AsTime().Equal(t0.Add(time.Second)) {
		t.Errorf("Ready = %v, want transition at t0+2s and heartbeat at t0+1s", r)
	}
	r.LastTransitionTime = timestamppb.New(t0)
	if !SetReady(st, Verdict{"Unknown", "OtherReason", "x"}, t0.Add(3*time.Second), time.Time{}) || !Find(st, "Ready").LastTransitionTime.AsTime().Equal(t0) {
		t.Errorf("a reason change with the same status moved the transition time: %v", Find(st, "Ready"))
	}
}
