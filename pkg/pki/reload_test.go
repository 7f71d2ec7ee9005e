package pki

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestKeyPairReloadsRotatedCertificate(t *testing.T) {
	dir := t.TempDir()
	first, err := Issue(dir, Certificate{Name: "svc", CommonName: "one", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := NewKeyPair(first.CertFile, first.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	cn := func() string {
		leaf, err := x509.ParseCertificate(kp.Certificate().Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.Subject.CommonName
	}
	if cn() != "one" {
		t.Fatalf("CN %q", cn())
	}
	if _, err := Issue(dir, Certificate{Name: "svc", CommonName: "two", Client: true}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for cn() != "two" {
		if time.Now().After(deadline) {
			t.Fatal("rotated certificate not loaded")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A half-written pair keeps the last good one.
	if err := os.WriteFile(first.KeyFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(ReloadInterval + 100*time.Millisecond)
	if cn() != "two" {
		t.Fatalf("a broken key replaced the certificate: %q", cn())
	}
}

func TestCAPoolReloads(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	leaf, err := Issue(other, Certificate{Name: "c", CommonName: "c", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewCAPool(caFile)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(leaf.CertFile)
	cert := mustParse(t, data)
	verifies := func() bool {
		_, err := cert.Verify(x509.VerifyOptions{Roots: p.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		return err == nil
	}
	if verifies() {
		t.Fatal("a certificate of another CA verifies")
	}
	// Append the other CA to the bundle: trusted without a restart.
	mine, _ := os.ReadFile(caFile)
	theirs, _ := os.ReadFile(filepath.Join(other, CAFile))
	if err := os.WriteFile(caFile, append(mine, theirs...), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !verifies() {
		if time.Now().After(deadline) {
			t.Fatal("the extended CA bundle was not loaded")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := NewCAPool(filepath.Join(dir, "missing.crt")); err == nil {
		t.Fatal("a missing CA bundle was accepted")
	}
}

func mustParse(t *testing.T, pemData []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(pemData)
	if block == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
