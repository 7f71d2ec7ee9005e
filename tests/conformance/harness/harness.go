// Package harness runs one implementation of a replaceable Bosun service
// against a real apiserver, for the conformance suites in
// tests/conformance/<service>.
//
// The implementation is a binary, started the way an operator starts it:
// with the flags every Bosun service shares (--apiserver,
// --apiserver-ca-file, --client-cert-file, --client-key-file, --listen) plus
// the implementation's own arguments. The apiserver runs in the test
// process on embedded etcd with authentication and Node,RBAC authorization
// on, and the implementation gets a client certificate for the user its
// built-in ClusterRole is bound to (bosun-scheduler, bosun-health-checker,
// ...), so a suite also proves the implementation needs no more rights than
// that role grants. With BOSUN_CONFORMANCE_INSECURE=1 the apiserver serves
// plaintext without authentication and the implementation gets --insecure
// instead.
//
// The suite reads and writes the cluster through the API only, as an
// administrator.
package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/pki"
	"bosun.dev/pkg/server"
	"bosun.dev/services/apiserver/apiserver"
	"bosun.dev/tests/internal/testproc"
)

// EnvInsecure, set to 1 or true, runs the apiserver in plaintext without
// authentication or authorization.
const EnvInsecure = "BOSUN_CONFORMANCE_INSECURE"

// Cluster is a running apiserver and an administrator's connection to it.
type Cluster struct {
	// Addr is the apiserver's gRPC address.
	Addr string
	// Admin is a connection with every right (group system:masters).
	Admin *grpc.ClientConn
	// PKI is the directory of the cluster CA (ca.crt) and issued certificates.
	PKI string
	// Secure is false with BOSUN_CONFORMANCE_INSECURE.
	Secure bool
}

// StartCluster starts an apiserver on embedded etcd in a temporary
// directory; it stops when the test ends.
func StartCluster(t *testing.T) *Cluster {
	t.Helper()
	dir := t.TempDir()
	c := &Cluster{PKI: filepath.Join(dir, "pki"), Secure: !envBool(EnvInsecure)}
	cfg := apiserver.Config{
		Listen: "127.0.0.1:0", DataDir: dir, CompactionInterval: -1,
		BookmarkInterval: 500 * time.Millisecond, Insecure: !c.Secure,
	}
	if c.Secure {
		cfg.Authenticate = true
		cfg.AuthorizationModes = []string{apiserver.AuthorizationNode, apiserver.AuthorizationRBAC}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := apiserver.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("starting the apiserver: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	c.Addr = s.Addr()
	admin := client.Config{Server: c.Addr, Insecure: !c.Secure}
	if c.Secure {
		admin.CAFile = filepath.Join(c.PKI, pki.CAFile)
		admin.CertFile, admin.KeyFile = filepath.Join(c.PKI, "admin.crt"), filepath.Join(c.PKI, "admin.key")
	}
	if c.Admin, err = client.Dial(admin); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Admin.Close() })
	Eventually(t, 30*time.Second, "apiserver serving", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := client.For[*corev1.Namespace](c.Admin).Get(ctx, "", "default")
		return err
	})
	return c
}

// credentials returns the flags that connect a service as user and make
// its own listener serve mutual TLS with the same certificate (serving on
// loopback), as `bosun certs init` issues them.
func (c *Cluster) credentials(t *testing.T, user string) []string {
	t.Helper()
	args := []string{"--apiserver", c.Addr}
	if !c.Secure {
		return append(args, "--insecure")
	}
	issued, err := pki.Issue(c.PKI, pki.Certificate{Name: user, CommonName: user, Client: true, Hosts: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		t.Fatalf("issuing a certificate for %s: %v", user, err)
	}
	ca := filepath.Join(c.PKI, pki.CAFile)
	return append(args, "--apiserver-ca-file", ca,
		"--client-cert-file", issued.CertFile, "--client-key-file", issued.KeyFile,
		"--tls-cert-file", issued.CertFile, "--tls-private-key-file", issued.KeyFile, "--client-ca-file", ca)
}

// NodeServerOptions are the server options of a node-agent's listener on
// loopback for node: mutual TLS with a certificate of the cluster CA that
// serves under the node's name, as `bosun certs init` and the apiserver
// issue them, requiring client certificates of that CA; none when the
// cluster is insecure.
func (c *Cluster) NodeServerOptions(t *testing.T, node string) []grpc.ServerOption {
	t.Helper()
	if !c.Secure {
		return nil
	}
	issued, err := pki.Issue(c.PKI, pki.Certificate{Name: "node-" + node, CommonName: pki.NodeUserPrefix + node,
		Organizations: []string{pki.NodesGroup}, Client: true, Hosts: []string{node}})
	if err != nil {
		t.Fatalf("issuing node %s's certificate: %v", node, err)
	}
	tc, err := server.TLSFlags{CertFile: issued.CertFile, KeyFile: issued.KeyFile, ClientCAFile: filepath.Join(c.PKI, pki.CAFile)}.Config()
	if err != nil {
		t.Fatal(err)
	}
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(tc))}
}

// AdminFiles are the cluster CA and the admin's client certificate and
// key, for clients that take files (a proxyless gRPC client's bootstrap).
func (c *Cluster) AdminFiles() (ca, cert, key string) {
	return filepath.Join(c.PKI, pki.CAFile), filepath.Join(c.PKI, "admin.crt"), filepath.Join(c.PKI, "admin.key")
}

// DialService connects to a process the cluster started (its --listen
// address) the way Bosun's components do: mutual TLS with the admin
// certificate, or plaintext when the cluster is insecure.
func (c *Cluster) DialService(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	creds := insecure.NewCredentials()
	if c.Secure {
		tc, err := pki.ReloadingClientConfig(c.AdminFiles())
		if err != nil {
			t.Fatal(err)
		}
		creds = credentials.NewTLS(tc)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Implementation is the binary under test and its own arguments.
type Implementation struct {
	// Name describes it in test output.
	Name string
	// Binary is the executable's path.
	Binary string
	// Args are passed after the connection flags the harness adds.
	Args []string
}

// FromEnv returns the implementation named by the environment variable
// envBinary (a path), with the arguments in envBinary+"_ARGS" (split on
// spaces). Without envBinary it builds defaultPackage (an import path) with
// go build and gives it defaultArgs unless envBinary+"_ARGS" is set.
func FromEnv(t *testing.T, envBinary, defaultPackage string, defaultArgs []string) Implementation {
	t.Helper()
	impl, err := lookup(envBinary, defaultArgs)
	if err != nil {
		t.Fatal(err)
	}
	if impl.Binary == "" {
		impl.Name, impl.Binary = defaultPackage, Build(t, defaultPackage)
	}
	return impl
}

// lookup reads the implementation from the environment; Binary is "" when
// envBinary is unset.
func lookup(envBinary string, defaultArgs []string) (Implementation, error) {
	bin := os.Getenv(envBinary)
	impl := Implementation{Name: bin, Binary: bin, Args: defaultArgs}
	if bin != "" {
		impl.Args = nil
		info, err := os.Stat(bin)
		if err != nil {
			return impl, fmt.Errorf("%s=%s: %w", envBinary, bin, err)
		}
		if info.IsDir() || info.Mode().Perm()&0o111 == 0 {
			return impl, fmt.Errorf("%s=%s: not an executable file", envBinary, bin)
		}
	}
	if s, ok := os.LookupEnv(envBinary + "_ARGS"); ok {
		impl.Args = strings.Fields(s)
	}
	return impl, nil
}

var builds struct {
	sync.Mutex
	dir  string
	bins map[string]string
}

// Build compiles the main package pkg once per test binary and returns the
// executable's path. Call Cleanup from TestMain to remove the builds.
func Build(t *testing.T, pkg string) string {
	t.Helper()
	builds.Lock()
	defer builds.Unlock()
	if bin, ok := builds.bins[pkg]; ok {
		return bin
	}
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "bosun-conformance-bin")
		if err != nil {
			t.Fatal(err)
		}
		builds.dir, builds.bins = dir, map[string]string{}
	}
	out := filepath.Join(builds.dir, fmt.Sprintf("%d-%s", len(builds.bins), filepath.Base(pkg)))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	builds.bins[pkg] = out
	return out
}

// Cleanup removes what Build compiled.
func Cleanup() {
	builds.Lock()
	defer builds.Unlock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
		builds.dir, builds.bins = "", nil
	}
}

// Process is a running implementation.
type Process struct {
	// Listen is the address given as --listen, where it serves gRPC health.
	Listen string
	*testproc.Process
}

// Stop ends the process with SIGTERM (SIGKILL after 10 s) and waits for it.
func (p *Process) Stop() { p.Process.Stop(10 * time.Second) }

// Start runs impl connected to the cluster as user, with --listen on a free
// loopback port, and waits until it reports SERVING on gRPC health there.
// When the test ends it is stopped with SIGTERM (SIGKILL after 10 s); its
// output is logged when the test failed, and the test fails when the
// process exited on its own before that.
func (c *Cluster) Start(t *testing.T, impl Implementation, user string) *Process {
	t.Helper()
	p := &Process{Listen: FreePort(t)}
	args := append(c.credentials(t, user), "--listen", p.Listen)
	args = append(args, impl.Args...)
	var err error
	if p.Process, err = testproc.Start(impl.Name, exec.Command(impl.Binary, args...)); err != nil {
		t.Fatalf("starting %s: %v", impl.Name, err)
	}
	t.Cleanup(func() {
		if p.ExitedOnItsOwn() {
			t.Errorf("%s exited during the test: %v", impl.Name, p.Err())
		}
		p.Stop()
		if t.Failed() {
			t.Logf("%s %s\noutput:\n%s", impl.Binary, strings.Join(args, " "), p.Tail(64<<10))
		}
	})
	WaitServing(t, c.DialService(t, p.Listen), impl.Name+" serving gRPC health on --listen "+p.Listen, func() {
		if p.Exited() {
			t.Fatalf("%s exited before serving: %v\n%s", impl.Name, p.Err(), p.Tail(64<<10))
		}
	})
	return p
}

// WaitServing waits up to 60 s until gRPC health on conn reports SERVING,
// calling check (which may fail the test, say when the process exited)
// before each try.
func WaitServing(t *testing.T, conn *grpc.ClientConn, what string, check func()) {
	t.Helper()
	hc := healthpb.NewHealthClient(conn)
	Eventually(t, 60*time.Second, what, func() error {
		check()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("status %s", resp.GetStatus())
		}
		return nil
	})
}

// Eventually polls f every 20 ms until it returns nil, failing the test
// with f's last error when timeout passes first.
func Eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %v", what, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func envBool(name string) bool {
	v := strings.ToLower(os.Getenv(name))
	return v == "1" || v == "true" || v == "yes"
}
