package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"time"

	"bosun.dev/pkg/pki"
)

// TLSFlags secure a service's own gRPC listener with mutual TLS: its
// serving certificate, and the CA its callers' client certificates must
// chain to. Both files are read again when they change, so rotated
// certificates are used without a restart. A main opts in:
//
//	var tf server.TLSFlags
//	tf.Register(fs)
//	tlsConfig, err := tf.Config()
//	srv, err := server.New(server.Options{..., TLS: tlsConfig})
type TLSFlags struct {
	CertFile, KeyFile string
	// ClientCAFile, when set, requires callers to present a client
	// certificate signed by one of its CAs.
	ClientCAFile string
}

// Register adds --tls-cert-file, --tls-private-key-file and --client-ca-file to fs.
func (t *TLSFlags) Register(fs *flag.FlagSet) {
	fs.StringVar(&t.CertFile, "tls-cert-file", "", "serving certificate of this service's gRPC listener (PEM; required unless --insecure); re-read when it changes")
	fs.StringVar(&t.KeyFile, "tls-private-key-file", "", "key of --tls-cert-file")
	fs.StringVar(&t.ClientCAFile, "client-ca-file", "", "CA bundle that callers' client certificates must chain to (mutual TLS; required unless --insecure); re-read when it changes")
}

// Config returns the listener's TLS configuration, or nil (plaintext) when
// no certificate is given.
func (t TLSFlags) Config() (*tls.Config, error) {
	if t.CertFile == "" && t.KeyFile == "" {
		if t.ClientCAFile != "" {
			return nil, errors.New("--client-ca-file needs --tls-cert-file and --tls-private-key-file")
		}
		return nil, nil
	}
	if t.CertFile == "" || t.KeyFile == "" {
		return nil, errors.New("--tls-cert-file and --tls-private-key-file go together")
	}
	tc, err := pki.ReloadingServerConfig(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert-file: %w", err)
	}
	tc.ClientAuth = tls.NoClientCert
	if t.ClientCAFile == "" {
		return tc, nil
	}
	pool, err := pki.NewCAPool(t.ClientCAFile)
	if err != nil {
		return nil, fmt.Errorf("--client-ca-file: %w", err)
	}
	tc.ClientAuth = tls.RequireAnyClientCert
	tc.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		return VerifyClientCertificate(raw, pool.Pool())
	}
	return tc, nil
}

// VerifyClientCertificate checks a client's certificate chain (leaf first,
// DER) against roots, for client authentication (pki.VerifyClient).
func VerifyClientCertificate(raw [][]byte, roots *x509.CertPool) error {
	certs := make([]*x509.Certificate, len(raw))
	for i, der := range raw {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("client certificate: %w", err)
		}
		certs[i] = c
	}
	return pki.VerifyClient(certs, roots, time.Now())
}
