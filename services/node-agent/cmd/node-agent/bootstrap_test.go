package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/server"
	"bosun.dev/services/node-agent/internal/apiservertest"
)

// parseAll parses args the way server.Run does: the shared flags and the
// node-agent's, then the node-agent's check.
func parseAll(args ...string) (*options, *server.Flags, error) {
	var f server.Flags
	o := &options{}
	fs := flag.NewFlagSet("node-agent", flag.ContinueOnError)
	f.Register(fs, defaultListen)
	o.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	return o, &f, o.check()
}

// prepare runs the node-agent's Prepare hook as server.Run would.
func prepare(t *testing.T, o *options) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return o.prepare(ctx, slog.New(slog.DiscardHandler))
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func TestBootstrapFlagsRefuseBadInput(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	crt, key := filepath.Join(dir, "n.crt"), filepath.Join(dir, "n.key")
	tlsArgs := []string{"--tls-cert-file", crt, "--tls-private-key-file", key, "--client-ca-file", filepath.Join(dir, "ca.crt")}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"insecure", append([]string{"--bootstrap-token-file", tokenFile, "--insecure"}, tlsArgs...), "--bootstrap-token-file cannot be combined with --insecure"},
		{"no cert paths", []string{"--bootstrap-token-file", tokenFile}, "--bootstrap-token-file needs --tls-cert-file and --tls-private-key-file"},
		{"no key path", []string{"--bootstrap-token-file", tokenFile, "--tls-cert-file", crt}, "--bootstrap-token-file needs --tls-cert-file and --tls-private-key-file"},
		{"other client certificate", append([]string{"--bootstrap-token-file", tokenFile, "--client-cert-file", "/etc/other.crt"}, tlsArgs...),
			"--client-cert-file (/etc/other.crt) must be empty or the same as --tls-cert-file"},
	} {
		_, _, err := parseAll(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}

	// The bootstrapped certificate becomes the client certificate.
	o, f, err := parseAll(append([]string{"--node-name", "n1", "--bootstrap-token-file", tokenFile}, tlsArgs...)...)
	if err != nil {
		t.Fatal(err)
	}
	if f.APIServer.CertFile != crt || f.APIServer.KeyFile != key || o.boot == nil || o.boot.Token != "abc" || o.boot.NodeName != "n1" {
		t.Errorf("client certificate %q/%q, bootstrap %+v", f.APIServer.CertFile, f.APIServer.KeyFile, o.boot)
	}
	// Without --bootstrap-token-file nothing changes.
	o, f, err = parseAll(tlsArgs...)
	if err != nil || o.boot != nil || f.APIServer.CertFile != "" {
		t.Errorf("without a token file: err %v, bootstrap %+v, client certificate %q", err, o.boot, f.APIServer.CertFile)
	}
}

func TestBootstrapTokenFileMissingOrEmpty(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	two := filepath.Join(dir, "two")
	if err := os.WriteFile(two, []byte("a b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, want string }{
		{filepath.Join(dir, "missing"), "--bootstrap-token-file: open " + filepath.Join(dir, "missing")},
		{empty, "--bootstrap-token-file: " + empty + " is empty"},
		{two, "must hold one token"},
	} {
		// The flags check out; the token is needed only when no current
		// certificate is in place, and then its error is the answer.
		o, _, err := parseAll("--node-name", "n1", "--apiserver", "127.0.0.1:1", "--bootstrap-token-file", tc.file,
			"--tls-cert-file", filepath.Join(dir, "n.crt"), "--tls-private-key-file", filepath.Join(dir, "n.key"), "--client-ca-file", filepath.Join(dir, "ca.crt"))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		err = prepare(t, o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.file, err, tc.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("files were written: %d entries", len(entries))
	}
}

// TestBootstrapAtStart runs the node-agent's start-up checks against a real
// apiserver: with a valid token the certificate and key are written before
// pkg/server loads them, and they authenticate the node; a wrong token is
// refused, naming the flag, and writes nothing.
func TestBootstrapAtStart(t *testing.T) {
	node, token := "node-"+randomSuffix(), "tok-"+randomSuffix()
	s := apiservertest.StartAPIServer(t, apiservertest.Options{Tokens: map[string]string{token: node}})
	dir := t.TempDir()
	args := func(tokenFile string) []string {
		return []string{"--node-name", node, "--apiserver", s.Addr, "--apiserver-ca-file", s.CAFile, "--bootstrap-token-file", tokenFile,
			"--tls-cert-file", filepath.Join(dir, "pki", "node.crt"), "--tls-private-key-file", filepath.Join(dir, "pki", "node.key"), "--client-ca-file", s.CAFile}
	}

	wrong := filepath.Join(dir, "wrong-token")
	if err := os.WriteFile(wrong, []byte("not-"+token), 0o600); err != nil {
		t.Fatal(err)
	}
	o, _, err := parseAll(args(wrong)...)
	if err != nil {
		t.Fatal(err)
	}
	err = prepare(t, o)
	if err == nil || !strings.Contains(err.Error(), "refused the bootstrap token (--bootstrap-token-file)") {
		t.Fatalf("wrong token: err %v", err)
	}
	t.Logf("wrong token: %v", err)
	if _, err := os.Stat(filepath.Join(dir, "pki", "node.key")); err == nil {
		t.Fatal("a refused token wrote a key")
	}

	good := filepath.Join(dir, "token")
	if err := os.WriteFile(good, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, f, err := parseAll(args(good)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := prepare(t, o); err != nil {
		t.Fatal(err)
	}
	// What pkg/server does next: load the listener's certificate and dial
	// the apiserver with the client certificate.
	if _, err := f.TLS.Config(); err != nil {
		t.Fatalf("loading the listener's TLS after the bootstrap: %v", err)
	}
	pair, err := tls.LoadX509KeyPair(f.APIServer.CertFile, f.APIServer.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	if leaf.Subject.CommonName != "system:node:"+node {
		t.Errorf("certificate for %q", leaf.Subject.CommonName)
	}
	conn, err := client.Dial(f.APIServer)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := client.For[*corev1.Node](conn).Create(ctx, &corev1.Node{Metadata: &metav1.ObjectMeta{Name: node}})
	if err != nil {
		t.Fatalf("creating the Node with the bootstrapped certificate: %v", err)
	}
	n.Status = &corev1.NodeStatus{}
	if _, err := client.For[*corev1.Node](conn).UpdateStatus(ctx, n); err != nil {
		t.Fatalf("writing the Node's status with the bootstrapped certificate: %v", err)
	}

	// A restart with the files in place requests nothing: the wrong token
	// is not even sent.
	before, _ := os.ReadFile(f.APIServer.CertFile)
	o, _, err = parseAll(args(wrong)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := prepare(t, o); err != nil {
		t.Fatalf("restart with a valid certificate: %v", err)
	}
	if after, _ := os.ReadFile(f.APIServer.CertFile); string(after) != string(before) {
		t.Error("a valid certificate was replaced at restart")
	}
}
