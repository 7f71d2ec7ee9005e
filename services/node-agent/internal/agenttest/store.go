package agenttest

import (
	"context"
	"strconv"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"bosun.dev/pkg/api"
)

// Store is an in-memory store of one kind with the apiserver's
// resource-version semantics, for code that takes a typed client
// (Get/Create/Update/UpdateStatus).
type Store[T api.Object] struct {
	mu   sync.Mutex
	objs map[string]T
	rev  int64
	// Writes counts successful writes.
	Writes int
	reads  int
}

// NewStore returns an empty store.
func NewStore[T api.Object]() *Store[T] { return &Store[T]{objs: map[string]T{}} }

func key(ns, name string) string { return ns + "/" + name }

// Get returns a copy of an object.
func (s *Store[T]) Get(_ context.Context, ns, name string) (T, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	o, ok := s.objs[key(ns, name)]
	if !ok {
		var zero T
		return zero, status.Errorf(codes.NotFound, "%s not found", key(ns, name))
	}
	return proto.CloneOf(o), nil
}

// Reads counts the calls of Get.
func (s *Store[T]) Reads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

// WriteCount is Writes, read under the store's lock (for tests that read
// it while another goroutine writes).
func (s *Store[T]) WriteCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Writes
}

// Create stores a new object.
func (s *Store[T]) Create(_ context.Context, obj T) (T, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := api.Meta(obj)
	k := key(m.GetNamespace(), m.GetName())
	if _, ok := s.objs[k]; ok {
		var zero T
		return zero, status.Errorf(codes.AlreadyExists, "%s exists", k)
	}
	o := proto.CloneOf(obj)
	s.rev++
	api.Meta(o).ResourceVersion = strconv.FormatInt(s.rev, 10)
	s.objs[k] = o
	s.Writes++
	return proto.CloneOf(o), nil
}

func (s *Store[T]) update(obj T, statusOnly bool) (T, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var zero T
	m := api.Meta(obj)
	k := key(m.GetNamespace(), m.GetName())
	cur, ok := s.objs[k]
	if !ok {
		return zero, status.Errorf(codes.NotFound, "%s not found", k)
	}
	if rv := m.GetResourceVersion(); rv != "" && rv != api.Meta(cur).GetResourceVersion() {
		return zero, status.Errorf(codes.Aborted, "%s: resource version %s is stale", k, rv)
	}
	o := proto.CloneOf(obj)
	if statusOnly {
		o = proto.CloneOf(cur)
		f := o.ProtoReflect().Descriptor().Fields().ByName("status")
		o.ProtoReflect().Set(f, obj.ProtoReflect().Get(f))
	}
	s.rev++
	api.Meta(o).ResourceVersion = strconv.FormatInt(s.rev, 10)
	s.objs[k] = o
	s.Writes++
	return proto.CloneOf(o), nil
}

// Update replaces an object, checking its resource version when set.
func (s *Store[T]) Update(_ context.Context, obj T) (T, error) { return s.update(obj, false) }

// UpdateStatus replaces an object's status.
func (s *Store[T]) UpdateStatus(_ context.Context, obj T) (T, error) { return s.update(obj, true) }
