// Package namespace runs the namespace controller: when a namespace that
// still holds objects is deleted, the apiserver marks it Terminating with
// the "kubernetes" finalizer; the controller deletes every object in it, of
// every namespaced kind, and removes the finalizer once none is left, which
// lets the apiserver remove the namespace.
package namespace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/informer"
	"bosun.dev/services/controller/internal/controller"
)

// Name is the controller's name in flags, logs and metrics.
const Name = "namespace"

// Finalizer is the finalizer the apiserver puts on a namespace that still
// holds objects when it is deleted.
const Finalizer = "kubernetes"

// RecheckInterval is how often a terminating namespace whose objects are
// still going (pods finishing their grace period) is looked at again.
const RecheckInterval = 500 * time.Millisecond

// Controller is the namespace controller.
type Controller struct {
	namespaces *informer.Informer[*corev1.Namespace]
	nsAPI      *client.Resource[*corev1.Namespace]
	res        func(*api.Kind) *client.Resource[api.Object]
	queue      controller.Queue
	log        *slog.Logger
}

// New builds the controller and registers its handlers: on namespaces, and
// on every namespaced kind's deletions, which may be what a terminating
// namespace waits for.
func New(c *controller.Context) *Controller {
	n := &Controller{
		namespaces: c.Informers.Namespaces,
		nsAPI:      client.For[*corev1.Namespace](c.Conn),
		res:        func(k *api.Kind) *client.Resource[api.Object] { return client.ForKind(c.Conn, k) },
		queue:      controller.NewQueue(Name, c.Metrics),
		log:        c.Logger(),
	}
	enqueue := func(ns *corev1.Namespace) {
		if ns.GetMetadata().GetDeletionTimestamp() != nil {
			n.queue.Add(ns.GetMetadata().GetName())
		}
	}
	n.namespaces.AddEventHandler(informer.HandlerFuncs[*corev1.Namespace]{
		AddFunc: enqueue, UpdateFunc: func(_, ns *corev1.Namespace) { enqueue(ns) },
	})
	for _, s := range c.Informers.Sources() {
		if !s.Kind.Namespaced {
			continue
		}
		s.AddEventHandler(func(api.Object) {}, func(_, _ api.Object) {}, func(o api.Object) {
			if ns, ok := n.namespaces.Get("", o.GetMetadata().GetNamespace()); ok {
				enqueue(ns)
			}
		})
	}
	return n
}

// Run waits for the cache and runs workers until ctx ends.
func (n *Controller) Run(ctx context.Context, workers int) {
	if !informer.WaitForCacheSync(ctx, n.namespaces) {
		return
	}
	controller.RunWorkers(ctx, n.queue, workers, n.sync, n.log)
}

func (n *Controller) sync(ctx context.Context, name string) error {
	ns, ok := n.namespaces.Get("", name)
	if !ok || ns.GetMetadata().GetDeletionTimestamp() == nil || !slices.Contains(ns.GetMetadata().GetFinalizers(), Finalizer) {
		return nil
	}
	left, err := n.deleteContents(ctx, name)
	if err != nil {
		return err
	}
	if left > 0 {
		n.queue.AddAfter(name, RecheckInterval)
		return nil
	}
	err = client.RetryOnConflict(ctx, client.DefaultRetry, func() error {
		cur, err := n.nsAPI.Get(ctx, "", name)
		if err != nil {
			return err
		}
		i := slices.Index(cur.GetMetadata().GetFinalizers(), Finalizer)
		if i < 0 || cur.GetMetadata().GetUid() != ns.GetMetadata().GetUid() {
			return nil
		}
		next := proto.Clone(cur).(*corev1.Namespace)
		next.Metadata.Finalizers = slices.Delete(next.Metadata.Finalizers, i, i+1)
		_, err = n.nsAPI.Update(ctx, next)
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		n.log.Info("namespace emptied; finalizer removed", "namespace", name)
	}
	return err
}

// deleteContents lists every namespaced kind in the namespace, live, and
// deletes what is not already being deleted. It returns how many objects
// remain.
func (n *Controller) deleteContents(ctx context.Context, namespace string) (int, error) {
	left := 0
	var errs []error
	for _, k := range api.Kinds() {
		if !k.Namespaced {
			continue
		}
		res := n.res(k)
		objs, _, err := res.ListAll(ctx, client.ListOptions{Namespace: namespace})
		if err != nil {
			errs = append(errs, fmt.Errorf("listing %s in %s: %w", k.Resource, namespace, err))
			continue
		}
		left += len(objs)
		for _, o := range objs {
			m := o.GetMetadata()
			if m.GetDeletionTimestamp() != nil {
				continue
			}
			_, err := res.Delete(ctx, namespace, m.GetName(), client.DeleteOptions{
				Preconditions:     &metav1.Preconditions{Uid: m.GetUid()},
				PropagationPolicy: metav1.DeletePropagation_DELETE_PROPAGATION_BACKGROUND,
			})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				errs = append(errs, fmt.Errorf("deleting %s %s/%s: %w", k.Kind, namespace, m.GetName(), err))
			}
		}
	}
	return left, errors.Join(errs...)
}
