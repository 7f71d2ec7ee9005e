// Package apiservertest starts a real apiserver, built from the workspace,
// for the node-agent's tests: plaintext, or with TLS, authentication and
// the Node and RBAC authorizers, signing node certificates for bootstrap
// tokens.
package apiservertest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/client"
)

// APIServer is a running apiserver: unless Options.Insecure, with TLS,
// authentication and the Node and RBAC authorizers, its CA generated in its
// data directory.
type APIServer struct {
	// Addr is its gRPC address.
	Addr string
	// CAFile is the CA that signs its serving certificate, client
	// certificates and node certificates.
	CAFile string
	// AdminCertFile and AdminKeyFile are a system:masters client certificate.
	AdminCertFile, AdminKeyFile string
	// TokenFile is its --token-auth-file.
	TokenFile string

	insecure bool
	dir      string
	cmd      *exec.Cmd
	logs     *LockedBuffer
	done     chan struct{}
	stopOnce sync.Once
}

// Options configure StartAPIServer.
type Options struct {
	// Insecure serves plaintext with no authentication (--insecure).
	Insecure bool
	// Tokens maps bootstrap tokens to the node each may get a certificate for.
	Tokens map[string]string
	// NodeCertificateValidity is --node-certificate-validity; the
	// apiserver's default when zero.
	NodeCertificateValidity time.Duration
}

// BootstrapTokenLine is the token file line that lets token get a
// certificate for node.
func BootstrapTokenLine(token, node string) string {
	return fmt.Sprintf("%s,system:bootstrap:%s,bootstrap-%s,\"system:bootstrappers\"\n", token, node, node)
}

// StartAPIServer runs an apiserver with an embedded etcd in a temporary
// directory on a free loopback port until the test ends, and returns once
// it answers an authenticated call.
func StartAPIServer(t testing.TB, opts Options) *APIServer {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("apiserver logs:\n%s", s.logs.String())
		}
	})
	return s
}

// Start is StartAPIServer for a server that outlives one test: the caller
// calls Stop, which also removes its directory.
func Start(opts Options) (_ *APIServer, err error) {
	dir, err := os.MkdirTemp("", "apiservertest-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	// Built into the server's own directory, removed with it; after the
	// first build the Go build cache makes this a link.
	bin := filepath.Join(dir, "apiserver")
	if out, err := exec.Command("go", "build", "-o", bin, "bosun.dev/services/apiserver/cmd/apiserver").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the apiserver: %v\n%s", err, out)
	}
	var tokens strings.Builder
	for token, node := range opts.Tokens {
		tokens.WriteString(BootstrapTokenLine(token, node))
	}
	s := &APIServer{TokenFile: filepath.Join(dir, "tokens.csv"), insecure: opts.Insecure, dir: dir, logs: &LockedBuffer{}, done: make(chan struct{})}
	if err := os.WriteFile(s.TokenFile, []byte(tokens.String()), 0o600); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.Addr = l.Addr().String()
	l.Close()
	data := filepath.Join(dir, "data")
	pkiDir := filepath.Join(data, "pki")
	s.CAFile, s.AdminCertFile, s.AdminKeyFile = filepath.Join(pkiDir, "ca.crt"), filepath.Join(pkiDir, "admin.crt"), filepath.Join(pkiDir, "admin.key")
	args := []string{"--data-dir", data, "--listen", s.Addr, "--http-listen", "", "--log-level", "warn"}
	if opts.Insecure {
		args = append(args, "--insecure")
	} else {
		args = append(args, "--token-auth-file", s.TokenFile)
	}
	if opts.NodeCertificateValidity > 0 {
		args = append(args, "--node-certificate-validity", opts.NodeCertificateValidity.String())
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	release, err := StartOnOwnThread(s.cmd)
	if err != nil {
		return nil, err
	}
	go func() { _ = s.cmd.Wait(); release(); close(s.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := s.ping()
		if err == nil {
			return s, nil
		}
		select {
		case <-s.done:
			s.Stop()
			return nil, fmt.Errorf("apiserver exited: %s", s.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("apiserver not ready: %v\n%s", err, s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the apiserver and removes its directory.
func (s *APIServer) Stop() {
	s.stopOnce.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		_ = os.RemoveAll(s.dir)
	})
}

func (s *APIServer) ping() error {
	conn, err := s.Dial(s.AdminCertFile, s.AdminKeyFile)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = client.For[*corev1.Namespace](conn).Get(ctx, "", "default")
	return err
}

// Dial connects to the apiserver with a client certificate (in plaintext
// when it is insecure).
func (s *APIServer) Dial(certFile, keyFile string, extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	if s.insecure {
		return client.Dial(client.Config{Server: s.Addr, Insecure: true}, extra...)
	}
	return client.Dial(client.Config{Server: s.Addr, CAFile: s.CAFile, CertFile: certFile, KeyFile: keyFile}, extra...)
}

// StartOnOwnThread starts cmd from an OS thread reserved for it, so that
// its Pdeathsig (the child dies with the thread that started it) fires
// only when release is called or the test process dies: Go ends threads
// that goroutines leave locked, and network-namespace code does exactly
// that, which would otherwise kill the child in the middle of a test.
func StartOnOwnThread(cmd *exec.Cmd) (release func(), err error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		errc <- cmd.Start()
		<-done
	}()
	if err := <-errc; err != nil {
		close(done)
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }, nil
}

// LockedBuffer collects a child process's output while tests read it.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
