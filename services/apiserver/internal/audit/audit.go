// Package audit writes one JSON line per apiserver request: who (user,
// groups), what (verb, kind, namespace, name), the result (gRPC code), how
// long it took and the request id. Levels per kind say how much is written:
// None writes nothing, Metadata the line alone, Request the line and the
// request's object. Secrets are never written beyond Metadata, whatever the
// policy says.
package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Level says how much of a request is written.
type Level string

// Levels.
const (
	LevelNone     Level = "None"
	LevelMetadata Level = "Metadata"
	LevelRequest  Level = "Request"
)

var levels = []Level{LevelNone, LevelMetadata, LevelRequest}

// Policy gives the level of each kind.
type Policy struct {
	// Default applies to kinds not in Kinds; Metadata when "".
	Default Level
	// Kinds maps a kind ("Pod", "Event") to its level.
	Kinds map[string]Level
}

// LevelOf returns the level for kind. Secret is capped at Metadata.
func (p Policy) LevelOf(kind string) Level {
	l, ok := p.Kinds[kind]
	if !ok {
		l = p.Default
	}
	if l == "" {
		l = LevelMetadata
	}
	if kind == "Secret" && l == LevelRequest {
		l = LevelMetadata
	}
	return l
}

// ParsePolicy reads "LEVEL" or "default=LEVEL,KIND=LEVEL,...", e.g.
// "default=Metadata,Event=None,Pod=Request".
func ParsePolicy(s string) (Policy, error) {
	p := Policy{Kinds: map[string]Level{}}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		kind, lvl, found := strings.Cut(part, "=")
		if !found {
			kind, lvl = "default", part
		}
		l := Level(strings.TrimSpace(lvl))
		if !slices.Contains(levels, l) {
			return Policy{}, fmt.Errorf("audit policy %q: level %q of %q is not None, Metadata or Request", s, lvl, kind)
		}
		if kind = strings.TrimSpace(kind); kind == "default" {
			p.Default = l
		} else if kind == "" {
			return Policy{}, fmt.Errorf("audit policy %q: empty kind in %q", s, part)
		} else {
			p.Kinds[kind] = l
		}
	}
	return p, nil
}

// Event is one audit line.
type Event struct {
	Time      time.Time `json:"time"`
	RequestID string    `json:"requestID"`
	User      string    `json:"user"`
	Groups    []string  `json:"groups,omitempty"`
	// Verb is get, list, watch, create, update, delete or bind; Subresource
	// is "status" for status updates.
	Verb        string `json:"verb"`
	Kind        string `json:"kind,omitempty"`
	Subresource string `json:"subresource,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
	Name        string `json:"name,omitempty"`
	// Method is the gRPC method called.
	Method string `json:"method"`
	// Code is the gRPC status code name of the result ("OK", "PermissionDenied").
	Code    string  `json:"code"`
	Latency float64 `json:"latencyMs"`
	// Via is "rest" for requests through the REST gateway.
	Via string `json:"via,omitempty"`
	// Request is the request message, at level Request.
	Request json.RawMessage `json:"request,omitempty"`
}

// Logger writes events as JSON lines.
type Logger struct {
	policy Policy

	mu  sync.Mutex
	enc *json.Encoder
}

// New returns a Logger writing to w.
func New(w io.Writer, policy Policy) *Logger {
	return &Logger{policy: policy, enc: json.NewEncoder(w)}
}

// Level returns the level the logger applies to kind.
func (l *Logger) Level(kind string) Level { return l.policy.LevelOf(kind) }

// Log writes e unless its kind's level is None; at level Request it adds
// req (never for Secrets). Errors writing are returned; the request they
// describe has already been served.
func (l *Logger) Log(e Event, req proto.Message) error {
	lvl := l.policy.LevelOf(e.Kind)
	if lvl == LevelNone {
		return nil
	}
	if lvl == LevelRequest && req != nil {
		if b, err := protojson.Marshal(req); err == nil {
			e.Request = b
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.enc.Encode(e)
}
