package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/services/apiserver/internal/etcd"
	"bosun.dev/services/apiserver/internal/storage"
)

// tagged is a transformer that prefixes values with "gen<N>:"; it reads
// every generation up to its own and calls older ones stale.
type tagged struct {
	gen int
	// beforeWrite, when set, runs before each TransformToStorage.
	beforeWrite func(key string)
}

func (t *tagged) TransformToStorage(data []byte, key string) ([]byte, error) {
	if t.beforeWrite != nil {
		t.beforeWrite(key)
	}
	return append([]byte(fmt.Sprintf("gen%d:", t.gen)), data...), nil
}

func (t *tagged) TransformFromStorage(value []byte, key string) ([]byte, bool, error) {
	for g := t.gen; g >= 1; g-- {
		if p := []byte(fmt.Sprintf("gen%d:", g)); bytes.HasPrefix(value, p) {
			return value[len(p):], g != t.gen, nil
		}
	}
	return nil, false, errors.New("no known generation")
}

func openEtcd(t *testing.T) *clientv3.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := etcd.Open(ctx, etcd.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b.Client
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func configMapKind(t *testing.T) *api.Kind {
	k, err := api.KindOf(&corev1.ConfigMap{})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func cm(name, value string) *corev1.ConfigMap {
	return &corev1.ConfigMap{Metadata: &metav1.ObjectMeta{Namespace: "default", Name: name}, Data: map[string]string{"v": value}}
}

func rawValue(t *testing.T, c *clientv3.Client, key string) []byte {
	t.Helper()
	resp, err := c.Get(ctxT(t), key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("raw get %s: %v, %d keys", key, err, len(resp.Kvs))
	}
	return resp.Kvs[0].Value
}

func TestTransformerOnEveryPath(t *testing.T) {
	ctx, c, kind := ctxT(t), openEtcd(t), configMapKind(t)
	s := storage.New(c, kind, storage.WithTransformer(&tagged{gen: 1}))
	created, err := s.Create(ctx, cm("a", "one"))
	if err != nil {
		t.Fatal(err)
	}
	if raw := rawValue(t, c, s.Key("default", "a")); !bytes.HasPrefix(raw, []byte("gen1:")) {
		t.Fatalf("raw value %q not transformed", raw)
	}
	rev := created.GetMetadata().GetResourceVersion()
	var n int64
	fmt.Sscan(rev, &n)
	if _, err := s.Put(ctx, cm("a", "two"), n); err != nil {
		t.Fatal(err)
	}
	if raw := rawValue(t, c, s.Key("default", "a")); !bytes.HasPrefix(raw, []byte("gen1:")) {
		t.Fatalf("raw value after Put %q not transformed", raw)
	}
	got, err := s.Get(ctx, "default", "a")
	if err != nil || got.(*corev1.ConfigMap).GetData()["v"] != "two" {
		t.Fatalf("Get = %v, %v", got, err)
	}
	list, err := s.List(ctx, storage.ListOptions{})
	if err != nil || len(list.Items) != 1 || list.Items[0].(*corev1.ConfigMap).GetData()["v"] != "two" {
		t.Fatalf("List = %v, %v", list, err)
	}

	// Without a transformer the store keeps the plain encoding.
	plain := storage.New(c, kind)
	if _, err := plain.Create(ctx, cm("b", "plain")); err != nil {
		t.Fatal(err)
	}
	want, _ := storage.Encode(cm("b", "plain"))
	if raw := rawValue(t, c, plain.Key("default", "b")); !bytes.Equal(raw, want) {
		t.Fatalf("raw value without a transformer %q, want %q", raw, want)
	}
}

func TestUndecodableValues(t *testing.T) {
	ctx, c, kind := ctxT(t), openEtcd(t), configMapKind(t)
	s := storage.New(c, kind, storage.WithTransformer(&tagged{gen: 1}))
	if _, err := s.Create(ctx, cm("good", "x")); err != nil {
		t.Fatal(err)
	}
	badKey := s.Key("default", "bad")
	if _, err := c.Put(ctx, badKey, "gen7:whatever"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Get(ctx, "default", "bad")
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), badKey) || !strings.Contains(err.Error(), "no known generation") {
		t.Fatalf("Get of an undecodable value: %v; want Internal naming %s and the cause", err, badKey)
	}
	if _, err := s.List(ctx, storage.ListOptions{}); status.Code(err) != codes.Internal || !strings.Contains(err.Error(), badKey) {
		t.Fatalf("List with an undecodable value: %v", err)
	}
	var skipped []string
	list, err := s.List(ctx, storage.ListOptions{SkipUndecodable: func(key string, err error) { skipped = append(skipped, key) }})
	if err != nil || len(list.Items) != 1 || list.Items[0].GetMetadata().GetName() != "good" {
		t.Fatalf("List skipping undecodable values = %v, %v", list, err)
	}
	if len(skipped) != 1 || skipped[0] != badKey {
		t.Fatalf("skipped %v, want [%s]", skipped, badKey)
	}
}

func TestRewrite(t *testing.T) {
	ctx, c, kind := ctxT(t), openEtcd(t), configMapKind(t)
	old := storage.New(c, kind, storage.WithTransformer(&tagged{gen: 1}))
	const n = 300 // more than one page
	for i := range n {
		if _, err := old.Create(ctx, cm(fmt.Sprintf("cm-%03d", i), fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	badKey := old.Key("default", "zz-bad")
	if _, err := c.Put(ctx, badKey, "garbage"); err != nil {
		t.Fatal(err)
	}
	cur := storage.New(c, kind, storage.WithTransformer(&tagged{gen: 2}))
	res, err := cur.Rewrite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rewritten != n || res.Current != 0 || len(res.Failed) != 1 || !strings.Contains(res.Failed[0].Error(), badKey) {
		t.Fatalf("Rewrite = %+v; want %d rewritten and one failure naming %s", res, n, badKey)
	}
	resp, err := c.Get(ctx, cur.Prefix(), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		if string(kv.Key) != badKey && !bytes.HasPrefix(kv.Value, []byte("gen2:")) {
			t.Errorf("%s is still %q", kv.Key, kv.Value[:5])
		}
	}
	got, err := cur.Get(ctx, "default", "cm-123")
	if err != nil || got.(*corev1.ConfigMap).GetData()["v"] != "123" {
		t.Fatalf("Get after Rewrite = %v, %v", got, err)
	}
	again, err := cur.Rewrite(ctx)
	if err != nil || again.Rewritten != 0 || again.Current != n {
		t.Fatalf("second Rewrite = %+v, %v; want nothing to do", again, err)
	}
}

// A write that lands between Rewrite's read and its write is kept: Rewrite
// reads again and rewrites the new data.
func TestRewriteKeepsConcurrentWrites(t *testing.T) {
	ctx, c, kind := ctxT(t), openEtcd(t), configMapKind(t)
	old := storage.New(c, kind, storage.WithTransformer(&tagged{gen: 1}))
	if _, err := old.Create(ctx, cm("a", "before")); err != nil {
		t.Fatal(err)
	}
	interfered := false
	tr := &tagged{gen: 2}
	tr.beforeWrite = func(key string) {
		if interfered {
			return
		}
		interfered = true
		cur, err := old.Get(ctx, "default", "a")
		if err != nil {
			t.Error(err)
			return
		}
		var rev int64
		fmt.Sscan(cur.GetMetadata().GetResourceVersion(), &rev)
		if _, err := old.Put(ctx, cm("a", "during"), rev); err != nil {
			t.Error(err)
		}
	}
	cur := storage.New(c, kind, storage.WithTransformer(tr))
	res, err := cur.Rewrite(ctx)
	if err != nil || res.Rewritten != 1 || len(res.Failed) != 0 {
		t.Fatalf("Rewrite = %+v, %v", res, err)
	}
	if !interfered {
		t.Fatal("the concurrent write did not happen")
	}
	raw := rawValue(t, c, cur.Key("default", "a"))
	if !bytes.HasPrefix(raw, []byte("gen2:")) {
		t.Fatalf("raw value %q not rewritten", raw)
	}
	got, err := cur.Get(ctx, "default", "a")
	if err != nil || got.(*corev1.ConfigMap).GetData()["v"] != "during" {
		t.Fatalf("Get = %v, %v; want the concurrent write's data", got, err)
	}
}
