package client_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"bosun.dev/pkg/client"
	"bosun.dev/pkg/server"
)

// freezer forwards TCP connections to target until frozen; then it keeps
// them open and silent, as a partitioned network does.
type freezer struct {
	lis    net.Listener
	frozen atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func startFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{lis: lis}
	t.Cleanup(func() {
		lis.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.conns {
			c.Close()
		}
	})
	go func() {
		for {
			in, err := lis.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, in, out)
			f.mu.Unlock()
			go f.pipe(in, out)
			go f.pipe(out, in)
		}
	}()
	return f
}

func (f *freezer) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if f.frozen.Load() {
			continue // swallow: the peer hears nothing more
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// A stream over a connection whose peer falls silent ends with UNAVAILABLE
// once the keepalive pings go unanswered, instead of waiting forever.
func TestSilentPeerIsDetected(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for keepalive pings")
	}
	srv, err := server.New(server.Options{Name: "test", GRPCListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	f := startFreezer(t, srv.Addr().String())
	conn, err := client.Dial(client.Config{Server: f.lis.Addr().String(), Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := healthpb.NewHealthClient(conn).Watch(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	f.frozen.Store(true)
	start := time.Now()
	ended := make(chan error, 1)
	go func() {
		for {
			if _, err := stream.Recv(); err != nil {
				ended <- err
				return
			}
		}
	}()
	select {
	case err := <-ended:
		if status.Code(err) != codes.Unavailable {
			t.Errorf("stream ended with %v, want UNAVAILABLE", err)
		}
		t.Logf("silent peer detected after %v (keepalive %v + %v)", time.Since(start).Round(time.Millisecond), client.KeepaliveTime, client.KeepaliveTimeout)
	case <-time.After(60 * time.Second):
		t.Fatal("the stream still waits 60s after its peer fell silent")
	}
}
