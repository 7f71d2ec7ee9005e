package controller

import (
	"context"
	"strings"

	"google.golang.org/grpc"
)

// Gate decides whether a write may go ahead; a non-nil error refuses it.
// The manager's gate re-reads the leader Lease, so that a replica that lost
// leadership without noticing writes nothing.
type Gate func(ctx context.Context) error

// GatedConn passes reads through and asks gate before every write (Create,
// Update, Delete and Bind calls) except those to skip (the Lease service, so
// that the elector itself is not gated).
type GatedConn struct {
	grpc.ClientConnInterface
	Gate Gate
	Skip string // service name prefix left ungated, e.g. "/bosun.coordination.v1."
}

// Invoke implements grpc.ClientConnInterface.
func (c GatedConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	if c.Gate != nil && isWrite(method) && (c.Skip == "" || !strings.HasPrefix(method, c.Skip)) {
		if err := c.Gate(ctx); err != nil {
			return err
		}
	}
	return c.ClientConnInterface.Invoke(ctx, method, args, reply, opts...)
}

func isWrite(method string) bool {
	i := strings.LastIndex(method, "/")
	m := method[i+1:]
	for _, p := range []string{"Create", "Update", "Delete", "Bind"} {
		if strings.HasPrefix(m, p) {
			return true
		}
	}
	return false
}
