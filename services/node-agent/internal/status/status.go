// Package status turns what the node-agent observed about a pod into the
// pod's status: phase, conditions (PodScheduled, Initialized,
// ContainersReady, Ready), addresses and container statuses; and writes it
// through UpdatePodStatus only when it changed.
package status

import (
	"context"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	corev1 "bosun.dev/gen/bosun/core/v1"
)

// Pod phases.
const (
	PhasePending   = "Pending"
	PhaseRunning   = "Running"
	PhaseSucceeded = "Succeeded"
	PhaseFailed    = "Failed"
)

// Container is what was observed of one container of the pod.
type Container struct {
	Name, Image, ImageID, ContainerID string
	// Exactly one of Running, Waiting and Terminated describes it now.
	Running    bool
	StartedAt  time.Time
	Waiting    *corev1.ContainerStateWaiting
	Terminated *corev1.ContainerStateTerminated
	// LastTerminated is how the previous attempt ended.
	LastTerminated *corev1.ContainerStateTerminated
	Ready          bool
	Started        bool
	RestartCount   int32
}

// Pod is what was observed of a pod.
type Pod struct {
	Pod             *corev1.Pod
	HostIP, PodIP   string
	Containers      []Container
	Reason, Message string
}

// Compute builds the pod's status. prev (the status last written, may be
// nil) keeps start and transition times stable.
func Compute(v Pod, prev *corev1.PodStatus, now time.Time) *corev1.PodStatus {
	st := &corev1.PodStatus{
		HostIp:  v.HostIP,
		PodIp:   v.PodIP,
		Reason:  v.Reason,
		Message: v.Message,
	}
	if v.PodIP != "" {
		st.PodIps = []*corev1.PodIP{{Ip: v.PodIP}}
	}
	if prev.GetStartTime() != nil {
		st.StartTime = prev.GetStartTime()
	} else {
		st.StartTime = timestamppb.New(now)
	}
	st.QosClass = qosClass(v.Pod.GetSpec())
	allReady := len(v.Containers) > 0
	for _, c := range v.Containers {
		cs := &corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageId: c.ImageID, ContainerId: c.ContainerID,
			Ready: c.Ready, RestartCount: c.RestartCount, State: &corev1.ContainerState{},
		}
		started := c.Started
		cs.Started = &started
		switch {
		case c.Running:
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: timestamppb.New(c.StartedAt)}
		case c.Terminated != nil:
			cs.State.Terminated = c.Terminated
		case c.Waiting != nil:
			cs.State.Waiting = c.Waiting
		default:
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
		}
		if c.LastTerminated != nil {
			cs.LastState = &corev1.ContainerState{Terminated: c.LastTerminated}
		}
		if !c.Ready {
			allReady = false
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}
	st.Phase = Phase(v.Containers)
	cond := func(typ string, ok bool, reason string) {
		s := "False"
		if ok {
			s, reason = "True", ""
		}
		c := &corev1.PodCondition{Type: typ, Status: s, Reason: reason, LastTransitionTime: timestamppb.New(now)}
		for _, p := range prev.GetConditions() {
			if p.GetType() == typ && p.GetStatus() == s {
				c.LastTransitionTime = p.GetLastTransitionTime()
			}
		}
		st.Conditions = append(st.Conditions, c)
	}
	cond("PodScheduled", true, "")
	cond("Initialized", true, "")
	ready := allReady && st.Phase == PhaseRunning
	cond("ContainersReady", ready, "ContainersNotReady")
	cond("Ready", ready, "ContainersNotReady")
	return st
}

// Phase derives the pod phase from its containers, as the kubelet does:
// Pending while a container has never run; Succeeded or Failed once every
// container has terminated for good; Running otherwise.
func Phase(cs []Container) string {
	if len(cs) == 0 {
		return PhasePending
	}
	var running, waiting, succeeded, failed int
	for _, c := range cs {
		switch {
		case c.Running:
			running++
		case c.Terminated != nil:
			if c.Terminated.GetExitCode() == 0 {
				succeeded++
			} else {
				failed++
			}
		case c.LastTerminated != nil:
			// waiting to restart after a previous run
		default:
			waiting++
		}
	}
	switch {
	case waiting > 0:
		return PhasePending
	case running > 0:
		return PhaseRunning
	case succeeded+failed == len(cs):
		// every container terminated for good
		if failed > 0 {
			return PhaseFailed
		}
		return PhaseSucceeded
	}
	return PhaseRunning // some container waits to restart
}

func qosClass(spec *corev1.PodSpec) string {
	guaranteed, any := true, false
	for _, c := range spec.GetContainers() {
		l, r := c.GetResources().GetLimits(), c.GetResources().GetRequests()
		if len(l) > 0 || len(r) > 0 {
			any = true
		}
		for _, res := range []string{"cpu", "memory"} {
			if l[res] == "" || (r[res] != "" && r[res] != l[res]) {
				guaranteed = false
			}
		}
	}
	switch {
	case !any:
		return "BestEffort"
	case guaranteed:
		return "Guaranteed"
	}
	return "Burstable"
}

// API writes pod statuses.
type API interface {
	// UpdatePodStatus replaces pod.status (pod carries namespace, name and
	// the new status).
	UpdatePodStatus(ctx context.Context, pod *corev1.Pod) error
}

// Writer writes a pod's status when it differs from the last one written
// (or, for a pod it has not written yet, from the pod's own status).
type Writer struct {
	api API

	mu   sync.Mutex
	last map[string]*corev1.PodStatus // by uid
}

// NewWriter returns a Writer over api.
func NewWriter(api API) *Writer {
	return &Writer{api: api, last: map[string]*corev1.PodStatus{}}
}

// Last is the status last written for uid, or nil.
func (w *Writer) Last(uid string) *corev1.PodStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last[uid]
}

// Write stores st as pod's status unless nothing changed; it reports
// whether it wrote.
func (w *Writer) Write(ctx context.Context, pod *corev1.Pod, st *corev1.PodStatus) (bool, error) {
	uid := pod.GetMetadata().GetUid()
	w.mu.Lock()
	prev, ok := w.last[uid]
	w.mu.Unlock()
	if !ok {
		prev = pod.GetStatus()
	}
	if proto.Equal(prev, st) {
		return false, nil
	}
	out := &corev1.Pod{Metadata: proto.CloneOf(pod.GetMetadata()), Status: st}
	out.Metadata.ResourceVersion = ""
	if err := w.api.UpdatePodStatus(ctx, out); err != nil {
		return false, err
	}
	w.mu.Lock()
	w.last[uid] = st
	w.mu.Unlock()
	return true, nil
}

// Forget drops what was written for uid.
func (w *Writer) Forget(uid string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.last, uid)
}
