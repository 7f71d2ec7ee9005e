package controller

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	batchv1 "bosun.dev/gen/bosun/batch/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/informer"
)

// OwnerUIDIndex indexes objects by the uid of each of their owners.
const OwnerUIDIndex = "metadata.ownerReferences.uid"

func ownerUIDIndexFunc(obj any) ([]string, error) {
	o, ok := obj.(api.Object)
	if !ok {
		return nil, fmt.Errorf("%T is not an api.Object", obj)
	}
	refs := o.GetMetadata().GetOwnerReferences()
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		out = append(out, r.GetUid())
	}
	return out, nil
}

// Informers are the shared informers of one controller manager: one per
// kind, whatever the number of controllers reading it.
type Informers struct {
	Pods         *informer.Informer[*corev1.Pod]
	Nodes        *informer.Informer[*corev1.Node]
	Namespaces   *informer.Informer[*corev1.Namespace]
	Services     *informer.Informer[*corev1.Service]
	Endpoints    *informer.Informer[*corev1.Endpoints]
	ConfigMaps   *informer.Informer[*corev1.ConfigMap]
	Secrets      *informer.Informer[*corev1.Secret]
	Deployments  *informer.Informer[*appsv1.Deployment]
	ReplicaSets  *informer.Informer[*appsv1.ReplicaSet]
	DaemonSets   *informer.Informer[*appsv1.DaemonSet]
	StatefulSets *informer.Informer[*appsv1.StatefulSet]
	Jobs         *informer.Informer[*batchv1.Job]

	sources []Source
}

// InformerOptions tune the shared informers.
type InformerOptions struct {
	// ResyncPeriod redelivers every cached object at this interval (0: never).
	ResyncPeriod time.Duration
	Clock        clock.Clock
	Logger       *slog.Logger
}

// NewInformers builds (without starting) the shared informers on conn.
func NewInformers(conn grpc.ClientConnInterface, o InformerOptions) *Informers {
	inf := &Informers{}
	inf.Pods = newInformer[*corev1.Pod](inf, conn, o, cache.Indexers{informer.PodNodeNameIndex: informer.PodNodeNameIndexFunc})
	inf.Nodes = newInformer[*corev1.Node](inf, conn, o, nil)
	inf.Namespaces = newInformer[*corev1.Namespace](inf, conn, o, nil)
	inf.Services = newInformer[*corev1.Service](inf, conn, o, nil)
	inf.Endpoints = newInformer[*corev1.Endpoints](inf, conn, o, nil)
	inf.ConfigMaps = newInformer[*corev1.ConfigMap](inf, conn, o, nil)
	inf.Secrets = newInformer[*corev1.Secret](inf, conn, o, nil)
	inf.Deployments = newInformer[*appsv1.Deployment](inf, conn, o, nil)
	inf.ReplicaSets = newInformer[*appsv1.ReplicaSet](inf, conn, o, nil)
	inf.DaemonSets = newInformer[*appsv1.DaemonSet](inf, conn, o, nil)
	inf.StatefulSets = newInformer[*appsv1.StatefulSet](inf, conn, o, nil)
	inf.Jobs = newInformer[*batchv1.Job](inf, conn, o, nil)
	return inf
}

func newInformer[T api.Object](inf *Informers, conn grpc.ClientConnInterface, o InformerOptions, idx cache.Indexers) *informer.Informer[T] {
	indexers := cache.Indexers{OwnerUIDIndex: ownerUIDIndexFunc}
	for k, v := range idx {
		indexers[k] = v
	}
	i := informer.New(client.For[T](conn), informer.Options{
		Indexers: indexers, ResyncPeriod: o.ResyncPeriod, Clock: o.Clock, Logger: o.Logger,
	})
	inf.sources = append(inf.sources, sourceOf(i))
	return i
}

// Sources are the informers seen generically, for controllers that handle
// every kind (the garbage collector).
func (inf *Informers) Sources() []Source { return inf.sources }

// Run runs every informer until ctx ends.
func (inf *Informers) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, s := range inf.sources {
		wg.Add(1)
		go func() { defer wg.Done(); s.Run(ctx) }()
	}
	wg.Wait()
}

// WaitForSync waits until every informer has synced; false when ctx ended
// first.
func (inf *Informers) WaitForSync(ctx context.Context) bool {
	for _, s := range inf.sources {
		if !informer.WaitForCacheSync(ctx, syncer(s.HasSynced)) {
			return false
		}
	}
	return true
}

// Source is one informer seen through api.Object.
type Source struct {
	Kind *api.Kind
	// Get returns a cached object (shared: do not modify).
	Get func(namespace, name string) (api.Object, bool)
	// List returns every cached object (shared).
	List func() []api.Object
	// ByOwnerUID returns the cached objects owned by uid.
	ByOwnerUID func(uid string) []api.Object
	// AddEventHandler registers handlers for changes.
	AddEventHandler func(add func(api.Object), update func(old, cur api.Object), del func(api.Object))
	// HasSynced reports whether the first list filled the cache.
	HasSynced func() bool
	// Revision is the last etcd revision the cache has caught up with.
	Revision func() int64
	// Run runs the informer.
	Run func(ctx context.Context)
}

func sourceOf[T api.Object](i *informer.Informer[T]) Source {
	var zero T
	k, _ := api.KindOf(zero.ProtoReflect().Type().New().Interface())
	return Source{
		Kind: k,
		Get: func(ns, name string) (api.Object, bool) {
			o, ok := i.Get(ns, name)
			return o, ok
		},
		List: func() []api.Object { return objects(i.List()) },
		ByOwnerUID: func(uid string) []api.Object {
			objs, _ := i.ByIndex(OwnerUIDIndex, uid)
			return objects(objs)
		},
		AddEventHandler: func(add func(api.Object), update func(old, cur api.Object), del func(api.Object)) {
			i.AddEventHandler(informer.HandlerFuncs[T]{
				AddFunc:    func(o T) { add(o) },
				UpdateFunc: func(old, cur T) { update(old, cur) },
				DeleteFunc: func(o T) { del(o) },
			})
		},
		HasSynced: i.HasSynced,
		Revision: func() int64 {
			rv, _ := strconv.ParseInt(i.LastSyncResourceVersion(), 10, 64)
			return rv
		},
		Run: func(ctx context.Context) { _ = i.Run(ctx) },
	}
}

func objects[T api.Object](in []T) []api.Object {
	out := make([]api.Object, len(in))
	for n, o := range in {
		out[n] = o
	}
	return out
}

type syncer func() bool

func (f syncer) HasSynced() bool { return f() }

// WaitFor waits until synced reports true; false when ctx ended first.
func WaitFor(ctx context.Context, synced func() bool) bool {
	return informer.WaitForCacheSync(ctx, syncer(synced))
}
