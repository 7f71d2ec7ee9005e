// Package preemption makes room for a pod that fits on no node by evicting
// pods of lower priority. For every node that rejected the pod only for
// reasons removing pods can fix (status Unschedulable, not
// UnschedulableAndUnresolvable), it removes every lower-priority pod in a
// what-if copy, checks that the pod then fits, and adds the removed pods
// back one by one, highest priority first, keeping each that still leaves
// room. Of the nodes where this works, it chooses the one whose victims
// disrupt least: the lowest highest victim priority, then the lowest sum of
// victim priorities, then the fewest victims, then the node name. The
// victims are deleted through the apiserver (with their grace period) and
// the node becomes the pod's nominated node.
package preemption

import (
	"context"
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/services/scheduler/internal/framework"
)

// maxCandidates bounds the nodes evaluated in depth once that many work.
const maxCandidates = 100

// Candidate is a node where preemption makes the pod fit.
type Candidate struct {
	Node    string
	Victims []*framework.PodInfo
}

// Evaluator finds and carries out preemptions for one profile.
type Evaluator struct {
	Handle framework.Handle
	// Delete evicts a victim; the apiserver's DeletePod when nil.
	Delete func(ctx context.Context, victim *corev1.Pod) error
}

// Eligible reports whether pod may preempt: its policy allows it, and it is
// not already waiting for victims to leave its nominated node.
func (e *Evaluator) Eligible(pod *framework.PodInfo) (bool, string) {
	if pod.Pod.GetSpec().GetPreemptionPolicy() == "Never" {
		return false, "not eligible due to preemptionPolicy=Never"
	}
	nominated := pod.Pod.GetStatus().GetNominatedNodeName()
	if nominated == "" {
		return true, ""
	}
	ni, err := e.Handle.SnapshotSharedLister().Get(nominated)
	if err != nil {
		return true, ""
	}
	for _, p := range ni.Pods {
		if p.Pod.GetMetadata().GetDeletionTimestamp() != nil && p.Priority < pod.Priority {
			return false, "not eligible: victims on the nominated node are still terminating"
		}
	}
	return true, ""
}

// Preempt runs preemption for pod, which every node rejected as in m.
func (e *Evaluator) Preempt(ctx context.Context, state *framework.CycleState, pod *framework.PodInfo, m framework.NodeToStatus) (*framework.PostFilterResult, *framework.Status) {
	if ok, why := e.Eligible(pod); !ok {
		return nil, framework.NewStatus(framework.Unschedulable, why)
	}
	candidates, err := e.FindCandidates(ctx, state, pod, m)
	if err != nil {
		return nil, framework.AsStatus(err)
	}
	if len(candidates) == 0 {
		return nil, framework.NewStatus(framework.Unschedulable, "preemption: no node can be made available by evicting lower-priority pods")
	}
	best := SelectCandidate(candidates)
	for _, v := range best.Victims {
		if err := e.deleteVictim(ctx, v.Pod, pod.Pod, best.Node); err != nil {
			return nil, framework.AsStatus(fmt.Errorf("preempting pod %s/%s: %w", v.Pod.GetMetadata().GetNamespace(), v.Pod.GetMetadata().GetName(), err))
		}
	}
	return &framework.PostFilterResult{NominatedNodeName: best.Node}, nil
}

// deleteVictim evicts victim through the apiserver (with its grace period)
// and records a Preempted event on it.
func (e *Evaluator) deleteVictim(ctx context.Context, victim, preemptor *corev1.Pod, node string) error {
	if e.Delete != nil {
		return e.Delete(ctx, victim)
	}
	md := victim.GetMetadata()
	_, err := corev1.NewPodServiceClient(e.Handle.Conn()).DeletePod(ctx, &corev1.DeletePodRequest{
		Namespace: md.GetNamespace(), Name: md.GetName(),
		Preconditions: &metav1.Preconditions{Uid: md.GetUid()},
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	now := timestamppb.Now()
	pm := preemptor.GetMetadata()
	// The event is informative: failing to record it does not undo the eviction.
	_, _ = corev1.NewEventServiceClient(e.Handle.Conn()).CreateEvent(ctx, &corev1.CreateEventRequest{Event: &corev1.Event{
		Metadata:       &metav1.ObjectMeta{Namespace: md.GetNamespace(), Name: fmt.Sprintf("%s.%x", md.GetName(), time.Now().UnixNano())},
		InvolvedObject: &metav1.ObjectReference{Kind: "Pod", ApiVersion: "v1", Namespace: md.GetNamespace(), Name: md.GetName(), Uid: md.GetUid()},
		Reason:         "Preempted", Type: "Normal", Count: 1,
		Message:        fmt.Sprintf("Preempted by pod %s/%s (priority %d) on node %s", pm.GetNamespace(), pm.GetName(), preemptor.GetSpec().GetPriority(), node),
		Source:         &corev1.EventSource{Component: e.Handle.SchedulerName()},
		FirstTimestamp: now, LastTimestamp: now, EventTime: now, ReportingComponent: "bosun-scheduler", Action: "Preempting",
	}})
	return nil
}

// FindCandidates evaluates the nodes whose rejection preemption may fix.
func (e *Evaluator) FindCandidates(ctx context.Context, state *framework.CycleState, pod *framework.PodInfo, m framework.NodeToStatus) ([]Candidate, error) {
	var potential []*framework.NodeInfo
	for _, ni := range e.Handle.SnapshotSharedLister().List() {
		if s, ok := m[ni.Name()]; ok && s.Code() == framework.UnschedulableAndUnresolvable {
			continue
		}
		potential = append(potential, ni)
	}
	// Each node's result goes in its own slot and the candidates are taken
	// in node order from the prefix evaluated, so that which candidates (and
	// which error) come out does not depend on how goroutines were timed.
	found := make([]*Candidate, len(potential))
	errs := make([]error, len(potential))
	var n atomic.Int64
	done := e.Handle.Parallelizer().Until(ctx, len(potential), func(i int) {
		c, err := e.selectVictimsOnNode(ctx, state.Clone(), pod, potential[i].Clone())
		switch {
		case err != nil:
			errs[i] = err
		case c != nil:
			found[i] = c
			n.Add(1)
		}
	}, func() bool { return n.Load() >= maxCandidates })
	var out []Candidate
	for i := 0; i < done && len(out) < maxCandidates; i++ {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if found[i] != nil {
			out = append(out, *found[i])
		}
	}
	if done < len(potential) && len(out) < maxCandidates {
		return nil, ctx.Err() // stopped by ctx, not by enough candidates
	}
	return out, nil
}

// selectVictimsOnNode returns the fewest lower-priority pods to remove from
// ni (a copy) for pod to fit, or nil when removing them all does not help.
func (e *Evaluator) selectVictimsOnNode(ctx context.Context, state *framework.CycleState, pod *framework.PodInfo, ni *framework.NodeInfo) (*Candidate, error) {
	var lower []*framework.PodInfo
	for _, p := range ni.Pods {
		if p.Priority < pod.Priority && p.Pod.GetMetadata().GetDeletionTimestamp() == nil {
			lower = append(lower, p)
		}
	}
	if len(lower) == 0 {
		return nil, nil
	}
	for _, p := range lower {
		if err := ni.RemovePod(p.Pod); err != nil {
			return nil, err
		}
		if s := e.Handle.RunPreFilterExtensionRemovePod(ctx, state, pod, p, ni); !s.IsSuccess() {
			return nil, s.AsError()
		}
	}
	if s := e.Handle.RunFilterPluginsWithNominatedPods(ctx, state, pod, ni); !s.IsSuccess() {
		if err := s.AsError(); err != nil {
			return nil, err
		}
		return nil, nil
	}
	// Reprieve as many as possible, most important first.
	sort.SliceStable(lower, func(i, j int) bool { return lower[i].Priority > lower[j].Priority })
	var victims []*framework.PodInfo
	for _, p := range lower {
		ni.AddPodInfo(p)
		if s := e.Handle.RunPreFilterExtensionAddPod(ctx, state, pod, p, ni); !s.IsSuccess() {
			return nil, s.AsError()
		}
		if s := e.Handle.RunFilterPluginsWithNominatedPods(ctx, state, pod, ni); !s.IsSuccess() {
			if err := s.AsError(); err != nil {
				return nil, err
			}
			if err := ni.RemovePod(p.Pod); err != nil {
				return nil, err
			}
			if s := e.Handle.RunPreFilterExtensionRemovePod(ctx, state, pod, p, ni); !s.IsSuccess() {
				return nil, s.AsError()
			}
			victims = append(victims, p)
		}
	}
	return &Candidate{Node: ni.Name(), Victims: victims}, nil
}

// SelectCandidate picks the candidate whose victims disrupt least.
func SelectCandidate(cs []Candidate) Candidate {
	type rank struct {
		highest int32
		sum     int64
		n       int
	}
	rankOf := func(c Candidate) rank {
		r := rank{highest: -1 << 31, n: len(c.Victims)}
		for _, v := range c.Victims {
			r.highest = max(r.highest, v.Priority)
			r.sum += int64(v.Priority) + (1 << 31) // keep negative priorities ordered
		}
		return r
	}
	best, bestRank := cs[0], rankOf(cs[0])
	for _, c := range cs[1:] {
		r := rankOf(c)
		switch {
		case r.highest != bestRank.highest:
			if r.highest > bestRank.highest {
				continue
			}
		case r.sum != bestRank.sum:
			if r.sum > bestRank.sum {
				continue
			}
		case r.n != bestRank.n:
			if r.n > bestRank.n {
				continue
			}
		case c.Node >= best.Node:
			continue
		}
		best, bestRank = c, r
	}
	return best
}
