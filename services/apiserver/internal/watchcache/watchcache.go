// Package watchcache fans one etcd watch per kind out to any number of API
// watchers. A Cache lists its kind once, follows etcd from that revision, keeps
// the current objects and a bounded window of recent events, and serves each
// watcher from that window: N watchers of a kind cost one etcd watch.
//
// A watcher that asks for a revision older than the window, but not yet
// compacted (typically a client resuming after an apiserver restart), is served
// by an etcd watch of its own from that revision, so that resuming is always
// gap-free. A revision older than the last compaction is refused with
// apierrors' RESOURCE_VERSION_COMPACTED.
package watchcache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/services/apiserver/internal/storage"
)

// Event types.
const (
	Added    = metav1.WatchEventType_WATCH_EVENT_TYPE_ADDED
	Modified = metav1.WatchEventType_WATCH_EVENT_TYPE_MODIFIED
	Deleted  = metav1.WatchEventType_WATCH_EVENT_TYPE_DELETED
	Bookmark = metav1.WatchEventType_WATCH_EVENT_TYPE_BOOKMARK
)

// Event is one change of one object. Objects in events are shared between
// watchers and must not be modified.
type Event struct {
	Type metav1.WatchEventType
	// Object is the state after the change; for Deleted, the last state with
	// its resource_version set to the revision of the deletion.
	Object api.Object
	// Prev is the state before the change; nil for Added.
	Prev api.Object
	// Rev is the etcd revision of the change.
	Rev int64

	encodeOnce sync.Once
	encoded    []byte
	encodeErr  error
}

// Encoded returns encode(e), computed once for the event and shared by every
// watcher it is sent to, so that an event going to many watchers is
// marshalled once. encode must depend on the event alone, and the bytes
// returned must not be modified.
func (e *Event) Encoded(encode func(*Event) ([]byte, error)) ([]byte, error) {
	e.encodeOnce.Do(func() { e.encoded, e.encodeErr = encode(e) })
	return e.encoded, e.encodeErr
}

// Options tune a cache.
type Options struct {
	// Capacity is the number of recent events kept for resuming watchers.
	Capacity int
	// BookmarkInterval is how often watchers that allow bookmarks get one.
	BookmarkInterval time.Duration
	// TriggerField, when set, is a field path (e.g. "spec.nodeName") that
	// watchers commonly select on with "=": such watchers are indexed by the
	// value so that an event is only offered to the watchers it can match.
	TriggerField func(api.Object) string
	TriggerName  string
	Logger       *slog.Logger
}

// Cache is the watch cache of one kind.
type Cache struct {
	store *storage.Store
	opts  Options
	log   *slog.Logger

	ready chan struct{}

	mu        sync.Mutex
	rev       int64                 // every event up to rev has been applied
	objects   map[string]api.Object // etcd key -> current object
	ring      []*Event
	head, n   int   // ring start and length
	bufFrom   int64 // the ring holds every event with a revision above bufFrom
	compacted int64 // etcd's compaction revision as last learned
	watchers  map[*watcher]struct{}
	byTrigger map[string]map[*watcher]struct{}
	err       error // set when the cache stopped for good
}

// New returns a cache for a store's kind; Run starts it.
func New(store *storage.Store, opts Options) *Cache {
	if opts.Capacity <= 0 {
		opts.Capacity = 10000
	}
	if opts.BookmarkInterval <= 0 {
		opts.BookmarkInterval = 5 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Cache{
		store: store, opts: opts, log: log.With("kind", store.Kind().Kind),
		ready:     make(chan struct{}),
		objects:   map[string]api.Object{},
		ring:      make([]*Event, opts.Capacity),
		watchers:  map[*watcher]struct{}{},
		byTrigger: map[string]map[*watcher]struct{}{},
	}
}

// Ready is closed once the cache has listed its kind and follows etcd.
func (c *Cache) Ready() <-chan struct{} { return c.ready }

// Revision returns the revision up to which the cache has applied every event.
func (c *Cache) Revision() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rev
}

// Get returns the cached object at namespace/name (shared: do not modify).
func (c *Cache) Get(namespace, name string) (api.Object, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	obj, ok := c.objects[c.store.Key(namespace, name)]
	return obj, ok
}

// Range calls fn for every cached object until fn returns false. Objects are
// shared: fn must not modify them, nor call back into the cache.
func (c *Cache) Range(fn func(api.Object) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, obj := range c.objects {
		if !fn(obj) {
			return
		}
	}
}

// Len returns the number of cached objects.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.objects)
}

// Run lists and follows etcd until ctx ends. When etcd's watch fails it
// disconnects every watcher (they resume from their last revision) and starts
// over.
func (c *Cache) Run(ctx context.Context) {
	first := true
	for ctx.Err() == nil {
		err := c.follow(ctx, first)
		first = false
		if ctx.Err() != nil {
			break
		}
		c.log.Warn("etcd watch ended; relisting", "error", err)
		c.reset(status.Errorf(codes.Unavailable, "watch cache of %s restarted; resume from the last resource version", c.store.Kind().Kind))
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	c.reset(status.Error(codes.Unavailable, "apiserver is shutting down"))
}

func (c *Cache) follow(ctx context.Context, first bool) error {
	list, err := c.store.List(ctx, storage.ListOptions{SkipUndecodable: func(key string, err error) {
		c.log.Error("leaving an undecodable object out of the watch cache", "key", key, "error", err)
	}})
	if err != nil {
		return fmt.Errorf("listing: %w", err)
	}
	c.mu.Lock()
	c.objects = make(map[string]api.Object, len(list.Items))
	for _, obj := range list.Items {
		m := obj.GetMetadata()
		c.objects[c.store.Key(m.GetNamespace(), m.GetName())] = obj
	}
	c.rev, c.bufFrom, c.head, c.n = list.Revision, list.Revision, 0, 0
	c.mu.Unlock()
	if first {
		close(c.ready)
	}

	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	// No WithPrevKV: the cache holds every object, so the state before a
	// change is its own; asking etcd for it would cost etcd a read of the
	// previous revision for every event.
	wch := c.store.Client().Watch(wctx, c.store.Prefix(), clientv3.WithPrefix(),
		clientv3.WithRev(list.Revision+1), clientv3.WithProgressNotify())
	ticker := time.NewTicker(c.opts.BookmarkInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
			// Ask etcd to tell us how far this watch has got, for bookmarks.
			_ = c.store.Client().RequestProgress(wctx)
		case resp, ok := <-wch:
			if !ok {
				return errors.New("etcd watch channel closed")
			}
			if err := resp.Err(); err != nil {
				return err
			}
			if resp.IsProgressNotify() {
				c.progress(resp.Header.Revision)
				continue
			}
			for _, ev := range resp.Events {
				e, err := c.toEvent(ev)
				if err != nil {
					c.log.Error("skipping undecodable event", "key", string(ev.Kv.Key), "error", err)
					continue
				}
				c.apply(string(ev.Kv.Key), e)
			}
		}
	}
}

func (c *Cache) toEvent(ev *clientv3.Event) (*Event, error) {
	e := &Event{Rev: ev.Kv.ModRevision}
	c.mu.Lock()
	prev := c.objects[string(ev.Kv.Key)]
	c.mu.Unlock()
	if ev.Type == mvccpb.DELETE {
		e.Type, e.Rev = Deleted, ev.Kv.ModRevision
		if prev == nil {
			return nil, fmt.Errorf("delete of an unknown object")
		}
		e.Prev = prev
		e.Object = withRevision(prev, e.Rev)
		return e, nil
	}
	obj, err := c.store.Decode(ev.Kv)
	if err != nil {
		return nil, err
	}
	e.Object, e.Prev = obj, prev
	if ev.IsCreate() || prev == nil {
		e.Type, e.Prev = Added, nil
	} else {
		e.Type = Modified
	}
	return e, nil
}

func withRevision(obj api.Object, rev int64) api.Object {
	out := proto.Clone(obj).(api.Object)
	api.Meta(out).ResourceVersion = strconv.FormatInt(rev, 10)
	return out
}

func (c *Cache) apply(key string, e *Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.Type == Deleted {
		delete(c.objects, key)
	} else {
		c.objects[key] = e.Object
	}
	c.rev = e.Rev
	if c.n == len(c.ring) {
		evicted := c.ring[c.head]
		c.ring[c.head] = nil
		c.head = (c.head + 1) % len(c.ring)
		c.n--
		c.bufFrom = evicted.Rev
	}
	c.ring[(c.head+c.n)%len(c.ring)] = e
	c.n++
	for w := range c.candidates(e) {
		w.offer(e)
	}
}

// candidates returns the watchers an event may concern: those not indexed by
// trigger, and those whose trigger value is the object's before or after.
func (c *Cache) candidates(e *Event) map[*watcher]struct{} {
	if c.opts.TriggerField == nil || len(c.byTrigger) == 0 {
		return c.watchers
	}
	out := make(map[*watcher]struct{}, len(c.watchers))
	for w := range c.watchers {
		if w.trigger == "" {
			out[w] = struct{}{}
		}
	}
	for _, obj := range []api.Object{e.Object, e.Prev} {
		if obj == nil {
			continue
		}
		for w := range c.byTrigger[c.opts.TriggerField(obj)] {
			out[w] = struct{}{}
		}
	}
	return out
}

func (c *Cache) progress(rev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rev < c.rev {
		return
	}
	c.rev = rev
	b := &Event{Type: Bookmark, Rev: rev}
	for w := range c.watchers {
		if w.bookmarks {
			w.offerBookmark(b)
		}
	}
}

// Compacted tells the cache that etcd compacted its history up to rev: watches
// from older revisions are refused from now on.
func (c *Cache) Compacted(rev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rev <= c.compacted {
		return
	}
	c.compacted = rev
	for c.n > 0 && c.ring[c.head].Rev < rev {
		c.bufFrom = c.ring[c.head].Rev
		c.ring[c.head] = nil
		c.head = (c.head + 1) % len(c.ring)
		c.n--
	}
	if c.bufFrom < rev-1 {
		c.bufFrom = rev - 1
	}
}

func (c *Cache) reset(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for w := range c.watchers {
		w.stop(err)
	}
	c.watchers = map[*watcher]struct{}{}
	c.byTrigger = map[string]map[*watcher]struct{}{}
}

// Filter decides whether an object is of interest to a watcher.
type Filter func(api.Object) bool

// WatchOptions select what a watch delivers.
type WatchOptions struct {
	// Namespace limits the watch; "" for all.
	Namespace string
	// Filter keeps matching objects; nil keeps all. An object that starts
	// matching is delivered as Added, one that stops matching as Deleted.
	Filter Filter
	// Trigger is the value of the cache's trigger field this watcher selects
	// on with "=", or "" when it does not.
	Trigger string
	// StartRev: events after this revision are delivered; 0 means from now.
	StartRev int64
	// Bookmarks asks for periodic bookmark events.
	Bookmarks bool
}

// Watch calls send with every matching event after opts.StartRev, in order and
// once each, until ctx ends, send fails or the watcher is disconnected.
func (c *Cache) Watch(ctx context.Context, opts WatchOptions, send func(*Event) error) error {
	select {
	case <-c.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	w := &watcher{
		opts: opts, ch: make(chan *Event, 1024), done: make(chan struct{}),
		bookmarks: opts.Bookmarks, trigger: opts.Trigger,
	}
	c.mu.Lock()
	start := opts.StartRev
	if start == 0 {
		start = c.rev
	}
	if c.compacted > 0 && start+1 < c.compacted {
		c.mu.Unlock()
		return apierrors.Compacted(start, c.compacted)
	}
	if start < c.bufFrom {
		c.mu.Unlock()
		return c.watchEtcd(ctx, start, opts, send)
	}
	var replay []*Event
	for i := 0; i < c.n; i++ {
		if e := c.ring[(c.head+i)%len(c.ring)]; e.Rev > start {
			replay = append(replay, e)
		}
	}
	c.watchers[w] = struct{}{}
	if w.trigger != "" && c.opts.TriggerField != nil {
		set := c.byTrigger[w.trigger]
		if set == nil {
			set = map[*watcher]struct{}{}
			c.byTrigger[w.trigger] = set
		}
		set[w] = struct{}{}
	}
	c.mu.Unlock()
	defer c.unregister(w)

	last := start
	deliver := func(e *Event) error {
		if e.Type == Bookmark {
			// A bookmark repeats nothing: it only says how far the watch has got.
			if e.Rev < last {
				return nil
			}
			last = e.Rev
			return send(e)
		}
		if e.Rev <= last {
			return nil
		}
		out := transition(e, opts)
		last = e.Rev
		if out == nil {
			return nil
		}
		return send(out)
	}
	for _, e := range replay {
		if err := deliver(e); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.done:
			// Drain what was queued before the stop, then report why.
			for {
				select {
				case e := <-w.ch:
					if err := deliver(e); err != nil {
						return err
					}
				default:
					return w.err
				}
			}
		case e := <-w.ch:
			if err := deliver(e); err != nil {
				return err
			}
		}
	}
}

func (c *Cache) unregister(w *watcher) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.watchers, w)
	if set := c.byTrigger[w.trigger]; set != nil {
		delete(set, w)
		if len(set) == 0 {
			delete(c.byTrigger, w.trigger)
		}
	}
}

// transition turns a raw event into what a filtered watcher sees, or nil.
func transition(e *Event, opts WatchOptions) *Event {
	match := func(obj api.Object) bool {
		if obj == nil {
			return false
		}
		if opts.Namespace != "" && obj.GetMetadata().GetNamespace() != opts.Namespace {
			return false
		}
		return opts.Filter == nil || opts.Filter(obj)
	}
	switch e.Type {
	case Added:
		if match(e.Object) {
			return e
		}
	case Deleted:
		if match(e.Prev) {
			return e
		}
	case Modified:
		was, is := match(e.Prev), match(e.Object)
		switch {
		case was && is:
			return e
		case is:
			return &Event{Type: Added, Object: e.Object, Rev: e.Rev}
		case was:
			return &Event{Type: Deleted, Object: withRevision(e.Prev, e.Rev), Prev: e.Prev, Rev: e.Rev}
		}
	}
	return nil
}

// watchEtcd serves a watcher whose start is older than the cache's window with
// an etcd watch of its own.
func (c *Cache) watchEtcd(ctx context.Context, start int64, opts WatchOptions, send func(*Event) error) error {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	prefix := c.store.NamespacePrefix(opts.Namespace)
	wopts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(start + 1), clientv3.WithPrevKV()}
	var tick <-chan time.Time
	if opts.Bookmarks {
		// Bookmarks here too: a client resumed from an old revision (after
		// an apiserver restart, say) waits for them to learn how far it
		// has got when its kind does not change.
		wopts = append(wopts, clientv3.WithProgressNotify())
		ticker := time.NewTicker(c.opts.BookmarkInterval)
		defer ticker.Stop()
		tick = ticker.C
	}
	wch := c.store.Client().Watch(ctx, prefix, wopts...)
	for {
		var resp clientv3.WatchResponse
		var ok bool
		select {
		case <-tick:
			_ = c.store.Client().RequestProgress(ctx)
			continue
		case resp, ok = <-wch:
		}
		if !ok {
			break
		}
		if err := resp.Err(); err != nil {
			if errors.Is(err, rpctypes.ErrCompacted) {
				return apierrors.Compacted(start, resp.CompactRevision)
			}
			return status.Errorf(codes.Unavailable, "watch: %v", err)
		}
		if resp.IsProgressNotify() {
			if rev := resp.Header.Revision; opts.Bookmarks && rev > start {
				if err := send(&Event{Type: Bookmark, Rev: rev}); err != nil {
					return err
				}
				start = rev
			}
			continue
		}
		for _, ev := range resp.Events {
			e := &Event{Rev: ev.Kv.ModRevision}
			var err error
			if ev.PrevKv != nil {
				if e.Prev, err = c.store.Decode(ev.PrevKv); err != nil {
					return err
				}
			}
			switch {
			case ev.Type == mvccpb.DELETE:
				if e.Prev == nil {
					continue
				}
				e.Type, e.Object = Deleted, withRevision(e.Prev, e.Rev)
			default:
				if e.Object, err = c.store.Decode(ev.Kv); err != nil {
					return err
				}
				e.Type = Modified
				if ev.IsCreate() || e.Prev == nil {
					e.Type, e.Prev = Added, nil
				}
			}
			if out := transition(e, opts); out != nil {
				if err := send(out); err != nil {
					return err
				}
			}
			start = e.Rev
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return status.Error(codes.Unavailable, "etcd watch ended")
}

type watcher struct {
	opts      WatchOptions
	ch        chan *Event
	done      chan struct{}
	err       error
	bookmarks bool
	trigger   string
	stopped   bool
}

// offer queues an event without blocking; a watcher too slow to keep up is
// disconnected and resumes from its last revision. Called with the cache lock held.
func (w *watcher) offer(e *Event) {
	if w.stopped {
		return
	}
	select {
	case w.ch <- e:
	default:
		w.stop(status.Error(codes.ResourceExhausted, "watcher fell too far behind; resume from the last resource version received"))
	}
}

// offerBookmark queues a bookmark only when there is room: bookmarks are hints.
func (w *watcher) offerBookmark(e *Event) {
	if w.stopped {
		return
	}
	select {
	case w.ch <- e:
	default:
	}
}

func (w *watcher) stop(err error) {
	if w.stopped {
		return
	}
	w.stopped, w.err = true, err
	close(w.done)
}

// HasNamespace reports whether any cached object lives in namespace.
func (c *Cache) HasNamespace(namespace string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, obj := range c.objects {
		if obj.GetMetadata().GetNamespace() == namespace {
			return true
		}
	}
	return false
}
