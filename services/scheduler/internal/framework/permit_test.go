package framework_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"bosun.dev/services/scheduler/internal/framework"
	st "bosun.dev/services/scheduler/internal/schedtest"
)

type gate struct{ timeout time.Duration }

func (g *gate) Name() string { return "Gate" }
func (g *gate) Permit(context.Context, *framework.CycleState, *framework.PodInfo, string) (*framework.Status, time.Duration) {
	return framework.NewStatus(framework.Wait), g.timeout
}
func (g *gate) Bind(context.Context, *framework.CycleState, *framework.PodInfo, string) *framework.Status {
	return nil
}

func gated(t *testing.T, timeout time.Duration) *framework.Framework {
	t.Helper()
	reg := framework.Registry{"Gate": func(json.RawMessage, framework.Handle) (framework.Plugin, error) { return &gate{timeout: timeout}, nil }}
	fw, err := framework.New(framework.Profile{SchedulerName: "t"}, reg, []framework.PluginRef{{Name: "Gate"}}, framework.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return fw
}

func TestPermitWaitAllowRejectTimeout(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		timeout time.Duration
		act     func(*framework.WaitingPod)
		want    framework.Code
	}{
		{name: "allowed", timeout: time.Minute, act: func(w *framework.WaitingPod) { w.Allow("Gate") }, want: framework.Success},
		{name: "rejected", timeout: time.Minute, act: func(w *framework.WaitingPod) { w.Reject("Gate", "no") }, want: framework.Unschedulable},
		{name: "timed out", timeout: 10 * time.Millisecond, act: func(*framework.WaitingPod) {}, want: framework.Unschedulable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fw := gated(t, tc.timeout)
			pod := st.Pod("p").Info()
			if s := fw.RunPermitPlugins(ctx, framework.NewCycleState(), pod, "n1"); !s.IsWait() {
				t.Fatalf("Permit: %v, want Wait", s)
			}
			w := fw.WaitingPod("uid-p")
			if w == nil {
				t.Fatal("the pod is not waiting")
			}
			tc.act(w)
			if s := fw.WaitOnPermit(ctx, pod); s.Code() != tc.want {
				t.Fatalf("WaitOnPermit: %v, want %v", s, tc.want)
			}
			if fw.WaitingPod("uid-p") != nil {
				t.Fatal("the pod still waits after WaitOnPermit returned")
			}
		})
	}
}
