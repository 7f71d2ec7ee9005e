package bootstrap

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"bosun.dev/pkg/pki"
)

// selfSigned returns a PEM certificate for cn and its key.
func selfSigned(t *testing.T, cn string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: []string{pki.NodesGroup}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

func commonName(t *testing.T, certFile, keyFile string) string {
	t.Helper()
	leaf, err := loadLeaf(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return leaf.Subject.CommonName
}

func TestWritePairModesAndReplacement(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "sub", "n.crt"), filepath.Join(dir, "sub", "n.key")
	c1, k1 := selfSigned(t, "system:node:one")
	if err := writePair(certFile, keyFile, c1, k1); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{certFile: 0o644, keyFile: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
	c2, k2 := selfSigned(t, "system:node:two")
	if err := writePair(certFile, keyFile, c2, k2); err != nil {
		t.Fatal(err)
	}
	if cn := commonName(t, certFile, keyFile); cn != "system:node:two" {
		t.Errorf("after replacement the files hold %q", cn)
	}
	// A certificate with a key it does not belong to is refused, and the
	// files stay as they were.
	if err := writePair(certFile, keyFile, c1, k2); err == nil {
		t.Error("a mismatched pair was written")
	}
	if cn := commonName(t, certFile, keyFile); cn != "system:node:two" {
		t.Errorf("after a refused write the files hold %q", cn)
	}
	if entries, _ := os.ReadDir(filepath.Dir(certFile)); len(entries) != 2 {
		t.Errorf("directory holds %d entries, want 2", len(entries))
	}
}

func TestWritePairOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.pem")
	c, k := selfSigned(t, "system:node:one")
	if err := writePair(path, path, c, k); err != nil {
		t.Fatal(err)
	}
	if cn := commonName(t, path, path); cn != "system:node:one" {
		t.Errorf("combined file holds %q", cn)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("combined file: %v mode %v, want 0600", err, fi.Mode().Perm())
	}
}

// A write that stopped between its renames (new key in place, new
// certificate still pending) is completed; stray pending files are removed.
func TestFinishInterruptedWrite(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "n.crt"), filepath.Join(dir, "n.key")
	c1, k1 := selfSigned(t, "system:node:old")
	if err := writePair(certFile, keyFile, c1, k1); err != nil {
		t.Fatal(err)
	}
	c2, k2 := selfSigned(t, "system:node:new")
	if err := os.WriteFile(keyFile, k2, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile+pendingSuffix, c2, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil {
		t.Fatal("the interrupted state should not load")
	}
	finishInterruptedWrite(certFile, keyFile)
	if cn := commonName(t, certFile, keyFile); cn != "system:node:new" {
		t.Errorf("after recovery the files hold %q", cn)
	}

	// Pending files of a write that never got to its renames are dropped
	// and the pair in place is kept.
	c3, k3 := selfSigned(t, "system:node:never")
	_ = os.WriteFile(keyFile+pendingSuffix, k3, 0o600)
	_ = os.WriteFile(certFile+pendingSuffix, c3, 0o644)
	finishInterruptedWrite(certFile, keyFile)
	if cn := commonName(t, certFile, keyFile); cn != "system:node:new" {
		t.Errorf("stray pending files changed the pair: %q", cn)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("pending files left behind: %d entries", len(entries))
	}
}

func TestRenewAt(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name                string
		notBefore, notAfter time.Time
		written             time.Time
		fraction            float64
		want                time.Time
	}{
		{"lifetime from NotBefore", now, now.Add(100 * time.Hour), now.Add(-time.Hour), 0.75, now.Add(75 * time.Hour)},
		{"back-dated NotBefore: from when written", now.Add(-time.Hour), now.Add(10 * time.Second), now, 0.8, now.Add(8 * time.Second)},
		{"written after expiry: from NotBefore", now, now.Add(10 * time.Hour), now.Add(20 * time.Hour), 0.7, now.Add(7 * time.Hour)},
		{"unknown write time", now, now.Add(10 * time.Hour), time.Time{}, 0.7, now.Add(7 * time.Hour)},
	} {
		c := &x509.Certificate{NotBefore: tc.notBefore, NotAfter: tc.notAfter}
		if got := RenewAt(c, tc.written, tc.fraction); !got.Equal(tc.want) {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
