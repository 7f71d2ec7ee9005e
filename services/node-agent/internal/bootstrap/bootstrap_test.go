package bootstrap_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	testingclock "k8s.io/utils/clock/testing"

	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/pki"
	"bosun.dev/services/node-agent/internal/apiservertest"
	"bosun.dev/services/node-agent/internal/bootstrap"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	os.Exit(code)
}

func randomName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func newConfig(s *apiservertest.APIServer, dir, node, token string) bootstrap.Config {
	return bootstrap.Config{
		NodeName: node, APIServer: s.Addr, CAFile: s.CAFile, Token: token,
		CertFile: filepath.Join(dir, "node.crt"), KeyFile: filepath.Join(dir, "node.key"),
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func leafOf(t *testing.T, certFile, keyFile string) *x509.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

func lease(node string) *coordinationv1.Lease {
	holder := node
	return &coordinationv1.Lease{
		Metadata: &metav1.ObjectMeta{Name: node, Namespace: "bosun-node-lease"},
		Spec:     &coordinationv1.LeaseSpec{HolderIdentity: &holder, RenewTime: timestamppb.Now()},
	}
}

func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// One apiserver with the default (one year) node certificate validity for
// the bootstrap tests; each test uses nodes and tokens of its own.
var (
	sharedOnce sync.Once
	shared     *apiservertest.APIServer
	sharedErr  error
)

// apiServerWithTokens returns the shared apiserver after adding a token for
// each node to its token file (re-read by the apiserver when it changes).
func apiServerWithTokens(t *testing.T, tokens map[string]string) *apiservertest.APIServer {
	t.Helper()
	s := startShared(t)
	f, err := os.OpenFile(s.TokenFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for token, node := range tokens {
		if _, err := f.WriteString(apiservertest.BootstrapTokenLine(token, node)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	waitTokensLoaded(t, s, tokens)
	return s
}

// waitTokensLoaded waits until the apiserver knows every token (an unknown
// token is refused as Unauthenticated; a known one gets past
// authentication).
func waitTokensLoaded(t *testing.T, s *apiservertest.APIServer, tokens map[string]string) {
	t.Helper()
	for token := range tokens {
		deadline := time.Now().Add(30 * time.Second)
		for {
			conn, err := client.Dial(client.Config{Server: s.Addr, CAFile: s.CAFile}, grpc.WithPerRPCCredentials(tokenCreds(token)))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err = client.For[*corev1.Namespace](conn).Get(ctx, "", "default")
			cancel()
			conn.Close()
			if status.Code(err) != codes.Unauthenticated {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the apiserver never accepted a new token: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

type tokenCreds string

func (b tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (tokenCreds) RequireTransportSecurity() bool { return true }

func startShared(t *testing.T) *apiservertest.APIServer {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = apiservertest.Start(apiservertest.Options{}) })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

func TestBootstrapWritesACertificateTheAPIServerAccepts(t *testing.T) {
	node, token := randomName("node-a"), randomName("tok")
	s := apiServerWithTokens(t, map[string]string{token: node})
	dir := t.TempDir()
	cfg := newConfig(s, dir, node, token)
	leaf, err := bootstrap.Ensure(ctxTimeout(t, time.Minute), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if leaf.Subject.CommonName != "system:node:"+node || len(leaf.Subject.Organization) != 1 || leaf.Subject.Organization[0] != "system:nodes" {
		t.Errorf("subject %v, want CN=system:node:%s O=system:nodes", leaf.Subject, node)
	}
	if got := leafOf(t, cfg.CertFile, cfg.KeyFile); got.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("files hold serial %s, Ensure returned %s", got.SerialNumber, leaf.SerialNumber)
	}
	fi, err := os.Stat(cfg.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	if names := dirEntries(t, dir); len(names) != 2 {
		t.Errorf("directory holds %v, want only the certificate and the key", names)
	}

	// The certificate authenticates the node: it registers its Node and
	// takes its Lease, and may not take another node's Lease.
	conn, err := s.Dial(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := ctxTimeout(t, 30*time.Second)
	if _, err := client.For[*corev1.Node](conn).Create(ctx, &corev1.Node{Metadata: &metav1.ObjectMeta{Name: node}}); err != nil {
		t.Fatalf("creating its Node with the bootstrapped certificate: %v", err)
	}
	if _, err := client.For[*coordinationv1.Lease](conn).Create(ctx, lease(node)); err != nil {
		t.Fatalf("creating its Lease with the bootstrapped certificate: %v", err)
	}
	other := randomName("node-other")
	if _, err := client.For[*coordinationv1.Lease](conn).Create(ctx, lease(other)); status.Code(err) != codes.PermissionDenied {
		t.Errorf("creating node %s's Lease as %s: %v, want PermissionDenied", other, node, err)
	}
}

func TestWrongTokenIsRefusedAndWritesNothing(t *testing.T) {
	node, token := randomName("node-w"), randomName("tok")
	s := apiServerWithTokens(t, map[string]string{token: node})
	dir := t.TempDir()
	_, err := bootstrap.Ensure(ctxTimeout(t, time.Minute), newConfig(s, dir, node, "not-"+token))
	if err == nil || !strings.Contains(err.Error(), "refused the bootstrap token") || !strings.Contains(err.Error(), "--bootstrap-token-file") {
		t.Fatalf("err %v, want the bootstrap token refused, naming --bootstrap-token-file", err)
	}
	t.Logf("wrong token: %v", err)
	if names := dirEntries(t, dir); len(names) != 0 {
		t.Errorf("a refused token left files behind: %v", names)
	}
}

func TestTokenOfOneNodeGetsNoCertificateForAnother(t *testing.T) {
	nodeA, nodeB, token := randomName("node-a"), randomName("node-b"), randomName("tok")
	s := apiServerWithTokens(t, map[string]string{token: nodeA})
	dir := t.TempDir()
	_, err := bootstrap.Ensure(ctxTimeout(t, time.Minute), newConfig(s, dir, nodeB, token))
	if err == nil || !strings.Contains(err.Error(), "refused a certificate for this node") || !strings.Contains(err.Error(), nodeB) {
		t.Fatalf("err %v, want a refusal naming node %s", err, nodeB)
	}
	t.Logf("token of %s asking for %s: %v", nodeA, nodeB, err)
	if names := dirEntries(t, dir); len(names) != 0 {
		t.Errorf("a refused request left files behind: %v", names)
	}
}

func TestNoTokenAndNoCertificateIsAnError(t *testing.T) {
	s := startShared(t)
	dir := t.TempDir()
	_, err := bootstrap.Ensure(ctxTimeout(t, time.Minute), newConfig(s, dir, randomName("node"), ""))
	if err == nil || !strings.Contains(err.Error(), "no bootstrap token") || !strings.Contains(err.Error(), "node.crt") {
		t.Fatalf("err %v, want the missing certificate and the missing token named", err)
	}
}

func TestValidFilesAreLeftAloneAndOthersReplaced(t *testing.T) {
	nodeA, nodeB, tokenA, tokenB := randomName("node-a"), randomName("node-b"), randomName("tok"), randomName("tok")
	s := apiServerWithTokens(t, map[string]string{tokenA: nodeA, tokenB: nodeB})
	ctx := ctxTimeout(t, 2*time.Minute)

	dir := t.TempDir()
	cfg := newConfig(s, dir, nodeA, tokenA)
	first, err := bootstrap.Ensure(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	certBefore, _ := os.ReadFile(cfg.CertFile)
	keyBefore, _ := os.ReadFile(cfg.KeyFile)

	// Present and valid: nothing is requested (a wrong token would be
	// refused) and nothing is written.
	again := cfg
	again.Token = "wrong-" + tokenA
	got, err := bootstrap.Ensure(ctx, again)
	if err != nil {
		t.Fatalf("valid files with a wrong token: %v", err)
	}
	certAfter, _ := os.ReadFile(cfg.CertFile)
	keyAfter, _ := os.ReadFile(cfg.KeyFile)
	if got.SerialNumber.Cmp(first.SerialNumber) != 0 || !bytes.Equal(certBefore, certAfter) || !bytes.Equal(keyBefore, keyAfter) {
		t.Fatal("valid files were replaced")
	}

	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, cfg *bootstrap.Config)
	}{
		{"cert missing", func(t *testing.T, cfg *bootstrap.Config) { _ = os.Remove(cfg.CertFile) }},
		{"key missing", func(t *testing.T, cfg *bootstrap.Config) { _ = os.Remove(cfg.KeyFile) }},
		{"cert unreadable", func(t *testing.T, cfg *bootstrap.Config) {
			if err := os.WriteFile(cfg.CertFile, []byte("-----BEGIN CERTIFICATE-----\ngarbage\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"key of another certificate", func(t *testing.T, cfg *bootstrap.Config) {
			other := newConfig(s, t.TempDir(), nodeA, tokenA)
			if _, err := bootstrap.Ensure(ctx, other); err != nil {
				t.Fatal(err)
			}
			copyFile(t, other.KeyFile, cfg.KeyFile)
		}},
		{"expired", func(t *testing.T, cfg *bootstrap.Config) {
			leaf := leafOf(t, cfg.CertFile, cfg.KeyFile)
			cfg.Clock = testingclock.NewFakeClock(leaf.NotAfter.Add(time.Minute))
		}},
		{"for another node", func(t *testing.T, cfg *bootstrap.Config) {
			other := newConfig(s, t.TempDir(), nodeB, tokenB)
			if _, err := bootstrap.Ensure(ctx, other); err != nil {
				t.Fatal(err)
			}
			copyFile(t, other.CertFile, cfg.CertFile)
			copyFile(t, other.KeyFile, cfg.KeyFile)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := newConfig(s, t.TempDir(), nodeA, tokenA)
			if _, err := bootstrap.Ensure(ctx, cfg); err != nil {
				t.Fatal(err)
			}
			old := leafOf(t, cfg.CertFile, cfg.KeyFile)
			tc.prepare(t, &cfg)
			got, err := bootstrap.Ensure(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			now := leafOf(t, cfg.CertFile, cfg.KeyFile)
			if now.SerialNumber.Cmp(old.SerialNumber) == 0 || now.SerialNumber.Cmp(got.SerialNumber) != 0 {
				t.Errorf("files hold serial %s (before %s, Ensure returned %s), want a new certificate", now.SerialNumber, old.SerialNumber, got.SerialNumber)
			}
			if now.Subject.CommonName != "system:node:"+nodeA {
				t.Errorf("new certificate for %q", now.Subject.CommonName)
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRenewalReplacesFilesAndConnections runs the rotator against an
// apiserver that signs certificates for a few seconds: it renews with the
// node's certificate (the bootstrap token is revoked first), readers never
// see a partly written file, and a client connection made with the first
// certificate (pkg/client) keeps working after it has expired.
func TestRenewalReplacesFilesAndConnections(t *testing.T) {
	for _, combined := range []bool{false, true} {
		name := "separate files"
		if combined {
			name = "one file"
		}
		t.Run(name, func(t *testing.T) { testRenewal(t, combined) })
	}
}

func testRenewal(t *testing.T, combined bool) {
	const validity = 6 * time.Second
	node, token := randomName("node-r"), randomName("tok")
	s := apiservertest.StartAPIServer(t, apiservertest.Options{Tokens: map[string]string{token: node}, NodeCertificateValidity: validity})
	dir := t.TempDir()
	cfg := newConfig(s, dir, node, token)
	if combined {
		cfg.KeyFile = cfg.CertFile
	}
	ctx := ctxTimeout(t, 3*time.Minute)
	first, err := bootstrap.Ensure(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Revoke the token: renewals must authenticate with the certificate.
	if err := os.WriteFile(s.TokenFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	conn, err := s.Dial(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	leases := client.For[*coordinationv1.Lease](conn)
	l, err := leases.Create(ctx, lease(node))
	if err != nil {
		t.Fatal(err)
	}

	// Readers look at the files all along: each file must always be whole.
	var stop atomic.Bool
	var reads, pairs, mismatched atomic.Int64
	readErr := make(chan error, 1)
	go func() {
		defer close(readErr)
		for !stop.Load() {
			certPEM, err1 := os.ReadFile(cfg.CertFile)
			keyPEM, err2 := os.ReadFile(cfg.KeyFile)
			if err1 != nil || err2 != nil {
				readErr <- err1
				return
			}
			reads.Add(1)
			if err := wholePEM(certPEM, "CERTIFICATE"); err != nil {
				readErr <- err
				return
			}
			if err := wholePEM(keyPEM, "EC PRIVATE KEY"); err != nil {
				readErr <- err
				return
			}
			if _, err := tls.X509KeyPair(certPEM, keyPEM); err == nil {
				pairs.Add(1)
			} else if combined {
				readErr <- err
				return
			} else {
				mismatched.Add(1) // between the renames of the key and the certificate
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()

	rotated := make(chan *x509.Certificate, 16)
	rcfg := cfg
	rcfg.Token = ""
	r, err := bootstrap.NewRotator(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	// Renew at half the lifetime: pkg/client dials again within a reload
	// interval, well before the old certificate expires.
	r.Fraction = 0.5
	r.OnRotate = func(c *x509.Certificate) {
		t.Logf("renewed: serial %s valid until %s", c.SerialNumber, c.NotAfter.Format(time.RFC3339Nano))
		select {
		case rotated <- c:
		default:
		}
	}
	rctx, cancel := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- r.Run(rctx) }()
	defer func() {
		cancel()
		<-runDone
	}()

	var renewed *x509.Certificate
	select {
	case renewed = <-rotated:
	case <-ctx.Done():
		t.Fatal("no renewal within 3 minutes")
	}
	t.Logf("first certificate valid until %s, renewed at %s", first.NotAfter.Format(time.RFC3339Nano), time.Now().Format(time.RFC3339Nano))
	if renewed.SerialNumber.Cmp(first.SerialNumber) == 0 || renewed.Subject.CommonName != "system:node:"+node {
		t.Fatalf("renewal gave serial %s for %q", renewed.SerialNumber, renewed.Subject.CommonName)
	}
	if !renewed.NotAfter.After(first.NotAfter) {
		t.Errorf("renewed certificate ends %s, not after the first's %s", renewed.NotAfter, first.NotAfter)
	}

	// Once the first certificate has expired, the connection still works:
	// it dialled again with the renewed certificate.
	for time.Now().Before(first.NotAfter.Add(500 * time.Millisecond)) {
		time.Sleep(100 * time.Millisecond)
	}
	l.Spec.RenewTime = timestamppb.Now()
	if _, err := leases.Update(ctx, l); err != nil {
		t.Fatalf("updating the Lease after the first certificate expired: %v", err)
	}
	stop.Store(true)
	if err := <-readErr; err != nil {
		t.Fatalf("a reader saw a partly written file: %v", err)
	}
	if pairs.Load() == 0 {
		t.Fatal("the reader never loaded a pair")
	}
	t.Logf("reads %d: %d whole matching pairs, %d momentary new-key/old-certificate pairs", reads.Load(), pairs.Load(), mismatched.Load())
	if names := dirEntries(t, dir); (combined && len(names) != 1) || (!combined && len(names) != 2) {
		t.Errorf("directory holds %v after renewals", names)
	}
}

// wholePEM checks that data holds a complete PEM block of type want.
func wholePEM(data []byte, want string) error {
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return fmt.Errorf("no complete %s block in %d bytes", want, len(data))
		}
		if b.Type == want {
			return nil
		}
	}
}

// TestRotatorWaitsForItsDeadline drives the rotator's clock: it sleeps
// until the share of the lifetime has passed, then renews with the node's
// certificate.
func TestRotatorWaitsForItsDeadline(t *testing.T) {
	node, token := randomName("node-c"), randomName("tok")
	s := apiServerWithTokens(t, map[string]string{token: node})
	ctx := ctxTimeout(t, 2*time.Minute)
	cfg := newConfig(s, t.TempDir(), node, token)
	first, err := bootstrap.Ensure(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(cfg.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	clk := testingclock.NewFakeClock(time.Now())
	rcfg := cfg
	rcfg.Token, rcfg.Clock = "", clk
	r, err := bootstrap.NewRotator(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	r.Fraction = 0.75
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rotated := make(chan *x509.Certificate, 1)
	r.OnRotate = func(c *x509.Certificate) {
		cancel()
		rotated <- c
	}
	runDone := make(chan error, 1)
	go func() { runDone <- r.Run(rctx) }()

	for !clk.HasWaiters() {
		select {
		case err := <-runDone:
			t.Fatalf("rotator ended: %v", err)
		case <-ctx.Done():
			t.Fatal("the rotator never waited")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if got := leafOf(t, cfg.CertFile, cfg.KeyFile); got.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatal("renewed before its deadline")
	}
	due := bootstrap.RenewAt(first, fi.ModTime(), 0.75)
	t.Logf("certificate written %s, valid until %s, due %s", fi.ModTime().Format(time.RFC3339), first.NotAfter.Format(time.RFC3339), due.Format(time.RFC3339))
	clk.SetTime(due.Add(time.Minute))
	var renewed *x509.Certificate
	select {
	case renewed = <-rotated:
	case <-ctx.Done():
		t.Fatal("no renewal once the deadline passed")
	}
	<-runDone
	if got := leafOf(t, cfg.CertFile, cfg.KeyFile); got.SerialNumber.Cmp(renewed.SerialNumber) != 0 || got.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Errorf("files hold serial %s; first %s, renewed %s", got.SerialNumber, first.SerialNumber, renewed.SerialNumber)
	}
}

func TestUntrustedAPIServerIsAnErrorNamingTheCAFlag(t *testing.T) {
	node, token := randomName("node-u"), randomName("tok")
	s := apiServerWithTokens(t, map[string]string{token: node})
	otherCA, err := pki.EnsureCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := newConfig(s, dir, node, token)
	cfg.CAFile = otherCA
	_, err = bootstrap.Ensure(ctxTimeout(t, time.Minute), cfg)
	if err == nil || !strings.Contains(err.Error(), "--apiserver-ca-file") {
		t.Fatalf("err %v, want the apiserver's certificate not trusted, naming --apiserver-ca-file", err)
	}
	t.Logf("untrusted apiserver: %v", err)
	if names := dirEntries(t, dir); len(names) != 0 {
		t.Errorf("files written: %v", names)
	}
}

// While the apiserver cannot be reached, Ensure retries until its context
// ends, and then says what it last saw.
func TestUnreachableAPIServerIsRetriedUntilTheContextEnds(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	dir := t.TempDir()
	ca, err := pki.EnsureCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := bootstrap.Config{NodeName: "n1", APIServer: addr, CAFile: ca, Token: "t",
		CertFile: filepath.Join(dir, "n.crt"), KeyFile: filepath.Join(dir, "n.key")}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = bootstrap.Ensure(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), "context deadline exceeded") || !strings.Contains(err.Error(), "last error") {
		t.Fatalf("err %v, want the context's end and the last error", err)
	}
	t.Logf("unreachable apiserver: %v", err)
	if names := dirEntries(t, dir); len(names) != 0 {
		t.Errorf("files written: %v", names)
	}
}
