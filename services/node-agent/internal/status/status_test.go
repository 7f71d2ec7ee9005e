package status_test

import (
	"testing"
	"time"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/node-agent/internal/status"
)

func TestPhase(t *testing.T) {
	running := status.Container{Running: true}
	waiting := status.Container{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
	ok := status.Container{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}
	failed := status.Container{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}
	restarting := status.Container{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}, LastTerminated: &corev1.ContainerStateTerminated{ExitCode: 1}}
	for _, tc := range []struct {
		name string
		cs   []status.Container
		want string
	}{
		{"none", nil, "Pending"},
		{"one waiting", []status.Container{running, waiting}, "Pending"},
		{"all running", []status.Container{running, running}, "Running"},
		{"restarting", []status.Container{restarting}, "Running"},
		{"one done one running", []status.Container{ok, running}, "Running"},
		{"all succeeded", []status.Container{ok, ok}, "Succeeded"},
		{"one failed", []status.Container{ok, failed}, "Failed"},
	} {
		if got := status.Phase(tc.cs); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestComputeKeepsTransitionTimes(t *testing.T) {
	pod := &corev1.Pod{Spec: &corev1.PodSpec{Containers: []*corev1.Container{{Name: "c"}}}}
	t0 := time.Unix(100, 0)
	v := status.Pod{Pod: pod, PodIP: "10.0.0.5", Containers: []status.Container{{Name: "c", Running: true, Ready: true, StartedAt: t0}}}
	first := status.Compute(v, nil, t0)
	second := status.Compute(v, first, t0.Add(time.Minute))
	for i, c := range second.GetConditions() {
		if !c.GetLastTransitionTime().AsTime().Equal(first.GetConditions()[i].GetLastTransitionTime().AsTime()) {
			t.Errorf("%s moved its transition time with no change", c.GetType())
		}
	}
	if second.GetPhase() != "Running" || second.GetPodIp() != "10.0.0.5" || second.GetQosClass() != "BestEffort" {
		t.Errorf("status %v", second)
	}
	v.Containers[0].Ready = false
	third := status.Compute(v, second, t0.Add(2*time.Minute))
	for _, c := range third.GetConditions() {
		if c.GetType() == "Ready" && (c.GetStatus() != "False" || !c.GetLastTransitionTime().AsTime().Equal(t0.Add(2*time.Minute))) {
			t.Errorf("Ready after the flip: %v", c)
		}
	}
}
