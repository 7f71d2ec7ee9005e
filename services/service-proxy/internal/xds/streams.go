package xds

import (
	"context"
	"strings"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// sent is one response a stream has been sent.
type sent struct {
	typeURL string
	version string
}

// streamState is what the server knows of one open xDS stream.
type streamState struct {
	delta bool
	node  string // node id, once the first request named it
	// pending are responses not yet answered, by nonce.
	pending map[string]sent
	// settled is, per type, the last version the proxy answered (ACK or
	// NACK): it will not be sent that version again.
	settled map[string]string
	// requested lists the types the stream asked for.
	requested map[string]bool
}

// pendingOf reports whether a response of type typeURL awaits an answer.
func (st *streamState) pendingOf(typeURL string) bool {
	for _, p := range st.pending {
		if p.typeURL == typeURL {
			return true
		}
	}
	return false
}

// streams tracks every open stream, so that a make-before-break phase can
// wait until the proxies have answered it, and so that NACKs are matched to
// the version they reject.
type streams struct {
	mu      sync.Mutex
	byID    map[int64]*streamState
	changed chan struct{} // closed and replaced on every change
}

func newStreams() *streams {
	return &streams{byID: map[int64]*streamState{}, changed: make(chan struct{})}
}

func (s *streams) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *streams) open(id int64, delta bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byID[id] = &streamState{delta: delta, pending: map[string]sent{}, settled: map[string]string{}, requested: map[string]bool{}}
	s.notifyLocked()
}

// close forgets stream id and reports its node and whether any other
// stream of that node remains open.
func (s *streams) close(id int64) (node string, others bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.byID[id]
	delete(s.byID, id)
	s.notifyLocked()
	if st == nil || st.node == "" {
		return "", false
	}
	for _, o := range s.byID {
		if o.node == st.node {
			return st.node, true
		}
	}
	return st.node, false
}

// request records a request and returns the stream's node id, whether
// this is the first request naming that node on any open stream, and, for
// a NACK, the version it rejects ("" when it is unknown or the request is
// not a NACK).
func (s *streams) request(id int64, node, typeURL, nonce string, nack bool) (nodeID string, firstForNode bool, rejected string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.byID[id]
	if st == nil {
		return node, false, ""
	}
	if st.node == "" && node != "" {
		st.node = node
		firstForNode = true
		for oid, o := range s.byID {
			if oid != id && o.node == node {
				firstForNode = false
				break
			}
		}
	}
	st.requested[typeURL] = true
	if r, ok := st.pending[nonce]; ok && nonce != "" {
		delete(st.pending, nonce)
		st.settled[r.typeURL] = r.version
		if nack {
			rejected = r.version
		}
	}
	s.notifyLocked()
	return st.node, firstForNode, rejected
}

func (s *streams) response(id int64, nonce, typeURL, version string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.byID[id]; st != nil {
		st.pending[nonce] = sent{typeURL: typeURL, version: version}
		s.notifyLocked()
	}
}

// nodes returns the node ids with an open stream.
func (s *streams) nodes() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]bool{}
	for _, st := range s.byID {
		if st.node != "" {
			out[st.node] = true
		}
	}
	return out
}

// versioned is what waitSettled needs of a configuration.
type versioned interface{ Version(typeURL string) string }

// waitSettled blocks until every open stream of the nodes in want has
// answered, for each type it asked for, the version want gives it, or until
// ctx ends; it reports whether they all had. Delta streams are waited for
// until they have answered every response sent to them, and so are
// assignments (a shared cache whose versions are its own): they are sent
// only the resources that changed, so a type's version may never reach them.
func (s *streams) waitSettled(ctx context.Context, want map[string]versioned) bool {
	for {
		s.mu.Lock()
		done := true
		for _, st := range s.byID {
			v, ok := want[st.node]
			if !ok {
				continue
			}
			for t := range st.requested {
				if st.delta || t == resource.EndpointType {
					continue
				}
				if st.settled[t] != v.Version(t) {
					done = false
				}
			}
			if len(st.pending) > 0 && (st.delta || st.pendingOf(resource.EndpointType)) {
				done = false
			}
		}
		ch := s.changed
		s.mu.Unlock()
		if done {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-ch:
		}
	}
}

// NodeNameKey is the node metadata key whose string value names the Bosun
// Node a proxy runs on. Without it the node id is taken as the Node's name.
const NodeNameKey = "bosun.dev/node-name"

// NodeName returns the name of the Bosun Node a proxy says it runs on.
func NodeName(n *corev3.Node) string {
	if v := n.GetMetadata().GetFields()[NodeNameKey].GetStringValue(); v != "" {
		return v
	}
	return n.GetId()
}

func shortType(t string) string { return t[strings.LastIndexByte(t, '.')+1:] }
