package apitest

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/apimachinery/pkg/labels"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
)

// event is one change in the server's history. obj is never mutated after it
// is recorded, so it may be sent to several watchers.
type event struct {
	kind *api.Kind
	typ  metav1.WatchEventType
	obj  api.Object // nil for a bookmark
	rev  int64
}

// watcher is one open watch stream.
type watcher struct {
	kind      *api.Kind
	namespace string
	selector  labels.Selector
	bookmarks bool
	ch        chan event
	stop      chan struct{}
	err       error // why stop was closed; set under Server.mu
}

func (w *watcher) matches(e event) bool {
	if e.kind != w.kind {
		return false
	}
	if e.obj == nil {
		return w.bookmarks
	}
	return matches(e.obj, w.namespace, w.selector)
}

func matches(obj api.Object, namespace string, sel labels.Selector) bool {
	m := obj.GetMetadata()
	if namespace != "" && m.GetNamespace() != namespace {
		return false
	}
	return sel.Matches(labels.Set(m.GetLabels()))
}

// watcherBuffer bounds the events queued for one watch stream; a watcher that
// falls further behind is dropped with Unavailable, as a real watch cache does.
const watcherBuffer = 4096

func (s *Server) objects(k *api.Kind) map[string]api.Object {
	m := s.stores[k]
	if m == nil {
		m = map[string]api.Object{}
		s.stores[k] = m
	}
	return m
}

// record appends an event to the history and hands it to matching watchers.
// Callers hold s.mu.
func (s *Server) record(e event) {
	s.history = append(s.history, e)
	if over := len(s.history) - s.historyLimit; over > 0 {
		s.compacted = s.history[over-1].rev
		s.history = append([]event(nil), s.history[over:]...)
	}
	for w := range s.watchers {
		if !w.matches(e) {
			continue
		}
		select {
		case w.ch <- e:
		default:
			s.dropLocked(w, status.Error(codes.Unavailable, "watch fell too far behind"))
		}
	}
}

func (s *Server) dropLocked(w *watcher, err error) {
	if _, ok := s.watchers[w]; !ok {
		return
	}
	delete(s.watchers, w)
	w.err = err
	close(w.stop)
}

func (s *Server) nextRev() int64 {
	s.rev++
	return s.rev
}

func clone[T proto.Message](m T) T { return proto.Clone(m).(T) }

func parseSelectors(labelSelector, fieldSelector string) (labels.Selector, error) {
	if fieldSelector != "" {
		return nil, apierrors.BadRequest("field selectors are not supported by the test server: %q", fieldSelector)
	}
	sel, err := labels.Parse(labelSelector)
	if err != nil {
		return nil, apierrors.BadRequest("label selector %q: %v", labelSelector, err)
	}
	return sel, nil
}

func (s *Server) get(k *api.Kind, namespace, name string) (api.Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	obj, ok := s.objects(k)[api.Key(namespace, name)]
	if !ok {
		return nil, apierrors.NotFound(k.Kind, namespace, name)
	}
	return clone(obj), nil
}

// list returns every matching object, sorted by key, in one page.
func (s *Server) list(k *api.Kind, namespace, labelSelector, fieldSelector string) ([]api.Object, string, error) {
	sel, err := parseSelectors(labelSelector, fieldSelector)
	if err != nil {
		return nil, "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []api.Object
	for _, obj := range s.objects(k) {
		if matches(obj, namespace, sel) {
			out = append(out, clone(obj))
		}
	}
	sort.Slice(out, func(i, j int) bool { return api.KeyOf(out[i]) < api.KeyOf(out[j]) })
	return out, strconv.FormatInt(s.rev, 10), nil
}

func (s *Server) create(k *api.Kind, in api.Object) (api.Object, error) {
	if in == nil {
		return nil, apierrors.BadRequest("no object")
	}
	obj := clone(in)
	m := api.Meta(obj)
	if m.GetName() == "" && m.GetGenerateName() != "" {
		s.mu.Lock()
		s.uidSeq++
		m.Name = fmt.Sprintf("%s%05d", m.GetGenerateName(), s.uidSeq)
		s.mu.Unlock()
	}
	if m.GetName() == "" {
		return nil, apierrors.BadRequest("metadata.name: Required value")
	}
	if k.Namespaced && m.GetNamespace() == "" {
		m.Namespace = "default"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	store := s.objects(k)
	key := api.KeyOf(obj)
	if _, ok := store[key]; ok {
		return nil, apierrors.AlreadyExists(k.Kind, m.GetNamespace(), m.GetName())
	}
	rev := s.nextRev()
	s.uidSeq++
	m.Uid = fmt.Sprintf("00000000-0000-4000-8000-%012d", s.uidSeq)
	m.ResourceVersion = strconv.FormatInt(rev, 10)
	m.Generation = 1
	m.CreationTimestamp = timestamppb.New(time.Now())
	store[key] = obj
	s.record(event{kind: k, typ: metav1.WatchEventType_WATCH_EVENT_TYPE_ADDED, obj: obj, rev: rev})
	return clone(obj), nil
}

// update replaces an object: its spec and metadata (status kept) or, with
// statusOnly, its status alone. A set resource_version must match.
func (s *Server) update(k *api.Kind, in api.Object, statusOnly bool) (api.Object, error) {
	if in == nil {
		return nil, apierrors.BadRequest("no object")
	}
	m := in.GetMetadata()
	namespace := m.GetNamespace()
	if k.Namespaced && namespace == "" {
		namespace = "default"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	store := s.objects(k)
	key := api.Key(namespace, m.GetName())
	old, ok := store[key]
	if !ok {
		return nil, apierrors.NotFound(k.Kind, namespace, m.GetName())
	}
	if rv := m.GetResourceVersion(); rv != "" && rv != old.GetMetadata().GetResourceVersion() {
		return nil, apierrors.Conflict(k.Kind, namespace, m.GetName(),
			fmt.Sprintf("the object has been modified (resource_version %s, now %s); please apply your changes to the latest version and try again", rv, old.GetMetadata().GetResourceVersion()))
	}
	var obj api.Object
	if statusOnly {
		obj = clone(old)
		copyField(obj, in, "status")
	} else {
		obj = clone(in)
		if k.HasStatus {
			copyField(obj, old, "status")
		}
		nm, om := api.Meta(obj), old.GetMetadata()
		nm.Namespace, nm.Uid, nm.CreationTimestamp, nm.Generation = namespace, om.GetUid(), om.GetCreationTimestamp(), om.GetGeneration()
		if !fieldEqual(obj, old, "spec") {
			nm.Generation++
		}
	}
	rev := s.nextRev()
	api.Meta(obj).ResourceVersion = strconv.FormatInt(rev, 10)
	store[key] = obj
	s.record(event{kind: k, typ: metav1.WatchEventType_WATCH_EVENT_TYPE_MODIFIED, obj: obj, rev: rev})
	return clone(obj), nil
}

func (s *Server) delete(k *api.Kind, namespace, name string, pre *metav1.Preconditions) (api.Object, error) {
	if k.Namespaced && namespace == "" {
		namespace = "default"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	store := s.objects(k)
	key := api.Key(namespace, name)
	old, ok := store[key]
	if !ok {
		return nil, apierrors.NotFound(k.Kind, namespace, name)
	}
	om := old.GetMetadata()
	if pre.GetUid() != "" && pre.GetUid() != om.GetUid() {
		return nil, apierrors.Conflict(k.Kind, namespace, name, "precondition failed: uid")
	}
	if pre.GetResourceVersion() != "" && pre.GetResourceVersion() != om.GetResourceVersion() {
		return nil, apierrors.Conflict(k.Kind, namespace, name, "precondition failed: resource_version")
	}
	delete(store, key)
	rev := s.nextRev()
	obj := clone(old)
	api.Meta(obj).ResourceVersion = strconv.FormatInt(rev, 10)
	s.record(event{kind: k, typ: metav1.WatchEventType_WATCH_EVENT_TYPE_DELETED, obj: obj, rev: rev})
	return clone(obj), nil
}

func (s *Server) bind(namespace, name, node, uid string) (*corev1.Pod, error) {
	k := podKind()
	s.mu.Lock()
	defer s.mu.Unlock()
	store := s.objects(k)
	key := api.Key(namespace, name)
	old, ok := store[key]
	if !ok {
		return nil, apierrors.NotFound(k.Kind, namespace, name)
	}
	pod := clone(old.(*corev1.Pod))
	if uid != "" && uid != pod.GetMetadata().GetUid() {
		return nil, apierrors.Conflict(k.Kind, namespace, name, "precondition failed: uid")
	}
	if n := pod.GetSpec().GetNodeName(); n != "" {
		return nil, apierrors.AlreadyBound(namespace, name, n)
	}
	if pod.Spec == nil {
		pod.Spec = &corev1.PodSpec{}
	}
	pod.Spec.NodeName = node
	rev := s.nextRev()
	pod.Metadata.ResourceVersion = strconv.FormatInt(rev, 10)
	store[key] = pod
	s.record(event{kind: k, typ: metav1.WatchEventType_WATCH_EVENT_TYPE_MODIFIED, obj: pod, rev: rev})
	return clone(pod), nil
}

// watch streams the backlog after resourceVersion and then every new change,
// until ctx ends or the watcher is dropped.
func (s *Server) watch(ctx context.Context, k *api.Kind, namespace, labelSelector, fieldSelector, resourceVersion string, bookmarks bool, send func(event) error) error {
	sel, err := parseSelectors(labelSelector, fieldSelector)
	if err != nil {
		return err
	}
	s.mu.Lock()
	from := s.rev
	if resourceVersion != "" {
		from, err = strconv.ParseInt(resourceVersion, 10, 64)
		if err != nil || from < 0 {
			s.mu.Unlock()
			return apierrors.BadRequest("resource_version %q is not a revision", resourceVersion)
		}
	}
	if from < s.compacted {
		oldest := s.compacted
		s.mu.Unlock()
		return apierrors.Compacted(from, oldest)
	}
	w := &watcher{kind: k, namespace: namespace, selector: sel, bookmarks: bookmarks,
		ch: make(chan event, watcherBuffer), stop: make(chan struct{})}
	var backlog []event
	for _, e := range s.history {
		if e.rev > from && w.matches(e) {
			backlog = append(backlog, e)
		}
	}
	s.watchers[w] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.dropLocked(w, nil)
		s.mu.Unlock()
	}()
	for _, e := range backlog {
		if err := send(e); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-w.stop:
			s.mu.Lock()
			err := w.err
			s.mu.Unlock()
			return err
		case e := <-w.ch:
			if err := send(e); err != nil {
				return err
			}
		}
	}
}

func copyField(dst, src api.Object, name protoreflect.Name) {
	fd := dst.ProtoReflect().Descriptor().Fields().ByName(name)
	if fd == nil {
		return
	}
	if src.ProtoReflect().Has(fd) {
		dst.ProtoReflect().Set(fd, protoreflect.ValueOfMessage(proto.Clone(src.ProtoReflect().Get(fd).Message().Interface()).ProtoReflect()))
	} else {
		dst.ProtoReflect().Clear(fd)
	}
}

func fieldEqual(a, b api.Object, name protoreflect.Name) bool {
	fd := a.ProtoReflect().Descriptor().Fields().ByName(name)
	if fd == nil {
		return true
	}
	return proto.Equal(a.ProtoReflect().Get(fd).Message().Interface(), b.ProtoReflect().Get(fd).Message().Interface())
}

const bookmark = metav1.WatchEventType_WATCH_EVENT_TYPE_BOOKMARK
