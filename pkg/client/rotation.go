package client

import (
	"context"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"

	"bosun.dev/pkg/pki"
)

// rotation closes a client connection's TCP connections once its client
// certificate's files hold a new certificate. A TLS connection keeps the
// certificate of its handshake, and the apiserver checks it on every call:
// without this, a connection open across a rotation fails when the old
// certificate expires. Closed connections are dialled again by grpc-go and
// present the new certificate.
type rotation struct {
	kp     *pki.KeyPair
	dialer net.Dialer

	mu   sync.Mutex
	open map[*trackedConn]struct{}
}

// dial dials addr over TCP and keeps the connection until it is closed.
func (r *rotation) dial(ctx context.Context, addr string) (net.Conn, error) {
	conn, err := r.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: conn, owner: r}
	r.mu.Lock()
	if r.open == nil {
		r.open = map[*trackedConn]struct{}{}
	}
	r.open[tc] = struct{}{}
	r.mu.Unlock()
	return tc, nil
}

// closeAll closes every open connection and returns how many it closed.
func (r *rotation) closeAll() int {
	r.mu.Lock()
	open := r.open
	r.open = nil
	r.mu.Unlock()
	for tc := range open {
		_ = tc.Conn.Close()
	}
	return len(open)
}

// watch looks at the certificate every pki.ReloadInterval and closes the
// connections when it changed, until conn is closed.
func (r *rotation) watch(conn *grpc.ClientConn) {
	last := r.kp.Certificate()
	tick := time.NewTicker(pki.ReloadInterval)
	defer tick.Stop()
	for range tick.C {
		if conn.GetState() == connectivity.Shutdown {
			r.closeAll()
			return
		}
		if cur := r.kp.Certificate(); cur != last {
			last = cur
			r.closeAll()
		}
	}
}

type trackedConn struct {
	net.Conn
	owner *rotation
	once  sync.Once
}

func (t *trackedConn) Close() error {
	t.once.Do(func() {
		t.owner.mu.Lock()
		delete(t.owner.open, t)
		t.owner.mu.Unlock()
	})
	return t.Conn.Close()
}
