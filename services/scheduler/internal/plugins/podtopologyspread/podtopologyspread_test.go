package podtopologyspread_test

import (
	"testing"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/scheduler/internal/framework"
	"bosun.dev/services/scheduler/internal/plugins/podtopologyspread"
	st "bosun.dev/services/scheduler/internal/schedtest"
)

const zone = "topology.kubernetes.io/zone"

func web(name string) *corev1.Pod { return st.Pod(name).Label("app", "web").Obj() }

// Zone a: a1, a2; zone b: b1; zone c: c1 (labelled "gpu"); n1 has no zone.
func cluster(pods map[string][]*corev1.Pod) *st.Handle {
	return st.NewHandle(
		st.NodeInfo(st.Node("a1").Label(zone, "a").Obj(), pods["a1"]...),
		st.NodeInfo(st.Node("a2").Label(zone, "a").Obj(), pods["a2"]...),
		st.NodeInfo(st.Node("b1").Label(zone, "b").Obj(), pods["b1"]...),
		st.NodeInfo(st.Node("c1").Label(zone, "c").Label("gpu", "yes").Obj(), pods["c1"]...),
		st.NodeInfo(st.Node("n1").Obj(), pods["n1"]...),
	)
}

func TestFilter(t *testing.T) {
	tests := []struct {
		name string
		pods map[string][]*corev1.Pod
		pod  *st.PodWrapper
		fits []string
	}{
		{name: "no constraints", pod: st.Pod("p"), fits: []string{"a1", "a2", "b1", "c1", "n1"}},
		{name: "even zones: any zoned node", pod: st.Pod("p").Label("app", "web").Spread(1, zone, "DoNotSchedule", "app", "web"),
			fits: []string{"a1", "a2", "b1", "c1"}},
		{name: "zone a ahead by one: not a", pods: map[string][]*corev1.Pod{"a1": {web("w1")}},
			pod: st.Pod("p").Label("app", "web").Spread(1, zone, "DoNotSchedule", "app", "web"), fits: []string{"b1", "c1"}},
		{name: "maxSkew 2 allows it", pods: map[string][]*corev1.Pod{"a1": {web("w1")}},
			pod: st.Pod("p").Label("app", "web").Spread(2, zone, "DoNotSchedule", "app", "web"), fits: []string{"a1", "a2", "b1", "c1"}},
		{name: "pod not matching its own selector", pods: map[string][]*corev1.Pod{"a1": {web("w1")}},
			pod: st.Pod("p").Spread(1, zone, "DoNotSchedule", "app", "web"), fits: []string{"a1", "a2", "b1", "c1"}},
		{name: "ScheduleAnyway does not filter", pods: map[string][]*corev1.Pod{"a1": {web("w1"), web("w2")}},
			pod: st.Pod("p").Label("app", "web").Spread(1, zone, "ScheduleAnyway", "app", "web"), fits: []string{"a1", "a2", "b1", "c1", "n1"}},
		{name: "domains outside the pod's node selector do not count", pods: map[string][]*corev1.Pod{"a1": {web("w1")}},
			pod:  st.Pod("p").Label("app", "web").NodeSelector("gpu", "yes").Spread(1, zone, "DoNotSchedule", "app", "web"),
			fits: []string{"a1", "a2", "b1", "c1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := cluster(tc.pods)
			pl, _ := podtopologyspread.New(nil, h)
			got := st.FilterAll(t, pl, h, tc.pod.Info())
			want := map[string]bool{}
			for _, n := range tc.fits {
				want[n] = true
			}
			for node, s := range got {
				if s.IsSuccess() != want[node] {
					t.Errorf("node %s: got %v, want fits=%v", node, s, want[node])
				}
			}
		})
	}
	h := cluster(nil)
	pl, _ := podtopologyspread.New(nil, h)
	got := st.FilterAll(t, pl, h, st.Pod("p").Spread(1, zone, "DoNotSchedule", "app", "web").Info())
	if got["n1"].Code() != framework.UnschedulableAndUnresolvable || got["n1"].Message() != podtopologyspread.ErrReasonNodeLabelNotMatch {
		t.Fatalf("node without the key: got %v", got["n1"])
	}
}

func TestScoreSpreadsSoftly(t *testing.T) {
	h := cluster(map[string][]*corev1.Pod{"a1": {web("w1"), web("w2")}, "b1": {web("w3")}})
	pl, _ := podtopologyspread.New(nil, h)
	got := st.ScoreAll(t, pl.(framework.ScorePlugin), h, st.Pod("p").Label("app", "web").Spread(1, zone, "ScheduleAnyway", "app", "web").Info())
	if !(got["c1"] > got["b1"] && got["b1"] > got["a2"] && got["a1"] == got["a2"]) {
		t.Fatalf("scores do not favour emptier zones: %v", got)
	}
	if got["n1"] != 0 {
		t.Fatalf("node without the key scored %d", got["n1"])
	}
}
