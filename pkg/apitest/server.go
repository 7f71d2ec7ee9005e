package apitest

import (
	"context"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/api"
)

// DefaultHistoryLimit is how many events the server keeps for resuming
// watches when Options.HistoryLimit is zero.
const DefaultHistoryLimit = 1000

// Options configure a Server.
type Options struct {
	// HistoryLimit bounds the events kept for watches that resume from an
	// older revision; older revisions are compacted. Zero means
	// DefaultHistoryLimit.
	HistoryLimit int
}

// Fault decides whether a request fails: it returns the error to answer with,
// or nil to serve the request. method is the full gRPC method name, such as
// "/bosun.coordination.v1.LeaseService/UpdateLease"; req is the request
// message, which the fault must not modify.
type Fault func(method string, req any) error

// Server is an in-memory apiserver. Its methods are safe for concurrent use.
type Server struct {
	addr string
	conn *grpc.ClientConn

	mu           sync.Mutex
	rev          int64
	compacted    int64 // watches from a revision below this fail as compacted
	history      []event
	historyLimit int
	stores       map[*api.Kind]map[string]api.Object
	watchers     map[*watcher]struct{}
	fault        Fault
	uidSeq       int
}

// NewServer starts a Server with default options on 127.0.0.1 and stops it
// when the test ends.
func NewServer(t testing.TB) *Server {
	return NewServerWithOptions(t, Options{})
}

// NewServerWithOptions starts a Server configured by opts and stops it when
// the test ends.
func NewServerWithOptions(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.HistoryLimit <= 0 {
		opts.HistoryLimit = DefaultHistoryLimit
	}
	s := &Server{
		historyLimit: opts.HistoryLimit,
		stores:       map[*api.Kind]map[string]api.Object{},
		watchers:     map[*watcher]struct{}{},
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("apitest: listen: %v", err)
	}
	s.addr = lis.Addr().String()
	gs := grpc.NewServer(grpc.ChainUnaryInterceptor(s.faultInterceptor))
	corev1.RegisterPodServiceServer(gs, podService{s: s})
	coordinationv1.RegisterLeaseServiceServer(gs, leaseService{s: s})
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go func() { _ = gs.Serve(lis) }()
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		gs.Stop()
		t.Fatalf("apitest: dial: %v", err)
	}
	s.conn = conn
	t.Cleanup(func() {
		_ = conn.Close()
		gs.Stop()
	})
	return s
}

// Addr is the server's address, host:port.
func (s *Server) Addr() string { return s.addr }

// Conn is a client connection to the server, closed when the test ends.
func (s *Server) Conn() *grpc.ClientConn { return s.conn }

// Revision is the current revision: the resource_version of the last write.
func (s *Server) Revision() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rev
}

// Watches is the number of open watch streams.
func (s *Server) Watches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.watchers)
}

// DropWatches ends every open watch stream with Unavailable, as a restarting
// apiserver or a broken connection would. Events not yet sent are not sent.
func (s *Server) DropWatches() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for w := range s.watchers {
		s.dropLocked(w, errUnavailable("watch stream dropped by the test server"))
	}
}

// Compact forgets the whole history: a watch from any revision before the
// current one fails with apierrors.Compacted. Open watches continue.
func (s *Server) Compact() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.compacted = s.rev
	s.history = nil
}

// SendBookmarks sends a bookmark at the current revision to every open watch
// that asked for bookmarks.
func (s *Server) SendBookmarks() {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := event{rev: s.rev}
	for w := range s.watchers {
		if !w.bookmarks {
			continue
		}
		e.kind = w.kind
		select {
		case w.ch <- e:
		default:
		}
	}
}

// SetFault installs f, which every later request passes through (Watch
// requests included); nil removes it.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

func (s *Server) checkFault(method string, req any) error {
	s.mu.Lock()
	f := s.fault
	s.mu.Unlock()
	if f == nil {
		return nil
	}
	return f(method, req)
}

func (s *Server) faultInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := s.checkFault(info.FullMethod, req); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}
