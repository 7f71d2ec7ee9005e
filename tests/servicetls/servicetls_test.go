// Package servicetls checks that every Bosun service started with
// --tls-cert-file, --tls-private-key-file and --client-ca-file serves its
// gRPC listener over mutual TLS: callers without a certificate, with one
// from another CA, or with an expired one are refused; the cluster's own
// certificates get through.
package servicetls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"bosun.dev/pkg/pki"
	"bosun.dev/tests/conformance/harness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}

// service is one Bosun service, the user its client certificate names and
// the flags it needs beyond the shared ones.
type service struct {
	name   string
	user   string
	groups []string
	args   func(dir string) []string
}

var services = []service{
	{name: "scheduler", user: "bosun-scheduler"},
	{name: "controller", user: "bosun-controller"},
	{name: "health-checker", user: "bosun-health-checker"},
	{name: "service-proxy", user: "bosun-service-proxy"},
	{name: "node-agent", user: "system:node:tls-node", groups: []string{"system:nodes"}, args: func(dir string) []string {
		// No containerd: the agent registers its node NotReady and
		// still serves its gRPC listener, which is what is checked here.
		return []string{"--node-name", "tls-node", "--node-ip", "127.0.0.1",
			"--containerd-address", filepath.Join(dir, "no-containerd.sock"),
			"--root-dir", filepath.Join(dir, "agent"), "--log-dir", filepath.Join(dir, "agent-logs")}
	}},
}

func TestEveryServiceRequiresClientCertificates(t *testing.T) {
	if testing.Short() {
		t.Skip("starts every service binary")
	}
	c := harness.StartCluster(t)
	if !c.Secure {
		t.Skip("needs the secure cluster (" + harness.EnvInsecure + " is set)")
	}
	// A caller with a certificate of the cluster, one of another CA, and
	// one of the cluster that has expired.
	caFile := filepath.Join(c.PKI, pki.CAFile)
	good := issue(t, c.PKI, pki.Certificate{Name: "caller", CommonName: "caller", Client: true})
	otherCA := t.TempDir()
	stranger := issue(t, otherCA, pki.Certificate{Name: "stranger", CommonName: "caller", Client: true})
	expired := issue(t, c.PKI, pki.Certificate{Name: "expired", CommonName: "caller", Client: true,
		NotBefore: time.Now().Add(-48 * time.Hour), Validity: 24 * time.Hour})

	for _, svc := range services {
		t.Run(svc.name, func(t *testing.T) {
			dir := t.TempDir()
			serving := issue(t, c.PKI, pki.Certificate{Name: svc.name + "-serving", CommonName: svc.name, Hosts: []string{"127.0.0.1"}})
			user := issue(t, c.PKI, pki.Certificate{Name: svc.name + "-user", CommonName: svc.user, Organizations: svc.groups, Client: true})
			listen := harness.FreePort(t)
			args := []string{"--apiserver", c.Addr, "--apiserver-ca-file", caFile,
				"--client-cert-file", user.CertFile, "--client-key-file", user.KeyFile,
				"--listen", listen,
				"--tls-cert-file", serving.CertFile, "--tls-private-key-file", serving.KeyFile, "--client-ca-file", caFile}
			if svc.args != nil {
				args = append(svc.args(dir), args...)
			}
			bin := harness.Build(t, "bosun.dev/services/"+svc.name+"/cmd/"+svc.name)

			// Without its listener's certificates, and without --insecure,
			// the service refuses to start and says what is missing.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, args[:len(args)-6]...).CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "--tls-cert-file, --tls-private-key-file and --client-ca-file are required") {
				t.Errorf("%s without TLS flags: %v\n%s\nwant exit code 2 naming the flags", svc.name, err, out)
			}

			run(t, bin, args)

			// The cluster's certificate gets an answer (any health status:
			// what matters is the handshake).
			harness.Eventually(t, 60*time.Second, svc.name+" answering over mutual TLS", func() error {
				return check(listen, caFile, &good)
			})
			for _, bad := range []struct {
				what string
				cert *pki.Issued
			}{
				{"no client certificate", nil},
				{"a certificate of another CA", &stranger},
				{"an expired certificate", &expired},
			} {
				if err := check(listen, caFile, bad.cert); err == nil {
					t.Errorf("%s answered a caller with %s", svc.name, bad.what)
				}
			}
		})
	}
}

func issue(t *testing.T, dir string, c pki.Certificate) pki.Issued {
	t.Helper()
	issued, err := pki.Issue(dir, c)
	if err != nil {
		t.Fatalf("issuing %s: %v", c.Name, err)
	}
	return issued
}

// check calls gRPC health at addr over TLS trusting caFile, presenting cert
// when not nil.
func check(addr, caFile string, cert *pki.Issued) error {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	tc := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if cert != nil {
		kp, err := tls.LoadX509KeyPair(cert.CertFile, cert.KeyFile)
		if err != nil {
			return err
		}
		tc.Certificates = []tls.Certificate{kp}
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

// run starts bin with args and stops it (SIGTERM, then SIGKILL) when the
// test ends, logging its output when the test failed.
func run(t *testing.T, bin string, args []string) {
	t.Helper()
	out, err := os.CreateTemp(t.TempDir(), "output")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(out.Name())
			t.Logf("%s output:\n%s", filepath.Base(bin), b)
		}
		out.Close()
	})
}
