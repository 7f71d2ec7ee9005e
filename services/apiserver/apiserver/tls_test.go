package apiserver_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/services/apiserver/apiserver"
)

// Without --insecure the apiserver serves TLS with a certificate it makes,
// which clients verify with the generated CA; plaintext clients are refused.
func TestServesTLSByDefault(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := apiserver.New(ctx, apiserver.Config{Listen: "127.0.0.1:0", DataDir: dir, CompactionInterval: -1})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	secure, err := client.Dial(client.Config{Server: s.Addr(), CAFile: filepath.Join(dir, "pki", "ca.crt")})
	if err != nil {
		t.Fatal(err)
	}
	defer secure.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		_, err = client.For[*corev1.Namespace](secure).Get(rctx, "", "default")
		rcancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("TLS client with the generated CA: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	plain, err := client.Dial(client.Config{Server: s.Addr(), Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
	defer rcancel()
	if _, err := client.For[*corev1.Namespace](plain).Get(rctx, "", "default"); err == nil {
		t.Fatal("a plaintext client was served by a TLS apiserver")
	}
	untrusted, err := client.Dial(client.Config{Server: s.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer untrusted.Close()
	if _, err := client.For[*corev1.Namespace](untrusted).Get(rctx, "", "default"); err == nil {
		t.Fatal("a client that does not trust the generated CA was served")
	}
}
