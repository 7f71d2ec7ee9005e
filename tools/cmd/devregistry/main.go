// Command devregistry builds the demo app's images and serves them from an
// in-process OCI registry, for `make run` and tests on one machine:
//
//	devregistry [-listen 127.0.0.1:5001] [-root DIR] [-versions v1,v2]
//
// It compiles examples/hello once per version (a static binary with
// main.version stamped), puts each on Bosun's minimal non-root base
// (tools/internal/images), pushes them as 127.0.0.1:5001/bosun/hello:VERSION
// to a registry (go-containerregistry pkg/registry, blobs in memory) that
// listens on -listen over plain HTTP, prints "ready" with the references,
// and serves until SIGINT or SIGTERM. Node-agents pull from it with
// --insecure-registries 127.0.0.1:5001.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"bosun.dev/tools/internal/images"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "devregistry: %v\n", err)
		os.Exit(1)
	}
}

// config is what the flags say.
type config struct {
	listen   string
	root     string
	versions []string
}

func parse(args []string) (config, error) {
	var c config
	var versions string
	fs := flag.NewFlagSet("devregistry", flag.ContinueOnError)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:5001", "address of the registry (plain HTTP)")
	fs.StringVar(&c.root, "root", "", "repository root, the folder with go.work (default: found from the working directory upwards)")
	fs.StringVar(&versions, "versions", "v1,v2", "versions of the hello app to build and push, comma-separated")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if _, _, err := net.SplitHostPort(c.listen); err != nil {
		return c, fmt.Errorf("-listen %q: %w", c.listen, err)
	}
	for _, v := range strings.Split(versions, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if images.Tag(v) != v {
			return c, fmt.Errorf("-versions: %q is not a valid image tag", v)
		}
		c.versions = append(c.versions, v)
	}
	if len(c.versions) == 0 {
		return c, errors.New("-versions: at least one version is needed")
	}
	if c.root == "" {
		root, err := findRoot()
		if err != nil {
			return c, err
		}
		c.root = root
	}
	if _, err := os.Stat(filepath.Join(c.root, "examples", "hello", "main.go")); err != nil {
		return c, fmt.Errorf("-root %s: no examples/hello/main.go there", c.root)
	}
	return c, nil
}

// findRoot walks up from the working directory to the folder with go.work.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work in the working directory or above it: pass -root")
		}
		dir = parent
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", c.listen)
	if err != nil {
		return fmt.Errorf("-listen: %w (is another registry or `make run` using it?)", err)
	}
	srv := &http.Server{
		Handler:           registry.New(registry.Logger(log.New(io.Discard, "", 0))),
		ReadHeaderTimeout: 10 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	defer srv.Close()

	host := l.Addr().String()
	refs, err := BuildAndPush(ctx, c.root, host, c.versions)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "ready: %s\n", strings.Join(refs, " "))
	select {
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	case err := <-served:
		return err
	}
}

// HelloService describes the hello app as an image of Bosun's image builder.
var HelloService = images.Service{
	Name:        "hello",
	Dir:         "examples/hello",
	Package:     ".",
	Description: "Bosun demo app: answers on :5000 (HTTP) and :50051 (gRPC) with its version and host name",
	Ports:       []int{5000, 50051},
}

// BuildAndPush builds one hello image per version and pushes it to the
// registry at host as HOST/bosun/hello:VERSION, returning the references.
func BuildAndPush(ctx context.Context, root, host string, versions []string) ([]string, error) {
	work, err := os.MkdirTemp("", "bosun-hello-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	var refs []string
	for _, v := range versions {
		img, err := HelloImage(ctx, root, v, filepath.Join(work, "hello-"+v))
		if err != nil {
			return refs, err
		}
		ref := host + "/bosun/hello:" + v
		tag, err := name.NewTag(ref, name.Insecure)
		if err != nil {
			return refs, err
		}
		if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
			return refs, fmt.Errorf("pushing %s: %w", ref, err)
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

// HelloImage compiles examples/hello with version stamped into bin and
// returns its image on Bosun's minimal base.
func HelloImage(ctx context.Context, root, version, bin string) (v1.Image, error) {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -X main.version="+version, "-o", bin, HelloService.Package)
	cmd.Dir = filepath.Join(root, HelloService.Dir)
	// examples/hello is a module of its own, built on its own go.sum
	// whether or not the workspace lists it.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GO111MODULE=on", "GOFLAGS=")
	if output, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build examples/hello (%s): %w\n%s", version, err, output)
	}
	opts := images.Options{Root: root, Version: version, Revision: version}
	base, err := images.BaseLayer(opts)
	if err != nil {
		return nil, err
	}
	svc := HelloService
	return images.ServiceImage(opts, svc, base, bin)
}
