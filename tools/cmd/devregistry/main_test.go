package main

import (
	"archive/tar"
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"bosun.dev/tools/internal/images"
)

func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestParseRefusesBadFlags(t *testing.T) {
	r := root(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-root", r, "-listen", "5001"}, `-listen "5001"`},
		{[]string{"-root", r, "-versions", "v1,v 2"}, `-versions: "v 2" is not a valid image tag`},
		{[]string{"-root", r, "-versions", ","}, "-versions: at least one version"},
		{[]string{"-root", t.TempDir()}, "no examples/hello/main.go there"},
		{[]string{"-root", r, "extra"}, `unexpected arguments ["extra"]`},
		{[]string{"-port", "1"}, "flag provided but not defined: -port"},
	}
	for _, tt := range tests {
		_, err := parse(tt.args)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("devregistry %v: %v, want an error with %q", tt.args, err, tt.want)
		}
	}
	c, err := parse([]string{"-root", r})
	if err != nil || c.listen != "127.0.0.1:5001" || strings.Join(c.versions, ",") != "v1,v2" {
		t.Errorf("defaults: %+v, %v", c, err)
	}
}

func TestRunRefusesBusyPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = run(context.Background(), []string{"-root", root(t), "-listen", l.Addr().String()}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-listen") {
		t.Errorf("busy port: %v", err)
	}
}

// TestBuildAndPush pushes v1 and v2 to a registry, pulls them back and
// runs the binary of each image: it answers with its own version.
func TestBuildAndPush(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	refs, err := BuildAndPush(context.Background(), root(t), host, []string{"v1", "v2"})
	if err != nil {
		t.Fatal(err)
	}
	if want := host + "/bosun/hello:v1 " + host + "/bosun/hello:v2"; strings.Join(refs, " ") != want {
		t.Fatalf("references %v, want %s", refs, want)
	}
	for _, v := range []string{"v1", "v2"} {
		ref, err := name.ParseReference(host+"/bosun/hello:"+v, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		img, err := remote.Image(ref)
		if err != nil {
			t.Fatalf("pulling %s: %v", ref, err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(cf.Config.Entrypoint, " "); got != "/usr/local/bin/hello" {
			t.Errorf("%s: entrypoint %q", v, got)
		}
		if cf.Config.User != "65532:65532" || cf.Config.Labels[images.LabelVersion] != v {
			t.Errorf("%s: user %q, version label %q", v, cf.Config.User, cf.Config.Labels[images.LabelVersion])
		}
		for _, p := range []string{"5000/tcp", "50051/tcp"} {
			if _, ok := cf.Config.ExposedPorts[p]; !ok {
				t.Errorf("%s: exposed ports %v, want %s", v, cf.Config.ExposedPorts, p)
			}
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(t.TempDir(), "hello")
		extract(t, layers[len(layers)-1].Uncompressed, "usr/local/bin/hello", bin)
		if got := serveOnce(t, bin); got != "(version "+v+")" {
			t.Errorf("%s image answers %q", v, got)
		}
	}
}

// extract copies the file at path in a layer to dst.
func extract(t *testing.T, open func() (io.ReadCloser, error), path, dst string) {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the layer: %v", path, err)
		}
		if strings.TrimPrefix(h.Name, "/") != path {
			continue
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, tr); err != nil {
			t.Fatal(err)
		}
		f.Close()
		return
	}
}

// serveOnce runs the hello binary on a free loopback port and returns the
// version part of its answer to "/" after checking /healthz.
func serveOnce(t *testing.T, bin string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "-listen", addr, "-grpc-listen", "127.0.0.1:0")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("/healthz: %s", resp.Status)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hello did not answer on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	host, _ := os.Hostname()
	got, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "hello from "+host+" ")
	if !ok {
		t.Fatalf("answer %q does not name the host %s", b, host)
	}
	return got
}
