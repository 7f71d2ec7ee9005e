// Package storage keeps Bosun objects in etcd. Each kind lives under
// /bosun/<group>/<resource>/<namespace>/<name> as its protobuf encoding, and an
// object's resource_version is the etcd modification revision of its key. Every
// write is a transaction that compares that revision, so concurrent writers
// never overwrite each other silently. A kind's store may pass its values
// through a Transformer (transformer.go) on their way to and from etcd, which
// is how Secrets are encrypted at rest.
package storage

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
)

// Root is the etcd prefix of every Bosun key.
const Root = "/bosun/"

// ErrNotFound, ErrExists and ErrConflict are the store's own errors; the
// apiserver turns them into API errors that name the object.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrConflict = errors.New("modified concurrently")
)

// Store reads and writes the objects of one kind.
type Store struct {
	client      *clientv3.Client
	kind        *api.Kind
	prefix      string // "/bosun/core/pods/"
	transformer Transformer
}

// Option configures a Store.
type Option func(*Store)

// WithTransformer passes every value the store writes through t, and every
// value it reads back; the store keeps plain encodings without one.
func WithTransformer(t Transformer) Option {
	return func(s *Store) {
		if t != nil {
			s.transformer = t
		}
	}
}

// New returns the store of a kind.
func New(client *clientv3.Client, kind *api.Kind, opts ...Option) *Store {
	s := &Store{client: client, kind: kind, prefix: Prefix(kind), transformer: Identity{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Prefix returns the etcd prefix of a kind, ending in "/".
func Prefix(kind *api.Kind) string {
	group := kind.Group
	if group == "" {
		group = "core"
	}
	return Root + group + "/" + kind.Resource + "/"
}

// Kind returns the kind of the store.
func (s *Store) Kind() *api.Kind { return s.kind }

// Prefix returns the store's etcd prefix, ending in "/".
func (s *Store) Prefix() string { return s.prefix }

// Client returns the etcd client.
func (s *Store) Client() *clientv3.Client { return s.client }

// Key returns the etcd key of an object.
func (s *Store) Key(namespace, name string) string {
	if s.kind.Namespaced {
		return s.prefix + namespace + "/" + name
	}
	return s.prefix + name
}

// NamespacePrefix is the prefix of a namespace's objects, or the whole kind's
// for "" or a cluster-scoped kind.
func (s *Store) NamespacePrefix(namespace string) string {
	if !s.kind.Namespaced || namespace == "" {
		return s.prefix
	}
	return s.prefix + namespace + "/"
}

// Encode marshals an object for storage, before any transformation. The
// resource_version is not stored: it is the key's modification revision.
func Encode(obj api.Object) ([]byte, error) {
	m := obj.GetMetadata()
	rv := m.GetResourceVersion()
	if m != nil {
		m.ResourceVersion = ""
		defer func() { m.ResourceVersion = rv }()
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(obj)
}

// encode returns the value to store at key for obj: its encoding passed
// through the store's transformer.
func (s *Store) encode(key string, obj api.Object) ([]byte, error) {
	data, err := Encode(obj)
	if err != nil {
		return nil, err
	}
	value, err := s.transformer.TransformToStorage(data, key)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "storing %s %s: %v", s.kind.Kind, key, err)
	}
	return value, nil
}

// Decode turns a stored key-value back into an object with its
// resource_version set. A value the transformer cannot read (an encryption
// key that is no longer configured, a tampered value) fails with an Internal
// status naming the etcd key and the cause.
func (s *Store) Decode(kv *mvccpb.KeyValue) (api.Object, error) {
	data, _, err := s.transformer.TransformFromStorage(kv.Value, string(kv.Key))
	if err != nil {
		return nil, status.Errorf(codes.Internal, "reading %s %s: %v", s.kind.Kind, kv.Key, err)
	}
	obj := s.kind.New()
	if err := proto.Unmarshal(data, obj); err != nil {
		return nil, status.Errorf(codes.Internal, "decoding %s %s: %v", s.kind.Kind, kv.Key, err)
	}
	api.Meta(obj).ResourceVersion = strconv.FormatInt(kv.ModRevision, 10)
	return obj, nil
}

// Create stores a new object; ErrExists if the key is taken. It returns the
// object with its resource_version set.
func (s *Store) Create(ctx context.Context, obj api.Object) (api.Object, error) {
	m := obj.GetMetadata()
	key := s.Key(m.GetNamespace(), m.GetName())
	data, err := s.encode(key, obj)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(data))).
		Commit()
	if err != nil {
		return nil, err
	}
	if !resp.Succeeded {
		return nil, ErrExists
	}
	m.ResourceVersion = strconv.FormatInt(resp.Header.Revision, 10)
	return obj, nil
}

// Get reads one object; ErrNotFound if it does not exist.
func (s *Store) Get(ctx context.Context, namespace, name string) (api.Object, error) {
	resp, err := s.client.Get(ctx, s.Key(namespace, name))
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, ErrNotFound
	}
	return s.Decode(resp.Kvs[0])
}

// Put replaces the object stored at obj's key if its modification revision is
// still rev; ErrConflict otherwise, ErrNotFound when the key is gone.
func (s *Store) Put(ctx context.Context, obj api.Object, rev int64) (api.Object, error) {
	m := obj.GetMetadata()
	key := s.Key(m.GetNamespace(), m.GetName())
	data, err := s.encode(key, obj)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpPut(key, string(data))).
		Else(clientv3.OpGet(key, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return nil, err
	}
	if !resp.Succeeded {
		if len(resp.Responses) > 0 && len(resp.Responses[0].GetResponseRange().Kvs) == 0 {
			return nil, ErrNotFound
		}
		return nil, ErrConflict
	}
	m.ResourceVersion = strconv.FormatInt(resp.Header.Revision, 10)
	return obj, nil
}

// Delete removes the object at namespace/name if its modification revision is
// still rev; it returns the revision of the deletion.
func (s *Store) Delete(ctx context.Context, namespace, name string, rev int64) (int64, error) {
	key := s.Key(namespace, name)
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpDelete(key)).
		Else(clientv3.OpGet(key, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return 0, err
	}
	if !resp.Succeeded {
		if len(resp.Responses) > 0 && len(resp.Responses[0].GetResponseRange().Kvs) == 0 {
			return 0, ErrNotFound
		}
		return 0, ErrConflict
	}
	return resp.Header.Revision, nil
}

// ListOptions select a list.
type ListOptions struct {
	Namespace string
	// Limit bounds the number of objects returned; 0 returns all.
	Limit int64
	// Continue is a token from a previous page.
	Continue string
	// Filter keeps an object when it returns true; nil keeps all.
	Filter func(api.Object) bool
	// SkipUndecodable, when set, is told of each value that does not decode
	// and the list goes on without it; otherwise such a value fails the list.
	SkipUndecodable func(key string, err error)
}

// ListResult is one page.
type ListResult struct {
	Items    []api.Object
	Revision int64
	// Continue is set when more objects may remain.
	Continue string
}

type continueToken struct {
	Rev   int64  `json:"rev"`
	Start string `json:"start"` // first key of the next page, relative to the prefix
}

// List reads objects consistently at one revision: the first page fixes the
// revision and every continuation reads at it. A token whose revision etcd has
// compacted fails with apierrors' RESOURCE_VERSION_COMPACTED.
func (s *Store) List(ctx context.Context, opts ListOptions) (*ListResult, error) {
	prefix := s.NamespacePrefix(opts.Namespace)
	start, rev := prefix, int64(0)
	if opts.Continue != "" {
		tok, err := decodeContinue(opts.Continue)
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(s.prefix+tok.Start, prefix) {
			return nil, apierrors.BadRequest("page_token does not belong to this list")
		}
		start, rev = s.prefix+tok.Start, tok.Rev
	}
	end := clientv3.GetPrefixRangeEnd(prefix)
	out := &ListResult{}
	chunk := opts.Limit
	if chunk > 0 && opts.Filter != nil {
		chunk *= 2 // filters drop some; read ahead a little
	}
	for {
		getOpts := []clientv3.OpOption{clientv3.WithRange(end)}
		if rev > 0 {
			getOpts = append(getOpts, clientv3.WithRev(rev))
		}
		if chunk > 0 {
			getOpts = append(getOpts, clientv3.WithLimit(chunk+1))
		}
		resp, err := s.client.Get(ctx, start, getOpts...)
		if err != nil {
			if errors.Is(err, rpctypes.ErrCompacted) {
				return nil, apierrors.Compacted(rev, 0)
			}
			if errors.Is(err, rpctypes.ErrFutureRev) {
				return nil, apierrors.BadRequest("page_token is not one this server issued: its revision %d is in the future", rev)
			}
			return nil, err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		kvs := resp.Kvs
		more := chunk > 0 && int64(len(kvs)) > chunk
		if more {
			kvs = kvs[:chunk]
		}
		for i, kv := range kvs {
			obj, err := s.Decode(kv)
			if err != nil {
				if opts.SkipUndecodable != nil {
					opts.SkipUndecodable(string(kv.Key), err)
					continue
				}
				return nil, err
			}
			if opts.Filter != nil && !opts.Filter(obj) {
				continue
			}
			out.Items = append(out.Items, obj)
			if opts.Limit > 0 && int64(len(out.Items)) == opts.Limit {
				if i+1 < len(kvs) || more {
					next := nextKey(kvs, i, resp.Kvs)
					out.Continue = encodeContinue(continueToken{Rev: rev, Start: strings.TrimPrefix(next, s.prefix)})
				}
				out.Revision = rev
				return out, nil
			}
		}
		if !more {
			break
		}
		start = string(resp.Kvs[chunk].Key)
	}
	out.Revision = rev
	return out, nil
}

func nextKey(kvs []*mvccpb.KeyValue, i int, all []*mvccpb.KeyValue) string {
	if i+1 < len(kvs) {
		return string(kvs[i+1].Key)
	}
	return string(all[len(kvs)].Key)
}

func encodeContinue(t continueToken) string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(s string) (continueToken, error) {
	var t continueToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err != nil || t.Rev <= 0 {
		return t, apierrors.BadRequest("page_token %q is malformed", s)
	}
	return t, nil
}

// CurrentRevision returns etcd's current revision.
func CurrentRevision(ctx context.Context, c *clientv3.Client) (int64, error) {
	resp, err := c.Get(ctx, Root+"_revision_probe", clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}
