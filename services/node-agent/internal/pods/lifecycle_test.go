package pods_test

import (
	"fmt"
	"slices"
	"testing"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/node-agent/internal/agenttest"
	"bosun.dev/services/node-agent/internal/runtime"
	"bosun.dev/services/node-agent/internal/runtime/fake"
)

// A deleted pod's preStop hook runs in the running container before it is
// stopped (the fake runtime refuses commands in stopped containers).
func TestPreStopRunsBeforeTheContainerStops(t *testing.T) {
	h := setup(t)
	c := ctr("c", "reg.local/app:v1")
	c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"drain", "--now"}}}}
	h.run(agenttest.Pod("u1", "p", node, c))
	h.waitPhase("u1", "Running")
	h.deleteAndWait("u1", 2)
	want := fake.ExecCall{Container: "c", Command: []string{"drain", "--now"}}
	if !slices.ContainsFunc(h.rt.Execs(), func(e fake.ExecCall) bool {
		return e.Container == want.Container && slices.Equal(e.Command, want.Command)
	}) {
		t.Errorf("commands run: %v; want the preStop hook %v before the stop", h.rt.Execs(), want)
	}
}

// A failing postStart hook kills the container, which shows waiting with
// reason PostStartHookError and starts again once the hook succeeds.
func TestFailingPostStartHookKillsTheContainer(t *testing.T) {
	h := setup(t)
	h.rt.SetExecResult("c", runtime.ExecResult{ExitCode: 3, Output: []byte("not configured")})
	c := ctr("c", "reg.local/app:v1")
	c.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"configure"}}}}
	h.run(agenttest.Pod("u1", "p", node, c))
	h.containerStatus("u1", "c", func(cs *corev1.ContainerStatus) error {
		if w := cs.GetState().GetWaiting(); w.GetReason() != "PostStartHookError" {
			return fmt.Errorf("state %v, want waiting with PostStartHookError", cs.GetState())
		}
		return nil
	})
	h.rt.SetExecResult("c", runtime.ExecResult{ExitCode: 0})
	h.containerStatus("u1", "c", func(cs *corev1.ContainerStatus) error {
		if cs.GetState().GetRunning() == nil {
			return fmt.Errorf("state %v, want running once the hook succeeds", cs.GetState())
		}
		return nil
	})
}
