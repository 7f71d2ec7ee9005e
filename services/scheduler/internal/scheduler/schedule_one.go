package scheduler

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/server"
	"bosun.dev/services/scheduler/internal/framework"
	"bosun.dev/services/scheduler/internal/queue"
)

// Node sampling, as kube-scheduler's percentageOfNodesToScore.
const (
	minFeasibleNodesToFind           = 100
	minFeasibleNodesPercentageToFind = 5
)

var tracer = otel.Tracer("bosun.dev/services/scheduler")

// scheduleOne pops one pod and runs its scheduling cycle; a successful
// cycle starts the pod's binding cycle in its own goroutine. It returns an
// error only when the queue is closed.
func (s *Scheduler) scheduleOne(ctx context.Context) error {
	qpi, err := s.queue.Pop()
	if err != nil {
		return err
	}
	pi := qpi.PodInfo
	fw, ok := s.profiles[pi.Pod.GetSpec().GetSchedulerName()]
	if !ok || s.skip(qpi) {
		s.queue.Done(qpi.Key())
		return nil
	}
	// The cycle continues the trace of the request that created the pod
	// when the pod carries one (server.TraceParentAnnotation).
	ctx, span := tracer.Start(server.ContextWithTraceParent(ctx, pi.Pod.GetMetadata().GetAnnotations()),
		"scheduler.SchedulingCycle", trace.WithAttributes(attribute.String("bosun.pod", podKey(pi.Pod))))
	defer span.End()
	cycle := s.queue.SchedulingCycle()
	start := time.Now()
	state := framework.NewCycleState()
	s.cache.UpdateSnapshot(s.snapshot)
	host, err := s.schedulePod(ctx, fw, state, pi)
	if err != nil {
		s.metrics.cycleDuration.Observe(time.Since(start).Seconds())
		s.handleFailure(ctx, fw, state, qpi, cycle, err)
		return nil
	}
	if err := s.assume(ctx, fw, state, pi, host); err != nil {
		s.metrics.cycleDuration.Observe(time.Since(start).Seconds())
		s.handleFailure(ctx, fw, state, qpi, cycle, err)
		return nil
	}
	s.metrics.cycleDuration.Observe(time.Since(start).Seconds())
	s.metrics.attempts.WithLabelValues("scheduled", fw.SchedulerName()).Inc()
	s.queue.DeleteNominatedPodIfExists(pi.Pod)
	s.queue.Done(qpi.Key())

	select {
	case s.bindSem <- struct{}{}:
	case <-ctx.Done():
		s.unassume(context.WithoutCancel(ctx), fw, state, pi, host)
		return ctx.Err()
	}
	s.binds.Add(1)
	go func() {
		defer s.binds.Done()
		defer func() { <-s.bindSem }()
		s.bindingCycle(ctx, fw, state, qpi, host)
	}()
	return nil
}

// skip reports whether a popped pod no longer needs scheduling: deleted,
// bound or assumed since it was queued.
func (s *Scheduler) skip(qpi *queue.QueuedPodInfo) bool {
	md := qpi.Pod.GetMetadata()
	cur, ok := s.pods.Get(md.GetNamespace(), md.GetName())
	if !ok || cur.GetMetadata().GetUid() != md.GetUid() {
		return true
	}
	return assigned(cur) || cur.GetMetadata().GetDeletionTimestamp() != nil || s.cache.IsAssumedPod(cur)
}

// assume reserves the chosen node: the pod is counted there in the cache,
// then Reserve and Permit run.
func (s *Scheduler) assume(ctx context.Context, fw *framework.Framework, state *framework.CycleState, pi *framework.PodInfo, host string) error {
	if err := s.cache.AssumePod(pi, host); err != nil {
		return err
	}
	if st := fw.RunReservePluginsReserve(ctx, state, pi, host); !st.IsSuccess() {
		s.unassume(ctx, fw, state, pi, host)
		return statusError(st)
	}
	if st := fw.RunPermitPlugins(ctx, state, pi, host); !st.IsSuccess() && !st.IsWait() {
		s.unassume(ctx, fw, state, pi, host)
		return statusError(st)
	}
	return nil
}

func (s *Scheduler) unassume(ctx context.Context, fw *framework.Framework, state *framework.CycleState, pi *framework.PodInfo, host string) {
	fw.RunReservePluginsUnreserve(ctx, state, pi, host)
	if err := s.cache.ForgetPod(pi.Pod); err != nil {
		s.log.Error("forgetting assumed pod", "pod", podKey(pi.Pod), "err", err)
	}
}

// rejection is a rejected (not failed) Reserve or Permit.
type rejection struct{ st *framework.Status }

func (r *rejection) Error() string { return r.st.Message() }

func statusError(st *framework.Status) error {
	if err := st.AsError(); err != nil {
		return err
	}
	return &rejection{st: st}
}

// bindingCycle waits for Permit and binds. A failed bind forgets the
// assumption and requeues the pod, unless the apiserver says it is already
// bound or gone: then the informer brings the truth.
func (s *Scheduler) bindingCycle(ctx context.Context, fw *framework.Framework, state *framework.CycleState, qpi *queue.QueuedPodInfo, host string) {
	pi := qpi.PodInfo
	ctx, span := tracer.Start(ctx, "scheduler.BindingCycle",
		trace.WithAttributes(attribute.String("bosun.pod", podKey(pi.Pod)), attribute.String("bosun.node", host)))
	defer span.End()
	st := fw.WaitOnPermit(ctx, pi)
	if st.IsSuccess() {
		bctx, cancel := context.WithTimeout(ctx, s.cfg.BindTimeout)
		st = fw.RunBindPlugins(bctx, state, pi, host)
		cancel()
	}
	if st.IsSuccess() {
		s.cache.FinishBinding(pi.Pod)
		s.metrics.bindings.WithLabelValues("bound").Inc()
		return
	}
	ctx = context.WithoutCancel(ctx)
	s.unassume(ctx, fw, state, pi, host)
	// The node's resources the pod held are free again.
	s.queue.MoveAllToActiveOrBackoffQueue(framework.EventAssignedPodDelete)
	err := st.AsError()
	if apierrors.IsAlreadyBound(err) || apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		s.metrics.bindings.WithLabelValues("conflict").Inc()
		s.log.DebugContext(ctx, "pod already bound or gone", "pod", podKey(pi.Pod), "node", host, "err", err)
		return
	}
	s.metrics.bindings.WithLabelValues("error").Inc()
	s.log.WarnContext(ctx, "binding failed; requeueing", "pod", podKey(pi.Pod), "node", host, "err", st.Message())
	qpi.UnschedulablePlugins = nil
	if st.IsRejected() {
		qpi.UnschedulablePlugins = map[string]struct{}{st.Plugin(): {}}
	}
	s.queue.AddUnschedulableIfNotPresent(qpi, s.queue.SchedulingCycle())
}

// schedulePod finds the best node for pi, or returns a *FitError saying
// why there is none (or another error).
func (s *Scheduler) schedulePod(ctx context.Context, fw *framework.Framework, state *framework.CycleState, pi *framework.PodInfo) (string, error) {
	nodes := s.snapshot.List()
	if len(nodes) == 0 {
		return "", &FitError{Pod: pi}
	}
	if st := fw.RunPreFilterPlugins(ctx, state, pi); !st.IsSuccess() {
		if !st.IsRejected() {
			return "", st.AsError()
		}
		fe := &FitError{Pod: pi, NumAllNodes: len(nodes), PreFilterMessage: st.Message(), Statuses: framework.NodeToStatus{}}
		for _, ni := range nodes {
			fe.Statuses[ni.Name()] = st
		}
		return "", fe
	}
	feasible, statuses, err := s.findNodesThatPassFilters(ctx, fw, state, pi, nodes)
	if err != nil {
		return "", err
	}
	if len(feasible) == 0 {
		return "", &FitError{Pod: pi, NumAllNodes: len(nodes), Statuses: statuses}
	}
	if len(feasible) == 1 {
		return feasible[0].Name(), nil
	}
	if st := fw.RunPreScorePlugins(ctx, state, pi, feasible); !st.IsSuccess() {
		return "", st.AsError()
	}
	scores, st := fw.RunScorePlugins(ctx, state, pi, feasible)
	if !st.IsSuccess() {
		return "", st.AsError()
	}
	return s.selectHost(feasible, scores), nil
}

// numFeasibleNodesToFind is how many feasible nodes to look for before
// scoring: all of a small cluster, else a share that shrinks as the
// cluster grows (50% at 100 nodes, 5% from 5,625 on), at least 100.
func (s *Scheduler) numFeasibleNodesToFind(all int) int {
	pct := int(s.percentageOfNodesToScore)
	if all < minFeasibleNodesToFind || pct >= 100 {
		return all
	}
	if pct == 0 {
		pct = max(50-all/125, minFeasibleNodesPercentageToFind)
	}
	return max(all*pct/100, minFeasibleNodesToFind)
}

// findNodesThatPassFilters runs the Filter plugins over the nodes, starting
// where the last cycle stopped, in parallel, until enough feasible nodes are
// found. The result is reproducible: chunks are taken in order and all the
// chunks taken are finished, so the nodes examined are always a prefix of
// the rotation.
func (s *Scheduler) findNodesThatPassFilters(ctx context.Context, fw *framework.Framework, state *framework.CycleState, pi *framework.PodInfo, nodes []*framework.NodeInfo) ([]*framework.NodeInfo, framework.NodeToStatus, error) {
	n := len(nodes)
	want := s.numFeasibleNodesToFind(n)
	if cap(s.feasibleBuf) < n {
		s.feasibleBuf = make([]*framework.NodeInfo, n)
		s.statusBuf = make([]*framework.Status, n)
	}
	feasibleBuf, statusBuf := s.feasibleBuf[:n], s.statusBuf[:n]
	start := s.nextStartNodeIndex % n
	var found atomic.Int64
	taken := fw.Parallelizer().Chunks(ctx, n, func(from, to int) {
		feasible := 0
		for i := from; i < to; i++ {
			ni := nodes[(start+i)%n]
			if st := fw.RunFilterPluginsWithNominatedPods(ctx, state, pi, ni); st.IsSuccess() {
				feasibleBuf[i] = ni
				feasible++
			} else {
				statusBuf[i] = st
			}
		}
		found.Add(int64(feasible))
	}, func() bool { return found.Load() >= int64(want) })
	if err := ctx.Err(); err != nil {
		clear(feasibleBuf)
		clear(statusBuf)
		return nil, nil, err
	}
	// The chunks taken are a prefix of the rotation: nothing beyond it was
	// written. How far past the want-th feasible node it reaches depends on
	// goroutine timing, so nothing past that node counts, errors included.
	feasible := make([]*framework.NodeInfo, 0, min(int(found.Load()), want))
	var firstErr error
	last := taken
	for i := 0; i < taken && len(feasible) < want; i++ {
		if ni := feasibleBuf[i]; ni != nil {
			feasible = append(feasible, ni)
			last = i + 1
		} else if st := statusBuf[i]; st != nil && st.Code() == framework.Error && firstErr == nil {
			firstErr = st.AsError()
		}
	}
	// The rejections are needed only to explain a pod that fits nowhere
	// (and for preemption).
	var statuses framework.NodeToStatus
	if len(feasible) == 0 {
		statuses = framework.NodeToStatus{}
		for i := 0; i < taken; i++ {
			if st := statusBuf[i]; st != nil {
				statuses[nodes[(start+i)%n].Name()] = st
			}
		}
	}
	clear(feasibleBuf[:taken])
	clear(statusBuf[:taken])
	if firstErr != nil {
		return nil, nil, firstErr
	}
	if len(feasible) < want {
		last = n
	}
	s.nextStartNodeIndex = (start + last) % n
	return feasible, statuses, nil
}

// selectHost picks the highest total score; ties are broken uniformly by
// the seeded random source.
func (s *Scheduler) selectHost(nodes []*framework.NodeInfo, scores []int64) string {
	best, ties := 0, 1
	for i := 1; i < len(nodes); i++ {
		switch {
		case scores[i] > scores[best]:
			best, ties = i, 1
		case scores[i] == scores[best]:
			ties++
			if s.rng.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return nodes[best].Name()
}

// handleFailure runs preemption for pods that fit nowhere, requeues the
// pod and records why it is pending.
func (s *Scheduler) handleFailure(ctx context.Context, fw *framework.Framework, state *framework.CycleState, qpi *queue.QueuedPodInfo, cycle int64, err error) {
	pi := qpi.PodInfo
	var fe *FitError
	var rej *rejection
	nominated := ""
	reason := "Unschedulable"
	switch {
	case errors.As(err, &fe):
		s.metrics.attempts.WithLabelValues("unschedulable", fw.SchedulerName()).Inc()
		qpi.UnschedulablePlugins = fe.UnschedulablePlugins()
		if fe.NumAllNodes == 0 {
			// No plugin rejected it: any cluster event (a node added) may help.
			qpi.UnschedulablePlugins = map[string]struct{}{"": {}}
		}
		if fw.HasPostFilterPlugins() && fe.NumAllNodes > 0 {
			s.metrics.preemptions.Inc()
			res, st := fw.RunPostFilterPlugins(ctx, state, pi, fe.Statuses)
			switch {
			case st.Code() == framework.Error:
				s.log.Error("preemption failed", "pod", podKey(pi.Pod), "err", st.Message())
			case res != nil && res.NominatedNodeName != "":
				nominated = res.NominatedNodeName
			case !st.IsSuccess():
				fe.PostFilterMessage = st.Message()
			}
		}
	case errors.As(err, &rej):
		s.metrics.attempts.WithLabelValues("unschedulable", fw.SchedulerName()).Inc()
		qpi.UnschedulablePlugins = map[string]struct{}{rej.st.Plugin(): {}}
	default:
		s.metrics.attempts.WithLabelValues("error", fw.SchedulerName()).Inc()
		qpi.UnschedulablePlugins = nil
		reason = "SchedulerError"
		s.log.Warn("scheduling failed", "pod", podKey(pi.Pod), "err", err)
	}
	if nominated != "" {
		s.queue.AddNominatedPod(pi, nominated)
	}
	s.queue.AddUnschedulableIfNotPresent(qpi, cycle)
	s.rec.podFailed(ctx, fw.SchedulerName(), pi.Pod, reason, err.Error(), nominated)
}
