package mostallocated_test

import (
	"testing"

	"bosun.dev/services/scheduler/internal/framework"
	"bosun.dev/services/scheduler/internal/plugins/mostallocated"
	st "bosun.dev/services/scheduler/internal/schedtest"
)

func TestScore(t *testing.T) {
	pl, _ := mostallocated.New(nil, nil)
	h := st.NewHandle(st.NodeInfo(st.Node("busy").Obj(), st.Pod("a").Req("3", "6Gi").Obj()), st.NodeInfo(st.Node("idle").Obj()))
	tests := []struct {
		name string
		pod  *st.PodWrapper
		want map[string]int64
	}{
		{name: "packs onto the busier node", pod: st.Pod("p").Req("1", "2Gi"), want: map[string]int64{"busy": 100, "idle": 25}},
		{name: "over capacity scores the maximum", pod: st.Pod("p").Req("2", "4Gi"), want: map[string]int64{"busy": 100, "idle": 50}},
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
