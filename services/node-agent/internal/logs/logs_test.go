package logs_test

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/node-agent/internal/agenttest"
	"bosun.dev/services/node-agent/internal/logs"
	"bosun.dev/services/node-agent/internal/nodeapi"
)

func serve(t *testing.T, b *logs.Backend) corev1.NodeAgentServiceClient {
	t.Helper()
	s := grpc.NewServer()
	srv := nodeapi.Register(s)
	srv.Poll = 10 * time.Millisecond
	if b != nil {
		srv.SetBackend(&nodeapi.Backend{Logs: b})
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return corev1.NewNodeAgentServiceClient(conn)
}

func readAll(t *testing.T, c corev1.NodeAgentServiceClient, req *corev1.ContainerLogsRequest) (string, error) {
	t.Helper()
	st, err := c.ContainerLogs(context.Background(), req)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for {
		m, err := st.Recv()
		if err == io.EOF {
			return b.String(), nil
		}
		if err != nil {
			return b.String(), err
		}
		b.Write(m.GetData())
	}
}

func i64(v int64) *int64 { return &v }

func TestContainerLogs(t *testing.T) {
	dir := t.TempDir()
	cdir := filepath.Join(dir, "app")
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(cdir, "0.log"), []byte("first run\ncrashed\n"), 0o644)
	os.WriteFile(filepath.Join(cdir, "1.log"), []byte("a\nb\nc\nd\n"), 0o644)
	var running atomic.Bool
	running.Store(true)
	pod := agenttest.Pod("u", "web", "n", &corev1.Container{Name: "app"}, &corev1.Container{Name: "side"})
	one := agenttest.Pod("u2", "solo", "n", &corev1.Container{Name: "app"})
	b := &logs.Backend{
		Pod: func(ns, name string) (*corev1.Pod, bool) {
			switch name {
			case "web":
				return pod, true
			case "solo":
				return one, true
			}
			return nil, false
		},
		Dir:     func(_ *corev1.Pod, c string) string { return filepath.Join(dir, c) },
		Running: func(context.Context, *corev1.Pod, string, int) bool { return running.Load() },
	}
	c := serve(t, b)
	for _, tc := range []struct {
		req  *corev1.ContainerLogsRequest
		want string
		code codes.Code
	}{
		{&corev1.ContainerLogsRequest{Namespace: "default", Pod: "web", Container: "app"}, "a\nb\nc\nd\n", codes.OK},
		{&corev1.ContainerLogsRequest{Namespace: "default", Pod: "solo"}, "a\nb\nc\nd\n", codes.OK},
		{&corev1.ContainerLogsRequest{Namespace: "default", Pod: "web", Container: "app", TailLines: i64(2)}, "c\nd\n", codes.OK},
		{&corev1.ContainerLogsRequest{Namespace: "default", Pod: "web", Container: "app", TailLines: i64(10)}, "a\nb\nc\nd\n", codes.OK},
		{&corev1.ContainerLogsRequest{Namespace: "default", Pod: "web", Container: "app", TailLines: i64(0)}, "", codes.OK},
		{&corev1.ContainerLogsRequest{Namespace: "default", Pod: "web", Container: "app", Previous: true}, "first run\ncrashed\n", codes.OK},
		{&corev1.ContainerLogsRequest{Namespace: "default", Pod: "web", Container: "app", LimitBytes: 3}, "a\nb", codes.OK},
		{&corev1.ContainerLogsRequest{Namespace: "default", Pod: "web"}, "", codes.InvalidArgument},
		{&corev1.ContainerLogsRequest{Namespace: "default", Pod: "web", Container: "nope"}, "", codes.NotFound},
		{&corev1.ContainerLogsRequest{Namespace: "default", Pod: "web", Container: "side"}, "", codes.NotFound},
		{&corev1.ContainerLogsRequest{Namespace: "default", Pod: "ghost"}, "", codes.NotFound},
	} {
		got, err := readAll(t, c, tc.req)
		if status.Code(err) != tc.code || got != tc.want {
			t.Errorf("%v: got %q, %v; want %q, %v", tc.req, got, err, tc.want, tc.code)
		}
	}

	// Follow streams what is appended, and ends when the attempt ends.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.ContainerLogs(ctx, &corev1.ContainerLogsRequest{Namespace: "default", Pod: "solo", Follow: true, TailLines: i64(1)})
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.Recv()
	if err != nil || string(m.GetData()) != "d\n" {
		t.Fatalf("first chunk %q %v", m.GetData(), err)
	}
	f, _ := os.OpenFile(filepath.Join(cdir, "1.log"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("e\n")
	if m, err = st.Recv(); err != nil || string(m.GetData()) != "e\n" {
		t.Fatalf("followed chunk %q %v", m.GetData(), err)
	}
	f.WriteString("last words\n")
	f.Close()
	running.Store(false)
	var rest strings.Builder
	for {
		m, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rest.Write(m.GetData())
	}
	if rest.String() != "last words\n" {
		t.Errorf("after the end: %q", rest.String())
	}
}

func TestUnavailableUntilBackend(t *testing.T) {
	c := serve(t, nil)
	if _, err := readAll(t, c, &corev1.ContainerLogsRequest{Pod: "x"}); status.Code(err) != codes.Unavailable {
		t.Errorf("err %v, want Unavailable", err)
	}
}
