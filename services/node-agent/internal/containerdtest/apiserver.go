package containerdtest

import (
	"testing"

	"bosun.dev/services/node-agent/internal/apiservertest"
)

// StartAPIServer runs an apiserver with an embedded etcd, plaintext on a
// free loopback port, until the test ends, and returns its gRPC address
// once it answers. The node-agent talks to it only over its API, as in
// production.
func StartAPIServer(t testing.TB) string {
	t.Helper()
	return apiservertest.StartAPIServer(t, apiservertest.Options{Insecure: true}).Addr
}
