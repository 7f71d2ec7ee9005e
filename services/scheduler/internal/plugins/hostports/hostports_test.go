package hostports_test

import (
	"testing"

	"bosun.dev/services/scheduler/internal/framework"
	"bosun.dev/services/scheduler/internal/plugins/hostports"
	st "bosun.dev/services/scheduler/internal/schedtest"
)

func TestHostPorts(t *testing.T) {
	pl, _ := hostports.New(nil, nil)
	existing := st.Pod("web").HostPort(80, "TCP", "").HostPort(53, "UDP", "10.0.0.1").Obj()
	h := st.NewHandle(st.NodeInfo(st.Node("n").Obj(), existing))
	tests := []struct {
		name string
		pod  *st.PodWrapper
		fits bool
	}{
		{name: "no host ports", pod: st.Pod("p"), fits: true},
		{name: "same port and protocol on all IPs", pod: st.Pod("p").HostPort(80, "TCP", ""), fits: false},
		{name: "same port other protocol", pod: st.Pod("p").HostPort(80, "UDP", ""), fits: true},
		{name: "specific IP against all IPs", pod: st.Pod("p").HostPort(80, "TCP", "10.0.0.2"), fits: false},
		{name: "other IP of a specific-IP port", pod: st.Pod("p").HostPort(53, "UDP", "10.0.0.2"), fits: true},
		{name: "same specific IP", pod: st.Pod("p").HostPort(53, "UDP", "10.0.0.1"), fits: false},
		{name: "free port", pod: st.Pod("p").HostPort(8080, "TCP", ""), fits: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := st.FilterAll(t, pl, h, tc.pod.Info())["n"]
			if got.IsSuccess() != tc.fits {
				t.Fatalf("got %v, want fits=%v", got, tc.fits)
			}
			if !tc.fits && (got.Code() != framework.Unschedulable || got.Message() != hostports.ErrReason) {
				t.Fatalf("got %v", got)
			}
		})
	}
}
