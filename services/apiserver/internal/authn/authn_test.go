package authn

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"bosun.dev/pkg/pki"
)

func TestTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.csv")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("# comment\nt1,alice,1\n\nt2,bob,2,\"dev, ops\"\n")
	tf, err := NewTokenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u, ok, err := tf.Authenticate(Credentials{Token: "t2"})
	if err != nil || !ok || u.Name != "bob" || !slices.Equal(u.Groups, []string{"dev", "ops"}) {
		t.Fatalf("t2: %+v %v %v", u, ok, err)
	}
	if _, ok, err := tf.Authenticate(Credentials{}); ok || err != nil {
		t.Fatalf("no token: %v %v", ok, err)
	}
	if _, _, err := tf.Authenticate(Credentials{Token: "nope"}); err == nil {
		t.Fatal("unknown token accepted")
	}
	// Removing a line revokes the token at the next request.
	write("t2,bob,2\n")
	if _, _, err := tf.Authenticate(Credentials{Token: "t1"}); err == nil {
		t.Fatal("a revoked token still works")
	}
	if u, _, err := tf.Authenticate(Credentials{Token: "t2"}); err != nil || u.Name != "bob" {
		t.Fatalf("t2 after the edit: %v %v", u, err)
	}
	// A broken file keeps the tokens in force and says why.
	write("t3\n")
	if _, _, err := tf.Authenticate(Credentials{Token: "t2"}); err != nil {
		t.Fatalf("a bad edit dropped the good tokens: %v", err)
	}
	if err := tf.Err(); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("Err() = %v, want one naming line 1", err)
	}
	// A removed file revokes every token.
	os.Remove(path)
	if _, _, err := tf.Authenticate(Credentials{Token: "t2"}); err == nil {
		t.Fatal("a token of a removed file still works")
	}
}

func TestTokenFileBadInput(t *testing.T) {
	for _, tt := range []struct{ content, want string }{
		{"t1,alice\n", "line 1: want token,user,uid"},
		{",alice,1\n", "line 1: empty token"},
		{"t1,,1\n", "line 1: empty user name"},
		{"t1,a,1\nt1,b,2\n", "line 2: token listed twice"},
		{"t1,\"a,1\n", "token file"},
	} {
		path := filepath.Join(t.TempDir(), "tokens.csv")
		os.WriteFile(path, []byte(tt.content), 0o600)
		_, err := NewTokenFile(path)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err %v, want %q", tt.content, err, tt.want)
		}
	}
	if _, err := NewTokenFile(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func parse(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := pkiParse(data)
	if err != nil {
		t.Fatal(err)
	}
	return certs
}

func TestCertificates(t *testing.T) {
	dir := t.TempDir()
	ok, err := pki.Issue(dir, pki.Certificate{Name: "u", CommonName: "alice", Organizations: []string{"dev", "ops"}, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := pki.Issue(dir, pki.Certificate{Name: "old", CommonName: "old", Client: true, NotBefore: time.Now().Add(-48 * time.Hour), Validity: time.Hour})
	serving, _ := pki.Issue(dir, pki.Certificate{Name: "srv", CommonName: "srv", Hosts: []string{"localhost"}})
	stranger, _ := pki.Issue(t.TempDir(), pki.Certificate{Name: "x", CommonName: "alice", Client: true})
	pool, err := pki.NewCAPool(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	a := Certificates{Roots: pool.Pool}
	u, found, err := a.Authenticate(Credentials{Certificates: []*x509.Certificate{parse(t, ok.CertFile)}})
	if err != nil || !found || u.Name != "alice" || !slices.Equal(u.Groups, []string{"dev", "ops"}) {
		t.Fatalf("good certificate: %+v %v %v", u, found, err)
	}
	for _, bad := range []struct {
		file, want string
	}{{expired.CertFile, "expired"}, {stranger.CertFile, "unknown authority"}, {serving.CertFile, "usage"}} {
		if _, _, err := a.Authenticate(Credentials{Certificates: []*x509.Certificate{parse(t, bad.file)}}); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: err %v, want %q", bad.file, err, bad.want)
		}
	}
	if _, found, err := a.Authenticate(Credentials{}); found || err != nil {
		t.Errorf("no certificate: %v %v", found, err)
	}
}

func TestUnionAndForwarded(t *testing.T) {
	u := Union{Forwarded{Secret: "s3"}}
	got, _, err := u.Authenticate(Credentials{GatewaySecret: "s3", ForwardedUser: "bob", ForwardedGroups: []string{"g"}})
	if err != nil || got.Name != "bob" || !slices.Equal(got.Groups, []string{"g", GroupAuthenticated}) {
		t.Fatalf("forwarded: %+v %v", got, err)
	}
	if _, _, err := u.Authenticate(Credentials{GatewaySecret: "guess", ForwardedUser: "admin"}); err == nil || errors.Is(err, ErrNoCredentials) {
		t.Fatalf("wrong gateway secret: %v", err)
	}
	if _, _, err := u.Authenticate(Credentials{ForwardedUser: "admin", ForwardedGroups: []string{GroupMasters}}); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("forwarded identity without the secret: %v", err)
	}
}

func TestNodeName(t *testing.T) {
	for _, tt := range []struct {
		u    User
		want string
	}{
		{User{Name: "system:node:n1", Groups: []string{GroupNodes}}, "n1"},
		{User{Name: "system:node:n1"}, ""},
		{User{Name: "alice", Groups: []string{GroupNodes}}, ""},
	} {
		if got := tt.u.NodeName(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.u, got, tt.want)
		}
	}
}

func pkiParse(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	return x509.ParseCertificate(block.Bytes)
}
