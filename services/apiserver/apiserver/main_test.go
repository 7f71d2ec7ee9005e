package apiserver_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/services/apiserver/apiserver"
)

// testServer is an apiserver on real embedded etcd in a temporary directory.
type testServer struct {
	*apiserver.APIServer
	conn    *grpc.ClientConn
	dataDir string
	cancel  context.CancelFunc
	done    chan error
	once    sync.Once
}

type serverOption func(*apiserver.Config)

func withBookmarks(d time.Duration) serverOption {
	return func(c *apiserver.Config) { c.BookmarkInterval = d }
}

func withCacheSize(n int) serverOption {
	return func(c *apiserver.Config) { c.WatchCacheCapacity = n }
}

// startServer starts an apiserver on dataDir ("" for a new temporary one) and
// stops it when the test ends.
func startServer(t *testing.T, dataDir string, opts ...serverOption) *testServer {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	cfg := apiserver.Config{Listen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", DataDir: dataDir, Insecure: true, CompactionInterval: -1}
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := apiserver.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("starting apiserver: %v", err)
	}
	ts := &testServer{APIServer: s, dataDir: dataDir, cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- s.Run(ctx) }()
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ts.conn = conn
	// Wait until the default namespace exists: the server is then serving.
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		_, err := client.For[*corev1.Namespace](conn).Get(cctx, "", "default")
		ccancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("apiserver not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(ts.stopNow)
	return ts
}

// stop stops the server and waits for it, so its data dir can be reopened.
func (ts *testServer) stopNow() {
	ts.once.Do(func() {
		ts.conn.Close()
		ts.cancel()
		<-ts.done
	})
}

func (ts *testServer) stop(t *testing.T) {
	t.Helper()
	stopped := make(chan struct{})
	go func() { ts.stopNow(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("apiserver did not stop")
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func pod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "web"}},
		Spec:     &corev1.PodSpec{Containers: []*corev1.Container{{Name: "app", Image: "registry.local/hello:v1"}}},
	}
}

func configMap(ns, name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{Metadata: &metav1.ObjectMeta{Name: name, Namespace: ns}, Data: data}
}
