package noderesourcesfit_test

import (
	"slices"
	"testing"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/scheduler/internal/framework"
	"bosun.dev/services/scheduler/internal/plugins/noderesourcesfit"
	st "bosun.dev/services/scheduler/internal/schedtest"
)

func TestFit(t *testing.T) {
	node := st.Node("n").Capacity("2", "4Gi", "3").Obj()
	tests := []struct {
		name     string
		pod      *corev1.Pod
		existing []*corev1.Pod
		want     []string // reasons; nil fits
	}{
		{name: "fits an empty node", pod: st.Pod("p").Req("1", "1Gi").Obj()},
		{name: "fits exactly", pod: st.Pod("p").Req("1", "1Gi").Obj(), existing: []*corev1.Pod{st.Pod("a").Req("1", "3Gi").Obj()}},
		{name: "cpu short", pod: st.Pod("p").Req("1500m", "1Gi").Obj(), existing: []*corev1.Pod{st.Pod("a").Req("1", "1Gi").Obj()},
			want: []string{noderesourcesfit.ReasonInsufficientCPU}},
		{name: "cpu and memory short", pod: st.Pod("p").Req("3", "5Gi").Obj(),
			want: []string{noderesourcesfit.ReasonInsufficientCPU, noderesourcesfit.ReasonInsufficientMemory}},
		{name: "pod count full", pod: st.Pod("p").Obj(),
			existing: []*corev1.Pod{st.Pod("a").Obj(), st.Pod("b").Obj(), st.Pod("c").Obj()},
			want:     []string{noderesourcesfit.ReasonTooManyPods}},
		{name: "a pod requesting nothing fits a full node", pod: st.Pod("p").Obj(), existing: []*corev1.Pod{st.Pod("a").Req("2", "4Gi").Obj()}},
		{name: "init container larger than the containers counts", pod: st.Pod("p").Req("100m", "100Mi").InitReq("1500m", "100Mi").Obj(),
			existing: []*corev1.Pod{st.Pod("a").Req("1", "1Gi").Obj()}, want: []string{noderesourcesfit.ReasonInsufficientCPU}},
	}
	pl, err := noderesourcesfit.New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := st.NewHandle(st.NodeInfo(node, tc.existing...))
			got := st.FilterAll(t, pl, h, framework.NewPodInfo(tc.pod))["n"]
			if tc.want == nil {
				if !got.IsSuccess() {
					t.Fatalf("got %v, want success", got)
				}
				return
			}
			if got.Code() != framework.Unschedulable || !slices.Equal(got.Reasons(), tc.want) {
				t.Fatalf("got %v, want Unschedulable %v", got, tc.want)
			}
		})
	}
}

func TestRefusesArgs(t *testing.T) {
	if _, err := noderesourcesfit.New([]byte(`{"x": 1}`), nil); err == nil {
		t.Fatal("args accepted by a plugin that takes none")
	}
}
