package client

import (
	"context"
	"net"
	"testing"

	"bosun.dev/pkg/pki"
)

func TestRotationTracksAndClosesConnections(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	r := &rotation{kp: &pki.KeyPair{}}
	a, err := r.dial(context.Background(), l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.dial(context.Background(), l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if n := r.closeAll(); n != 1 {
		t.Errorf("closeAll closed %d, want the 1 still open", n)
	}
	if _, err := a.Write([]byte("x")); err == nil {
		t.Error("a connection still writes after closeAll")
	}
	if n := r.closeAll(); n != 0 {
		t.Errorf("a second closeAll closed %d", n)
	}
}
