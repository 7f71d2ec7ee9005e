package controller

import (
	"time"

	corev1 "bosun.dev/gen/bosun/core/v1"
)

// Pod phases.
const (
	PodPending   = "Pending"
	PodRunning   = "Running"
	PodSucceeded = "Succeeded"
	PodFailed    = "Failed"
)

// IsPodActive reports whether pod still counts toward its owner's replicas:
// it has not finished and is not being deleted.
func IsPodActive(pod *corev1.Pod) bool {
	phase := pod.GetStatus().GetPhase()
	return phase != PodSucceeded && phase != PodFailed && pod.GetMetadata().GetDeletionTimestamp() == nil
}

// podReadyCondition returns pod's Ready condition, or nil.
func podReadyCondition(pod *corev1.Pod) *corev1.PodCondition {
	for _, c := range pod.GetStatus().GetConditions() {
		if c.GetType() == "Ready" {
			return c
		}
	}
	return nil
}

// IsPodReady reports whether pod's Ready condition is True.
func IsPodReady(pod *corev1.Pod) bool {
	c := podReadyCondition(pod)
	return c != nil && c.GetStatus() == "True"
}

// IsPodAvailable reports whether pod has been ready for at least
// minReadySeconds at now.
func IsPodAvailable(pod *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	c := podReadyCondition(pod)
	if c == nil || c.GetStatus() != "True" {
		return false
	}
	if minReadySeconds == 0 {
		return true
	}
	since := c.GetLastTransitionTime()
	if since == nil {
		return false
	}
	return !since.AsTime().Add(time.Duration(minReadySeconds) * time.Second).After(now)
}

// AvailableIn returns how long until a ready pod becomes available, 0 when it
// already is or is not ready.
func AvailableIn(pod *corev1.Pod, minReadySeconds int32, now time.Time) time.Duration {
	c := podReadyCondition(pod)
	if minReadySeconds == 0 || c == nil || c.GetStatus() != "True" || c.GetLastTransitionTime() == nil {
		return 0
	}
	d := c.GetLastTransitionTime().AsTime().Add(time.Duration(minReadySeconds) * time.Second).Sub(now)
	if d < 0 {
		return 0
	}
	return d
}
