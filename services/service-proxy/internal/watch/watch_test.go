package watch_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/services/apiserver/apiserver"
	"bosun.dev/services/service-proxy/internal/translate"
	"bosun.dev/services/service-proxy/internal/watch"
)

func startAPIServer(t *testing.T) *grpc.ClientConn {
	t.Helper()
	if testing.Short() {
		t.Skip("starts an apiserver on embedded etcd")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := apiserver.New(ctx, apiserver.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Insecure: true, CompactionInterval: -1})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); cancel(); <-done })
	return conn
}

// Follow hands over the cached state at once and after every change that
// matters; a Node's status, which changes every heartbeat, does not.
func TestFollow(t *testing.T) {
	conn := startAPIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nodes := client.For[*corev1.Node](conn)
	services := client.For[*corev1.Service](conn)
	node, err := nodes.Create(ctx, &corev1.Node{Metadata: &metav1.ObjectMeta{Name: "n1", Labels: map[string]string{translate.LabelZone: "a"}}})
	if err != nil {
		t.Fatal(err)
	}

	src := watch.New(conn, slog.New(slog.DiscardHandler))
	var mu sync.Mutex
	var inputs []translate.Input
	applied := make(chan struct{}, 100)
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); src.Run(runCtx) }()
	go func() {
		defer wg.Done()
		src.Follow(runCtx, 0, func(_ context.Context, in translate.Input) {
			mu.Lock()
			inputs = append(inputs, in)
			mu.Unlock()
			applied <- struct{}{}
		})
	}()
	defer func() { stop(); wg.Wait() }()
	last := func() translate.Input {
		select {
		case <-applied:
		case <-time.After(30 * time.Second):
			t.Fatal("no update")
		}
		mu.Lock()
		defer mu.Unlock()
		return inputs[len(inputs)-1]
	}
	if in := last(); len(in.Nodes) != 1 || len(in.Services) != 0 {
		t.Fatalf("first input: %d nodes, %d services", len(in.Nodes), len(in.Services))
	}

	// A heartbeat-like status update; then wait until the cache has it.
	node = proto.Clone(node).(*corev1.Node)
	node.Status = &corev1.NodeStatus{Conditions: []*corev1.NodeCondition{{Type: "Ready", Status: "True"}}}
	if node, err = nodes.UpdateStatus(ctx, node); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		in := src.Input()
		if len(in.Nodes) == 1 && in.Nodes[0].GetMetadata().GetResourceVersion() == node.GetMetadata().GetResourceVersion() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cache never saw the status update")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := services.Create(ctx, &corev1.Service{Metadata: &metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: &corev1.ServiceSpec{Ports: []*corev1.ServicePort{{Name: "http", Port: 80}}}}); err != nil {
		t.Fatal(err)
	}
	for len(last().Services) != 1 {
	}
	// An update caused by the status change alone would carry the new
	// status and not the Service. (Updates at start-up, from the first
	// list's notifications, carry the old status and are harmless.)
	mu.Lock()
	for _, in := range inputs {
		if in.Nodes[0].GetMetadata().GetResourceVersion() == node.GetMetadata().GetResourceVersion() && len(in.Services) == 0 {
			t.Error("a Node status change alone caused an update")
		}
	}
	mu.Unlock()

	// A label change matters.
	node = proto.Clone(node).(*corev1.Node)
	node.Metadata.Labels[translate.LabelZone] = "b"
	if _, err := nodes.Update(ctx, node); err != nil {
		t.Fatal(err)
	}
	for last().Nodes[0].GetMetadata().GetLabels()[translate.LabelZone] != "b" {
	} // last fails the test if no update comes
}
