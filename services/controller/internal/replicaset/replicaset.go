// Package replicaset runs the ReplicaSet controller: it keeps the number of
// active pods a ReplicaSet controls equal to its replicas, adopts orphaned
// pods its selector matches, and reports replicas, ready and available pods in
// its status.
//
// Creations and deletions are recorded as expectations before they are sent;
// until the pod watch has shown every one of them the controller does not
// count pods again, so a slow watch never makes it create or delete twice.
// Scale-down removes the least useful pods first (see Rank).
package replicaset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/clock"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/informer"
	"bosun.dev/pkg/server"
	"bosun.dev/services/controller/internal/controller"
)

// Name is the controller's name in flags, logs and metrics.
const Name = "replicaset"

// BurstReplicas bounds the pods one sync creates or deletes; the rest follow
// in later syncs.
const BurstReplicas = 500

// Controller is the ReplicaSet controller.
type Controller struct {
	sets   *informer.Informer[*appsv1.ReplicaSet]
	pods   *informer.Informer[*corev1.Pod]
	rsAPI  *client.Resource[*appsv1.ReplicaSet]
	podAPI *client.Resource[*corev1.Pod]
	queue  controller.Queue
	exp    *controller.Expectations
	clock  clock.Clock
	log    *slog.Logger
}

// New builds the controller and registers its informer handlers.
func New(c *controller.Context) *Controller {
	r := &Controller{
		sets:   c.Informers.ReplicaSets,
		pods:   c.Informers.Pods,
		rsAPI:  client.For[*appsv1.ReplicaSet](c.Conn),
		podAPI: client.For[*corev1.Pod](c.Conn),
		queue:  controller.NewQueue(Name, c.Metrics),
		clock:  c.ClockOrReal(),
		log:    c.Logger(),
	}
	r.exp = controller.NewExpectations(r.clock)
	r.sets.AddEventHandler(informer.HandlerFuncs[*appsv1.ReplicaSet]{
		AddFunc:    func(rs *appsv1.ReplicaSet) { r.queue.Add(api.KeyOf(rs)) },
		UpdateFunc: func(_, rs *appsv1.ReplicaSet) { r.queue.Add(api.KeyOf(rs)) },
		DeleteFunc: func(rs *appsv1.ReplicaSet) {
			r.exp.Forget(api.KeyOf(rs))
			r.queue.Add(api.KeyOf(rs))
		},
	})
	r.pods.AddEventHandler(informer.HandlerFuncs[*corev1.Pod]{
		AddFunc:    r.podAdded,
		UpdateFunc: r.podUpdated,
		DeleteFunc: r.podDeleted,
	})
	return r
}

// ownerKey returns the key of the ReplicaSet controlling pod, or "".
func ownerKey(pod *corev1.Pod) string {
	ref := controller.ControllerRef(pod.GetMetadata())
	if ref == nil || ref.GetKind() != "ReplicaSet" {
		return ""
	}
	return api.Key(pod.GetMetadata().GetNamespace(), ref.GetName())
}

func (r *Controller) podAdded(pod *corev1.Pod) {
	if key := ownerKey(pod); key != "" {
		r.exp.CreationObserved(key)
		if pod.GetMetadata().GetDeletionTimestamp() != nil {
			r.exp.DeletionObserved(key, api.KeyOf(pod))
		}
		r.queue.Add(key)
		return
	}
	r.enqueueSelecting(pod)
}

func (r *Controller) podUpdated(old, pod *corev1.Pod) {
	key := ownerKey(pod)
	if key != "" && pod.GetMetadata().GetDeletionTimestamp() != nil {
		r.exp.DeletionObserved(key, api.KeyOf(pod))
	}
	if oldKey := ownerKey(old); oldKey != "" && oldKey != key {
		r.queue.Add(oldKey)
	}
	if key != "" {
		r.queue.Add(key)
		return
	}
	r.enqueueSelecting(pod)
}

func (r *Controller) podDeleted(pod *corev1.Pod) {
	if key := ownerKey(pod); key != "" {
		r.exp.DeletionObserved(key, api.KeyOf(pod))
		r.queue.Add(key)
	}
}

// enqueueSelecting enqueues every ReplicaSet whose selector matches an
// orphaned pod, so that one of them adopts it.
func (r *Controller) enqueueSelecting(pod *corev1.Pod) {
	if !controller.IsPodActive(pod) {
		return
	}
	sets, _ := r.sets.ByIndex(informer.NamespaceIndex, pod.GetMetadata().GetNamespace())
	for _, rs := range sets {
		if controller.Matches(rs.GetSpec().GetSelector(), pod.GetMetadata().GetLabels()) {
			r.queue.Add(api.KeyOf(rs))
		}
	}
}

// Run waits for the caches and runs workers until ctx ends.
func (r *Controller) Run(ctx context.Context, workers int) {
	if !informer.WaitForCacheSync(ctx, r.sets, r.pods) {
		return
	}
	controller.RunWorkers(ctx, r.queue, workers, r.sync, r.log)
}

func splitKey(key string) (string, string) {
	for i := 0; i < len(key); i++ {
		if key[i] == '/' {
			return key[:i], key[i+1:]
		}
	}
	return "", key
}

func (r *Controller) sync(ctx context.Context, key string) error {
	ns, name := splitKey(key)
	rs, ok := r.sets.Get(ns, name)
	if !ok {
		r.exp.Forget(key)
		return nil
	}
	sel, err := controller.Selector(rs.GetSpec().GetSelector())
	if err != nil {
		r.log.Warn("replicaset has an invalid selector", "key", key, "err", err)
		return nil
	}
	owned, err := r.claimPods(ctx, rs, sel)
	if err != nil {
		return err
	}
	var deleted map[string]bool
	var manageErr error
	if r.exp.Satisfied(key) && rs.GetMetadata().GetDeletionTimestamp() == nil {
		deleted, manageErr = r.manage(ctx, key, rs, owned)
	}
	var live []*corev1.Pod
	for _, p := range owned {
		if !deleted[api.KeyOf(p)] {
			live = append(live, p)
		}
	}
	if err := r.updateStatus(ctx, rs, live); err != nil && manageErr == nil {
		manageErr = err
	}
	if manageErr == nil {
		if d := nextAvailable(live, rs.GetSpec().GetMinReadySeconds(), r.clock.Now()); d > 0 {
			r.queue.AddAfter(key, d)
		}
	}
	return manageErr
}

// claimPods returns the active pods rs controls, adopting active orphans its
// selector matches.
func (r *Controller) claimPods(ctx context.Context, rs *appsv1.ReplicaSet, sel labels.Selector) ([]*corev1.Pod, error) {
	all, err := r.pods.ByIndex(informer.NamespaceIndex, rs.GetMetadata().GetNamespace())
	if err != nil {
		return nil, err
	}
	uid := rs.GetMetadata().GetUid()
	var owned []*corev1.Pod
	for _, p := range all {
		if !controller.IsPodActive(p) {
			continue
		}
		ref := controller.ControllerRef(p.GetMetadata())
		switch {
		case ref != nil && ref.GetUid() == uid:
			owned = append(owned, p)
		case ref == nil && rs.GetMetadata().GetDeletionTimestamp() == nil && sel.Matches(labels.Set(p.GetMetadata().GetLabels())):
			adopted, err := r.adopt(ctx, rs, p)
			if err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return nil, err
			}
			owned = append(owned, adopted)
		}
	}
	return owned, nil
}

func (r *Controller) adopt(ctx context.Context, rs *appsv1.ReplicaSet, p *corev1.Pod) (*corev1.Pod, error) {
	next := proto.Clone(p).(*corev1.Pod)
	next.Metadata.OwnerReferences = append(next.Metadata.OwnerReferences, controller.NewControllerRef(rs))
	return r.podAPI.Update(ctx, next)
}

// manage creates or deletes pods so that owned reaches rs's replicas. It
// returns the keys of the pods it deleted.
func (r *Controller) manage(ctx context.Context, key string, rs *appsv1.ReplicaSet, owned []*corev1.Pod) (map[string]bool, error) {
	want := int(rs.GetSpec().GetReplicas())
	diff := len(owned) - want
	switch {
	case diff < 0:
		n := min(-diff, BurstReplicas)
		r.exp.ExpectCreations(key, n)
		created, err := slowStart(n, func() error {
			pod := controller.PodFromTemplate(rs.GetSpec().GetTemplate(), rs)
			// The scheduler continues this reconcile's trace for the pod.
			pod.Metadata.Annotations = server.InjectTraceParent(ctx, pod.Metadata.Annotations)
			_, err := r.podAPI.Create(ctx, pod)
			return err
		})
		for range n - created {
			r.exp.CreationObserved(key)
		}
		if err != nil {
			return nil, fmt.Errorf("creating pods for replicaset %s: %w", key, err)
		}
		return nil, nil
	case diff > 0:
		victims := Rank(owned)[:min(diff, BurstReplicas)]
		keys := make([]string, len(victims))
		for i, p := range victims {
			keys[i] = api.KeyOf(p)
		}
		r.exp.ExpectDeletions(key, keys)
		deleted := map[string]bool{}
		var mu sync.Mutex
		var errs []error
		var wg sync.WaitGroup
		for _, p := range victims {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := r.podAPI.Delete(ctx, p.Metadata.Namespace, p.Metadata.Name, client.DeleteOptions{
					Preconditions: &metav1.Preconditions{Uid: p.Metadata.Uid},
				})
				mu.Lock()
				defer mu.Unlock()
				if err != nil && !apierrors.IsNotFound(err) {
					r.exp.DeletionObserved(key, api.KeyOf(p))
					errs = append(errs, err)
					return
				}
				deleted[api.KeyOf(p)] = true
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return deleted, fmt.Errorf("deleting pods of replicaset %s: %w", key, err)
		}
		return deleted, nil
	}
	return nil, nil
}

// slowStart calls create n times in growing parallel batches (1, 2, 4, ...)
// and stops at the first batch with a failure, so that a systematic error
// (a quota, a bad template) costs one call and not n. It returns the number
// of calls that succeeded.
func slowStart(n int, create func() error) (int, error) {
	done := 0
	for batch := 1; done < n; batch *= 2 {
		size := min(batch, n-done)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs []error
		ok := 0
		for range size {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := create()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				ok++
			}()
		}
		wg.Wait()
		done += ok
		if len(errs) > 0 {
			return done, errors.Join(errs...)
		}
	}
	return done, nil
}

func (r *Controller) updateStatus(ctx context.Context, rs *appsv1.ReplicaSet, live []*corev1.Pod) error {
	now := r.clock.Now()
	st := &appsv1.ReplicaSetStatus{
		Replicas:           int32(len(live)),
		ObservedGeneration: rs.GetMetadata().GetGeneration(),
		Conditions:         rs.GetStatus().GetConditions(),
	}
	tmplLabels := labels.SelectorFromSet(rs.GetSpec().GetTemplate().GetMetadata().GetLabels())
	minReady := rs.GetSpec().GetMinReadySeconds()
	for _, p := range live {
		if tmplLabels.Matches(labels.Set(p.GetMetadata().GetLabels())) {
			st.FullyLabeledReplicas++
		}
		if controller.IsPodReady(p) {
			st.ReadyReplicas++
		}
		if controller.IsPodAvailable(p, minReady, now) {
			st.AvailableReplicas++
		}
	}
	if proto.Equal(st, rs.GetStatus()) {
		return nil
	}
	next := proto.Clone(rs).(*appsv1.ReplicaSet)
	next.Status = st
	_, err := r.rsAPI.UpdateStatus(ctx, next)
	return err
}

// nextAvailable is how long until the next ready pod becomes available.
func nextAvailable(pods []*corev1.Pod, minReady int32, now time.Time) time.Duration {
	var next time.Duration
	for _, p := range pods {
		if d := controller.AvailableIn(p, minReady, now); d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	if next > 0 {
		next += 10 * time.Millisecond
	}
	return next
}
