// Package bootstrap gets the node-agent its own certificate from the
// apiserver and keeps it current, the way the kubelet's TLS bootstrap does.
//
// At start, Ensure looks at the node's certificate and key files. When they
// hold a current certificate for system:node:<node>, it leaves them alone;
// otherwise it makes a new key, sends a certificate request to the
// apiserver's NodeCertificateService authenticated by a bootstrap token
// (listed in the apiserver's token file as
// `TOKEN,system:bootstrap:<node>,UID,"system:bootstrappers"`) and writes the
// signed certificate and its key. A Rotator then asks for a new certificate,
// authenticated by the current one, once 70-80% of its lifetime has passed,
// and replaces the files. Files are only ever replaced by a rename: a reader
// sees the old pair or the new one, never a partly written file.
//
// The files are the node-agent's --tls-cert-file and --tls-private-key-file:
// the certificate is both the node's client certificate towards the
// apiserver and its serving certificate (the apiserver signs it for the DNS
// name <node>). pkg/server and pkg/client read both again when they change,
// and pkg/client dials the apiserver again so that its connections present
// the new certificate.
package bootstrap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"

	certificatesv1 "bosun.dev/gen/bosun/certificates/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/pki"
)

// RequestTimeout bounds one certificate request to the apiserver.
const RequestTimeout = 30 * time.Second

// Config says which node's certificate to keep where, and how to reach the
// apiserver that signs it.
type Config struct {
	// NodeName is the node the certificate is for.
	NodeName string
	// APIServer is the apiserver's gRPC address, host:port.
	APIServer string
	// CAFile verifies the apiserver's serving certificate; the system's
	// roots when "".
	CAFile string
	// Token is the bootstrap token; "" when there is none, in which case
	// only a current certificate can get a new one.
	Token string
	// CertFile and KeyFile are where the certificate and its key are kept.
	// When both name the same file, it holds the certificate followed by
	// the key and is replaced in one rename.
	CertFile, KeyFile string
	// Log receives what happens; nothing is logged when nil.
	Log *slog.Logger
	// Clock tells the time; the real clock when nil.
	Clock clock.WithTicker
}

func (c *Config) check() error {
	switch {
	case c.NodeName == "":
		return errors.New("bootstrap: no node name")
	case c.APIServer == "":
		return errors.New("bootstrap: no apiserver address")
	case c.CertFile == "" || c.KeyFile == "":
		return errors.New("bootstrap: the certificate and key files must both be named")
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Ensure makes sure cfg's files hold a current certificate for the node. A
// certificate that loads with its key, names system:node:<node> and is
// within its validity is left as it is; otherwise (missing, unreadable,
// expired, for another node) a new one is requested with cfg.Token and
// written. It returns the certificate in the files. While the apiserver
// cannot be reached it retries with back-off until ctx ends; a refusal (a
// wrong token, a token for another node) is returned at once, and nothing
// is written then.
func Ensure(ctx context.Context, cfg Config) (*x509.Certificate, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	finishInterruptedWrite(cfg.CertFile, cfg.KeyFile)
	cur, err := loadCurrent(cfg)
	if err == nil {
		cfg.Log.InfoContext(ctx, "node certificate present", "cert", cfg.CertFile, "subject", cur.Subject.CommonName, "notAfter", cur.NotAfter)
		return cur, nil
	}
	if cfg.Token == "" {
		return nil, fmt.Errorf("%w, and there is no bootstrap token to request one", err)
	}
	cfg.Log.InfoContext(ctx, "requesting a node certificate with the bootstrap token", "reason", err.Error(), "node", cfg.NodeName)
	return requestAndWrite(ctx, cfg, credToken, true)
}

// credential says how a certificate request authenticates.
type credential int

const (
	credToken       credential = iota // the bootstrap token
	credCertificate                   // the current certificate in the files
)

func (c credential) String() string {
	if c == credToken {
		return "the bootstrap token"
	}
	return "the node's current certificate"
}

// requestAndWrite requests a certificate and writes it with its key. With
// retry, failures to reach the apiserver are retried until ctx ends.
func requestAndWrite(ctx context.Context, cfg Config, cred credential, retry bool) (*x509.Certificate, error) {
	backoff := wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 1 << 30, Cap: 30 * time.Second}
	for attempt := 1; ; attempt++ {
		certPEM, keyPEM, err := request(ctx, cfg, cred)
		if err == nil {
			leaf, err := checkIssued(cfg.NodeName, certPEM, keyPEM)
			if err != nil {
				return nil, err
			}
			if err := writePair(cfg.CertFile, cfg.KeyFile, certPEM, keyPEM); err != nil {
				return nil, fmt.Errorf("writing the node certificate: %w", err)
			}
			cfg.Log.InfoContext(ctx, "node certificate written", "cert", cfg.CertFile, "key", cfg.KeyFile,
				"subject", leaf.Subject.CommonName, "notAfter", leaf.NotAfter, "with", cred.String())
			return leaf, nil
		}
		if !retry || !transient(err) {
			return nil, err
		}
		d := backoff.Step()
		cfg.Log.InfoContext(ctx, "apiserver not reachable for the node certificate yet", "err", err, "attempt", attempt, "retry_in", d)
		if !sleep(ctx, cfg.Clock, d) {
			return nil, fmt.Errorf("requesting the node certificate: %w (last error: %v)", ctx.Err(), err)
		}
	}
}

// requestError is a certificate request the apiserver answered with an error.
type requestError struct {
	cred credential
	code codes.Code
	msg  string
}

func (e *requestError) Error() string {
	switch e.code {
	case codes.Unauthenticated:
		if e.cred == credToken {
			return fmt.Sprintf("the apiserver refused the bootstrap token (--bootstrap-token-file): %s", e.msg)
		}
		return fmt.Sprintf("the apiserver refused the node's certificate: %s", e.msg)
	case codes.PermissionDenied:
		return fmt.Sprintf("the apiserver refused a certificate for this node with %s: %s", e.cred, e.msg)
	case codes.Unimplemented:
		return "the apiserver signs no node certificates (it has no --cluster-signing-cert-file): " + e.msg
	}
	return fmt.Sprintf("requesting the node certificate with %s: %s: %s", e.cred, e.code, e.msg)
}

// transient reports whether err may go away by itself: the apiserver not
// reachable yet, or overloaded. TLS verification failures are not.
func transient(err error) bool {
	var re *requestError
	if !errors.As(err, &re) {
		return false
	}
	switch re.code {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
		return !strings.Contains(re.msg, "x509:") && !strings.Contains(re.msg, "tls:")
	}
	return false
}

// request sends a certificate request for the node, authenticated by cred,
// and returns the signed certificate and the new key, both PEM.
func request(ctx context.Context, cfg Config, cred credential) (certPEM, keyPEM []byte, err error) {
	cc := client.Config{Server: cfg.APIServer, CAFile: cfg.CAFile}
	var extra []grpc.DialOption
	if cred == credToken {
		extra = append(extra, grpc.WithPerRPCCredentials(client.BearerToken(cfg.Token)))
	} else {
		cc.CertFile, cc.KeyFile = cfg.CertFile, cfg.KeyFile
	}
	conn, err := client.Dial(cc, extra...)
	if err != nil {
		if strings.Contains(err.Error(), "CA file") {
			return nil, nil, fmt.Errorf("--apiserver-ca-file: %w", err)
		}
		return nil, nil, err
	}
	defer conn.Close()
	csrPEM, keyPEM, err := pki.NewNodeCertificateRequest(cfg.NodeName)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	resp, err := certificatesv1.NewNodeCertificateServiceClient(conn).IssueNodeCertificate(ctx,
		&certificatesv1.IssueNodeCertificateRequest{NodeName: cfg.NodeName, CertificateRequest: csrPEM})
	if err != nil {
		st := status.Convert(err)
		msg := st.Message()
		if st.Code() == codes.Unavailable && (strings.Contains(msg, "x509:") || strings.Contains(msg, "tls:")) {
			msg = "the apiserver's certificate is not trusted (--apiserver-ca-file): " + msg
		}
		return nil, nil, &requestError{cred: cred, code: st.Code(), msg: msg}
	}
	return resp.GetCertificate(), keyPEM, nil
}

// checkIssued checks that the apiserver signed what was asked: a client
// certificate for the node's user, matching the key.
func checkIssued(node string, certPEM, keyPEM []byte) (*x509.Certificate, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("the apiserver's certificate does not match the request's key: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("the apiserver's certificate: %w", err)
	}
	if err := matchesNode(leaf, node); err != nil {
		return nil, fmt.Errorf("the apiserver's certificate: %w", err)
	}
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return nil, errors.New("the apiserver's certificate is not valid for client authentication")
	}
	return leaf, nil
}

func matchesNode(leaf *x509.Certificate, node string) error {
	if want := pki.NodeUserPrefix + node; leaf.Subject.CommonName != want {
		return fmt.Errorf("it is for %q, not %q", leaf.Subject.CommonName, want)
	}
	if !slices.Contains(leaf.Subject.Organization, pki.NodesGroup) {
		return fmt.Errorf("its groups %q lack %q", leaf.Subject.Organization, pki.NodesGroup)
	}
	return nil
}

// loadCurrent returns the certificate in cfg's files when it is usable now:
// it loads with its key, is for the node and is within its validity.
func loadCurrent(cfg Config) (*x509.Certificate, error) {
	leaf, err := loadLeaf(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	if err := matchesNode(leaf, cfg.NodeName); err != nil {
		return nil, fmt.Errorf("node certificate %s: %w", cfg.CertFile, err)
	}
	now := cfg.Clock.Now()
	switch {
	case now.After(leaf.NotAfter):
		return nil, fmt.Errorf("node certificate %s expired at %s", cfg.CertFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return nil, fmt.Errorf("node certificate %s is not valid before %s", cfg.CertFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return leaf, nil
}

// loadLeaf loads a certificate with its key and returns the certificate.
func loadLeaf(certFile, keyFile string) (*x509.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("node certificate %s with key %s: %w", certFile, keyFile, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("node certificate %s: %w", certFile, err)
	}
	return leaf, nil
}
