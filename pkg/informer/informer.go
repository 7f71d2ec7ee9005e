// Package informer keeps a local, indexed copy of one kind of Bosun object in
// step with the apiserver and tells handlers about every change, like
// client-go's shared informer.
//
// Run lists the objects, fills the cache, and then watches from the list's
// resource_version. When the watch ends it resumes from the last revision seen
// (bookmarks included), with jittered back-off; when the apiserver answers that
// the revision was compacted it lists again and reconciles the cache,
// delivering an add, update or delete for every difference, so handlers see a
// consistent history even across a compaction.
//
// Objects from the cache and in handler calls are shared, not copied: callers
// must not modify them. Clone one with proto.Clone before changing it.
//
// Controllers pair an informer with client-go's rate-limited, deduplicating
// work queue rather than a queue of Bosun's own: handlers enqueue keys
// (api.KeyOf), workers take a key, read the object from the informer by key,
// reconcile, and Forget or AddRateLimited it:
//
//	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
//	pods.AddEventHandler(informer.HandlerFuncs[*corev1.Pod]{
//		AddFunc:    func(p *corev1.Pod) { q.Add(api.KeyOf(p)) },
//		UpdateFunc: func(_, p *corev1.Pod) { q.Add(api.KeyOf(p)) },
//		DeleteFunc: func(p *corev1.Pod) { q.Add(api.KeyOf(p)) },
//	})
package informer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
)

// Options configure an Informer.
type Options struct {
	// Namespace limits the informer to one namespace; "" watches all.
	Namespace string
	// LabelSelector and FieldSelector filter the objects, as in List.
	LabelSelector, FieldSelector string
	// Indexers are extra indexes of the cache, by name. NamespaceIndex is
	// always present.
	Indexers cache.Indexers
	// ResyncPeriod, when positive, redelivers every cached object to the
	// handlers as OnUpdate(obj, obj) at that interval, so that controllers
	// re-check state they may have missed acting on.
	ResyncPeriod time.Duration
	// Clock times back-off and resync; the real clock when nil.
	Clock clock.Clock
	// Logger receives the informer's logs; slog.Default() when nil.
	Logger *slog.Logger
}

// Handler is told about changes to the cache. Calls for one informer come
// from one goroutine, in the order of the changes; a handler that blocks
// delays every later notification, so hand work to a queue.
type Handler[T api.Object] interface {
	// OnAdd is called for an object new to the cache.
	OnAdd(obj T)
	// OnUpdate is called when an object changed, and on resync with old == new.
	OnUpdate(oldObj, newObj T)
	// OnDelete is called with the last state of a removed object.
	OnDelete(obj T)
}

// HandlerFuncs adapts functions to Handler; nil functions are skipped.
type HandlerFuncs[T api.Object] struct {
	AddFunc    func(obj T)
	UpdateFunc func(oldObj, newObj T)
	DeleteFunc func(obj T)
}

// OnAdd calls AddFunc when set.
func (h HandlerFuncs[T]) OnAdd(obj T) {
	if h.AddFunc != nil {
		h.AddFunc(obj)
	}
}

// OnUpdate calls UpdateFunc when set.
func (h HandlerFuncs[T]) OnUpdate(oldObj, newObj T) {
	if h.UpdateFunc != nil {
		h.UpdateFunc(oldObj, newObj)
	}
}

// OnDelete calls DeleteFunc when set.
func (h HandlerFuncs[T]) OnDelete(obj T) {
	if h.DeleteFunc != nil {
		h.DeleteFunc(obj)
	}
}

type noteKind int

const (
	noteAdd noteKind = iota
	noteUpdate
	noteDelete
	noteRegister // a late handler: deliver initial as adds, then add it to the set
)

type notification[T api.Object] struct {
	kind     noteKind
	old, obj T
	handler  Handler[T]
	initial  []T
}

// Informer caches one kind of object and notifies handlers of changes.
// Create it with New and start it with Run.
type Informer[T api.Object] struct {
	res     *client.Resource[T]
	opts    Options
	clock   clock.Clock
	log     *slog.Logger
	indexer cache.Indexer
	started atomic.Bool
	synced  chan struct{}

	// mu orders cache writes with their notifications, so a handler
	// registered late gets a snapshot consistent with what follows it.
	mu     sync.Mutex
	queue  []notification[T]
	lastRV string
	wake   chan struct{}
}

// New returns an informer for the objects res serves.
func New[T api.Object](res *client.Resource[T], opts Options) *Informer[T] {
	indexers := cache.Indexers{NamespaceIndex: NamespaceIndexFunc}
	for name, fn := range opts.Indexers {
		indexers[name] = fn
	}
	c := opts.Clock
	if c == nil {
		c = clock.RealClock{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Informer[T]{
		res:     res,
		opts:    opts,
		clock:   c,
		log:     log.With("informer", res.Kind().Resource),
		indexer: cache.NewIndexer(keyFunc, indexers),
		synced:  make(chan struct{}),
		wake:    make(chan struct{}, 1),
	}
}

func keyFunc(obj any) (string, error) {
	o, ok := obj.(api.Object)
	if !ok {
		return "", fmt.Errorf("informer: %T is not an api.Object", obj)
	}
	return api.KeyOf(o), nil
}

// AddEventHandler registers h. Registered before Run, h sees every change
// from the first list on; registered later, it first gets OnAdd for every
// object in the cache at that moment and then every later change.
func (i *Informer[T]) AddEventHandler(h Handler[T]) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.enqueueLocked(notification[T]{kind: noteRegister, handler: h, initial: i.listLocked()})
}

// HasSynced reports whether the first list has filled the cache.
func (i *Informer[T]) HasSynced() bool {
	select {
	case <-i.synced:
		return true
	default:
		return false
	}
}

// Synced is closed when the first list has filled the cache.
func (i *Informer[T]) Synced() <-chan struct{} { return i.synced }

// LastSyncResourceVersion is the revision the cache reflects: that of the last
// list, watch event or bookmark.
func (i *Informer[T]) LastSyncResourceVersion() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.lastRV
}

// Get returns the cached object namespace/name (name alone for cluster-scoped
// kinds). The object is shared: do not modify it.
func (i *Informer[T]) Get(namespace, name string) (T, bool) {
	obj, ok, _ := i.indexer.GetByKey(api.Key(namespace, name))
	if !ok {
		var zero T
		return zero, false
	}
	return obj.(T), true
}

// List returns every cached object, in no particular order. The objects are
// shared: do not modify them.
func (i *Informer[T]) List() []T { return typed[T](i.indexer.List()) }

// ByIndex returns the cached objects whose index indexName holds value. The
// objects are shared: do not modify them.
func (i *Informer[T]) ByIndex(indexName, value string) ([]T, error) {
	objs, err := i.indexer.ByIndex(indexName, value)
	if err != nil {
		return nil, err
	}
	return typed[T](objs), nil
}

func (i *Informer[T]) listLocked() []T { return typed[T](i.indexer.List()) }

func typed[T api.Object](objs []any) []T {
	out := make([]T, len(objs))
	for n, o := range objs {
		out[n] = o.(T)
	}
	return out
}

func (i *Informer[T]) enqueueLocked(n notification[T]) {
	i.queue = append(i.queue, n)
	select {
	case i.wake <- struct{}{}:
	default:
	}
}

// ErrAlreadyRunning is returned by a second call of Run.
var ErrAlreadyRunning = errors.New("informer: Run called twice")

// Run fills and maintains the cache and delivers notifications until ctx
// ends; then it returns nil once the last handler call has returned.
func (i *Informer[T]) Run(ctx context.Context) error {
	if !i.started.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); i.dispatch(ctx) }()
	if i.opts.ResyncPeriod > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); i.resync(ctx) }()
	}
	i.reflect(ctx)
	wg.Wait()
	return nil
}

func newBackoff() wait.Backoff {
	return wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Jitter: 0.5, Steps: 1 << 30, Cap: 30 * time.Second}
}

// reflect lists and watches until ctx ends.
func (i *Informer[T]) reflect(ctx context.Context) {
	backoff := newBackoff()
	needList := true
	for ctx.Err() == nil {
		if needList {
			if err := i.relist(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				d := backoff.Step()
				i.log.Warn("list failed; retrying", "err", err, "retry_in", d)
				i.sleep(ctx, d)
				continue
			}
			needList = false
			backoff = newBackoff()
		}
		progressed, err := i.watch(ctx)
		if ctx.Err() != nil {
			return
		}
		if progressed {
			backoff = newBackoff()
		}
		switch {
		case apierrors.IsCompacted(err):
			i.log.Info("watch revision compacted; listing again", "resource_version", i.LastSyncResourceVersion())
			needList = true
		default:
			d := backoff.Step()
			i.log.Info("watch ended; resuming", "err", err, "resource_version", i.LastSyncResourceVersion(), "retry_in", d)
			i.sleep(ctx, d)
		}
	}
}

func (i *Informer[T]) sleep(ctx context.Context, d time.Duration) {
	t := i.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C():
	}
}

func (i *Informer[T]) listOptions() client.ListOptions {
	return client.ListOptions{Namespace: i.opts.Namespace, LabelSelector: i.opts.LabelSelector, FieldSelector: i.opts.FieldSelector}
}

// relist lists every object and reconciles the cache with the list,
// notifying handlers of each difference.
func (i *Informer[T]) relist(ctx context.Context) error {
	items, rv, err := i.res.ListAll(ctx, i.listOptions())
	if err != nil {
		return err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	seen := make(map[string]struct{}, len(items))
	objs := make([]any, len(items))
	for n, obj := range items {
		key := api.KeyOf(obj)
		seen[key] = struct{}{}
		objs[n] = obj
		if old, ok, _ := i.indexer.GetByKey(key); !ok {
			i.enqueueLocked(notification[T]{kind: noteAdd, obj: obj})
		} else if om, nm := old.(T).GetMetadata(), obj.GetMetadata(); om.GetUid() != nm.GetUid() {
			// Deleted and re-created while we were not watching.
			i.enqueueLocked(notification[T]{kind: noteDelete, obj: old.(T)})
			i.enqueueLocked(notification[T]{kind: noteAdd, obj: obj})
		} else if om.GetResourceVersion() != nm.GetResourceVersion() {
			i.enqueueLocked(notification[T]{kind: noteUpdate, old: old.(T), obj: obj})
		}
	}
	for _, old := range i.listLocked() {
		if _, ok := seen[api.KeyOf(old)]; !ok {
			i.enqueueLocked(notification[T]{kind: noteDelete, obj: old})
		}
	}
	if err := i.indexer.Replace(objs, rv); err != nil {
		return err
	}
	i.lastRV = rv
	if !i.HasSynced() {
		close(i.synced)
	}
	i.log.Debug("listed", "objects", len(items), "resource_version", rv)
	return nil
}

// watch applies watch events from the last revision seen until the stream
// ends. progressed reports whether any event arrived.
func (i *Informer[T]) watch(ctx context.Context) (progressed bool, err error) {
	w, err := i.res.Watch(ctx, client.WatchOptions{
		Namespace: i.opts.Namespace, LabelSelector: i.opts.LabelSelector, FieldSelector: i.opts.FieldSelector,
		ResourceVersion: i.LastSyncResourceVersion(), AllowBookmarks: true,
	})
	if err != nil {
		return false, err
	}
	defer w.Stop()
	for {
		ev, err := w.Next()
		if err != nil {
			return progressed, err
		}
		progressed = true
		if err := i.apply(ev); err != nil {
			return progressed, err
		}
	}
}

// apply writes one watch event to the cache and queues its notification.
// Events at or below the last revision seen are ignored: they were applied.
func (i *Informer[T]) apply(ev client.Event[T]) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	rv := ev.ResourceVersion
	if rv == "" && ev.Type != client.Bookmark {
		rv = ev.Object.GetMetadata().GetResourceVersion()
	}
	if older(rv, i.lastRV) {
		return nil
	}
	switch ev.Type {
	case client.Bookmark:
	case client.Added, client.Modified:
		old, exists, _ := i.indexer.Get(ev.Object)
		if err := i.indexer.Update(ev.Object); err != nil {
			return err
		}
		if exists {
			i.enqueueLocked(notification[T]{kind: noteUpdate, old: old.(T), obj: ev.Object})
		} else {
			i.enqueueLocked(notification[T]{kind: noteAdd, obj: ev.Object})
		}
	case client.Deleted:
		if err := i.indexer.Delete(ev.Object); err != nil {
			return err
		}
		i.enqueueLocked(notification[T]{kind: noteDelete, obj: ev.Object})
	default:
		return fmt.Errorf("informer: unknown watch event type %v", ev.Type)
	}
	if rv != "" {
		i.lastRV = rv
	}
	return nil
}

// older reports whether revision a is below b, when both are numbers. Equal
// revisions are not older: one etcd transaction (a range delete, say) gives
// several keys the same revision, and each of their events counts.
func older(a, b string) bool {
	x, err1 := strconv.ParseInt(a, 10, 64)
	y, err2 := strconv.ParseInt(b, 10, 64)
	return err1 == nil && err2 == nil && x < y
}

// dispatch delivers queued notifications in order until ctx ends.
func (i *Informer[T]) dispatch(ctx context.Context) {
	var handlers []Handler[T]
	for {
		select {
		case <-ctx.Done():
			return
		case <-i.wake:
		}
		i.mu.Lock()
		batch := i.queue
		i.queue = nil
		i.mu.Unlock()
		for _, n := range batch {
			if ctx.Err() != nil {
				return
			}
			switch n.kind {
			case noteRegister:
				for _, obj := range n.initial {
					n.handler.OnAdd(obj)
				}
				handlers = append(handlers, n.handler)
			case noteAdd:
				for _, h := range handlers {
					h.OnAdd(n.obj)
				}
			case noteUpdate:
				for _, h := range handlers {
					h.OnUpdate(n.old, n.obj)
				}
			case noteDelete:
				for _, h := range handlers {
					h.OnDelete(n.obj)
				}
			}
		}
	}
}

// resync redelivers every cached object every ResyncPeriod.
func (i *Informer[T]) resync(ctx context.Context) {
	for {
		i.sleep(ctx, i.opts.ResyncPeriod)
		if ctx.Err() != nil {
			return
		}
		i.mu.Lock()
		for _, obj := range i.listLocked() {
			i.enqueueLocked(notification[T]{kind: noteUpdate, old: obj, obj: obj})
		}
		i.mu.Unlock()
	}
}

// WaitForCacheSync waits until every informer has synced, and reports
// whether they all did before ctx ended.
func WaitForCacheSync(ctx context.Context, informers ...interface{ HasSynced() bool }) bool {
	for _, inf := range informers {
		if s, ok := inf.(interface{ Synced() <-chan struct{} }); ok {
			select {
			case <-s.Synced():
				continue
			case <-ctx.Done():
				return false
			}
		}
		err := wait.PollUntilContextCancel(ctx, 10*time.Millisecond, true, func(context.Context) (bool, error) {
			return inf.HasSynced(), nil
		})
		if err != nil {
			return false
		}
	}
	return true
}
