package server_test

import (
	"context"
	"flag"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"bosun.dev/pkg/client"
	"bosun.dev/pkg/pki"
	"bosun.dev/pkg/server"
)

func TestTLSFlagsRequireClientCertificatesOfTheCA(t *testing.T) {
	dir := t.TempDir()
	srvCert, err := pki.Issue(dir, pki.Certificate{Name: "svc", CommonName: "bosun-scheduler", Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	good, _ := pki.Issue(dir, pki.Certificate{Name: "caller", CommonName: "bosun-controller", Client: true})
	expired, _ := pki.Issue(dir, pki.Certificate{Name: "old", CommonName: "old", Client: true, NotBefore: time.Now().Add(-72 * time.Hour), Validity: time.Hour})
	stranger, _ := pki.Issue(t.TempDir(), pki.Certificate{Name: "x", CommonName: "x", Client: true})

	var tf server.TLSFlags
	fs := flag.NewFlagSet("svc", flag.ContinueOnError)
	tf.Register(fs)
	ca := filepath.Join(dir, "ca.crt")
	if err := fs.Parse([]string{"--tls-cert-file", srvCert.CertFile, "--tls-private-key-file", srvCert.KeyFile, "--client-ca-file", ca}); err != nil {
		t.Fatal(err)
	}
	tc, err := tf.Config()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Name: "svc", GRPCListen: "127.0.0.1:0", TLS: tc, Logger: server.NewLogger("error", io.Discard), ShutdownTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	check := func(cfg client.Config) error {
		cfg.Server, cfg.CAFile = srv.Addr().String(), ca
		conn, err := client.Dial(cfg)
		if err != nil {
			return err
		}
		defer conn.Close()
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		defer ccancel()
		_, err = healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{})
		return err
	}
	if err := check(client.Config{CertFile: good.CertFile, KeyFile: good.KeyFile}); err != nil {
		t.Fatalf("a client certificate of the CA: %v", err)
	}
	for name, cfg := range map[string]client.Config{
		"no certificate":      {},
		"expired certificate": {CertFile: expired.CertFile, KeyFile: expired.KeyFile},
		"another CA":          {CertFile: stranger.CertFile, KeyFile: stranger.KeyFile},
	} {
		if err := check(cfg); err == nil {
			t.Errorf("%s: served", name)
		}
	}
	if err := check(client.Config{Insecure: true}); err == nil {
		t.Error("plaintext: served")
	}
}

func TestTLSFlagsBadCombinations(t *testing.T) {
	for _, tt := range []struct {
		flags server.TLSFlags
		want  string
	}{
		{server.TLSFlags{ClientCAFile: "ca.crt"}, "--client-ca-file needs --tls-cert-file"},
		{server.TLSFlags{CertFile: "a.crt"}, "go together"},
		{server.TLSFlags{CertFile: "/missing.crt", KeyFile: "/missing.key"}, "--tls-cert-file"},
	} {
		if _, err := tt.flags.Config(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: err %v, want %q", tt.flags, err, tt.want)
		}
	}
	if tc, err := (server.TLSFlags{}).Config(); tc != nil || err != nil {
		t.Errorf("no flags: %v %v, want plaintext", tc, err)
	}
}
