package leastallocated_test

import (
	"testing"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/scheduler/internal/framework"
	"bosun.dev/services/scheduler/internal/plugins/leastallocated"
	st "bosun.dev/services/scheduler/internal/schedtest"
)

func TestScore(t *testing.T) {
	pl, _ := leastallocated.New(nil, nil)
	tests := []struct {
		name     string
		pod      *st.PodWrapper
		existing []*corev1.Pod
		want     int64
	}{
		// Node: 4 cpu, 8Gi.
		{name: "empty node, small pod", pod: st.Pod("p").Req("1", "2Gi"), want: 75},
		{name: "half used", pod: st.Pod("p").Req("1", "2Gi"), existing: []*corev1.Pod{st.Pod("a").Req("1", "2Gi").Obj()}, want: 50},
		{name: "cpu and memory averaged", pod: st.Pod("p").Req("2", "0"), existing: []*corev1.Pod{st.Pod("a").Req("2", "8Gi").Obj()},
			want: (0 + 0) / 2},
		{name: "requests nothing counts defaults", pod: st.Pod("p"), want: (97 + 97) / 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := st.NewHandle(st.NodeInfo(st.Node("n").Obj(), tc.existing...))
			if got := st.ScoreAll(t, pl.(framework.ScorePlugin), h, tc.pod.Info())["n"]; got != tc.want {
				t.Fatalf("score %d, want %d", got, tc.want)
			}
		})
	}
}

func TestPrefersEmptierNode(t *testing.T) {
	pl, _ := leastallocated.New(nil, nil)
	h := st.NewHandle(st.NodeInfo(st.Node("busy").Obj(), st.Pod("a").Req("3", "6Gi").Obj()), st.NodeInfo(st.Node("idle").Obj()))
	got := st.ScoreAll(t, pl.(framework.ScorePlugin), h, st.Pod("p").Req("500m", "1Gi").Info())
	if got["idle"] <= got["busy"] {
		t.Fatalf("idle %d <= busy %d", got["idle"], got["busy"])
	}
}
