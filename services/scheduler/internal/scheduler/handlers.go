package scheduler

import (
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/informer"
	"bosun.dev/services/scheduler/internal/framework"
)

func assigned(p *corev1.Pod) bool { return p.GetSpec().GetNodeName() != "" }

func terminal(p *corev1.Pod) bool {
	ph := p.GetStatus().GetPhase()
	return ph == "Succeeded" || ph == "Failed"
}

// responsible reports whether a pending pod is this scheduler's to place.
func (s *Scheduler) responsible(p *corev1.Pod) bool {
	_, ok := s.profiles[p.GetSpec().GetSchedulerName()]
	return ok
}

func (s *Scheduler) addEventHandlers() {
	s.pods.AddEventHandler(informer.HandlerFuncs[*corev1.Pod]{
		AddFunc:    s.onPodAdd,
		UpdateFunc: s.onPodUpdate,
		DeleteFunc: s.onPodDelete,
	})
	s.nodes.AddEventHandler(informer.HandlerFuncs[*corev1.Node]{
		AddFunc: func(n *corev1.Node) {
			s.cache.AddNode(n)
			s.queue.MoveAllToActiveOrBackoffQueue(framework.EventNodeAdd)
		},
		UpdateFunc: func(old, n *corev1.Node) {
			s.cache.UpdateNode(old, n)
			if nodeSchedulingChanged(old, n) {
				s.queue.MoveAllToActiveOrBackoffQueue(framework.EventNodeUpdate)
			}
		},
		DeleteFunc: func(n *corev1.Node) {
			s.cache.RemoveNode(n)
			s.queue.MoveAllToActiveOrBackoffQueue(framework.EventNodeDelete)
		},
	})
}

// nodeSchedulingChanged reports a node change that may let pending pods
// fit: labels, taints, cordon or allocatable. Heartbeats and conditions do
// not.
func nodeSchedulingChanged(a, b *corev1.Node) bool {
	return !maps.Equal(a.GetMetadata().GetLabels(), b.GetMetadata().GetLabels()) ||
		a.GetSpec().GetUnschedulable() != b.GetSpec().GetUnschedulable() ||
		!slices.EqualFunc(a.GetSpec().GetTaints(), b.GetSpec().GetTaints(), func(x, y *corev1.Taint) bool { return proto.Equal(x, y) }) ||
		!maps.Equal(a.GetStatus().GetAllocatable(), b.GetStatus().GetAllocatable())
}

func (s *Scheduler) onPodAdd(p *corev1.Pod) {
	switch {
	case assigned(p):
		if terminal(p) {
			return
		}
		if err := s.cache.AddPod(p); err != nil {
			s.log.Error("adding pod to the cache", "pod", podKey(p), "err", err)
		}
		s.queue.MoveAllToActiveOrBackoffQueue(framework.EventAssignedPodAdd)
	case s.responsible(p) && p.GetMetadata().GetDeletionTimestamp() == nil:
		s.queue.Add(p)
	}
}

func (s *Scheduler) onPodUpdate(old, p *corev1.Pod) {
	switch {
	case assigned(p) && !assigned(old):
		// Bound: by us (confirming the assumption) or by someone else.
		s.queue.Delete(p)
		s.onPodAdd(p)
	case assigned(p):
		if terminal(p) {
			if err := s.cache.RemovePod(p); err != nil {
				s.log.Error("removing finished pod from the cache", "pod", podKey(p), "err", err)
			}
			s.queue.MoveAllToActiveOrBackoffQueue(framework.EventAssignedPodDelete)
			return
		}
		if err := s.cache.UpdatePod(old, p); err != nil {
			s.log.Error("updating pod in the cache", "pod", podKey(p), "err", err)
		}
		if !maps.Equal(old.GetMetadata().GetLabels(), p.GetMetadata().GetLabels()) {
			s.queue.MoveAllToActiveOrBackoffQueue(framework.EventAssignedPodUpdate)
		}
	case !s.responsible(p):
	case p.GetMetadata().GetDeletionTimestamp() != nil:
		s.queue.Delete(p)
	case s.cache.IsAssumedPod(p):
		// Our own status writes while the bind is in flight.
	default:
		s.queue.Update(old, p)
	}
}

func (s *Scheduler) onPodDelete(p *corev1.Pod) {
	if assigned(p) || s.cache.IsAssumedPod(p) {
		if err := s.cache.RemovePod(p); err != nil {
			s.log.Error("removing pod from the cache", "pod", podKey(p), "err", err)
		}
		s.queue.DeleteNominatedPodIfExists(p)
		s.queue.MoveAllToActiveOrBackoffQueue(framework.EventAssignedPodDelete)
		if assigned(p) {
			return
		}
	}
	s.queue.Delete(p)
}

func podKey(p *corev1.Pod) string {
	return p.GetMetadata().GetNamespace() + "/" + p.GetMetadata().GetName()
}
