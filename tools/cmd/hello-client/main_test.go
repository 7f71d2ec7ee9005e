package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestParseRefusesBadArguments(t *testing.T) {
	t.Setenv("GRPC_XDS_BOOTSTRAP", "")
	t.Setenv("GRPC_XDS_BOOTSTRAP_CONFIG", "")
	tests := []struct {
		args []string
		want string
	}{
		{nil, "one target is needed"},
		{[]string{"a", "b"}, "one target is needed"},
		{[]string{"-n", "0", "dns:///x:1"}, "-n 0: at least one call"},
		{[]string{"-timeout", "0s", "dns:///x:1"}, "-timeout 0s: must be positive"},
		{[]string{"-interval", "-1s", "dns:///x:1"}, "-interval -1s: must not be negative"},
		{[]string{"xds:///hello.default:50051"}, "set GRPC_XDS_BOOTSTRAP"},
		{[]string{"-calls", "1", "dns:///x:1"}, "flag provided but not defined: -calls"},
	}
	for _, tt := range tests {
		_, err := parse(tt.args)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("hello-client %v: %v, want an error with %q", tt.args, err, tt.want)
		}
	}
	t.Setenv("GRPC_XDS_BOOTSTRAP", "/some/bootstrap.json")
	c, err := parse([]string{"xds:///hello.default:50051"})
	if err != nil || c.calls != 6 || c.interval != 100*time.Millisecond || c.timeout != 30*time.Second || c.target != "xds:///hello.default:50051" {
		t.Errorf("defaults: %+v, %v", c, err)
	}
}

func TestPod(t *testing.T) {
	for reply, want := range map[string]string{
		"hello from hello-5ff6456bcd-w6lbf (version v1)": "hello-5ff6456bcd-w6lbf",
		"hello from x":   "hello from x",
		"something else": "something else",
	} {
		if got := pod(reply); got != want {
			t.Errorf("pod(%q) = %q, want %q", reply, got, want)
		}
	}
}

// TestCallsTheDemoApp builds examples/hello, runs it on loopback and calls
// its gRPC service: every reply names the app's host and version.
func TestCallsTheDemoApp(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: builds examples/hello")
	}
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "hello")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=vtest", "-o", bin, ".")
	build.Dir = filepath.Join(root, "examples", "hello")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build examples/hello: %v\n%s", err, out)
	}
	httpAddr, grpcAddr := freeAddr(t), freeAddr(t)
	app := exec.Command(bin, "-listen", httpAddr, "-grpc-listen", grpcAddr)
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Process.Kill(); _ = app.Wait() })

	var out bytes.Buffer
	if err := run([]string{"-n", "3", "-timeout", "20s", "passthrough:///" + grpcAddr}, &out); err != nil {
		t.Fatalf("hello-client: %v\n%s", err, out.String())
	}
	host, _ := os.Hostname()
	want := regexp.QuoteMeta("hello from "+host+" (version vtest)") + "\n"
	if !regexp.MustCompile("^(" + want + "){3}3 replies from 1 pods\n$").MatchString(out.String()) {
		t.Errorf("hello-client printed:\n%s", out.String())
	}
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
