package containerdtest

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/client"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// StartAPIServer builds the apiserver binary (from the workspace) and runs
// it with an embedded etcd in a temporary directory, plaintext on a free
// loopback port, until the test ends. It returns the gRPC address once the
// apiserver answers. The node-agent talks to it only over its API, as in
// production.
func StartAPIServer(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "apiserver"), "bosun.dev/services/apiserver/cmd/apiserver")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the apiserver: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	logs := &lockedBuffer{}
	cmd := exec.Command(filepath.Join(dir, "apiserver"), "--data-dir", filepath.Join(dir, "data"), "--insecure",
		"--listen", addr, "--http-listen", "", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logs, logs
	release, err := startOnOwnThread(cmd)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); release(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("apiserver logs:\n%s", logs.String())
		}
	})
	conn, err := client.Dial(client.Config{Server: addr, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := client.For[*corev1.Namespace](conn).Get(ctx, "", "default")
		cancel()
		if err == nil {
			return addr
		}
		select {
		case <-done:
			t.Fatalf("apiserver exited: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("apiserver not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
