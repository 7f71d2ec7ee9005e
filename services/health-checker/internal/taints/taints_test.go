package taints

import (
	"testing"
	"time"

	corev1 "bosun.dev/gen/bosun/core/v1"
)

func keys(s *corev1.NodeSpec) []string {
	var out []string
	for _, t := range s.Taints {
		out = append(out, t.Key+":"+t.Effect)
	}
	return out
}

func TestReconcile(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	user := &corev1.Taint{Key: "dedicated", Value: "gpu", Effect: NoSchedule}
	oos := &corev1.Taint{Key: OutOfService, Effect: NoExecute}
	spec := &corev1.NodeSpec{Taints: []*corev1.Taint{user, oos}}

	if Reconcile(spec, "True", t0) {
		t.Errorf("a Ready node without lifecycle taints changed: %v", keys(spec))
	}
	if !Reconcile(spec, "Unknown", t0) || !Has(spec, Unreachable, NoExecute) || len(spec.Taints) != 3 {
		t.Fatalf("Unknown: taints %v, want the user's, out-of-service and unreachable", keys(spec))
	}
	if Reconcile(spec, "Unknown", t0.Add(time.Minute)) || !Find(spec, Unreachable, NoExecute).TimeAdded.AsTime().Equal(t0) {
		t.Errorf("a second pass re-added the taint or moved its time: %v", spec.Taints)
	}
	if !Reconcile(spec, "False", t0) || Has(spec, Unreachable, NoExecute) || !Has(spec, NotReady, NoExecute) {
		t.Errorf("False: taints %v, want not-ready instead of unreachable", keys(spec))
	}
	if !Reconcile(spec, "True", t0) || Has(spec, NotReady, NoExecute) || len(spec.Taints) != 2 {
		t.Errorf("recovered: taints %v, want only the user's and out-of-service", keys(spec))
	}
	if !OutOfServiceSet(&corev1.Node{Spec: spec}) {
		t.Error("OutOfServiceSet missed the taint")
	}
}
