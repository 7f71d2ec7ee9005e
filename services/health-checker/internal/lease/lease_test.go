package lease

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	clocktesting "k8s.io/utils/clock/testing"

	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
)

func TestTrackerMeasuresOnItsOwnClock(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	tr := NewTracker(clk)
	future := clk.Now().Add(time.Hour) // a node whose clock runs ahead
	l := &coordinationv1.Lease{Metadata: &metav1.ObjectMeta{Name: "n1", ResourceVersion: "5"},
		Spec: &coordinationv1.LeaseSpec{RenewTime: timestamppb.New(future)}}
	tr.Observe(l)
	o, ok := tr.Get("n1")
	if !ok || !o.Seen.Equal(clk.Now()) || !o.RenewTime.Equal(future) {
		t.Fatalf("observation %+v, want seen now with the node's renew time kept for messages", o)
	}
	clk.SetTime(clk.Now().Add(10 * time.Second))
	tr.Observe(l) // the same revision again: a relist, not a renewal
	if o2, _ := tr.Get("n1"); !o2.Seen.Equal(o.Seen) {
		t.Errorf("an unchanged Lease restarted freshness: %v -> %v", o.Seen, o2.Seen)
	}
	l2 := &coordinationv1.Lease{Metadata: &metav1.ObjectMeta{Name: "n1", ResourceVersion: "6"}}
	tr.Observe(l2)
	if o3, _ := tr.Get("n1"); !o3.Seen.Equal(clk.Now()) {
		t.Errorf("a renewal was not recorded: %+v", o3)
	}
	tr.Forget("n1")
	if _, ok := tr.Get("n1"); ok {
		t.Error("Forget kept the node")
	}
}
