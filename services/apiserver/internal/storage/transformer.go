package storage

import (
	"context"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Transformer turns an object's encoding into the value stored in etcd and
// back; encryption at rest is one. key is the object's etcd key: transformers
// that authenticate what they store bind the value to it, so a value copied
// under another key does not read back.
type Transformer interface {
	// TransformToStorage returns the value to store at key for data.
	TransformToStorage(data []byte, key string) ([]byte, error)
	// TransformFromStorage returns the data held by a stored value. stale
	// reports a value that is readable but not in the form
	// TransformToStorage writes now (another key, or plaintext), so that
	// Rewrite stores it again.
	TransformFromStorage(value []byte, key string) (data []byte, stale bool, err error)
}

// Identity stores data as it is.
type Identity struct{}

var _ Transformer = Identity{}

// TransformToStorage returns data.
func (Identity) TransformToStorage(data []byte, _ string) ([]byte, error) { return data, nil }

// TransformFromStorage returns value; it is never stale.
func (Identity) TransformFromStorage(value []byte, _ string) ([]byte, bool, error) {
	return value, false, nil
}

// RewriteResult counts what Rewrite did.
type RewriteResult struct {
	// Rewritten values were stale and are now in the transformer's current form.
	Rewritten int
	// Current values needed nothing.
	Current int
	// Failed holds one error per value that could not be read or stored;
	// each names its key.
	Failed []error
}

// rewriteAttempts bounds how often Rewrite retries one key that keeps
// changing under it; a concurrent write stores the current form anyway.
const rewriteAttempts = 5

// rewritePage is how many keys Rewrite reads at a time.
const rewritePage = 256

// Rewrite stores again every value of the kind that the transformer reports
// stale, in the form it writes now (for encryption: under the first key of
// the first provider). The data is unchanged; each key's resource_version
// moves on, so watchers see a modification. Each write compares the key's
// revision, so a concurrent update is never overwritten: the key is read
// again and rewritten only if it is still stale. Values that cannot be read
// are counted in Failed and the rest go on; the error is for etcd failures.
func (s *Store) Rewrite(ctx context.Context) (RewriteResult, error) {
	var res RewriteResult
	start, end := s.prefix, clientv3.GetPrefixRangeEnd(s.prefix)
	for {
		resp, err := s.client.Get(ctx, start, clientv3.WithRange(end), clientv3.WithLimit(rewritePage))
		if err != nil {
			return res, err
		}
		for _, kv := range resp.Kvs {
			rewritten, err := s.rewriteKey(ctx, kv)
			switch {
			case ctx.Err() != nil:
				return res, ctx.Err()
			case err != nil:
				res.Failed = append(res.Failed, err)
			case rewritten:
				res.Rewritten++
			default:
				res.Current++
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return res, nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// rewriteKey rewrites one stale value; it reports whether it wrote.
func (s *Store) rewriteKey(ctx context.Context, kv *mvccpb.KeyValue) (bool, error) {
	key := string(kv.Key)
	for range rewriteAttempts {
		data, stale, err := s.transformer.TransformFromStorage(kv.Value, key)
		if err != nil {
			return false, fmt.Errorf("%s: %w", key, err)
		}
		if !stale {
			return false, nil
		}
		value, err := s.transformer.TransformToStorage(data, key)
		if err != nil {
			return false, fmt.Errorf("%s: %w", key, err)
		}
		resp, err := s.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
			Then(clientv3.OpPut(key, string(value))).
			Else(clientv3.OpGet(key)).
			Commit()
		if err != nil {
			return false, fmt.Errorf("%s: %w", key, err)
		}
		if resp.Succeeded {
			return true, nil
		}
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			return false, nil // deleted meanwhile
		}
		kv = kvs[0]
	}
	return false, fmt.Errorf("%s: kept changing while being rewritten", key)
}
