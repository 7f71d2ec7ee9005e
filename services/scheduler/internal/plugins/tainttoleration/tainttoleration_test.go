package tainttoleration_test

import (
	"testing"

	"bosun.dev/services/scheduler/internal/framework"
	"bosun.dev/services/scheduler/internal/plugins/tainttoleration"
	st "bosun.dev/services/scheduler/internal/schedtest"
)

func TestFilter(t *testing.T) {
	pl, _ := tainttoleration.New(nil, nil)
	h := st.NewHandle(
		st.NodeInfo(st.Node("clean").Obj()),
		st.NodeInfo(st.Node("gpu").Taint("dedicated", "gpu", "NoSchedule").Obj()),
		st.NodeInfo(st.Node("evicting").Taint("node.kubernetes.io/unreachable", "", "NoExecute").Obj()),
		st.NodeInfo(st.Node("soft").Taint("spot", "true", "PreferNoSchedule").Obj()),
	)
	tests := []struct {
		name string
		pod  *st.PodWrapper
		fits map[string]bool
	}{
		{name: "no tolerations", pod: st.Pod("p"), fits: map[string]bool{"clean": true, "gpu": false, "evicting": false, "soft": true}},
		{name: "equal toleration", pod: st.Pod("p").Toleration("dedicated", "Equal", "gpu", "NoSchedule"),
			fits: map[string]bool{"gpu": true, "evicting": false}},
		{name: "wrong value", pod: st.Pod("p").Toleration("dedicated", "Equal", "cpu", "NoSchedule"), fits: map[string]bool{"gpu": false}},
		{name: "exists with empty effect tolerates every effect", pod: st.Pod("p").Toleration("dedicated", "Exists", "", ""),
			fits: map[string]bool{"gpu": true}},
		{name: "NoExecute respected and tolerable", pod: st.Pod("p").Toleration("node.kubernetes.io/unreachable", "Exists", "", "NoExecute"),
			fits: map[string]bool{"evicting": true, "gpu": false}},
		{name: "empty key with Exists tolerates everything", pod: st.Pod("p").Toleration("", "Exists", "", ""),
			fits: map[string]bool{"gpu": true, "evicting": true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := st.FilterAll(t, pl, h, tc.pod.Info())
			for node, fits := range tc.fits {
				if got[node].IsSuccess() != fits {
					t.Errorf("node %s: got %v, want fits=%v", node, got[node], fits)
				}
			}
		})
	}
	got := st.FilterAll(t, pl, h, st.Pod("p").Info())["gpu"]
	if got.Code() != framework.UnschedulableAndUnresolvable || got.Message() != "node(s) had untolerated taint {dedicated: gpu}" {
		t.Fatalf("gpu: got %v", got)
	}
}

func TestScorePreferNoSchedule(t *testing.T) {
	pl, _ := tainttoleration.New(nil, nil)
	h := st.NewHandle(
		st.NodeInfo(st.Node("clean").Obj()),
		st.NodeInfo(st.Node("one").Taint("spot", "true", "PreferNoSchedule").Obj()),
		st.NodeInfo(st.Node("two").Taint("spot", "true", "PreferNoSchedule").Taint("old", "", "PreferNoSchedule").Obj()),
	)
	tests := []struct {
		name string
		pod  *st.PodWrapper
		want map[string]int64
	}{
		{name: "fewer intolerable taints score higher", pod: st.Pod("p"), want: map[string]int64{"clean": 100, "one": 50, "two": 0}},
		{name: "tolerated taints do not count", pod: st.Pod("p").Toleration("spot", "Equal", "true", "PreferNoSchedule"),
			want: map[string]int64{"clean": 100, "one": 100, "two": 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := st.ScoreAll(t, pl.(framework.ScorePlugin), h, tc.pod.Info())
			for n, w := range tc.want {
				if got[n] != w {
					t.Errorf("node %s: score %d, want %d", n, got[n], w)
				}
			}
		})
	}
}
