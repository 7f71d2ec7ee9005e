package apiserver_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/pki"
	"bosun.dev/services/apiserver/apiserver"
)

// The first answer a service gets from a fresh apiserver already applies
// its built-in role: the apiserver serves only once its authorizer's caches
// hold the roles it has just written.
func TestFirstAnswerAppliesBuiltInRoles(t *testing.T) {
	for round := range 8 {
		dir := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		s, err := apiserver.New(ctx, apiserver.Config{
			Listen: "127.0.0.1:0", DataDir: dir, CompactionInterval: -1, Authenticate: true,
			AuthorizationModes: []string{apiserver.AuthorizationNode, apiserver.AuthorizationRBAC},
		})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		pkiDir := filepath.Join(dir, "pki")
		c, err := pki.Issue(pkiDir, pki.Certificate{Name: "scheduler", CommonName: "bosun-scheduler", Client: true})
		if err != nil {
			t.Fatal(err)
		}
		conn, err := client.Dial(client.Config{Server: s.Addr(), CAFile: filepath.Join(pkiDir, pki.CAFile), CertFile: c.CertFile, KeyFile: c.KeyFile})
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			rctx, rcancel := context.WithTimeout(ctx, time.Second)
			_, err = client.For[*corev1.Pod](conn).List(rctx, client.ListOptions{})
			rcancel()
			if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: apiserver not answering: %v", round, err)
			}
			time.Sleep(2 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("round %d: first answer to bosun-scheduler listing pods: %v", round, err)
		}
		conn.Close()
		cancel()
		<-done
	}
}
