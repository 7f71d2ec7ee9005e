package eviction

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/services/health-checker/internal/taints"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func node(ready string, ts ...*corev1.Taint) *corev1.Node {
	return &corev1.Node{
		Metadata: &metav1.ObjectMeta{Name: "n1"},
		Spec:     &corev1.NodeSpec{Taints: ts},
		Status:   &corev1.NodeStatus{Conditions: []*corev1.NodeCondition{{Type: "Ready", Status: ready}}},
	}
}

func taint(key string, added time.Time) *corev1.Taint {
	return &corev1.Taint{Key: key, Effect: taints.NoExecute, TimeAdded: timestamppb.New(added)}
}

type podOpt func(*corev1.Pod)

func owned(kind string) podOpt {
	return func(p *corev1.Pod) {
		p.Metadata.OwnerReferences = []*metav1.OwnerReference{{Kind: kind, Name: "o", Controller: proto.Bool(true)}}
	}
}

func tolerates(key string, secs *int64) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Tolerations = append(p.Spec.Tolerations, &corev1.Toleration{Key: key, Operator: "Exists", Effect: taints.NoExecute, TolerationSeconds: secs})
	}
}

func terminating(p *corev1.Pod) { p.Metadata.DeletionTimestamp = timestamppb.New(t0) }

func phase(ph string) podOpt { return func(p *corev1.Pod) { p.Status = &corev1.PodStatus{Phase: ph} } }

func pod(opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{Metadata: &metav1.ObjectMeta{Namespace: "default", Name: "p", Uid: "u"}, Spec: &corev1.PodSpec{NodeName: "n1"}}
	for _, o := range opts {
		o(p)
	}
	return p
}

func secs(n int64) *int64 { return &n }

func TestPlan(t *testing.T) {
	cfg := Config{DefaultTolerationSeconds: 3}
	unreachable := node("Unknown", taint(taints.Unreachable, t0))
	notReady := node("False", taint(taints.NotReady, t0))
	outOfService := node("Unknown", taint(taints.Unreachable, t0), taint(taints.OutOfService, t0.Add(time.Hour)))
	tests := []struct {
		name     string
		node     *corev1.Node
		pod      *corev1.Pod
		at       time.Duration
		want     Action
		wantDue  time.Duration // for Keep; -1 forever
		operator bool
	}{
		{"default toleration not over", unreachable, pod(owned("ReplicaSet")), 2999 * time.Millisecond, Keep, 3 * time.Second, false},
		{"default toleration over: forced on an unreachable node", unreachable, pod(owned("ReplicaSet")), 3 * time.Second, ForceDelete, 0, false},
		{"graceful on a node that answers but is not ready", notReady, pod(owned("ReplicaSet")), 3 * time.Second, Evict, 0, false},
		{"already terminating on a not-ready node is left to its agent", notReady, pod(owned("ReplicaSet"), terminating), time.Minute, Keep, 0, false},
		{"terminating on an unreachable node is forced", unreachable, pod(owned("ReplicaSet"), terminating), 3 * time.Second, ForceDelete, 0, false},
		{"own tolerationSeconds", unreachable, pod(tolerates(taints.Unreachable, secs(10))), 9 * time.Second, Keep, 10 * time.Second, false},
		{"own tolerationSeconds over", unreachable, pod(tolerates(taints.Unreachable, secs(10))), 10 * time.Second, ForceDelete, 0, false},
		{"smallest of several matching tolerations", unreachable, pod(tolerates(taints.Unreachable, secs(10)), tolerates("", secs(5))), 5 * time.Second, ForceDelete, 0, false},
		{"zero tolerationSeconds", unreachable, pod(tolerates(taints.Unreachable, secs(0))), 0, ForceDelete, 0, false},
		{"toleration without seconds: forever", unreachable, pod(tolerates(taints.Unreachable, nil)), 24 * time.Hour, Keep, -1, false},
		{"a toleration of another taint does not help", unreachable, pod(tolerates(taints.NotReady, nil)), 3 * time.Second, ForceDelete, 0, false},
		{"DaemonSet pods stay", unreachable, pod(owned("DaemonSet")), 24 * time.Hour, Keep, -1, false},
		{"StatefulSet pod is only marked", unreachable, pod(owned("StatefulSet")), 3 * time.Second, Evict, 0, false},
		{"marked StatefulSet pod waits", unreachable, pod(owned("StatefulSet"), terminating), 24 * time.Hour, Keep, 0, false},
		{"out-of-service forces the StatefulSet pod", outOfService, pod(owned("StatefulSet"), terminating), time.Hour, ForceDelete, 0, true},
		{"out-of-service is not tolerated by DaemonSet pods", outOfService, pod(owned("DaemonSet")), time.Hour, ForceDelete, 0, true},
		{"out-of-service counts from its own time", outOfService, pod(owned("DaemonSet")), 59 * time.Minute, Keep, time.Hour, false},
		{"finished pods are left alone", unreachable, pod(phase("Succeeded")), time.Hour, Keep, 0, false},
		{"a NoSchedule taint does not evict", node("True", &corev1.Taint{Key: "x", Effect: taints.NoSchedule}), pod(), time.Hour, Keep, -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := Plan(cfg, tt.node, "n1", []*corev1.Pod{tt.pod}, t0.Add(tt.at))
			if tt.pod.GetStatus().GetPhase() == "Succeeded" {
				if len(ds) != 0 {
					t.Fatalf("plan = %+v, want nothing", ds)
				}
				return
			}
			if len(ds) != 1 {
				t.Fatalf("plan has %d decisions, want 1", len(ds))
			}
			d := ds[0]
			if d.Action != tt.want || d.Operator != tt.operator {
				t.Fatalf("action = %v (operator %v, %s), want %v (operator %v)", d.Action, d.Operator, d.Reason, tt.want, tt.operator)
			}
			if tt.want == Keep && tt.wantDue != 0 {
				switch {
				case tt.wantDue < 0 && !d.Due.IsZero():
					t.Errorf("due %v, want forever", d.Due)
				case tt.wantDue > 0 && !d.Due.Equal(t0.Add(tt.wantDue)):
					t.Errorf("due %v, want %v", d.Due, t0.Add(tt.wantDue))
				}
			}
		})
	}
}

func TestPlanDeletedNode(t *testing.T) {
	ds := Plan(Config{}, nil, "gone", []*corev1.Pod{pod(owned("StatefulSet")), pod(owned("DaemonSet"))}, t0)
	for _, d := range ds {
		if d.Action != ForceDelete || !d.Operator {
			t.Errorf("pod of a deleted node: %v operator=%v, want ForceDelete by operator", d.Action, d.Operator)
		}
	}
	if len(ds) != 2 {
		t.Errorf("got %d decisions, want 2", len(ds))
	}
}

func TestTolerates(t *testing.T) {
	tn := &corev1.Taint{Key: "k", Value: "v", Effect: taints.NoExecute}
	for _, tt := range []struct {
		tol  *corev1.Toleration
		want bool
	}{
		{&corev1.Toleration{Key: "k", Value: "v"}, true},
		{&corev1.Toleration{Key: "k", Operator: "Equal", Value: "w"}, false},
		{&corev1.Toleration{Key: "k", Operator: "Exists"}, true},
		{&corev1.Toleration{Operator: "Exists"}, true},
		{&corev1.Toleration{Key: "k", Operator: "Exists", Effect: taints.NoSchedule}, false},
		{&corev1.Toleration{Key: "other", Operator: "Exists"}, false},
		{&corev1.Toleration{Value: "v"}, false},
	} {
		if got := Tolerates(tt.tol, tn); got != tt.want {
			t.Errorf("Tolerates(%v) = %v, want %v", tt.tol, got, tt.want)
		}
	}
}

func TestBrake(t *testing.T) {
	for _, tt := range []struct {
		total, unhealthy int
		want             bool
	}{
		{10, 5, false}, {10, 6, true}, {5, 3, true}, {2, 1, false}, {1, 1, true}, {0, 0, false}, {100, 55, false}, {100, 56, true},
	} {
		if got := Brake(tt.total, tt.unhealthy, DefaultUnhealthyThreshold); got != tt.want {
			t.Errorf("Brake(%d, %d) = %v, want %v", tt.total, tt.unhealthy, got, tt.want)
		}
	}
}
