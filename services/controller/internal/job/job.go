// Package job runs the Job controller: it runs a Job's pods to completion,
// keeping at most parallelism of them active, until completions have
// succeeded (Complete) or more than backoffLimit have failed or
// activeDeadlineSeconds has passed (Failed, with the active pods deleted).
// A finished Job with ttlSecondsAfterFinished is deleted that long after it
// finished, its pods with it.
package job

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/utils/clock"

	batchv1 "bosun.dev/gen/bosun/batch/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/informer"
	"bosun.dev/services/controller/internal/controller"
)

// Name is the controller's name in flags, logs and metrics.
const Name = "job"

// Condition types and reasons.
const (
	ConditionComplete = "Complete"
	ConditionFailed   = "Failed"

	ReasonBackoffLimitExceeded = "BackoffLimitExceeded"
	ReasonDeadlineExceeded     = "DeadlineExceeded"
)

// Controller is the Job controller.
type Controller struct {
	jobs   *informer.Informer[*batchv1.Job]
	pods   *informer.Informer[*corev1.Pod]
	jobAPI *client.Resource[*batchv1.Job]
	podAPI *client.Resource[*corev1.Pod]
	queue  controller.Queue
	exp    *controller.Expectations
	clock  clock.Clock
	log    *slog.Logger
}

// New builds the controller and registers its informer handlers.
func New(c *controller.Context) *Controller {
	j := &Controller{
		jobs:   c.Informers.Jobs,
		pods:   c.Informers.Pods,
		jobAPI: client.For[*batchv1.Job](c.Conn),
		podAPI: client.For[*corev1.Pod](c.Conn),
		queue:  controller.NewQueue(Name, c.Metrics),
		clock:  c.ClockOrReal(),
		log:    c.Logger(),
	}
	j.exp = controller.NewExpectations(j.clock)
	enqueue := func(o *batchv1.Job) { j.queue.Add(api.KeyOf(o)) }
	j.jobs.AddEventHandler(informer.HandlerFuncs[*batchv1.Job]{
		AddFunc: enqueue, UpdateFunc: func(_, o *batchv1.Job) { enqueue(o) },
		DeleteFunc: func(o *batchv1.Job) { j.exp.Forget(api.KeyOf(o)) },
	})
	j.pods.AddEventHandler(controller.OwnedPods("Job", j.exp, j.queue))
	return j
}

// Run waits for the caches and runs workers until ctx ends.
func (j *Controller) Run(ctx context.Context, workers int) {
	if !informer.WaitForCacheSync(ctx, j.jobs, j.pods) {
		return
	}
	controller.RunWorkers(ctx, j.queue, workers, j.sync, j.log)
}

func finished(st *batchv1.JobStatus) (string, *timestamppb.Timestamp) {
	for _, c := range st.GetConditions() {
		if (c.GetType() == ConditionComplete || c.GetType() == ConditionFailed) && c.GetStatus() == "True" {
			return c.GetType(), c.GetLastTransitionTime()
		}
	}
	return "", nil
}

func (j *Controller) sync(ctx context.Context, key string) error {
	ns, name, _ := strings.Cut(key, "/")
	job, ok := j.jobs.Get(ns, name)
	if !ok || job.GetMetadata().GetDeletionTimestamp() != nil {
		// Being deleted: the garbage collector removes its pods; starting
		// new ones would keep a foreground deletion from ever ending.
		return nil
	}
	now := j.clock.Now()
	if done, at := finished(job.GetStatus()); done != "" {
		return j.expire(ctx, job, at.AsTime(), now)
	}
	all, _ := j.pods.ByIndex(controller.OwnerUIDIndex, job.GetMetadata().GetUid())
	var active []*corev1.Pod
	var succeeded, failed int32
	for _, p := range all {
		if !controller.IsControlledBy(p.GetMetadata(), job.GetMetadata().GetUid()) {
			continue
		}
		switch {
		case p.GetStatus().GetPhase() == controller.PodSucceeded:
			succeeded++
		case p.GetStatus().GetPhase() == controller.PodFailed:
			failed++
		case p.GetMetadata().GetDeletionTimestamp() == nil:
			active = append(active, p)
		}
	}
	spec := job.GetSpec()
	st := proto.Clone(job.GetStatus()).(*batchv1.JobStatus)
	if st == nil {
		st = &batchv1.JobStatus{}
	}
	if st.StartTime == nil {
		st.StartTime = timestamppb.New(now.UTC().Truncate(time.Second))
	}
	var finish, reason, msg string
	switch {
	case spec.GetCompletions() > 0 && succeeded >= spec.GetCompletions(),
		spec.Completions == nil && succeeded > 0 && len(active) == 0:
		finish = ConditionComplete
	case failed > spec.GetBackoffLimit():
		finish, reason, msg = ConditionFailed, ReasonBackoffLimitExceeded, fmt.Sprintf("Job has reached the specified backoff limit (%d failed pods)", failed)
	case spec.ActiveDeadlineSeconds != nil && !now.Before(st.StartTime.AsTime().Add(time.Duration(*spec.ActiveDeadlineSeconds)*time.Second)):
		finish, reason, msg = ConditionFailed, ReasonDeadlineExceeded, "Job was active longer than specified deadline"
	}
	var err error
	if finish != "" {
		err = j.deletePods(ctx, key, active)
		st.Active = 0
		ts := timestamppb.New(now.UTC().Truncate(time.Second))
		st.Conditions = append(st.Conditions, &batchv1.JobCondition{Type: finish, Status: "True", LastProbeTime: ts, LastTransitionTime: ts, Reason: reason, Message: msg})
		if finish == ConditionComplete {
			st.CompletionTime = ts
		}
	} else {
		if j.exp.Satisfied(key) && !spec.GetSuspend() {
			err = j.manage(ctx, key, job, active, succeeded)
		}
		st.Active = int32(len(active))
		if spec.ActiveDeadlineSeconds != nil {
			j.queue.AddAfter(key, st.StartTime.AsTime().Add(time.Duration(*spec.ActiveDeadlineSeconds)*time.Second).Sub(now)+10*time.Millisecond)
		}
	}
	st.Succeeded, st.Failed = succeeded, failed
	ready := int32(0)
	for _, p := range active {
		if controller.IsPodReady(p) {
			ready++
		}
	}
	st.Ready = proto.Int32(ready)
	if !proto.Equal(st, job.GetStatus()) {
		next := proto.Clone(job).(*batchv1.Job)
		next.Status = st
		if _, uerr := j.jobAPI.UpdateStatus(ctx, next); uerr != nil && err == nil {
			err = uerr
		}
	}
	return err
}

// manage creates or deletes pods so that the active ones match what is
// still to do.
func (j *Controller) manage(ctx context.Context, key string, job *batchv1.Job, active []*corev1.Pod, succeeded int32) error {
	spec := job.GetSpec()
	want := spec.GetParallelism()
	if spec.Completions != nil {
		want = min(want, spec.GetCompletions()-succeeded)
	} else if succeeded > 0 {
		want = 0
	}
	want = max(want, 0)
	diff := int(want) - len(active)
	switch {
	case diff > 0:
		j.exp.ExpectCreations(key, diff)
		for i := range diff {
			pod := controller.PodFromTemplate(spec.GetTemplate(), job)
			if _, err := j.podAPI.Create(ctx, pod); err != nil {
				for range diff - i {
					j.exp.CreationObserved(key)
				}
				return fmt.Errorf("creating pod for job %s: %w", key, err)
			}
		}
	case diff < 0:
		return j.deletePods(ctx, key, active[:-diff])
	}
	return nil
}

func (j *Controller) deletePods(ctx context.Context, key string, pods []*corev1.Pod) error {
	if len(pods) == 0 {
		return nil
	}
	keys := make([]string, len(pods))
	for i, p := range pods {
		keys[i] = api.KeyOf(p)
	}
	j.exp.ExpectDeletions(key, keys)
	for _, p := range pods {
		_, err := j.podAPI.Delete(ctx, p.Metadata.Namespace, p.Metadata.Name, client.DeleteOptions{Preconditions: &metav1.Preconditions{Uid: p.Metadata.Uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			j.exp.DeletionObserved(key, api.KeyOf(p))
			return err
		}
	}
	return nil
}

// expire deletes a finished Job once its ttlSecondsAfterFinished has passed.
func (j *Controller) expire(ctx context.Context, job *batchv1.Job, at, now time.Time) error {
	ttl := job.GetSpec().TtlSecondsAfterFinished
	if ttl == nil || job.GetMetadata().GetDeletionTimestamp() != nil {
		return nil
	}
	due := at.Add(time.Duration(*ttl) * time.Second)
	if now.Before(due) {
		j.queue.AddAfter(api.KeyOf(job), due.Sub(now)+10*time.Millisecond)
		return nil
	}
	_, err := j.jobAPI.Delete(ctx, job.Metadata.Namespace, job.Metadata.Name, client.DeleteOptions{
		Preconditions:     &metav1.Preconditions{Uid: job.Metadata.Uid},
		PropagationPolicy: metav1.DeletePropagation_DELETE_PROPAGATION_BACKGROUND,
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
