package pki

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"time"
)

// ReloadInterval is how often reloaders look at their files for changes.
const ReloadInterval = time.Second

type stamp struct {
	mod  time.Time
	size int64
}

func stampFiles(paths ...string) ([]stamp, error) {
	out := make([]stamp, len(paths))
	for i, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		out[i] = stamp{fi.ModTime(), fi.Size()}
	}
	return out, nil
}

func sameStamps(a, b []stamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].mod.Equal(b[i].mod) || a[i].size != b[i].size {
			return false
		}
	}
	return true
}

// KeyPair is a certificate and key read from files and read again when the
// files change (looked at no more than once per ReloadInterval), so that a
// rotated certificate is used without a restart. A pair that fails to load
// (for instance half-written) keeps the previous one in use.
type KeyPair struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	stamps  []stamp
	checked time.Time
}

// NewKeyPair loads certFile and keyFile.
func NewKeyPair(certFile, keyFile string) (*KeyPair, error) {
	kp := &KeyPair{certFile: certFile, keyFile: keyFile}
	st, err := stampFiles(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading certificate: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading certificate %s: %w", certFile, err)
	}
	kp.cert, kp.stamps, kp.checked = &cert, st, time.Now()
	return kp, nil
}

// Certificate returns the current certificate, reloading it when its files changed.
func (kp *KeyPair) Certificate() *tls.Certificate {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	if time.Since(kp.checked) < ReloadInterval {
		return kp.cert
	}
	kp.checked = time.Now()
	st, err := stampFiles(kp.certFile, kp.keyFile)
	if err != nil || sameStamps(st, kp.stamps) {
		return kp.cert
	}
	if cert, err := tls.LoadX509KeyPair(kp.certFile, kp.keyFile); err == nil {
		kp.cert, kp.stamps = &cert, st
	}
	return kp.cert
}

// GetCertificate serves as tls.Config.GetCertificate.
func (kp *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return kp.Certificate(), nil
}

// GetClientCertificate serves as tls.Config.GetClientCertificate.
func (kp *KeyPair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return kp.Certificate(), nil
}

// CAPool is a CA bundle read from a file and read again when it changes
// (looked at no more than once per ReloadInterval).
type CAPool struct {
	file string

	mu      sync.Mutex
	pool    *x509.CertPool
	stamps  []stamp
	checked time.Time
}

// NewCAPool loads the PEM bundle in file.
func NewCAPool(file string) (*CAPool, error) {
	p := &CAPool{file: file}
	st, err := stampFiles(file)
	if err != nil {
		return nil, fmt.Errorf("loading CA bundle: %w", err)
	}
	pool, err := loadPool(file)
	if err != nil {
		return nil, err
	}
	p.pool, p.stamps, p.checked = pool, st, time.Now()
	return p, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("loading CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", file)
	}
	return pool, nil
}

// Pool returns the current pool, reloading it when the file changed.
func (p *CAPool) Pool() *x509.CertPool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.checked) < ReloadInterval {
		return p.pool
	}
	p.checked = time.Now()
	st, err := stampFiles(p.file)
	if err != nil || sameStamps(st, p.stamps) {
		return p.pool
	}
	if pool, err := loadPool(p.file); err == nil {
		p.pool, p.stamps = pool, st
	}
	return p.pool
}

// ReloadingServerConfig is ServerConfig with a certificate that is read
// again when its files change. It asks clients for a certificate without
// requiring one: verifying it is the authenticator's business, against a CA
// bundle that may be rotated as well.
func ReloadingServerConfig(certFile, keyFile string) (*tls.Config, error) {
	kp, err := NewKeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{GetCertificate: kp.GetCertificate, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}, nil
}

// ReloadingClientConfig returns a client TLS configuration trusting caFile
// (the system roots when "") and presenting the certificate in certFile and
// keyFile (none when ""), the certificate read again when its files change.
func ReloadingClientConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := loadPool(caFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		kp, err := NewKeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		tc.GetClientCertificate = kp.GetClientCertificate
	}
	return tc, nil
}
