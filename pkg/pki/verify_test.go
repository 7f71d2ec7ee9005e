package pki_test

import (
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bosun.dev/pkg/pki"
)

func TestVerifyClient(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	load := func(i pki.Issued) []*x509.Certificate {
		t.Helper()
		kp, err := tls.LoadX509KeyPair(i.CertFile, i.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(kp.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return []*x509.Certificate{c}
	}
	issue := func(dir string, c pki.Certificate) []*x509.Certificate {
		t.Helper()
		i, err := pki.Issue(dir, c)
		if err != nil {
			t.Fatal(err)
		}
		return load(i)
	}
	good := issue(dir, pki.Certificate{Name: "alice", CommonName: "alice", Client: true})
	roots, err := pki.NewCAPool(filepath.Join(dir, pki.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, tc := range []struct {
		name  string
		chain []*x509.Certificate
		at    time.Time
		want  string // "" accepts
	}{
		{"client certificate of the CA", good, now, ""},
		{"no certificate", nil, now, "a client certificate is required"},
		{"serving only", issue(dir, pki.Certificate{Name: "srv", CommonName: "srv", Hosts: []string{"srv"}}), now, `client certificate "srv"`},
		{"another CA", issue(other, pki.Certificate{Name: "mallory", CommonName: "alice", Client: true}), now, `client certificate "alice"`},
		{"expired", good, now.Add(2 * 365 * 24 * time.Hour), "expired"},
	} {
		err := pki.VerifyClient(tc.chain, roots.Pool(), tc.at)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}
