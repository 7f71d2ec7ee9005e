package nodeunschedulable_test

import (
	"testing"

	"bosun.dev/services/scheduler/internal/framework"
	"bosun.dev/services/scheduler/internal/plugins/nodeunschedulable"
	st "bosun.dev/services/scheduler/internal/schedtest"
)

func TestNodeUnschedulable(t *testing.T) {
	pl, _ := nodeunschedulable.New(nil, nil)
	h := st.NewHandle(st.NodeInfo(st.Node("open").Obj()), st.NodeInfo(st.Node("cordoned").Unschedulable().Obj()))
	tests := []struct {
		name string
		pod  *st.PodWrapper
		fits map[string]bool
	}{
		{name: "plain pod avoids the cordoned node", pod: st.Pod("p"), fits: map[string]bool{"open": true, "cordoned": false}},
		{name: "pod tolerating the cordon taint goes anywhere", pod: st.Pod("p").Toleration(nodeunschedulable.TaintKey, "Exists", "", "NoSchedule"),
			fits: map[string]bool{"open": true, "cordoned": true}},
		{name: "tolerating another effect does not help", pod: st.Pod("p").Toleration(nodeunschedulable.TaintKey, "Exists", "", "NoExecute"),
			fits: map[string]bool{"open": true, "cordoned": false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := st.FilterAll(t, pl, h, tc.pod.Info())
			for node, fits := range tc.fits {
				if got[node].IsSuccess() != fits {
					t.Errorf("node %s: got %v, want fits=%v", node, got[node], fits)
				}
				if !fits && (got[node].Code() != framework.UnschedulableAndUnresolvable || got[node].Message() != nodeunschedulable.ErrReason) {
					t.Errorf("node %s: got %v", node, got[node])
				}
			}
		})
	}
}
