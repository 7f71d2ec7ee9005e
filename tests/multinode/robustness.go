package multinode

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/client"
)

// Kinds for RecordWatches.
const (
	KindPod         = "Pod"
	KindNode        = "Node"
	KindDeployment  = "Deployment"
	KindReplicaSet  = "ReplicaSet"
	KindLease       = "Lease"
	KindEndpoints   = "Endpoints"
	KindDaemonSet   = "DaemonSet"
	KindStatefulSet = "StatefulSet"
	KindJob         = "Job"
)

// WatchRecorder records watch streams of the apiserver, one per kind, from
// the revision of a List onwards; a stream that breaks (an apiserver
// restart, an etcd member lost) is resumed from the last revision it
// delivered, as an informer does. Check compares what was delivered with
// etcd's history.
type WatchRecorder struct {
	c       *Cluster
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	streams []*recordedStream
}

type recordedStream struct {
	kind   *api.Kind
	prefix string // the kind's etcd prefix
	from   int64  // the List's revision: events after it are recorded

	mu      sync.Mutex
	events  []recordedEvent
	seen    int64 // the newest revision delivered (event or bookmark)
	resumes int
	breaks  map[string]int // why the stream broke, by message
	broken  error          // a failure the stream could not resume from
}

type recordedEvent struct {
	typ client.EventType
	key string // namespace/name, or name
	rev int64
}

func (e recordedEvent) String() string {
	return fmt.Sprintf("%s %s@%d", strings.TrimPrefix(e.typ.String(), "WATCH_EVENT_TYPE_"), e.key, e.rev)
}

// RecordWatches starts recording a watch stream of every kind named (Kind
// names: "Pod", "Deployment"...; the Kind* constants), until Check or the
// test's end. It needs the cluster's external etcd (every Start cluster
// has one).
func (c *Cluster) RecordWatches(t *testing.T, kinds ...string) *WatchRecorder {
	t.Helper()
	if len(c.Etcd) == 0 {
		t.Fatal("RecordWatches needs the cluster's etcd: use Start or StartLayout")
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &WatchRecorder{c: c, cancel: cancel}
	t.Cleanup(r.stop)
	for _, name := range kinds {
		k, err := api.Lookup(name)
		if err != nil {
			t.Fatalf("RecordWatches: kind %q: %v", name, err)
		}
		lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
		list, err := client.ForKind(c.Conn, k).List(lctx, client.ListOptions{PageSize: 1})
		lcancel()
		if err != nil {
			t.Fatalf("RecordWatches: listing %s: %v", k.Kind, err)
		}
		from, err := strconv.ParseInt(list.ResourceVersion, 10, 64)
		if err != nil {
			t.Fatalf("RecordWatches: %s list revision %q: %v", k.Kind, list.ResourceVersion, err)
		}
		s := &recordedStream{kind: k, prefix: etcdPrefix(k), from: from, seen: from}
		r.streams = append(r.streams, s)
		r.wg.Add(1)
		go func() { defer r.wg.Done(); s.run(ctx, c) }()
	}
	return r
}

// etcdPrefix is where the apiserver stores a kind: /bosun/GROUP/RESOURCE/
// ("core" for the core group).
func etcdPrefix(k *api.Kind) string {
	group := k.Group
	if group == "" {
		group = "core"
	}
	return "/bosun/" + group + "/" + k.Resource + "/"
}

// run watches from the List's revision, resuming after every break, until
// ctx ends.
func (s *recordedStream) run(ctx context.Context, c *Cluster) {
	res := client.ForKind(c.Conn, s.kind)
	for ctx.Err() == nil {
		s.mu.Lock()
		from := s.seen
		s.mu.Unlock()
		w, err := res.Watch(ctx, client.WatchOptions{ResourceVersion: strconv.FormatInt(from, 10), AllowBookmarks: true})
		if err == nil {
			err = s.consume(w)
			w.Stop()
		}
		if ctx.Err() != nil {
			return
		}
		if st, ok := status.FromError(err); ok && (st.Code() == codes.OutOfRange || st.Code() == codes.InvalidArgument) {
			s.mu.Lock()
			s.broken = fmt.Errorf("resuming from revision %d: %w", from, err)
			s.mu.Unlock()
			return
		}
		s.mu.Lock()
		s.resumes++
		if s.breaks == nil {
			s.breaks = map[string]int{}
		}
		s.breaks[fmt.Sprint(err)]++
		s.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (s *recordedStream) consume(w *client.Watcher[api.Object]) error {
	for {
		ev, err := w.Next()
		if err != nil {
			return err
		}
		rev, err := strconv.ParseInt(ev.ResourceVersion, 10, 64)
		if err != nil {
			return fmt.Errorf("event revision %q: %w", ev.ResourceVersion, err)
		}
		s.mu.Lock()
		if ev.Type != client.Bookmark {
			s.events = append(s.events, recordedEvent{typ: ev.Type, key: api.KeyOf(ev.Object), rev: rev})
		}
		s.seen = max(s.seen, rev)
		s.mu.Unlock()
	}
}

func (r *WatchRecorder) stop() {
	r.cancel()
	r.wg.Wait()
}

// Check stops the recording and checks every stream against etcd's history
// of its kind: the stream delivered each change between the List's
// revision and the last revision it reached exactly once, in revision
// order, as the right event type (Added for a creation, Modified for
// another put, Deleted for a delete), and nothing else. It first waits, a
// little, for every stream to reach etcd's current revision (events or
// bookmarks), so that a lost tail is caught too.
func (r *WatchRecorder) Check(t *testing.T) {
	t.Helper()
	cli := r.c.EtcdClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	head, err := cli.Get(ctx, "/bosun/", clientv3.WithCountOnly(), clientv3.WithPrefix())
	cancel()
	if err != nil {
		t.Fatalf("watch check: reading etcd's revision: %v", err)
	}
	now := head.Header.Revision
	// Bookmarks come every 5 s by default: wait for two.
	deadline := time.Now().Add(12 * time.Second)
	for _, s := range r.streams {
		for {
			s.mu.Lock()
			seen, broken := s.seen, s.broken
			s.mu.Unlock()
			if seen >= now || broken != nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	r.stop()
	for _, s := range r.streams {
		if err := checkListAgainstEtcd(r.c, cli, s.kind); err != nil {
			t.Errorf("list of %s: %v", s.kind.Kind, err)
		}
		if s.broken != nil {
			t.Errorf("watch of %s broke and could not resume: %v", s.kind.Kind, s.broken)
		}
		// Up to etcd's revision at the check, even when the stream has not
		// got that far (a quiet kind whose watch sends no bookmarks): a
		// change it has not delivered by now is a gap.
		to := max(s.seen, now)
		want, err := etcdHistory(cli, s.prefix, s.from+1, to)
		if err != nil {
			t.Errorf("watch check of %s: %v", s.kind.Kind, err)
			continue
		}
		if problems := compareHistory(s.events, want); len(problems) > 0 {
			t.Errorf("watch of %s (revisions %d-%d, %d events, %d resumes: %s) against etcd's history (%d changes):\n  %s",
				s.kind.Kind, s.from+1, to, len(s.events), s.resumes, describeBreaks(s.breaks), len(want), strings.Join(problems, "\n  "))
			continue
		}
		resumed := ""
		if s.resumes > 0 {
			resumed = fmt.Sprintf(", resumed %d times (%s)", s.resumes, describeBreaks(s.breaks))
		}
		t.Logf("watch of %s: %d events over revisions %d-%d (last delivered %d)%s: ordered, gap-free, duplicate-free against etcd's history",
			s.kind.Kind, len(s.events), s.from+1, to, s.seen, resumed)
	}
}

// etcdHistory reads every change under prefix with a revision in
// [from, to] from etcd (a watch from a past revision replays history; a
// progress notification at to or later ends it).
func etcdHistory(cli *clientv3.Client, prefix string, from, to int64) ([]recordedEvent, error) {
	if to < from {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx = clientv3.WithRequireLeader(ctx)
	wch := cli.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(from))
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var out []recordedEvent
	for {
		select {
		case <-tick.C:
			_ = cli.RequestProgress(ctx)
		case resp, ok := <-wch:
			if !ok {
				return nil, fmt.Errorf("etcd watch of %s from %d ended: %v", prefix, from, ctx.Err())
			}
			if resp.CompactRevision != 0 {
				return nil, fmt.Errorf("etcd compacted %s up to %d: the history from %d is gone", prefix, resp.CompactRevision, from)
			}
			if err := resp.Err(); err != nil {
				return nil, fmt.Errorf("etcd watch of %s: %w", prefix, err)
			}
			for _, ev := range resp.Events {
				rev := ev.Kv.ModRevision
				if rev > to {
					return out, nil
				}
				e := recordedEvent{key: strings.TrimPrefix(string(ev.Kv.Key), prefix), rev: rev}
				switch {
				case ev.Type == clientv3.EventTypeDelete:
					e.typ = client.Deleted
				case ev.IsCreate():
					e.typ = client.Added
				default:
					e.typ = client.Modified
				}
				out = append(out, e)
			}
			if resp.IsProgressNotify() && resp.Header.Revision >= to {
				return out, nil
			}
		}
	}
}

// compareHistory lists how got (a recorded stream) differs from want
// (etcd's history): disorder, duplicates, gaps, events etcd never had and
// wrong types.
func compareHistory(got, want []recordedEvent) []string {
	var problems []string
	type id struct {
		key string
		rev int64
	}
	byID := map[id]recordedEvent{}
	for _, e := range want {
		byID[id{e.key, e.rev}] = e
	}
	seen := map[id]bool{}
	for i, e := range got {
		if i > 0 && e.rev < got[i-1].rev {
			problems = append(problems, fmt.Sprintf("out of order: %v after %v", e, got[i-1]))
		}
		k := id{e.key, e.rev}
		if seen[k] {
			problems = append(problems, fmt.Sprintf("duplicate: %v", e))
		}
		seen[k] = true
		w, ok := byID[k]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("not in etcd's history: %v", e))
		case w.typ != e.typ:
			problems = append(problems, fmt.Sprintf("wrong type: %v, etcd has %v", e, w))
		}
	}
	for _, e := range want {
		if !seen[id{e.key, e.rev}] {
			problems = append(problems, fmt.Sprintf("missing (gap): %v", e))
		}
	}
	if len(problems) > 20 {
		problems = append(problems[:20], fmt.Sprintf("... and %d more", len(problems)-20))
	}
	return problems
}

// CheckFinalState checks, once the cluster has settled (it retries for up
// to 30 s), that every node's runtime agrees with the API: no container,
// pod network namespace or IPAM lease without a pod bound to the node, a
// running task for every container of a pod the API says is Running (and
// a lease for its IP, inside the node's pod CIDR), and no task running for
// a pod that has finished.
func (c *Cluster) CheckFinalState(t *testing.T) {
	t.Helper()
	var problems []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		problems = c.stateProblems(t)
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(problems) > 0 {
		t.Errorf("final state: the runtime contradicts the API:\n  %s", strings.Join(problems, "\n  "))
		return
	}
	t.Logf("final state: %d nodes, no orphaned containers, network namespaces or IPAM leases; every pod's status matches the runtime", len(c.Nodes))
}

func (c *Cluster) stateProblems(t *testing.T) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pods, _, err := client.For[*corev1.Pod](c.Conn).ListAll(ctx, client.ListOptions{})
	if err != nil {
		return []string{"listing pods: " + err.Error()}
	}
	var problems []string
	for _, n := range c.Nodes {
		bound := map[string]*corev1.Pod{}
		for _, p := range pods {
			if p.GetSpec().GetNodeName() == n.Name {
				bound[p.GetMetadata().GetUid()] = p
			}
		}
		tasks := n.TaskPIDs(t)
		for uid, ids := range n.Containers(t) {
			p, ok := bound[uid]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: containers %v of pod %s, which is not bound to the node (or gone)", n.Name, ids, uid))
				continue
			}
			if ph := p.GetStatus().GetPhase(); (ph == "Succeeded" || ph == "Failed") && len(tasks[uid]) > 0 {
				problems = append(problems, fmt.Sprintf("%s: pod %s is %s but %d of its tasks run", n.Name, api.KeyOf(p), ph, len(tasks[uid])))
			}
		}
		if ns := n.NetNS(); len(ns) > len(bound) {
			problems = append(problems, fmt.Sprintf("%s: %d pod network namespaces %v for %d pods bound", n.Name, len(ns), ns, len(bound)))
		}
		leases := n.Leases()
		if len(leases) > len(bound) {
			problems = append(problems, fmt.Sprintf("%s: %d IPAM leases %v for %d pods bound", n.Name, len(leases), leases, len(bound)))
		}
		cidr, _ := netip.ParsePrefix(n.PodCIDR)
		for uid, p := range bound {
			if p.GetStatus().GetPhase() != "Running" || p.GetMetadata().GetDeletionTimestamp() != nil {
				continue
			}
			if running, want := len(tasks[uid]), len(p.GetSpec().GetContainers()); running < want {
				problems = append(problems, fmt.Sprintf("%s: pod %s is Running with %d containers but %d tasks run", n.Name, api.KeyOf(p), want, running))
			}
			if p.GetSpec().GetHostNetwork() {
				continue
			}
			ip, err := netip.ParseAddr(p.GetStatus().GetPodIp())
			switch {
			case err != nil:
				problems = append(problems, fmt.Sprintf("%s: Running pod %s has pod IP %q", n.Name, api.KeyOf(p), p.GetStatus().GetPodIp()))
			case !cidr.Contains(ip):
				problems = append(problems, fmt.Sprintf("%s: pod %s has IP %s outside the node's pod CIDR %s", n.Name, api.KeyOf(p), ip, cidr))
			case !containsString(leases, ip.String()):
				problems = append(problems, fmt.Sprintf("%s: pod %s has IP %s but the node holds no lease for it (leases %v)", n.Name, api.KeyOf(p), ip, leases))
			}
		}
	}
	sort.Strings(problems)
	return problems
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// retriedCall runs f until it succeeds, for up to timeout, and counts the
// failed attempts by gRPC code: what a client that retries sees.
func retriedCall(timeout time.Duration, errs map[codes.Code]int, f func(ctx context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := f(ctx)
		cancel()
		if err == nil {
			return nil
		}
		errs[status.Code(err)]++
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// codeOf is the gRPC code of err (OK for nil).
func codeOf(err error) codes.Code { return status.Code(err) }

// checkListAgainstEtcd lists kind through the apiserver and reads etcd at
// the list's revision: the same objects at the same revisions, or the
// apiserver serves a stale or torn list.
func checkListAgainstEtcd(c *Cluster, cli *clientv3.Client, kind *api.Kind) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	items, rv, err := client.ForKind(c.Conn, kind).ListAll(ctx, client.ListOptions{})
	if err != nil {
		return err
	}
	rev, err := strconv.ParseInt(rv, 10, 64)
	if err != nil {
		return fmt.Errorf("list revision %q: %w", rv, err)
	}
	resp, err := cli.Get(ctx, etcdPrefix(kind), clientv3.WithPrefix(), clientv3.WithRev(rev), clientv3.WithKeysOnly())
	if err != nil {
		return fmt.Errorf("etcd at revision %d: %w", rev, err)
	}
	want := map[string]string{}
	for _, kv := range resp.Kvs {
		want[strings.TrimPrefix(string(kv.Key), etcdPrefix(kind))] = strconv.FormatInt(kv.ModRevision, 10)
	}
	got := map[string]string{}
	for _, o := range items {
		got[api.KeyOf(o)] = o.GetMetadata().GetResourceVersion()
	}
	var diff []string
	for k, v := range got {
		if w, ok := want[k]; !ok {
			diff = append(diff, fmt.Sprintf("%s@%s listed, not in etcd", k, v))
		} else if w != v {
			diff = append(diff, fmt.Sprintf("%s listed at %s, etcd has %s", k, v, w))
		}
	}
	for k, w := range want {
		if _, ok := got[k]; !ok {
			diff = append(diff, fmt.Sprintf("%s@%s in etcd, not listed", k, w))
		}
	}
	if len(diff) > 0 {
		sort.Strings(diff)
		return fmt.Errorf("at revision %d the apiserver's list differs from etcd: %s", rev, strings.Join(diff, "; "))
	}
	return nil
}

// describeBreaks summarises why a stream broke: "N x message", by count.
func describeBreaks(breaks map[string]int) string {
	var out []string
	for msg, n := range breaks {
		out = append(out, fmt.Sprintf("%d x %s", n, msg))
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}
