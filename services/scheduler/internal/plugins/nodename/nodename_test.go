package nodename_test

import (
	"testing"

	"bosun.dev/services/scheduler/internal/framework"
	"bosun.dev/services/scheduler/internal/plugins/nodename"
	st "bosun.dev/services/scheduler/internal/schedtest"
)

func TestNodeName(t *testing.T) {
	pl, _ := nodename.New(nil, nil)
	h := st.NewHandle(st.NodeInfo(st.Node("a").Obj()), st.NodeInfo(st.Node("b").Obj()))
	tests := []struct {
		name, want string
		fits       map[string]bool
	}{
		{name: "no node named", fits: map[string]bool{"a": true, "b": true}},
		{name: "node b named", want: "b", fits: map[string]bool{"a": false, "b": true}},
		{name: "unknown node named", want: "c", fits: map[string]bool{"a": false, "b": false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := st.FilterAll(t, pl, h, st.Pod("p").NodeName(tc.want).Info())
			for node, fits := range tc.fits {
				if got[node].IsSuccess() != fits {
					t.Errorf("node %s: got %v, want fits=%v", node, got[node], fits)
				}
				if !fits && got[node].Code() != framework.UnschedulableAndUnresolvable {
					t.Errorf("node %s: code %v, want UnschedulableAndUnresolvable", node, got[node].Code())
				}
			}
		})
	}
}
