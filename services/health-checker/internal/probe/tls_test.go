package probe

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"bosun.dev/pkg/pki"
)

// A node-agent's certificate names its Node: a probe verifies that name,
// so an address answering with another node's certificate is not healthy.
func TestProbeVerifiesTheNodesName(t *testing.T) {
	dir := t.TempDir()
	serving, err := pki.Issue(dir, pki.Certificate{Name: "node-a", CommonName: "system:node:node-a", Hosts: []string{"node-a"}, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	client, err := pki.Issue(dir, pki.Certificate{Name: "checker", CommonName: "bosun-health-checker", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	stc, err := pki.ReloadingServerConfig(serving.CertFile, serving.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(stc)))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	ctc, err := pki.ReloadingClientConfig(filepath.Join(dir, pki.CAFile), client.CertFile, client.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	p := New(Config{Timeout: 2 * time.Second, TLS: ctc})
	defer p.Close()
	for _, node := range []string{"node-a", "node-b"} {
		if err := p.Set(node, lis.Addr().String()); err != nil {
			t.Fatal(err)
		}
	}
	p.ProbeAll(context.Background())
	if r, _ := p.Result("node-a"); !r.Serving() {
		t.Errorf("node-a over TLS: %+v, want SERVING", r)
	}
	if r, _ := p.Result("node-b"); r.Answered() || r.Err == nil {
		t.Errorf("node-b answered by node-a's certificate: %+v, want a TLS error", r)
	}
	// The same endpoint without TLS is not answered either.
	plain := New(Config{Timeout: time.Second})
	defer plain.Close()
	if err := plain.Set("node-a", lis.Addr().String()); err != nil {
		t.Fatal(err)
	}
	plain.ProbeAll(context.Background())
	if r, _ := plain.Result("node-a"); r.Answered() {
		t.Errorf("plaintext probe of a TLS node-agent: %+v, want no answer", r)
	}
}
