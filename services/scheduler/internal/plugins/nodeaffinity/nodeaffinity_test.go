package nodeaffinity_test

import (
	"testing"

	"bosun.dev/services/scheduler/internal/framework"
	"bosun.dev/services/scheduler/internal/plugins/nodeaffinity"
	st "bosun.dev/services/scheduler/internal/schedtest"
)

func handle() *st.Handle {
	return st.NewHandle(
		st.NodeInfo(st.Node("a").Label("zone", "z1").Label("disk", "ssd").Label("cores", "8").Obj()),
		st.NodeInfo(st.Node("b").Label("zone", "z2").Label("cores", "32").Obj()),
		st.NodeInfo(st.Node("c").Obj()),
	)
}

func TestFilter(t *testing.T) {
	pl, _ := nodeaffinity.New(nil, nil)
	tests := []struct {
		name string
		pod  *st.PodWrapper
		fits []string
	}{
		{name: "no constraints", pod: st.Pod("p"), fits: []string{"a", "b", "c"}},
		{name: "node selector", pod: st.Pod("p").NodeSelector("zone", "z1"), fits: []string{"a"}},
		{name: "node selector with two labels", pod: st.Pod("p").NodeSelector("zone", "z1").NodeSelector("disk", "hdd")},
		{name: "In", pod: st.Pod("p").RequiredNodeAffinity("zone", "In", "z1", "z2"), fits: []string{"a", "b"}},
		{name: "NotIn matches nodes without the label", pod: st.Pod("p").RequiredNodeAffinity("zone", "NotIn", "z1"), fits: []string{"b", "c"}},
		{name: "Exists", pod: st.Pod("p").RequiredNodeAffinity("disk", "Exists"), fits: []string{"a"}},
		{name: "DoesNotExist", pod: st.Pod("p").RequiredNodeAffinity("zone", "DoesNotExist"), fits: []string{"c"}},
		{name: "Gt", pod: st.Pod("p").RequiredNodeAffinity("cores", "Gt", "16"), fits: []string{"b"}},
		{name: "Lt", pod: st.Pod("p").RequiredNodeAffinity("cores", "Lt", "16"), fits: []string{"a"}},
		{name: "terms are ORed", pod: st.Pod("p").RequiredNodeAffinity("zone", "In", "z2").RequiredNodeAffinity("disk", "Exists"), fits: []string{"a", "b"}},
		{name: "selector and affinity are ANDed", pod: st.Pod("p").NodeSelector("zone", "z1").RequiredNodeAffinity("zone", "In", "z2")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := st.FilterAll(t, pl, handle(), tc.pod.Info())
			want := map[string]bool{}
			for _, n := range tc.fits {
				want[n] = true
			}
			for node, s := range got {
				if s.IsSuccess() != want[node] {
					t.Errorf("node %s: got %v, want fits=%v", node, s, want[node])
				}
				if !s.IsSuccess() && (s.Code() != framework.UnschedulableAndUnresolvable || s.Message() != nodeaffinity.ErrReason) {
					t.Errorf("node %s: got %v", node, s)
				}
			}
		})
	}
}

func TestScorePreferred(t *testing.T) {
	pl, _ := nodeaffinity.New(nil, nil)
	sp := pl.(framework.ScorePlugin)
	if got := st.ScoreAll(t, sp, handle(), st.Pod("p").Info()); got != nil {
		t.Fatalf("pod without preferences was scored: %v", got)
	}
	pod := st.Pod("p").PreferredNodeAffinity(10, "zone", "In", "z1").PreferredNodeAffinity(30, "cores", "Gt", "4")
	got := st.ScoreAll(t, sp, handle(), pod.Info())
	want := map[string]int64{"a": 100, "b": 75, "c": 0} // 40, 30, 0 scaled to the maximum
	for n, w := range want {
		if got[n] != w {
			t.Errorf("node %s: score %d, want %d", n, got[n], w)
		}
	}
}
