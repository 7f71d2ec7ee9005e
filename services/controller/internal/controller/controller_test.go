package controller

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/apimachinery/pkg/labels"
	clocktesting "k8s.io/utils/clock/testing"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
)

func TestExpectationsSettleCreationsAndDeletionsOnce(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1_000_000, 0))
	e := NewExpectations(clk)
	if !e.Satisfied("rs") {
		t.Fatal("fresh expectations are not satisfied")
	}
	e.ExpectCreations("rs", 2)
	e.CreationObserved("rs")
	if e.Satisfied("rs") {
		t.Fatal("satisfied with one of two creations seen")
	}
	e.CreationObserved("rs")
	e.CreationObserved("rs") // a late duplicate must not go negative and mask later work
	if !e.Satisfied("rs") {
		t.Fatal("not satisfied after both creations")
	}
	e.ExpectDeletions("rs", []string{"ns/a", "ns/b"})
	e.DeletionObserved("rs", "ns/a")
	e.DeletionObserved("rs", "ns/a") // marked, then removed: one deletion
	if e.Satisfied("rs") {
		t.Fatal("satisfied with b's deletion unseen")
	}
	e.DeletionObserved("rs", "ns/b")
	if !e.Satisfied("rs") {
		t.Fatal("not satisfied after both deletions")
	}
	e.ExpectCreations("rs", 1)
	clk.Step(ExpectationsTimeout + time.Second)
	if !e.Satisfied("rs") {
		t.Fatal("expectations did not expire")
	}
}

func TestScaledValue(t *testing.T) {
	for _, tc := range []struct {
		v      *metav1.IntOrString
		total  int
		up     bool
		want   int
		wantOK bool
	}{
		{nil, 10, true, 0, true},
		{&metav1.IntOrString{IntVal: 3}, 10, true, 3, true},
		{&metav1.IntOrString{StrVal: "25%"}, 10, true, 3, true},
		{&metav1.IntOrString{StrVal: "25%"}, 10, false, 2, true},
		{&metav1.IntOrString{StrVal: "25"}, 10, false, 0, false},
		{&metav1.IntOrString{StrVal: "x%"}, 10, false, 0, false},
	} {
		got, err := ScaledValue(tc.v, tc.total, tc.up)
		if (err == nil) != tc.wantOK || got != tc.want {
			t.Errorf("ScaledValue(%v, %d, %v) = %d, %v", tc.v, tc.total, tc.up, got, err)
		}
	}
}

func TestSelector(t *testing.T) {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"},
		MatchExpressions: []*metav1.LabelSelectorRequirement{{Key: "tier", Operator: "In", Values: []string{"a", "b"}}, {Key: "legacy", Operator: "DoesNotExist"}}}
	for lbls, want := range map[string]bool{"app=web,tier=a": true, "app=web,tier=c": false, "app=web,tier=b,legacy=1": false, "tier=a": false} {
		set, _ := labels.ConvertSelectorToLabelsMap(lbls)
		if got := Matches(sel, set); got != want {
			t.Errorf("Matches(%s) = %v, want %v", lbls, got, want)
		}
	}
	if Matches(nil, map[string]string{"a": "b"}) || Matches(&metav1.LabelSelector{}, map[string]string{"a": "b"}) {
		t.Error("an empty selector matched")
	}
	if _, err := Selector(&metav1.LabelSelector{MatchExpressions: []*metav1.LabelSelectorRequirement{{Key: "k", Operator: "Near"}}}); err == nil {
		t.Error("unknown operator accepted")
	}
}

func TestPodAvailability(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	pod := &corev1.Pod{Status: &corev1.PodStatus{Phase: "Running", Conditions: []*corev1.PodCondition{
		{Type: "Ready", Status: "True", LastTransitionTime: timestamppb.New(now.Add(-5 * time.Second))}}}}
	if !IsPodReady(pod) || !IsPodAvailable(pod, 5, now) || IsPodAvailable(pod, 6, now) {
		t.Fatal("availability around minReadySeconds is wrong")
	}
	if d := AvailableIn(pod, 8, now); d != 3*time.Second {
		t.Fatalf("AvailableIn = %v, want 3s", d)
	}
	pod.Metadata = &metav1.ObjectMeta{DeletionTimestamp: timestamppb.New(now)}
	if IsPodActive(pod) {
		t.Fatal("a pod being deleted counts as active")
	}
}

type recordingConn struct{ calls []string }

func (r *recordingConn) Invoke(_ context.Context, method string, _, _ any, _ ...grpc.CallOption) error {
	r.calls = append(r.calls, method)
	return nil
}

func (r *recordingConn) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, nil
}

func TestGatedConnGatesOnlyWrites(t *testing.T) {
	inner := &recordingConn{}
	refused := 0
	c := GatedConn{ClientConnInterface: inner, Gate: func(context.Context) error { refused++; return context.Canceled }}
	for _, m := range []string{"/bosun.core.v1.PodService/GetPod", "/bosun.core.v1.PodService/ListPods", "/bosun.core.v1.PodService/CreatePod",
		"/bosun.core.v1.PodService/DeletePod", "/bosun.core.v1.PodService/UpdatePodStatus", "/bosun.core.v1.PodService/BindPod"} {
		_ = c.Invoke(context.Background(), m, nil, nil)
	}
	if refused != 4 || len(inner.calls) != 2 {
		t.Fatalf("gate asked %d times, %d calls passed (%v); want 4 and the 2 reads", refused, len(inner.calls), inner.calls)
	}
}
