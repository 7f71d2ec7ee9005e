package pki

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
)

func TestEnsureServingIsReusedAndVerifies(t *testing.T) {
	dir := t.TempDir()
	s, err := EnsureServing(dir, "apiserver", []string{"node1.example", "10.1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(s.CertFile)
	s2, err := EnsureServing(dir, "apiserver", []string{"node1.example"})
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(s2.CertFile); string(again) != string(first) {
		t.Fatal("a certificate that covers the hosts was replaced")
	}
	pair, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	caPEM, _ := os.ReadFile(s.CAFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	for _, h := range []string{"localhost", "127.0.0.1", "node1.example", "10.1.2.3"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: h}); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "other.example"}); err == nil {
		t.Error("certificate verified for a host it does not name")
	}
	// A new host replaces the serving certificate but keeps the CA.
	ca1, _ := os.ReadFile(s.CAFile)
	if _, err := EnsureServing(dir, "apiserver", []string{"other.example"}); err != nil {
		t.Fatal(err)
	}
	ca2, _ := os.ReadFile(s.CAFile)
	if again, _ := os.ReadFile(s.CertFile); string(again) == string(first) || string(ca1) != string(ca2) {
		t.Fatal("want a new serving certificate under the same CA")
	}
}
