package controlplane_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/pki"
	"bosun.dev/pkg/server"
	"bosun.dev/services/service-proxy/internal/bootstrap"
)

// A proxyless client with the bootstrap's mutual TLS reaches a
// service-proxy that serves it (the way every Bosun service serves unless
// --insecure); one whose certificate is of another CA gets no configuration.
func TestProxylessClientOverMutualTLS(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	serving, err := pki.Issue(dir, pki.Certificate{Name: "service-proxy", CommonName: "bosun-service-proxy", Client: true, Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	proxyClient, err := pki.Issue(dir, pki.Certificate{Name: "client", CommonName: "client-1", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := pki.Issue(other, pki.Certificate{Name: "client", CommonName: "client-2", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, pki.CAFile)
	tc, err := server.TLSFlags{CertFile: serving.CertFile, KeyFile: serving.KeyFile, ClientCAFile: ca}.Config()
	if err != nil {
		t.Fatal(err)
	}
	apiConn := startAPIServer(t)
	p := startProxy(t, apiConn, grpc.Creds(credentials.NewTLS(tc)))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	b := startBackend(t, "b1")
	if _, err := client.For[*corev1.Service](apiConn).Create(ctx, service("echo", nil, &corev1.ServicePort{Name: "grpc", Port: 50051})); err != nil {
		t.Fatal(err)
	}
	if _, err := client.For[*corev1.Endpoints](apiConn).Create(ctx, endpoints("echo", "grpc", []*backend{b}, nil)); err != nil {
		t.Fatal(err)
	}

	conn := dialXDSWith(t, bootstrap.Options{NodeID: "client-1", XDSAddress: p.addr,
		TLS: &bootstrap.TLSFiles{CAFile: ca, CertFile: proxyClient.CertFile, KeyFile: proxyClient.KeyFile}}, "echo.default")
	eventually(t, 30*time.Second, func() error {
		got, err := batch(ctx, conn, 2)
		if err != nil {
			return err
		}
		if got["b1"] != 2 {
			return errorf("reached %s, want b1 twice", names(got))
		}
		return nil
	})

	bad := dialXDSWith(t, bootstrap.Options{NodeID: "client-2", XDSAddress: p.addr,
		TLS: &bootstrap.TLSFiles{CAFile: ca, CertFile: stranger.CertFile, KeyFile: stranger.KeyFile}}, "echo.default")
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	defer cancelShort()
	if got, err := batch(short, bad, 1); err == nil {
		t.Errorf("a client with another CA's certificate reached %s", names(got))
	}
}
