package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// CA is a loaded certificate authority that signs certificate requests.
type CA struct {
	// Cert is the CA's certificate; PEM is its file's contents.
	Cert *x509.Certificate
	PEM  []byte
	key  crypto.Signer
}

// LoadCA reads a CA certificate and its key.
func LoadCA(certFile, keyFile string) (*CA, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading the signing CA: %w", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate", certFile)
	}
	key, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: the key cannot sign", keyFile)
	}
	data, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, PEM: data, key: key}, nil
}

// ParseCertificateRequest decodes and checks the signature of a PEM
// PKCS#10 request.
func ParseCertificateRequest(data []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("certificate request: no PEM block of type CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	return csr, nil
}

// SignNode signs csr as a node-agent's certificate, valid for validity
// from an hour ago, and returns it PEM-encoded: a client certificate (the
// node's user) that also serves under the DNS name node, which is what
// callers of a node-agent verify (they dial its IP and expect the name of
// the Node they mean). The subject is the request's; callers check it.
func (ca *CA) SignNode(csr *x509.CertificateRequest, node string, validity time.Duration) ([]byte, error) {
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: csr.Subject,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{node},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// ClientConfig returns a client TLS configuration that trusts this CA and
// presents a client certificate for commonName that the CA signs in
// memory, valid for validity and signed again once two thirds of it have
// passed: how a component holding the CA's key identifies itself to
// servers of the same CA without a certificate file.
func (ca *CA) ClientConfig(commonName string, validity time.Duration) *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	var mu sync.Mutex
	var cur *tls.Certificate
	var renewAt time.Time
	return &tls.Config{
		RootCAs: roots, MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			mu.Lock()
			defer mu.Unlock()
			if cur != nil && time.Now().Before(renewAt) {
				return cur, nil
			}
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				return nil, err
			}
			now := time.Now()
			tmpl := &x509.Certificate{
				SerialNumber: serial(), Subject: pkix.Name{CommonName: commonName},
				NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validity),
				KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
			if err != nil {
				return nil, err
			}
			cur = &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
			renewAt = now.Add(validity * 2 / 3)
			return cur, nil
		},
	}
}

// A node-agent's certificate names its node: the apiserver authenticates it
// as the user NodeUserPrefix+<node> in the group NodesGroup.
const (
	NodeUserPrefix = "system:node:"
	NodesGroup     = "system:nodes"
)

// NewNodeCertificateRequest is NewCertificateRequest for node's identity.
func NewNodeCertificateRequest(node string) (csrPEM, keyPEM []byte, err error) {
	return NewCertificateRequest(NodeUserPrefix+node, []string{NodesGroup})
}

// NewCertificateRequest makes a P-256 key and a PEM PKCS#10 request for
// the subject CN=commonName, O=organizations; it returns the request and
// the key, both PEM.
func NewCertificateRequest(commonName string, organizations []string) (csrPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: commonName, Organization: organizations},
	}, key)
	if err != nil {
		return nil, nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

// WriteKeyPair writes a PEM certificate and key, each whole (through a
// temporary file and a rename), key first, so that a reloading reader sees
// the old pair or the new one.
func WriteKeyPair(certFile, keyFile string, certPEM, keyPEM []byte) error {
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return fmt.Errorf("certificate and key do not match: %w", err)
	}
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{keyFile, keyPEM, 0o600}, {certFile, certPEM, 0o644}} {
		tmp := f.path + ".tmp"
		if err := os.WriteFile(tmp, f.data, f.mode); err != nil {
			return err
		}
		if err := os.Rename(tmp, f.path); err != nil {
			return err
		}
	}
	return nil
}
