package cli

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func loadLeaf(t *testing.T, dir, name string) *x509.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

func TestCertsInitMakesEveryComponentsCertificate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	var out strings.Builder
	printf := func(f string, a ...any) { out.WriteString(strings.TrimSpace(f)) }
	if err := certsInit(dir, certsOptions{nodes: []string{"n1", "n2"}, hosts: []string{"api.example"}, server: "10.0.0.1:6443"}, printf); err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	clients := []struct {
		name, cn string
		groups   []string
	}{
		{"admin", "admin", []string{"system:masters"}},
		{"node-n1", "system:node:n1", []string{"system:nodes"}},
		{"node-n2", "system:node:n2", []string{"system:nodes"}},
		{"bosun-scheduler", "bosun-scheduler", nil},
		{"bosun-controller", "bosun-controller", nil},
		{"bosun-health-checker", "bosun-health-checker", nil},
		{"bosun-service-proxy", "bosun-service-proxy", nil},
		{"apiserver-node-agent-client", "bosun-apiserver", nil},
	}
	for _, c := range clients {
		leaf := loadLeaf(t, dir, c.name)
		if leaf.Subject.CommonName != c.cn || !slices.Equal(leaf.Subject.Organization, c.groups) {
			t.Errorf("%s: subject %v, want CN=%s O=%v", c.name, leaf.Subject, c.cn, c.groups)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s as a client certificate: %v", c.name, err)
		}
	}
	// A node-agent serves under its node's name, and only that.
	n1 := loadLeaf(t, dir, "node-n1")
	if _, err := n1.Verify(x509.VerifyOptions{Roots: roots, DNSName: "n1"}); err != nil {
		t.Errorf("node-n1 does not serve as n1: %v", err)
	}
	if _, err := n1.Verify(x509.VerifyOptions{Roots: roots, DNSName: "n2"}); err == nil {
		t.Error("node-n1 also serves as n2")
	}
	api := loadLeaf(t, dir, "apiserver")
	for _, h := range []string{"localhost", "127.0.0.1", "api.example"} {
		if _, err := api.Verify(x509.VerifyOptions{Roots: roots, DNSName: h}); err != nil {
			t.Errorf("apiserver certificate for %s: %v", h, err)
		}
	}
	if _, err := api.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("the apiserver's serving certificate also works as a client certificate")
	}
	cfg, err := LoadConfigFile(filepath.Join(dir, "admin.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server != "10.0.0.1:6443" || cfg.CA != filepath.Join(dir, "ca.crt") || cfg.Cert != filepath.Join(dir, "admin.crt") || cfg.Key != filepath.Join(dir, "admin.key") {
		t.Errorf("admin.conf: %+v", cfg)
	}
	if fi, err := os.Stat(filepath.Join(dir, "ca.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("ca.key mode: %v %v", fi, err)
	}

	// Running it again keeps the CA and issues new certificates.
	before := loadLeaf(t, dir, "admin")
	if err := certsInit(dir, certsOptions{nodes: []string{"n1"}, server: "x:1"}, printf); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "ca.crt")); string(again) != string(caPEM) {
		t.Error("a second init replaced the CA")
	}
	if after := loadLeaf(t, dir, "admin"); after.SerialNumber.Cmp(before.SerialNumber) == 0 {
		t.Error("a second init did not issue a fresh admin certificate")
	}
}

func TestCertsInitRefusesBadNodeNames(t *testing.T) {
	for _, n := range []string{"", "a/b", "a b"} {
		err := certsInit(t.TempDir(), certsOptions{nodes: []string{n}}, func(string, ...any) {})
		if err == nil || !strings.Contains(err.Error(), "--node") {
			t.Errorf("node %q: err %v, want one naming --node", n, err)
		}
	}
}
