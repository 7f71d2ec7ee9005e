package client

import (
	"context"
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
)

// Resource is a client for one kind.
type Resource[T api.Object] struct {
	conn grpc.ClientConnInterface
	kind *api.Kind
}

// For returns a client for the kind of T, e.g. For[*corev1.Pod](conn).
func For[T api.Object](conn grpc.ClientConnInterface) *Resource[T] {
	var zero T
	k, err := api.KindOf(zero.ProtoReflect().Type().New().Interface())
	if err != nil {
		panic(err) // T is fixed at compile time: this is a programming error.
	}
	return &Resource[T]{conn: conn, kind: k}
}

// ForKind returns a client for a kind chosen at run time.
func ForKind(conn grpc.ClientConnInterface, k *api.Kind) *Resource[api.Object] {
	return &Resource[api.Object]{conn: conn, kind: k}
}

// Kind returns the kind this client serves.
func (r *Resource[T]) Kind() *api.Kind { return r.kind }

// ListOptions select what List returns.
type ListOptions struct {
	// Namespace limits the list; "" lists all namespaces.
	Namespace string
	// LabelSelector, e.g. "app=web,tier in (a,b)".
	LabelSelector string
	// FieldSelector, e.g. "spec.nodeName=n1".
	FieldSelector string
	// PageSize bounds one page; 0 returns everything in one page.
	PageSize int32
	// PageToken continues from a previous page.
	PageToken string
}

// List is one page of objects.
type List[T api.Object] struct {
	Items []T
	// ResourceVersion is the revision every page of this list is consistent at.
	ResourceVersion string
	// NextPageToken is set when more pages remain.
	NextPageToken string
}

// WatchOptions select what Watch streams.
type WatchOptions struct {
	Namespace     string
	LabelSelector string
	FieldSelector string
	// ResourceVersion: events after this revision; "" starts now.
	ResourceVersion string
	// AllowBookmarks asks for periodic bookmark events.
	AllowBookmarks bool
}

// DeleteOptions tune a delete.
type DeleteOptions struct {
	// GracePeriodSeconds overrides a pod's grace period when set.
	GracePeriodSeconds *int64
	// Preconditions must hold for the delete to go ahead.
	Preconditions *metav1.Preconditions
	// PropagationPolicy for dependents.
	PropagationPolicy metav1.DeletePropagation
}

// EventType is the type of a watch event.
type EventType = metav1.WatchEventType

// Watch event types.
const (
	Added    = metav1.WatchEventType_WATCH_EVENT_TYPE_ADDED
	Modified = metav1.WatchEventType_WATCH_EVENT_TYPE_MODIFIED
	Deleted  = metav1.WatchEventType_WATCH_EVENT_TYPE_DELETED
	Bookmark = metav1.WatchEventType_WATCH_EVENT_TYPE_BOOKMARK
)

// Event is one watch event.
type Event[T api.Object] struct {
	Type EventType
	// Object is the object after the change (before it, for Deleted); the zero
	// value for Bookmark.
	Object T
	// ResourceVersion is the revision of the event.
	ResourceVersion string
}

// Get reads one object.
func (r *Resource[T]) Get(ctx context.Context, namespace, name string) (T, error) {
	req := r.newRequest(api.VerbGet)
	setString(req, "namespace", namespace)
	setString(req, "name", name)
	return r.invokeObject(ctx, api.VerbGet, req)
}

// List reads one page of objects.
func (r *Resource[T]) List(ctx context.Context, opts ListOptions) (*List[T], error) {
	req := r.newRequest(api.VerbList)
	setString(req, "namespace", opts.Namespace)
	setString(req, "label_selector", opts.LabelSelector)
	setString(req, "field_selector", opts.FieldSelector)
	setString(req, "page_token", opts.PageToken)
	if opts.PageSize != 0 {
		req.Set(req.Descriptor().Fields().ByName("page_size"), protoreflect.ValueOfInt32(opts.PageSize))
	}
	resp, err := r.invoke(ctx, api.VerbList, req)
	if err != nil {
		return nil, err
	}
	fields := resp.Descriptor().Fields()
	out := &List[T]{
		ResourceVersion: resp.Get(fields.ByName("resource_version")).String(),
		NextPageToken:   resp.Get(fields.ByName("next_page_token")).String(),
	}
	items := resp.Get(fields.ByNumber(1)).List()
	out.Items = make([]T, items.Len())
	for i := range out.Items {
		out.Items[i] = items.Get(i).Message().Interface().(T)
	}
	return out, nil
}

// ListAll reads every page and returns all objects and the revision they are
// consistent at.
func (r *Resource[T]) ListAll(ctx context.Context, opts ListOptions) ([]T, string, error) {
	var all []T
	for {
		page, err := r.List(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		all = append(all, page.Items...)
		if page.NextPageToken == "" {
			return all, page.ResourceVersion, nil
		}
		opts.PageToken = page.NextPageToken
	}
}

// Create stores a new object and returns it as stored.
func (r *Resource[T]) Create(ctx context.Context, obj T) (T, error) {
	return r.invokeObject(ctx, api.VerbCreate, r.objectRequest(api.VerbCreate, obj))
}

// Update replaces an object's desired state and metadata. When
// obj.metadata.resource_version is set it must match the stored one, or the
// update fails with a conflict (see apierrors.IsConflict).
func (r *Resource[T]) Update(ctx context.Context, obj T) (T, error) {
	return r.invokeObject(ctx, api.VerbUpdate, r.objectRequest(api.VerbUpdate, obj))
}

// UpdateStatus replaces an object's status.
func (r *Resource[T]) UpdateStatus(ctx context.Context, obj T) (T, error) {
	if r.kind.Method(api.VerbUpdateStatus) == nil {
		var zero T
		return zero, fmt.Errorf("%s has no status", r.kind.Kind)
	}
	return r.invokeObject(ctx, api.VerbUpdateStatus, r.objectRequest(api.VerbUpdateStatus, obj))
}

// Delete deletes an object, or marks it for deletion when finalizers or a
// grace period remain; it returns the object's last state.
func (r *Resource[T]) Delete(ctx context.Context, namespace, name string, opts DeleteOptions) (T, error) {
	req := r.newRequest(api.VerbDelete)
	fields := req.Descriptor().Fields()
	setString(req, "namespace", namespace)
	setString(req, "name", name)
	if opts.GracePeriodSeconds != nil {
		req.Set(fields.ByName("grace_period_seconds"), protoreflect.ValueOfInt64(*opts.GracePeriodSeconds))
	}
	if opts.Preconditions != nil {
		req.Set(fields.ByName("preconditions"), protoreflect.ValueOfMessage(opts.Preconditions.ProtoReflect()))
	}
	if opts.PropagationPolicy != 0 {
		req.Set(fields.ByName("propagation_policy"), protoreflect.ValueOfEnum(protoreflect.EnumNumber(opts.PropagationPolicy)))
	}
	return r.invokeObject(ctx, api.VerbDelete, req)
}

// Watcher receives watch events until its context ends or the server ends the
// stream.
type Watcher[T api.Object] struct {
	stream grpc.ClientStream
	method protoreflect.MethodDescriptor
	cancel context.CancelFunc
}

// Watch streams changes after opts.ResourceVersion. A revision that etcd has
// compacted fails with an error for which apierrors.IsCompacted is true.
func (r *Resource[T]) Watch(ctx context.Context, opts WatchOptions) (*Watcher[T], error) {
	req := r.newRequest(api.VerbWatch)
	setString(req, "namespace", opts.Namespace)
	setString(req, "label_selector", opts.LabelSelector)
	setString(req, "field_selector", opts.FieldSelector)
	setString(req, "resource_version", opts.ResourceVersion)
	if opts.AllowBookmarks {
		req.Set(req.Descriptor().Fields().ByName("allow_bookmarks"), protoreflect.ValueOfBool(true))
	}
	ctx, cancel := context.WithCancel(ctx)
	stream, err := r.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, r.kind.FullMethod(api.VerbWatch))
	if err != nil {
		cancel()
		return nil, err
	}
	if err := stream.SendMsg(req.Interface()); err != nil {
		cancel()
		return nil, err
	}
	if err := stream.CloseSend(); err != nil {
		cancel()
		return nil, err
	}
	return &Watcher[T]{stream: stream, method: r.kind.Method(api.VerbWatch), cancel: cancel}, nil
}

// Next blocks for the next event. It returns io.EOF when the server ended the
// stream cleanly, and the server's error otherwise.
func (w *Watcher[T]) Next() (Event[T], error) {
	resp := newMessage(w.method.Output())
	if err := w.stream.RecvMsg(resp.Interface()); err != nil {
		if err == io.EOF {
			return Event[T]{}, io.EOF
		}
		return Event[T]{}, err
	}
	fields := resp.Descriptor().Fields()
	ev := Event[T]{
		Type:            metav1.WatchEventType(resp.Get(fields.ByName("type")).Enum()),
		ResourceVersion: resp.Get(fields.ByName("resource_version")).String(),
	}
	if objField := fields.ByNumber(2); resp.Has(objField) {
		ev.Object = resp.Get(objField).Message().Interface().(T)
	}
	return ev, nil
}

// Stop ends the watch.
func (w *Watcher[T]) Stop() { w.cancel() }

func (r *Resource[T]) newRequest(v api.Verb) protoreflect.Message {
	return newMessage(r.kind.Method(v).Input())
}

func (r *Resource[T]) objectRequest(v api.Verb, obj T) protoreflect.Message {
	req := r.newRequest(v)
	req.Set(req.Descriptor().Fields().ByNumber(1), protoreflect.ValueOfMessage(obj.ProtoReflect()))
	return req
}

func (r *Resource[T]) invoke(ctx context.Context, v api.Verb, req protoreflect.Message) (protoreflect.Message, error) {
	resp := newMessage(r.kind.Method(v).Output())
	if err := r.conn.Invoke(ctx, r.kind.FullMethod(v), req.Interface(), resp.Interface()); err != nil {
		return nil, err
	}
	return resp, nil
}

func (r *Resource[T]) invokeObject(ctx context.Context, v api.Verb, req protoreflect.Message) (T, error) {
	var zero T
	resp, err := r.invoke(ctx, v, req)
	if err != nil {
		return zero, err
	}
	return resp.Get(resp.Descriptor().Fields().ByNumber(1)).Message().Interface().(T), nil
}

func newMessage(d protoreflect.MessageDescriptor) protoreflect.Message {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(d.FullName())
	if err != nil {
		panic(fmt.Sprintf("client: message %s is not linked in: %v", d.FullName(), err))
	}
	return mt.New()
}

// setString sets a string field by name when the message has it (cluster-scoped
// kinds' requests have no namespace field) and the value is not empty.
func setString(m protoreflect.Message, name, value string) {
	if value == "" {
		return
	}
	if fd := m.Descriptor().Fields().ByName(protoreflect.Name(name)); fd != nil {
		m.Set(fd, protoreflect.ValueOfString(value))
	}
}
