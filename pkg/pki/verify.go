package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// VerifyClient checks a client's certificate chain (leaf first, then any
// intermediates it sent) against roots at time now, for client
// authentication. The apiserver's authenticator and every service's
// mutual-TLS listener use it, so both accept exactly the same callers.
func VerifyClient(chain []*x509.Certificate, roots *x509.CertPool, now time.Time) error {
	if len(chain) == 0 {
		return errors.New("a client certificate is required")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return fmt.Errorf("client certificate %q: %w", chain[0].Subject.CommonName, err)
	}
	return nil
}
