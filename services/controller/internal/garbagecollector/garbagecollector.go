// Package garbagecollector deletes objects whose owners are gone, following
// metadata.ownerReferences across every kind.
//
// Deleting an owner propagates to its dependents in one of three ways, as in
// Kubernetes:
//
//   - background (the default): the owner goes at once; the collector then
//     finds its dependents dangling and deletes them;
//   - foreground: the apiserver keeps the owner, marked for deletion, with
//     the foregroundDeletion finalizer; the collector deletes its dependents
//     (in foreground too, so whole chains unwind) and removes the finalizer
//     once no dependent that blocks owner deletion remains;
//   - orphan: the apiserver keeps the owner with the orphan finalizer; the
//     collector removes the owner's references from its dependents and then
//     the finalizer, and the dependents live on.
//
// The collector decides from its caches but confirms against the apiserver
// before deleting anything: an owner the cache does not show is read live, so
// a lagging watch never makes it delete a dependent whose owner exists.
package garbagecollector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/services/controller/internal/controller"
)

// Name is the controller's name in flags, logs and metrics.
const Name = "garbagecollector"

// Finalizers the apiserver adds for foreground and orphan propagation.
const (
	FinalizerForeground = "foregroundDeletion"
	FinalizerOrphan     = "orphan"
)

// Collector is the garbage collector.
type Collector struct {
	res     func(*api.Kind) *client.Resource[api.Object]
	sources []controller.Source
	byKind  map[string]controller.Source // "Kind.group"
	byRef   map[string]controller.Source // "apiVersion/Kind"
	queue   controller.Queue
	log     *slog.Logger
}

// New builds the collector and registers handlers on every informer.
func New(c *controller.Context) *Collector {
	g := &Collector{
		sources: c.Informers.Sources(),
		byKind:  map[string]controller.Source{},
		byRef:   map[string]controller.Source{},
		queue:   controller.NewQueue(Name, c.Metrics),
		log:     c.Logger(),
	}
	g.res = func(k *api.Kind) *client.Resource[api.Object] { return client.ForKind(c.Conn, k) }
	for _, s := range g.sources {
		g.byKind[s.Kind.String()] = s
		g.byRef[s.Kind.APIVersion()+"/"+s.Kind.Kind] = s
		kind := s.Kind
		s.AddEventHandler(
			func(o api.Object) { g.changed(kind, o) },
			func(_, o api.Object) { g.changed(kind, o) },
			func(o api.Object) { g.deleted(kind, o) },
		)
	}
	return g
}

func itemKey(k *api.Kind, o api.Object) string { return k.String() + "|" + api.KeyOf(o) }

func (g *Collector) changed(k *api.Kind, o api.Object) {
	m := o.GetMetadata()
	if len(m.GetOwnerReferences()) > 0 {
		g.queue.Add(itemKey(k, o))
		return
	}
	if m.GetDeletionTimestamp() != nil && (slices.Contains(m.GetFinalizers(), FinalizerForeground) || slices.Contains(m.GetFinalizers(), FinalizerOrphan)) {
		g.queue.Add(itemKey(k, o))
	}
}

// deleted enqueues the object's dependents (now perhaps dangling) and its
// owners (perhaps waiting in foreground for it).
func (g *Collector) deleted(k *api.Kind, o api.Object) {
	uid := o.GetMetadata().GetUid()
	for _, s := range g.sources {
		for _, d := range s.ByOwnerUID(uid) {
			g.queue.Add(itemKey(s.Kind, d))
		}
	}
	for _, ref := range o.GetMetadata().GetOwnerReferences() {
		s, ok := g.byRef[ref.GetApiVersion()+"/"+ref.GetKind()]
		if !ok {
			continue
		}
		ns := ""
		if s.Kind.Namespaced {
			ns = o.GetMetadata().GetNamespace()
		}
		g.queue.Add(s.Kind.String() + "|" + api.Key(ns, ref.GetName()))
	}
}

// Run waits for every cache and runs workers until ctx ends.
func (g *Collector) Run(ctx context.Context, workers int) {
	for _, s := range g.sources {
		if !waitFor(ctx, s.HasSynced) {
			return
		}
	}
	controller.RunWorkers(ctx, g.queue, workers, g.sync, g.log)
}

func (g *Collector) sync(ctx context.Context, item string) error {
	kindName, key, _ := strings.Cut(item, "|")
	s, ok := g.byKind[kindName]
	if !ok {
		return nil
	}
	ns, name := "", key
	if i := strings.IndexByte(key, '/'); i >= 0 {
		ns, name = key[:i], key[i+1:]
	}
	obj, ok := s.Get(ns, name)
	if !ok {
		return nil
	}
	m := obj.GetMetadata()
	if m.GetDeletionTimestamp() != nil {
		switch {
		case slices.Contains(m.GetFinalizers(), FinalizerOrphan):
			return g.orphan(ctx, s.Kind, obj)
		case slices.Contains(m.GetFinalizers(), FinalizerForeground):
			if err := g.foreground(ctx, s.Kind, obj); err != nil {
				return err
			}
		}
	}
	if len(m.GetOwnerReferences()) == 0 {
		return nil
	}
	return g.checkOwners(ctx, s.Kind, obj)
}

type ownerState int

const (
	ownerPresent ownerState = iota
	ownerAbsent
	ownerDeletingForeground
)

// owner reports the state of the owner ref names for a dependent in ns: from
// the cache when it shows the owner alive, else read live.
func (g *Collector) owner(ctx context.Context, ns string, ref *metav1.OwnerReference) (ownerState, error) {
	s, ok := g.byRef[ref.GetApiVersion()+"/"+ref.GetKind()]
	if !ok {
		return ownerPresent, nil // an owner of a kind Bosun does not serve: leave it be
	}
	if !s.Kind.Namespaced {
		ns = ""
	}
	if o, ok := s.Get(ns, ref.GetName()); ok && o.GetMetadata().GetUid() == ref.GetUid() && o.GetMetadata().GetDeletionTimestamp() == nil {
		return ownerPresent, nil
	}
	o, err := g.res(s.Kind).Get(ctx, ns, ref.GetName())
	switch {
	case apierrors.IsNotFound(err):
		return ownerAbsent, nil
	case err != nil:
		return ownerPresent, err
	case o.GetMetadata().GetUid() != ref.GetUid():
		return ownerAbsent, nil
	case o.GetMetadata().GetDeletionTimestamp() != nil && slices.Contains(o.GetMetadata().GetFinalizers(), FinalizerForeground):
		return ownerDeletingForeground, nil
	}
	return ownerPresent, nil
}

// checkOwners deletes a dependent whose owners are all gone (or being
// deleted in foreground), and drops references to owners that are gone
// while others remain.
func (g *Collector) checkOwners(ctx context.Context, k *api.Kind, obj api.Object) error {
	m := obj.GetMetadata()
	var absent, foreground, present int
	dangling := map[string]bool{}
	for _, ref := range m.GetOwnerReferences() {
		st, err := g.owner(ctx, m.GetNamespace(), ref)
		if err != nil {
			return err
		}
		switch st {
		case ownerAbsent:
			absent++
			dangling[ref.GetUid()] = true
		case ownerDeletingForeground:
			foreground++
		default:
			present++
		}
	}
	switch {
	case present == 0 && foreground == 0:
		if m.GetDeletionTimestamp() != nil {
			return nil
		}
		g.log.Debug("deleting dependent of deleted owners", "kind", k.String(), "object", api.KeyOf(obj))
		return g.delete(ctx, k, obj, metav1.DeletePropagation_DELETE_PROPAGATION_BACKGROUND)
	case present == 0:
		if m.GetDeletionTimestamp() != nil {
			return nil
		}
		return g.delete(ctx, k, obj, metav1.DeletePropagation_DELETE_PROPAGATION_FOREGROUND)
	case absent > 0:
		return g.removeRefs(ctx, k, obj, func(r *metav1.OwnerReference) bool { return dangling[r.GetUid()] })
	}
	return nil
}

func (g *Collector) delete(ctx context.Context, k *api.Kind, obj api.Object, p metav1.DeletePropagation) error {
	m := obj.GetMetadata()
	_, err := g.res(k).Delete(ctx, m.GetNamespace(), m.GetName(), client.DeleteOptions{
		Preconditions: &metav1.Preconditions{Uid: m.GetUid()}, PropagationPolicy: p,
	})
	if apierrors.IsNotFound(err) || (apierrors.IsConflict(err) && strings.Contains(err.Error(), "uid")) {
		return nil
	}
	return err
}

// dependents returns the cached objects owned by uid, with their kinds.
func (g *Collector) dependents(uid string) []dependent {
	var out []dependent
	for _, s := range g.sources {
		for _, d := range s.ByOwnerUID(uid) {
			out = append(out, dependent{kind: s.Kind, obj: d})
		}
	}
	return out
}

type dependent struct {
	kind *api.Kind
	obj  api.Object
}

// orphan removes owner's references from its dependents, then the orphan
// finalizer from owner.
func (g *Collector) orphan(ctx context.Context, k *api.Kind, owner api.Object) error {
	uid := owner.GetMetadata().GetUid()
	var errs []error
	for _, d := range g.dependents(uid) {
		if err := g.removeRefs(ctx, d.kind, d.obj, func(r *metav1.OwnerReference) bool { return r.GetUid() == uid }); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return g.removeFinalizer(ctx, k, owner, FinalizerOrphan)
}

// cacheCatchUpDelay is how long a foreground deletion waits before looking
// again at caches that lag behind the owner's marking.
const cacheCatchUpDelay = 100 * time.Millisecond

// foreground deletes owner's dependents and removes the foregroundDeletion
// finalizer once none that blocks owner deletion remains.
func (g *Collector) foreground(ctx context.Context, k *api.Kind, owner api.Object) error {
	uid := owner.GetMetadata().GetUid()
	blocking := 0
	var errs []error
	for _, d := range g.dependents(uid) {
		for _, r := range d.obj.GetMetadata().GetOwnerReferences() {
			if r.GetUid() == uid && r.GetBlockOwnerDeletion() {
				blocking++
				break
			}
		}
		if d.obj.GetMetadata().GetDeletionTimestamp() == nil {
			if err := g.delete(ctx, d.kind, d.obj, metav1.DeletePropagation_DELETE_PROPAGATION_FOREGROUND); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if blocking > 0 {
		return nil // their deletions will bring the owner back
	}
	// No dependent in the caches, but a cache that has not yet seen the
	// revision at which the owner was marked may still miss one created
	// just before: wait until every cache has caught up (bookmarks move
	// them on even when their kind is quiet).
	marked, _ := strconv.ParseInt(owner.GetMetadata().GetResourceVersion(), 10, 64)
	for _, s := range g.sources {
		if s.Revision() < marked {
			g.queue.AddAfter(itemKey(k, owner), cacheCatchUpDelay)
			return nil
		}
	}
	return g.removeFinalizer(ctx, k, owner, FinalizerForeground)
}

// removeRefs drops the owner references drop selects from obj, re-reading it
// on conflict.
func (g *Collector) removeRefs(ctx context.Context, k *api.Kind, obj api.Object, drop func(*metav1.OwnerReference) bool) error {
	m := obj.GetMetadata()
	return g.modify(ctx, k, m.GetNamespace(), m.GetName(), m.GetUid(), func(next api.Object) bool {
		nm := api.Meta(next)
		kept := nm.OwnerReferences[:0]
		for _, r := range nm.OwnerReferences {
			if !drop(r) {
				kept = append(kept, r)
			}
		}
		changed := len(kept) != len(nm.OwnerReferences)
		nm.OwnerReferences = kept
		return changed
	})
}

func (g *Collector) removeFinalizer(ctx context.Context, k *api.Kind, obj api.Object, finalizer string) error {
	m := obj.GetMetadata()
	return g.modify(ctx, k, m.GetNamespace(), m.GetName(), m.GetUid(), func(next api.Object) bool {
		nm := api.Meta(next)
		i := slices.Index(nm.Finalizers, finalizer)
		if i < 0 {
			return false
		}
		nm.Finalizers = slices.Delete(nm.Finalizers, i, i+1)
		return true
	})
}

// modify reads an object live, applies change and writes it back, retrying
// on conflict; it does nothing when the object is gone or was replaced.
func (g *Collector) modify(ctx context.Context, k *api.Kind, ns, name, uid string, change func(api.Object) bool) error {
	res := g.res(k)
	err := client.RetryOnConflict(ctx, client.DefaultRetry, func() error {
		cur, err := res.Get(ctx, ns, name)
		if err != nil {
			return err
		}
		if cur.GetMetadata().GetUid() != uid {
			return nil
		}
		next := proto.Clone(cur).(api.Object)
		if !change(next) {
			return nil
		}
		_, err = res.Update(ctx, next)
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s %s/%s: %w", k.Kind, ns, name, err)
	}
	return nil
}

func waitFor(ctx context.Context, synced func() bool) bool {
	return controller.WaitFor(ctx, synced)
}
