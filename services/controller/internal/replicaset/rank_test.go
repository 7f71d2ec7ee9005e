package replicaset

import (
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
)

func pod(name, node, phase string, ready bool, age time.Duration) *corev1.Pod {
	st := "False"
	if ready {
		st = "True"
	}
	return &corev1.Pod{
		Metadata: &metav1.ObjectMeta{Name: name, CreationTimestamp: timestamppb.New(time.Unix(1_000_000, 0).Add(-age))},
		Spec:     &corev1.PodSpec{NodeName: node},
		Status:   &corev1.PodStatus{Phase: phase, Conditions: []*corev1.PodCondition{{Type: "Ready", Status: st}}},
	}
}

func TestRankDeletesUnscheduledThenNotReadyThenNewest(t *testing.T) {
	pods := []*corev1.Pod{
		pod("old-ready", "n1", "Running", true, time.Hour),
		pod("new-ready", "n1", "Running", true, time.Minute),
		pod("not-ready", "n1", "Running", false, 2*time.Hour),
		pod("pending", "n2", "Pending", false, 3*time.Hour),
		pod("unscheduled", "", "Pending", false, 4*time.Hour),
	}
	want := []string{"unscheduled", "pending", "not-ready", "new-ready", "old-ready"}
	for _, order := range [][]int{{0, 1, 2, 3, 4}, {4, 3, 2, 1, 0}, {2, 0, 4, 1, 3}} {
		in := make([]*corev1.Pod, len(order))
		for i, j := range order {
			in[i] = pods[j]
		}
		got := Rank(in)
		for i := range want {
			if got[i].Metadata.Name != want[i] {
				var names []string
				for _, p := range got {
					names = append(names, p.Metadata.Name)
				}
				t.Fatalf("Rank(%v) = %v, want %v", order, names, want)
			}
		}
		if in[0] != pods[order[0]] {
			t.Fatal("Rank changed its input")
		}
	}
}

func TestSlowStartStopsAtTheFirstFailingBatch(t *testing.T) {
	var calls atomic.Int32
	n, err := slowStart(100, func() error {
		if calls.Add(1) > 3 {
			return errFailed
		}
		return nil
	})
	// Batches 1 and 2 succeed (3 calls), batch 4 fails: 7 calls, 3 created.
	if err == nil || n != 3 || calls.Load() != 7 {
		t.Fatalf("slowStart: created %d in %d calls, err %v; want 3 in 7 with an error", n, calls.Load(), err)
	}
	n, err = slowStart(10, func() error { return nil })
	if err != nil || n != 10 {
		t.Fatalf("slowStart(10) = %d, %v", n, err)
	}
}

type failed struct{}

func (failed) Error() string { return "failed" }

var errFailed = failed{}
