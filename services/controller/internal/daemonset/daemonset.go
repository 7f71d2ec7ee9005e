// Package daemonset runs the DaemonSet controller: one pod per eligible node
// (see Eligible), bound to that node when created; pods on nodes that stop
// being eligible, or leave, are deleted. A changed template rolls out node
// by node, never with more than maxUnavailable nodes lacking an available
// daemon pod; with the OnDelete strategy old pods are replaced only when
// someone deletes them.
package daemonset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
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
const Name = "daemonset"

// Controller is the DaemonSet controller.
type Controller struct {
	sets   *informer.Informer[*appsv1.DaemonSet]
	nodes  *informer.Informer[*corev1.Node]
	pods   *informer.Informer[*corev1.Pod]
	dsAPI  *client.Resource[*appsv1.DaemonSet]
	podAPI *client.Resource[*corev1.Pod]
	queue  controller.Queue
	exp    *controller.Expectations
	clock  clock.Clock
	log    *slog.Logger
}

// New builds the controller and registers its informer handlers.
func New(c *controller.Context) *Controller {
	d := &Controller{
		sets:   c.Informers.DaemonSets,
		nodes:  c.Informers.Nodes,
		pods:   c.Informers.Pods,
		dsAPI:  client.For[*appsv1.DaemonSet](c.Conn),
		podAPI: client.For[*corev1.Pod](c.Conn),
		queue:  controller.NewQueue(Name, c.Metrics),
		clock:  c.ClockOrReal(),
		log:    c.Logger(),
	}
	d.exp = controller.NewExpectations(d.clock)
	enqueue := func(o *appsv1.DaemonSet) { d.queue.Add(api.KeyOf(o)) }
	d.sets.AddEventHandler(informer.HandlerFuncs[*appsv1.DaemonSet]{
		AddFunc: enqueue, UpdateFunc: func(_, o *appsv1.DaemonSet) { enqueue(o) },
		DeleteFunc: func(o *appsv1.DaemonSet) { d.exp.Forget(api.KeyOf(o)) },
	})
	all := func(*corev1.Node) {
		for _, ds := range d.sets.List() {
			enqueue(ds)
		}
	}
	d.nodes.AddEventHandler(informer.HandlerFuncs[*corev1.Node]{
		AddFunc: all, UpdateFunc: func(old, n *corev1.Node) {
			if !proto.Equal(old.GetSpec(), n.GetSpec()) || !sameMap(old.GetMetadata().GetLabels(), n.GetMetadata().GetLabels()) {
				all(n)
			}
		}, DeleteFunc: all,
	})
	d.pods.AddEventHandler(controller.OwnedPods("DaemonSet", d.exp, d.queue))
	return d
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			return false
		}
	}
	return true
}

// Run waits for the caches and runs workers until ctx ends.
func (d *Controller) Run(ctx context.Context, workers int) {
	if !informer.WaitForCacheSync(ctx, d.sets, d.nodes, d.pods) {
		return
	}
	controller.RunWorkers(ctx, d.queue, workers, d.sync, d.log)
}

func (d *Controller) sync(ctx context.Context, key string) error {
	ns, name, _ := strings.Cut(key, "/")
	ds, ok := d.sets.Get(ns, name)
	if !ok || ds.GetMetadata().GetDeletionTimestamp() != nil {
		// Being deleted: the garbage collector removes its pods; creating
		// replacements would keep a foreground deletion from ever ending.
		return nil
	}
	hash := controller.Hash(ds.GetSpec().GetTemplate(), ds.GetStatus().GetCollisionCount())
	owned, _ := d.pods.ByIndex(controller.OwnerUIDIndex, ds.GetMetadata().GetUid())
	byNode := map[string][]*corev1.Pod{}
	for _, p := range owned {
		if controller.IsControlledBy(p.GetMetadata(), ds.GetMetadata().GetUid()) && p.GetMetadata().GetDeletionTimestamp() == nil {
			byNode[p.GetSpec().GetNodeName()] = append(byNode[p.GetSpec().GetNodeName()], p)
		}
	}
	nodes := d.nodes.List()
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].GetMetadata().GetName() < nodes[j].GetMetadata().GetName() })
	eligible := map[string]bool{}
	var create []string
	var remove []*corev1.Pod
	var force []*corev1.Pod // pods on nodes that left: no node-agent will finish them
	for _, n := range nodes {
		nn := n.GetMetadata().GetName()
		if n.GetMetadata().GetDeletionTimestamp() == nil && Eligible(n, ds.GetSpec().GetTemplate().GetSpec()) {
			eligible[nn] = true
		}
	}
	for node, pods := range byNode {
		if _, exists := d.nodes.Get("", node); !exists {
			force = append(force, pods...)
			continue
		}
		if !eligible[node] {
			remove = append(remove, pods...)
		}
	}
	minReady := ds.GetSpec().GetMinReadySeconds()
	now := d.clock.Now()
	var oldAvailable []*corev1.Pod
	unavailable := 0
	for _, n := range nodes {
		nn := n.GetMetadata().GetName()
		if !eligible[nn] {
			continue
		}
		var live []*corev1.Pod
		for _, p := range byNode[nn] {
			if p.GetStatus().GetPhase() == controller.PodFailed {
				remove = append(remove, p) // replaced on a later sync
				continue
			}
			live = append(live, p)
		}
		sort.Slice(live, func(i, j int) bool {
			return live[i].GetMetadata().GetCreationTimestamp().AsTime().Before(live[j].GetMetadata().GetCreationTimestamp().AsTime())
		})
		switch {
		case len(live) == 0:
			create = append(create, nn)
			unavailable++
			continue
		case len(live) > 1:
			remove = append(remove, live[1:]...)
		}
		p := live[0]
		available := controller.IsPodAvailable(p, minReady, now)
		if !available {
			unavailable++
		}
		if p.GetMetadata().GetLabels()[controller.RevisionHashLabel] != hash {
			if !available {
				if ds.GetSpec().GetUpdateStrategy().GetType() != "OnDelete" {
					remove = append(remove, p)
				}
			} else {
				oldAvailable = append(oldAvailable, p)
			}
		}
	}
	var errs []error
	if d.exp.Satisfied(key) {
		if ds.GetSpec().GetUpdateStrategy().GetType() != "OnDelete" {
			maxUnavailable, err := controller.ScaledValue(ds.GetSpec().GetUpdateStrategy().GetRollingUpdate().GetMaxUnavailable(), len(eligible), true)
			if err != nil {
				return err
			}
			maxUnavailable = max(maxUnavailable, 1)
			for _, p := range oldAvailable {
				if unavailable >= maxUnavailable {
					break
				}
				remove = append(remove, p)
				unavailable++
			}
		}
		errs = append(errs, d.manage(ctx, key, ds, hash, create, remove, force))
	}
	errs = append(errs, d.updateStatus(ctx, ds, hash, byNode, eligible))
	return errors.Join(errs...)
}

func (d *Controller) manage(ctx context.Context, key string, ds *appsv1.DaemonSet, hash string, create []string, remove, force []*corev1.Pod) error {
	var errs []error
	if len(create) > 0 {
		d.exp.ExpectCreations(key, len(create))
		for _, node := range create {
			pod := controller.PodFromTemplate(ds.GetSpec().GetTemplate(), ds)
			if pod.Metadata.Labels == nil {
				pod.Metadata.Labels = map[string]string{}
			}
			pod.Metadata.Labels[controller.RevisionHashLabel] = hash
			pod.Spec.NodeName = node
			if _, err := d.podAPI.Create(ctx, pod); err != nil {
				d.exp.CreationObserved(key)
				errs = append(errs, fmt.Errorf("creating daemon pod on %s: %w", node, err))
			}
		}
		return errors.Join(errs...)
	}
	victims := append(append([]*corev1.Pod(nil), remove...), force...)
	if len(victims) == 0 {
		return nil
	}
	keys := make([]string, len(victims))
	for i, p := range victims {
		keys[i] = api.KeyOf(p)
	}
	d.exp.ExpectDeletions(key, keys)
	for i, p := range victims {
		opts := client.DeleteOptions{Preconditions: &metav1.Preconditions{Uid: p.Metadata.Uid}}
		if i >= len(remove) {
			opts.GracePeriodSeconds = proto.Int64(0)
		}
		if _, err := d.podAPI.Delete(ctx, p.Metadata.Namespace, p.Metadata.Name, opts); err != nil && !apierrors.IsNotFound(err) {
			d.exp.DeletionObserved(key, api.KeyOf(p))
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (d *Controller) updateStatus(ctx context.Context, ds *appsv1.DaemonSet, hash string, byNode map[string][]*corev1.Pod, eligible map[string]bool) error {
	now := d.clock.Now()
	st := &appsv1.DaemonSetStatus{
		DesiredNumberScheduled: int32(len(eligible)),
		ObservedGeneration:     ds.GetMetadata().GetGeneration(),
		Conditions:             ds.GetStatus().GetConditions(),
	}
	if ds.GetStatus() != nil {
		st.CollisionCount = ds.Status.CollisionCount
	}
	for node, pods := range byNode {
		if len(pods) == 0 {
			continue
		}
		if !eligible[node] {
			st.NumberMisscheduled++
			continue
		}
		st.CurrentNumberScheduled++
		p := pods[0]
		if controller.IsPodReady(p) {
			st.NumberReady++
		}
		if controller.IsPodAvailable(p, ds.GetSpec().GetMinReadySeconds(), now) {
			st.NumberAvailable++
		}
		if p.GetMetadata().GetLabels()[controller.RevisionHashLabel] == hash {
			st.UpdatedNumberScheduled++
		}
	}
	st.NumberUnavailable = max(st.DesiredNumberScheduled-st.NumberAvailable, 0)
	if proto.Equal(st, ds.GetStatus()) {
		return nil
	}
	next := proto.Clone(ds).(*appsv1.DaemonSet)
	next.Status = st
	_, err := d.dsAPI.UpdateStatus(ctx, next)
	return err
}
