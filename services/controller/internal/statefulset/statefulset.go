// Package statefulset runs the StatefulSet controller: pods with stable
// identities name-0 .. name-(N-1) (from spec.ordinals.start), each with
// hostname = its name and subdomain = the governing Service.
//
// OrderedReady creates pods one at a time in ordinal order, each only once
// the one before is Running and Ready, and removes them from the highest
// ordinal down, one at a time; Parallel creates and removes them all at
// once. A changed template rolls out from the highest ordinal down to the
// partition, one pod at a time, each replaced only once every pod is ready.
//
// A pod's name is its identity: the apiserver refuses a second pod of the
// same name, and the controller deletes only by uid, so two live pods never
// share an identity; a replacement is created only after its predecessor is
// gone.
package statefulset

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"k8s.io/utils/clock"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/informer"
	"bosun.dev/services/controller/internal/controller"
)

// Name is the controller's name in flags, logs and metrics.
const Name = "statefulset"

// PodNameLabel carries each pod's own name, so a Service can select one.
const PodNameLabel = "statefulset.kubernetes.io/pod-name"

// Controller is the StatefulSet controller.
type Controller struct {
	sets   *informer.Informer[*appsv1.StatefulSet]
	pods   *informer.Informer[*corev1.Pod]
	stsAPI *client.Resource[*appsv1.StatefulSet]
	podAPI *client.Resource[*corev1.Pod]
	queue  controller.Queue
	clock  clock.Clock
	log    *slog.Logger
}

// New builds the controller and registers its informer handlers.
func New(c *controller.Context) *Controller {
	s := &Controller{
		sets:   c.Informers.StatefulSets,
		pods:   c.Informers.Pods,
		stsAPI: client.For[*appsv1.StatefulSet](c.Conn),
		podAPI: client.For[*corev1.Pod](c.Conn),
		queue:  controller.NewQueue(Name, c.Metrics),
		clock:  c.ClockOrReal(),
		log:    c.Logger(),
	}
	enqueue := func(o *appsv1.StatefulSet) { s.queue.Add(api.KeyOf(o)) }
	s.sets.AddEventHandler(informer.HandlerFuncs[*appsv1.StatefulSet]{
		AddFunc: enqueue, UpdateFunc: func(_, o *appsv1.StatefulSet) { enqueue(o) },
	})
	podChanged := func(p *corev1.Pod) {
		if ref := controller.ControllerRef(p.GetMetadata()); ref != nil && ref.GetKind() == "StatefulSet" {
			s.queue.Add(api.Key(p.GetMetadata().GetNamespace(), ref.GetName()))
		}
	}
	s.pods.AddEventHandler(informer.HandlerFuncs[*corev1.Pod]{
		AddFunc: podChanged, UpdateFunc: func(_, p *corev1.Pod) { podChanged(p) }, DeleteFunc: podChanged,
	})
	return s
}

// Run waits for the caches and runs workers until ctx ends.
func (s *Controller) Run(ctx context.Context, workers int) {
	if !informer.WaitForCacheSync(ctx, s.sets, s.pods) {
		return
	}
	controller.RunWorkers(ctx, s.queue, workers, s.sync, s.log)
}

// Ordinal returns the ordinal of a pod named after set, or -1.
func Ordinal(set, pod string) int {
	rest, ok := strings.CutPrefix(pod, set+"-")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || strconv.Itoa(n) != rest {
		return -1
	}
	return n
}

func running(p *corev1.Pod) bool {
	return p.GetStatus().GetPhase() == controller.PodRunning && controller.IsPodReady(p) && p.GetMetadata().GetDeletionTimestamp() == nil
}

func (s *Controller) sync(ctx context.Context, key string) error {
	ns, name, _ := strings.Cut(key, "/")
	set, ok := s.sets.Get(ns, name)
	if !ok {
		return nil
	}
	spec := set.GetSpec()
	start := int(spec.GetOrdinals().GetStart())
	replicas := int(spec.GetReplicas())
	parallel := spec.GetPodManagementPolicy() == "Parallel"
	updateRev := controller.Hash(spec.GetTemplate(), set.GetStatus().GetCollisionCount())

	owned, _ := s.pods.ByIndex(controller.OwnerUIDIndex, set.GetMetadata().GetUid())
	byOrdinal := map[int]*corev1.Pod{}
	for _, p := range owned {
		if !controller.IsControlledBy(p.GetMetadata(), set.GetMetadata().GetUid()) {
			continue
		}
		if o := Ordinal(name, p.GetMetadata().GetName()); o >= 0 {
			byOrdinal[o] = p
		}
	}
	err := s.reconcile(ctx, set, byOrdinal, start, replicas, parallel, updateRev)
	if serr := s.updateStatus(ctx, set, byOrdinal, start, replicas, updateRev); err == nil {
		err = serr
	}
	return err
}

func (s *Controller) reconcile(ctx context.Context, set *appsv1.StatefulSet, pods map[int]*corev1.Pod, start, replicas int, parallel bool, updateRev string) error {
	if set.GetMetadata().GetDeletionTimestamp() != nil {
		return nil
	}
	// Create missing pods and replace failed ones, in ordinal order.
	for o := start; o < start+replicas; o++ {
		p, ok := pods[o]
		switch {
		case !ok:
			if err := s.create(ctx, set, o, updateRev); err != nil {
				return err
			}
			if !parallel {
				return nil
			}
			continue
		case p.GetMetadata().GetDeletionTimestamp() != nil:
			if !parallel {
				return nil // wait for the old identity to be gone
			}
			continue
		case p.GetStatus().GetPhase() == controller.PodFailed || p.GetStatus().GetPhase() == controller.PodSucceeded:
			if err := s.delete(ctx, p); err != nil {
				return err
			}
			if !parallel {
				return nil
			}
			continue
		}
		if !parallel && !running(p) {
			return nil
		}
	}
	// Remove pods beyond replicas, highest ordinal first.
	var condemned []int
	for o := range pods {
		if o < start || o >= start+replicas {
			condemned = append(condemned, o)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(condemned)))
	for _, o := range condemned {
		p := pods[o]
		if p.GetMetadata().GetDeletionTimestamp() != nil {
			if !parallel {
				return nil
			}
			continue
		}
		if err := s.delete(ctx, p); err != nil {
			return err
		}
		if !parallel {
			return nil
		}
	}
	if len(condemned) > 0 {
		return nil
	}
	// Roll the template out from the highest ordinal down to the partition,
	// one pod at a time, only while every pod is ready.
	us := set.GetSpec().GetUpdateStrategy()
	if us.GetType() == "OnDelete" {
		return nil
	}
	for o := start; o < start+replicas; o++ {
		if p, ok := pods[o]; !ok || !running(p) {
			return nil
		}
	}
	partition := int(us.GetRollingUpdate().GetPartition())
	for o := start + replicas - 1; o >= start+partition && o >= start; o-- {
		p := pods[o]
		if p.GetMetadata().GetLabels()[controller.RevisionHashLabel] != updateRev {
			return s.delete(ctx, p)
		}
	}
	return nil
}

func (s *Controller) create(ctx context.Context, set *appsv1.StatefulSet, ordinal int, rev string) error {
	name := fmt.Sprintf("%s-%d", set.GetMetadata().GetName(), ordinal)
	pod := controller.PodFromTemplate(set.GetSpec().GetTemplate(), set)
	pod.Metadata.GenerateName = ""
	pod.Metadata.Name = name
	if pod.Metadata.Labels == nil {
		pod.Metadata.Labels = map[string]string{}
	}
	pod.Metadata.Labels[PodNameLabel] = name
	pod.Metadata.Labels[controller.RevisionHashLabel] = rev
	pod.Spec.Hostname = name
	pod.Spec.Subdomain = set.GetSpec().GetServiceName()
	_, err := s.podAPI.Create(ctx, pod)
	if apierrors.IsAlreadyExists(err) {
		return nil // the cache has not shown it yet, or its predecessor is still going
	}
	if err != nil {
		return fmt.Errorf("creating pod %s: %w", name, err)
	}
	return nil
}

func (s *Controller) delete(ctx context.Context, p *corev1.Pod) error {
	_, err := s.podAPI.Delete(ctx, p.Metadata.Namespace, p.Metadata.Name, client.DeleteOptions{
		Preconditions: &metav1.Preconditions{Uid: p.Metadata.Uid},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

func (s *Controller) updateStatus(ctx context.Context, set *appsv1.StatefulSet, pods map[int]*corev1.Pod, start, replicas int, updateRev string) error {
	now := s.clock.Now()
	old := set.GetStatus()
	st := &appsv1.StatefulSetStatus{
		ObservedGeneration: set.GetMetadata().GetGeneration(),
		UpdateRevision:     updateRev,
		CurrentRevision:    old.GetCurrentRevision(),
		Conditions:         old.GetConditions(),
	}
	if old != nil {
		st.CollisionCount = old.CollisionCount
	}
	if st.CurrentRevision == "" {
		st.CurrentRevision = updateRev
	}
	for _, p := range pods {
		if p.GetMetadata().GetDeletionTimestamp() != nil {
			continue
		}
		st.Replicas++
		if controller.IsPodReady(p) {
			st.ReadyReplicas++
		}
		if controller.IsPodAvailable(p, set.GetSpec().GetMinReadySeconds(), now) {
			st.AvailableReplicas++
		}
		switch p.GetMetadata().GetLabels()[controller.RevisionHashLabel] {
		case updateRev:
			st.UpdatedReplicas++
		}
		if p.GetMetadata().GetLabels()[controller.RevisionHashLabel] == st.CurrentRevision {
			st.CurrentReplicas++
		}
	}
	if st.UpdatedReplicas == int32(replicas) && st.Replicas == int32(replicas) && st.ReadyReplicas == int32(replicas) {
		st.CurrentRevision = updateRev
		st.CurrentReplicas = st.UpdatedReplicas
	}
	if proto.Equal(st, old) {
		return nil
	}
	next := proto.Clone(set).(*appsv1.StatefulSet)
	next.Status = st
	_, err := s.stsAPI.UpdateStatus(ctx, next)
	return err
}
