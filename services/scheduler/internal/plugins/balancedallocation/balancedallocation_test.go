package balancedallocation_test

import (
	"testing"

	"bosun.dev/services/scheduler/internal/framework"
	"bosun.dev/services/scheduler/internal/plugins/balancedallocation"
	st "bosun.dev/services/scheduler/internal/schedtest"
)

func TestScore(t *testing.T) {
	pl, _ := balancedallocation.New(nil, nil)
	// Node: 4 cpu, 8Gi.
	tests := []struct {
		name string
		pod  *st.PodWrapper
		want int64
	}{
		{name: "same share of both", pod: st.Pod("p").Req("2", "4Gi"), want: 100},
		{name: "all cpu no memory", pod: st.Pod("p").Req("4", "1Mi"), want: 50},
		{name: "a quarter apart", pod: st.Pod("p").Req("3", "2Gi"), want: 75},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := st.NewHandle(st.NodeInfo(st.Node("n").Obj()))
			if got := st.ScoreAll(t, pl.(framework.ScorePlugin), h, tc.pod.Info())["n"]; got != tc.want {
				t.Fatalf("score %d, want %d", got, tc.want)
			}
		})
	}
}
