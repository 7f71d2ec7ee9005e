package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
)

// Event reasons the scheduler records.
const (
	ReasonFailedScheduling = "FailedScheduling"
	ReasonPreempted        = "Preempted"
)

// recorder writes why pods are pending: the PodScheduled=False condition
// (with the nominated node) and a FailedScheduling event. Writes happen in
// the background, a bounded number at a time, and only when the message
// for the pod changed, so that a pod retried many times for the same
// reason costs one write.
type recorder struct {
	pods     *client.Resource[*corev1.Pod]
	events   *client.Resource[*corev1.Event]
	identity string
	log      *slog.Logger
	sem      chan struct{}

	mu   sync.Mutex
	last map[string]string // pod uid -> last recorded message
	wg   sync.WaitGroup
}

func newRecorder(conn grpc.ClientConnInterface, identity string, log *slog.Logger) *recorder {
	return &recorder{
		pods: client.For[*corev1.Pod](conn), events: client.For[*corev1.Event](conn),
		identity: identity, log: log, sem: make(chan struct{}, 16), last: map[string]string{},
	}
}

func (r *recorder) podFailed(ctx context.Context, component string, pod *corev1.Pod, reason, message, nominated string) {
	uid := pod.GetMetadata().GetUid()
	key := reason + "\x00" + message + "\x00" + nominated
	r.mu.Lock()
	if r.last[uid] == key {
		r.mu.Unlock()
		return
	}
	if len(r.last) > 100_000 {
		clear(r.last)
	}
	r.last[uid] = key
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		select {
		case r.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-r.sem }()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := r.setCondition(ctx, pod, reason, message, nominated); err != nil {
			r.log.Warn("recording PodScheduled=False", "pod", podKey(pod), "err", err)
		}
		if err := r.event(ctx, component, pod, "Warning", ReasonFailedScheduling, message); err != nil {
			r.log.Warn("recording FailedScheduling event", "pod", podKey(pod), "err", err)
		}
	}()
}

// setCondition writes PodScheduled=False unless the pod got bound meanwhile.
func (r *recorder) setCondition(ctx context.Context, pod *corev1.Pod, reason, message, nominated string) error {
	md := pod.GetMetadata()
	return client.RetryOnConflict(ctx, client.DefaultRetry, func() error {
		cur, err := r.pods.Get(ctx, md.GetNamespace(), md.GetName())
		if err != nil {
			return err
		}
		if cur.GetMetadata().GetUid() != md.GetUid() || cur.GetSpec().GetNodeName() != "" {
			return nil
		}
		next := proto.Clone(cur).(*corev1.Pod)
		if next.Status == nil {
			next.Status = &corev1.PodStatus{}
		}
		if nominated != "" {
			next.Status.NominatedNodeName = nominated
		}
		setCondition(next.Status, &corev1.PodCondition{
			Type: "PodScheduled", Status: "False", Reason: reason, Message: message,
			LastTransitionTime: timestamppb.Now(), LastProbeTime: timestamppb.Now(),
		})
		if proto.Equal(next.Status, cur.Status) {
			return nil
		}
		_, err = r.pods.UpdateStatus(ctx, next)
		return err
	})
}

func setCondition(st *corev1.PodStatus, c *corev1.PodCondition) {
	for i, old := range st.Conditions {
		if old.GetType() == c.Type {
			if old.GetStatus() == c.Status {
				c.LastTransitionTime = old.LastTransitionTime
			}
			st.Conditions[i] = c
			return
		}
	}
	st.Conditions = append(st.Conditions, c)
}

// event records an event about pod.
func (r *recorder) event(ctx context.Context, component string, pod *corev1.Pod, typ, reason, message string) error {
	md := pod.GetMetadata()
	now := timestamppb.Now()
	_, err := r.events.Create(ctx, &corev1.Event{
		Metadata: &metav1.ObjectMeta{
			Namespace: md.GetNamespace(),
			Name:      fmt.Sprintf("%s.%x", md.GetName(), time.Now().UnixNano()),
		},
		InvolvedObject: &metav1.ObjectReference{
			Kind: "Pod", ApiVersion: "v1", Namespace: md.GetNamespace(), Name: md.GetName(), Uid: md.GetUid(),
			ResourceVersion: md.GetResourceVersion(),
		},
		Reason: reason, Message: message, Type: typ, Count: 1,
		Source:         &corev1.EventSource{Component: component},
		FirstTimestamp: now, LastTimestamp: now, EventTime: now,
		ReportingComponent: "bosun-scheduler", ReportingInstance: r.identity, Action: "Scheduling",
	})
	return err
}

// wait waits for the writes in flight.
func (r *recorder) wait() { r.wg.Wait() }
