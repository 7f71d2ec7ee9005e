// Package registry holds the apiserver's rules for storing objects: what the
// server sets on create, what an update may change, how deletion waits for
// finalizers and grace periods, and how lists and watches are selected. One
// generic Resource serves every kind; the few kinds with rules of their own
// (pods, namespaces, nodes) add them through small hooks.
package registry

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/clock"

	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/services/apiserver/internal/storage"
	"bosun.dev/services/apiserver/internal/watchcache"
)

// Validator checks objects before they are stored.
type Validator interface {
	// Validate checks a new object.
	Validate(obj api.Object) field.ErrorList
	// ValidateUpdate checks a changed object against its stored state.
	ValidateUpdate(obj, old api.Object) field.ErrorList
	// ValidateStatus checks a status update.
	ValidateStatus(obj api.Object) field.ErrorList
}

// Config wires a Registry.
type Config struct {
	// Stores and Caches by kind; every kind in api.Kinds needs both.
	Stores map[*api.Kind]*storage.Store
	Caches map[*api.Kind]*watchcache.Cache
	// Default fills in defaults in place.
	Default   func(api.Object)
	Validator Validator
	Clock     clock.PassiveClock
	Logger    *slog.Logger
}

// Registry is the set of resources the apiserver serves.
type Registry struct {
	cfg       Config
	resources map[*api.Kind]*Resource
	namespace *Resource
	watches   *prometheus.GaugeVec
}

// New returns a registry over every kind.
func New(cfg Config) *Registry {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Registry{cfg: cfg, resources: map[*api.Kind]*Resource{}, watches: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bosun_apiserver_watches", Help: "Open watches, by kind.",
	}, []string{"kind"})}
	for _, k := range api.Kinds() {
		r.watches.WithLabelValues(k.Kind)
		res := &Resource{reg: r, kind: k, store: cfg.Stores[k], cache: cfg.Caches[k], hooks: hooksFor(k)}
		r.resources[k] = res
		if k.Kind == "Namespace" {
			r.namespace = res
		}
	}
	return r
}

// Metrics are the registry's Prometheus metrics (open watches by kind).
func (r *Registry) Metrics() prometheus.Collector { return r.watches }

// Resource returns the resource of a kind.
func (r *Registry) Resource(k *api.Kind) *Resource { return r.resources[k] }

// Resource stores the objects of one kind.
type Resource struct {
	reg   *Registry
	kind  *api.Kind
	store *storage.Store
	cache *watchcache.Cache
	hooks hooks
}

// Kind returns the resource's kind.
func (r *Resource) Kind() *api.Kind { return r.kind }

func (r *Resource) now() *timestamppb.Timestamp {
	return timestamppb.New(r.reg.cfg.Clock.Now().UTC().Truncate(time.Second))
}

func (r *Resource) notFound(namespace, name string) error {
	return apierrors.NotFound(r.kind.Kind, namespace, name)
}

func (r *Resource) conflict(namespace, name, why string) error {
	return apierrors.Conflict(r.kind.Kind, namespace, name, why)
}

func (r *Resource) invalid(name string, errs field.ErrorList) error {
	return apierrors.Invalid(r.kind.Kind, name, errs)
}

// storeErr converts the store's errors into API errors naming the object.
func (r *Resource) storeErr(err error, namespace, name string) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return r.notFound(namespace, name)
	case errors.Is(err, storage.ErrExists):
		return apierrors.AlreadyExists(r.kind.Kind, namespace, name)
	case errors.Is(err, storage.ErrConflict):
		return r.conflict(namespace, name, "the object has been modified; please apply your changes to the latest version and try again")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	default:
		if _, ok := status.FromError(err); ok {
			return err
		}
		return status.Errorf(codes.Unavailable, "storage: %v", err)
	}
}

func (r *Resource) checkScope(namespace, name string) error {
	var errs field.ErrorList
	if name == "" {
		errs = append(errs, field.Required(field.NewPath("metadata", "name"), "name is required"))
	}
	if r.kind.Namespaced && namespace == "" {
		errs = append(errs, field.Required(field.NewPath("metadata", "namespace"), ""))
	}
	if len(errs) > 0 {
		return r.invalid(name, errs)
	}
	return nil
}

const nameSuffixChars = "bcdfghjklmnpqrstvwxz2456789"

func randomSuffix() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = nameSuffixChars[int(b[i])%len(nameSuffixChars)]
	}
	return string(b)
}

// Create stores a new object. The server sets uid, creation timestamp,
// generation and resource_version; status is reset unless the kind keeps it.
func (r *Resource) Create(ctx context.Context, in api.Object) (api.Object, error) {
	obj := proto.Clone(in).(api.Object)
	m := api.Meta(obj)
	if m.GetResourceVersion() != "" {
		return nil, r.invalid(m.GetName(), field.ErrorList{field.Invalid(field.NewPath("metadata", "resourceVersion"), m.GetResourceVersion(), "must be empty on create")})
	}
	generated := m.Name == "" && m.GenerateName != ""
	if generated {
		m.Name = m.GenerateName + randomSuffix()
	}
	m.Uid = uuid.NewString()
	m.CreationTimestamp = r.now()
	m.DeletionTimestamp, m.DeletionGracePeriodSeconds = nil, nil
	m.Generation = 1
	if r.kind.HasStatus && !r.hooks.keepStatusOnCreate {
		clearField(obj, "status")
	}
	r.reg.cfg.Default(obj)
	if errs := r.reg.cfg.Validator.Validate(obj); len(errs) > 0 {
		return nil, r.invalid(m.GetName(), errs)
	}
	if r.kind.Namespaced {
		if err := r.reg.namespaceActive(ctx, m.Namespace); err != nil {
			return nil, err
		}
	}
	for attempt := 0; ; attempt++ {
		out, err := r.store.Create(ctx, obj)
		if errors.Is(err, storage.ErrExists) && generated && attempt < 5 {
			m.Name = m.GenerateName + randomSuffix()
			continue
		}
		if err != nil {
			return nil, r.storeErr(err, m.Namespace, m.Name)
		}
		return out, nil
	}
}

// namespaceActive checks that a namespace exists and is not being deleted.
func (r *Registry) namespaceActive(ctx context.Context, name string) error {
	ns, ok := r.namespace.cache.Get("", name)
	if !ok {
		// The cache may lag a namespace created a moment ago: ask etcd.
		obj, err := r.namespace.store.Get(ctx, "", name)
		if err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return apierrors.NotFound("Namespace", "", name)
			}
			return r.namespace.storeErr(err, "", name)
		}
		ns = obj
	}
	if ns.GetMetadata().GetDeletionTimestamp() != nil {
		return apierrors.NamespaceTerminating(name)
	}
	return nil
}

// Get reads one object from etcd.
func (r *Resource) Get(ctx context.Context, namespace, name string) (api.Object, error) {
	if err := r.checkScope(namespace, name); err != nil {
		return nil, err
	}
	obj, err := r.store.Get(ctx, namespace, name)
	if err != nil {
		return nil, r.storeErr(err, namespace, name)
	}
	return obj, nil
}

// ListOptions select a list.
type ListOptions struct {
	Namespace, LabelSelector, FieldSelector string
	PageSize                                int32
	PageToken                               string
}

// List reads objects consistently at one revision, a page at a time.
func (r *Resource) List(ctx context.Context, opts ListOptions) (*storage.ListResult, error) {
	sel, err := parseSelector(r.kind, opts.LabelSelector, opts.FieldSelector, r.hooks.triggerPath)
	if err != nil {
		return nil, err
	}
	if opts.PageSize < 0 {
		return nil, apierrors.BadRequest("page_size must not be negative")
	}
	so := storage.ListOptions{Namespace: opts.Namespace, Limit: int64(opts.PageSize), Continue: opts.PageToken}
	if !sel.empty() {
		so.Filter = sel.matches
	}
	res, err := r.store.List(ctx, so)
	if err != nil {
		return nil, r.storeErr(err, opts.Namespace, "")
	}
	return res, nil
}

// Update replaces an object's desired state and metadata, keeping its status
// and the fields the server owns. With a resource_version it is a
// compare-and-set; without one it applies to the latest state.
func (r *Resource) Update(ctx context.Context, in api.Object) (api.Object, error) {
	return r.update(ctx, in, false)
}

// UpdateStatus replaces only an object's status.
func (r *Resource) UpdateStatus(ctx context.Context, in api.Object) (api.Object, error) {
	if !r.kind.HasStatus {
		return nil, status.Errorf(codes.Unimplemented, "%s has no status", r.kind.Kind)
	}
	return r.update(ctx, in, true)
}

func (r *Resource) update(ctx context.Context, in api.Object, statusOnly bool) (api.Object, error) {
	im := api.Meta(in)
	ns, name, wantRV := im.GetNamespace(), im.GetName(), im.GetResourceVersion()
	if err := r.checkScope(ns, name); err != nil {
		return nil, err
	}
	if wantRV != "" {
		if _, err := strconv.ParseInt(wantRV, 10, 64); err != nil {
			return nil, r.invalid(name, field.ErrorList{field.Invalid(field.NewPath("metadata", "resourceVersion"), wantRV, "must be a resource version returned by the server")})
		}
	}
	for fromCache := true; ; fromCache = false {
		cur, cached, err := r.current(ctx, ns, name, fromCache)
		if err != nil {
			return nil, r.storeErr(err, ns, name)
		}
		cm := cur.GetMetadata()
		if wantRV != "" && wantRV != cm.GetResourceVersion() {
			if cached {
				continue // the cache may lag: only etcd decides a conflict
			}
			return nil, r.conflict(ns, name, "the object has been modified; please apply your changes to the latest version and try again")
		}
		var next api.Object
		if statusOnly {
			next = proto.Clone(cur).(api.Object)
			copyField(next, in, "status")
			if errs := r.reg.cfg.Validator.ValidateStatus(next); len(errs) > 0 {
				if cached {
					continue
				}
				return nil, r.invalid(name, errs)
			}
		} else {
			next = proto.Clone(in).(api.Object)
			nm := api.Meta(next)
			nm.Uid, nm.CreationTimestamp, nm.GenerateName = cm.Uid, cm.CreationTimestamp, cm.GenerateName
			nm.DeletionTimestamp, nm.DeletionGracePeriodSeconds = cm.DeletionTimestamp, cm.DeletionGracePeriodSeconds
			nm.Generation = cm.Generation
			if r.kind.HasStatus {
				copyField(next, cur, "status")
			}
			r.reg.cfg.Default(next)
			if !specEqual(next, cur) {
				nm.Generation = cm.Generation + 1
			}
			if errs := r.reg.cfg.Validator.ValidateUpdate(next, cur); len(errs) > 0 {
				if cached {
					continue
				}
				return nil, r.invalid(name, errs)
			}
		}
		nm := api.Meta(next)
		nm.ResourceVersion = cm.ResourceVersion
		rev, _ := strconv.ParseInt(cm.ResourceVersion, 10, 64)
		if cached && (nm.DeletionTimestamp != nil || proto.Equal(next, cur)) {
			// Completing a deletion, or answering that nothing changed, is
			// decided on what etcd holds, not on a cached copy.
			continue
		}
		if nm.DeletionTimestamp != nil && len(nm.Finalizers) == 0 && nm.GetDeletionGracePeriodSeconds() == 0 {
			// The last finalizer is gone: the deletion completes now.
			if _, err := r.store.Delete(ctx, ns, name, rev); err != nil {
				if errors.Is(err, storage.ErrConflict) && wantRV == "" {
					continue
				}
				return nil, r.storeErr(err, ns, name)
			}
			return next, nil
		}
		if proto.Equal(next, cur) {
			return cur, nil
		}
		out, err := r.store.Put(ctx, next, rev)
		if errors.Is(err, storage.ErrConflict) && (wantRV == "" || cached) {
			continue
		}
		if err != nil {
			return nil, r.storeErr(err, ns, name)
		}
		return out, nil
	}
}

// current returns the object to base a compare-and-set write on. When
// fromCache is set and the watch cache holds the object, that copy is used
// (cached is true): it saves a read from etcd, and the write's
// compare-and-set on its revision fails if etcd holds a newer one, after
// which the caller reads etcd. Whatever the caller refuses or skips on a
// cached copy, it checks again against etcd. The returned object is shared
// with the cache when cached: callers clone before changing it.
func (r *Resource) current(ctx context.Context, namespace, name string, fromCache bool) (obj api.Object, cached bool, err error) {
	if fromCache && r.cache != nil {
		if obj, ok := r.cache.Get(namespace, name); ok {
			return obj, true, nil
		}
	}
	obj, err = r.store.Get(ctx, namespace, name)
	return obj, false, err
}

// DeleteOptions tune a delete.
type DeleteOptions struct {
	GracePeriodSeconds *int64
	Preconditions      *metav1.Preconditions
	Propagation        metav1.DeletePropagation
}

// Finalizers the apiserver adds for non-default propagation; the garbage
// collector removes them when it has handled the dependents.
const (
	FinalizerForeground = "foregroundDeletion"
	FinalizerOrphan     = "orphan"
)

// Delete deletes an object. An object with finalizers, or a pod bound to a
// node with a grace period, is only marked with a deletion timestamp: it goes
// when its finalizers are removed, or when its node-agent deletes it again
// with a zero grace period after stopping its containers.
func (r *Resource) Delete(ctx context.Context, namespace, name string, opts DeleteOptions) (api.Object, error) {
	if err := r.checkScope(namespace, name); err != nil {
		return nil, err
	}
	if opts.GracePeriodSeconds != nil && *opts.GracePeriodSeconds < 0 {
		return nil, r.invalid(name, field.ErrorList{field.Invalid(field.NewPath("gracePeriodSeconds"), *opts.GracePeriodSeconds, "must be >= 0")})
	}
	if _, known := metav1.DeletePropagation_name[int32(opts.Propagation)]; !known {
		return nil, r.invalid(name, field.ErrorList{field.NotSupported(field.NewPath("propagationPolicy"), opts.Propagation.String(),
			[]string{"Background", "Foreground", "Orphan"})})
	}
	for {
		cur, err := r.store.Get(ctx, namespace, name)
		if err != nil {
			return nil, r.storeErr(err, namespace, name)
		}
		cm := cur.GetMetadata()
		if p := opts.Preconditions; p != nil {
			if p.Uid != "" && p.Uid != cm.Uid {
				return nil, r.conflict(namespace, name, fmt.Sprintf("precondition failed: uid in precondition: %s, uid of object: %s", p.Uid, cm.Uid))
			}
			if p.ResourceVersion != "" && p.ResourceVersion != cm.ResourceVersion {
				return nil, r.conflict(namespace, name, fmt.Sprintf("precondition failed: resource version in precondition: %s, resource version of object: %s", p.ResourceVersion, cm.ResourceVersion))
			}
		}
		if r.hooks.beforeDelete != nil {
			if err := r.hooks.beforeDelete(ctx, r.reg, cur); err != nil {
				return nil, err
			}
		}
		rev, _ := strconv.ParseInt(cm.ResourceVersion, 10, 64)
		grace := int64(0)
		if r.hooks.gracePeriod != nil {
			grace = r.hooks.gracePeriod(cur, opts.GracePeriodSeconds)
		}
		next := proto.Clone(cur).(api.Object)
		nm := api.Meta(next)
		switch opts.Propagation {
		case metav1.DeletePropagation_DELETE_PROPAGATION_FOREGROUND:
			nm.Finalizers = addString(nm.Finalizers, FinalizerForeground)
		case metav1.DeletePropagation_DELETE_PROPAGATION_ORPHAN:
			nm.Finalizers = addString(nm.Finalizers, FinalizerOrphan)
		}
		if r.hooks.finalizeOnDelete != nil {
			r.hooks.finalizeOnDelete(ctx, r.reg, next)
		}
		if len(nm.Finalizers) == 0 && grace == 0 {
			drev, err := r.store.Delete(ctx, namespace, name, rev)
			if errors.Is(err, storage.ErrConflict) {
				continue
			}
			if err != nil {
				return nil, r.storeErr(err, namespace, name)
			}
			nm.ResourceVersion = strconv.FormatInt(drev, 10)
			return next, nil
		}
		// Graceful: mark, or shorten an earlier grace period.
		deadline := r.reg.cfg.Clock.Now().UTC().Add(time.Duration(grace) * time.Second).Truncate(time.Second)
		if nm.DeletionTimestamp == nil || deadline.Before(nm.DeletionTimestamp.AsTime()) {
			nm.DeletionTimestamp = timestamppb.New(deadline)
			nm.DeletionGracePeriodSeconds = &grace
		}
		if r.hooks.markDeleting != nil {
			r.hooks.markDeleting(next)
		}
		if proto.Equal(next, cur) {
			return cur, nil
		}
		out, err := r.store.Put(ctx, next, rev)
		if errors.Is(err, storage.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, r.storeErr(err, namespace, name)
		}
		return out, nil
	}
}

// WatchOptions select a watch.
type WatchOptions struct {
	Namespace, LabelSelector, FieldSelector string
	ResourceVersion                         string
	AllowBookmarks                          bool
}

// Watch streams changes after opts.ResourceVersion to send.
func (r *Resource) Watch(ctx context.Context, opts WatchOptions, send func(*watchcache.Event) error) error {
	sel, err := parseSelector(r.kind, opts.LabelSelector, opts.FieldSelector, r.hooks.triggerPath)
	if err != nil {
		return err
	}
	var start int64
	if opts.ResourceVersion != "" {
		if start, err = strconv.ParseInt(opts.ResourceVersion, 10, 64); err != nil || start < 0 {
			return apierrors.BadRequest("resource_version %q is not a resource version returned by the server", opts.ResourceVersion)
		}
	}
	wo := watchcache.WatchOptions{Namespace: opts.Namespace, StartRev: start, Bookmarks: opts.AllowBookmarks, Trigger: sel.trigger}
	if !r.kind.Namespaced {
		wo.Namespace = ""
	}
	if !sel.empty() {
		wo.Filter = sel.matches
	}
	open := r.reg.watches.WithLabelValues(r.kind.Kind)
	open.Inc()
	defer open.Dec()
	return r.cache.Watch(ctx, wo, send)
}

// helpers over protoreflect

func clearField(obj api.Object, name protoreflect.Name) {
	m := obj.ProtoReflect()
	if fd := m.Descriptor().Fields().ByName(name); fd != nil {
		m.Clear(fd)
	}
}

func copyField(dst, src api.Object, name protoreflect.Name) {
	d, s := dst.ProtoReflect(), src.ProtoReflect()
	fd := d.Descriptor().Fields().ByName(name)
	if fd == nil {
		return
	}
	if s.Has(fd) {
		d.Set(fd, protoreflect.ValueOfMessage(proto.Clone(s.Get(fd).Message().Interface()).ProtoReflect()))
	} else {
		d.Clear(fd)
	}
}

// specEqual compares everything but metadata and status: the desired state
// whose changes bump metadata.generation.
func specEqual(a, b api.Object) bool {
	am, bm := a.ProtoReflect(), b.ProtoReflect()
	fields := am.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.Name() == "metadata" || fd.Name() == "status" {
			continue
		}
		if am.Has(fd) != bm.Has(fd) || !am.Get(fd).Equal(bm.Get(fd)) {
			return false
		}
	}
	return true
}

func addString(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// EnsureNamespaces creates the reserved namespaces that are missing.
func (r *Registry) EnsureNamespaces(ctx context.Context) error {
	for _, name := range ReservedNamespaces {
		ns := r.namespace.kind.New()
		api.Meta(ns).Name = name
		if _, err := r.namespace.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating namespace %s: %w", name, err)
		}
	}
	return nil
}
