package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Certificate describes a certificate to issue from the CA in a directory.
type Certificate struct {
	// Name is the file name stem: Name.crt and Name.key.
	Name string
	// CommonName is the subject's CN: the user name of a client certificate.
	CommonName string
	// Organizations are the subject's O: the groups of a client certificate.
	Organizations []string
	// Hosts (DNS names or IPs) make it a serving certificate too.
	Hosts []string
	// Client makes it usable as a client certificate.
	Client bool
	// Validity is how long it is valid; one year when zero.
	Validity time.Duration
	// NotBefore is when it starts being valid; an hour ago when zero.
	NotBefore time.Time
}

// Issued names an issued certificate's files.
type Issued struct {
	CertFile, KeyFile string
}

// EnsureCA returns the CA certificate file in dir, creating the CA (ca.crt,
// ca.key) when missing.
func EnsureCA(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if _, _, err := ensureCA(dir); err != nil {
		return "", err
	}
	return filepath.Join(dir, CAFile), nil
}

// Issue creates (or replaces) the certificate c in dir, signed by the CA
// there, which is created when missing. Files are written whole, key first,
// so that a reloading reader sees the old pair or the new one.
func Issue(dir string, c Certificate) (Issued, error) {
	out := Issued{CertFile: filepath.Join(dir, c.Name+".crt"), KeyFile: filepath.Join(dir, c.Name+".key")}
	if c.Name == "" || c.CommonName == "" {
		return out, fmt.Errorf("a certificate needs a file name and a common name")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return out, err
	}
	caCert, caKey, err := ensureCA(dir)
	if err != nil {
		return out, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return out, err
	}
	notBefore := c.NotBefore
	if notBefore.IsZero() {
		notBefore = time.Now().Add(-time.Hour)
	}
	validity := c.Validity
	if validity == 0 {
		validity = 365 * 24 * time.Hour
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: c.CommonName, Organization: c.Organizations},
		NotBefore:    notBefore, NotAfter: notBefore.Add(validity),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if c.Client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	if len(c.Hosts) > 0 {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		for _, h := range c.Hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else if h != "" {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return out, err
	}
	return out, writePairAtomic(out.CertFile, out.KeyFile, der, key)
}

func writePairAtomic(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	dir := filepath.Dir(certPath)
	tmpCert, tmpKey := filepath.Join(dir, ".tmp-"+filepath.Base(certPath)), filepath.Join(dir, ".tmp-"+filepath.Base(keyPath))
	if err := writePair(tmpCert, tmpKey, der, key); err != nil {
		return err
	}
	if err := os.Rename(tmpKey, keyPath); err != nil {
		return err
	}
	return os.Rename(tmpCert, certPath)
}
