// Package images builds Bosun's container images without a container
// runtime or a registry: one OCI image per service, made with
// go-containerregistry from a statically linked binary on a minimal base that
// is itself built here (no base image is pulled).
//
// Every image has two layers:
//
//	base     /etc/passwd and /etc/group (root and nonroot, uid/gid 65532),
//	         /etc/nsswitch.conf, /etc/ssl/certs/ca-certificates.crt (copied
//	         from the build host), /tmp (1777) and /home/nonroot
//	service  /usr/local/bin/<service>, built with CGO_ENABLED=0 and the
//	         version and revision stamped into bosun.dev/pkg/version
//
// and, between them for the node-agent only, the build host's iptables with
// its libraries and extensions, which the node-agent's CNI plugins run;
// then a config that runs the binary as user 65532:65532 with the labels
// org.opencontainers.image.{title,description,version,revision,created}.
// Builds are reproducible: file times and the image's creation time come from
// Options.Created, so the same sources and options give the same digests.
//
// Images are written as OCI image layouts (a directory per service) or as
// tarballs of such layouts, which `ctr images import` loads keeping their
// digests.
package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Service is one binary to put in an image.
type Service struct {
	// Name is the binary's and the image's name, e.g. "apiserver".
	Name string
	// Dir is the Go module that holds the command, relative to Options.Root.
	Dir string
	// Package is the command's package, relative to Dir, e.g. "./cmd/apiserver".
	Package string
	// Description becomes the org.opencontainers.image.description label.
	Description string
	// Ports are the ports the service listens on by default, exposed in the
	// image config ("6443/tcp").
	Ports []int
	// HostTools and HostDirs are programs and folders of the build host the
	// service runs, copied into a layer of their own with the libraries
	// they need (see HostToolsLayer).
	HostTools, HostDirs []string
}

// Services are Bosun's six services, in the order the README lists them.
func Services() []Service {
	svc := func(name, desc string, ports ...int) Service {
		return Service{Name: name, Dir: "services/" + name, Package: "./cmd/" + name, Description: desc, Ports: ports}
	}
	return []Service{
		svc("apiserver", "Bosun apiserver: the only reader and writer of cluster state in etcd", 6443, 6480),
		svc("scheduler", "Bosun scheduler: binds pending pods to nodes", 10251),
		svc("controller", "Bosun controller manager: workload controllers, endpoints, garbage collection", 10252),
		svc("health-checker", "Bosun health-checker: node liveness, conditions, taints and eviction", 10253),
		svc("service-proxy", "Bosun service-proxy: xDS control plane for Envoy and proxyless gRPC", 18000),
		nodeAgent,
	}
}

// The node-agent's CNI plugins run iptables (bridge masquerading, portmap)
// inside its container, so its image carries the host's iptables, with the
// extensions iptables loads at run time.
var nodeAgent = Service{
	Name: "node-agent", Dir: "services/node-agent", Package: "./cmd/node-agent",
	Description: "Bosun node-agent: runs the pods bound to its node on containerd", Ports: []int{10250},
	HostTools: []string{
		"/usr/sbin/iptables", "/usr/sbin/iptables-save", "/usr/sbin/iptables-restore",
		"/usr/sbin/ip6tables", "/usr/sbin/ip6tables-save", "/usr/sbin/ip6tables-restore",
	},
	HostDirs: []string{"/usr/lib/" + multiarch[runtime.GOARCH] + "/xtables"},
}

// multiarch is Debian's library folder name per Go architecture.
var multiarch = map[string]string{
	"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu", "386": "i386-linux-gnu",
	"arm": "arm-linux-gnueabihf", "ppc64le": "powerpc64le-linux-gnu", "s390x": "s390x-linux-gnu",
	"riscv64": "riscv64-linux-gnu",
}

// Select returns the services named in names (all of them when names is
// empty), or an error naming the first unknown one.
func Select(names []string) ([]Service, error) {
	all := Services()
	if len(names) == 0 {
		return all, nil
	}
	var out []Service
	for _, n := range names {
		found := false
		for _, s := range all {
			if s.Name == n {
				out = append(out, s)
				found = true
				break
			}
		}
		if !found {
			known := make([]string, len(all))
			for i, s := range all {
				known[i] = s.Name
			}
			return nil, fmt.Errorf("unknown service %q (known: %s)", n, strings.Join(known, ", "))
		}
	}
	return out, nil
}

// Format is how an image is written.
type Format string

const (
	// FormatLayout writes an OCI image layout directory OutDir/<service>.
	FormatLayout Format = "oci"
	// FormatArchive writes a tarball of an OCI image layout, OutDir/<service>.tar.
	FormatArchive Format = "oci-archive"
)

// ParseFormat accepts "oci" and "oci-archive".
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatLayout, FormatArchive:
		return f, nil
	}
	return "", fmt.Errorf("format %q: want %q or %q", s, FormatLayout, FormatArchive)
}

// Options configure Build.
type Options struct {
	// Root is the repository root (the folder with go.work).
	Root string
	// OutDir receives the images.
	OutDir string
	// Format is FormatLayout (default) or FormatArchive.
	Format Format
	// Repository prefixes image names: "<Repository>/<service>:<tag>";
	// default "bosun".
	Repository string
	// Version is stamped into the binaries, the version label and the tag
	// (with characters a tag cannot hold replaced by "-"); default "dev".
	Version string
	// Revision is the source revision, stamped and labelled; default "unknown".
	Revision string
	// Created dates the image and every file in it; zero means the Unix epoch,
	// which keeps builds reproducible.
	Created time.Time
	// OS and Arch select the platform; default linux and the host's arch.
	OS, Arch string
	// CACertificates is the CA bundle copied into the base layer; default
	// /etc/ssl/certs/ca-certificates.crt.
	CACertificates string
	// Go is the go command; default "go" from PATH.
	Go string
	// Log receives one line per step; nil discards them.
	Log io.Writer
}

// DefaultCACertificates is where Debian and most distributions keep the
// system's CA bundle.
const DefaultCACertificates = "/etc/ssl/certs/ca-certificates.crt"

// NonRootUID is the user and group the images run as.
const NonRootUID = 65532

// BinaryDir is where a service's binary sits in its image.
const BinaryDir = "/usr/local/bin"

// validate checks what Build needs beyond the defaults.
func (o *Options) validate() error {
	if o.Root == "" {
		return errors.New("images: Root (the repository root) is required")
	}
	if o.OutDir == "" {
		return errors.New("images: OutDir is required")
	}
	if _, err := ParseFormat(string(o.Format)); err != nil {
		return fmt.Errorf("images: %w", err)
	}
	for name, v := range map[string]string{"Version": o.Version, "Revision": o.Revision} {
		if strings.ContainsAny(v, " \t\n'\"\\") {
			return fmt.Errorf("images: %s %q: spaces, quotes and backslashes cannot be stamped into a binary", name, v)
		}
	}
	return nil
}

// fill sets the default of every option left empty.
func (o *Options) fill() {
	if o.Format == "" {
		o.Format = FormatLayout
	}
	if o.Repository == "" {
		o.Repository = "bosun"
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Revision == "" {
		o.Revision = "unknown"
	}
	if o.Created.IsZero() {
		o.Created = time.Unix(0, 0)
	}
	o.Created = o.Created.UTC()
	if o.OS == "" {
		o.OS = "linux"
	}
	if o.Arch == "" {
		o.Arch = runtime.GOARCH
	}
	if o.CACertificates == "" {
		o.CACertificates = DefaultCACertificates
	}
	if o.Go == "" {
		o.Go = "go"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Result describes one written image.
type Result struct {
	Service string
	// Reference is the image's name and tag, e.g. "bosun/apiserver:v0.3.0".
	Reference string
	// Path is the layout directory or archive written.
	Path string
	// Digest is the image manifest's digest.
	Digest v1.Hash
}

var tagInvalid = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// Tag turns a version into an image tag: characters a tag cannot hold
// become "-", and it is cut to 128 characters.
func Tag(version string) string {
	t := tagInvalid.ReplaceAllString(version, "-")
	if t == "" || t[0] == '.' || t[0] == '-' {
		t = "v" + t
	}
	if len(t) > 128 {
		t = t[:128]
	}
	return t
}

// Build compiles each service and writes its image under opts.OutDir. It
// stops at the first failure.
func Build(ctx context.Context, opts Options, services []Service) ([]Result, error) {
	opts.fill()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	base, err := BaseLayer(opts)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "bosun-images-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	var results []Result
	for _, svc := range services {
		bin := filepath.Join(work, svc.Name)
		fmt.Fprintf(opts.Log, "go build %s (%s/%s, version %s, revision %s)\n", svc.Name, opts.OS, opts.Arch, opts.Version, opts.Revision)
		if err := compile(ctx, opts, svc, bin); err != nil {
			return results, err
		}
		img, err := ServiceImage(opts, svc, base, bin)
		if err != nil {
			return results, fmt.Errorf("image %s: %w", svc.Name, err)
		}
		ref := opts.Repository + "/" + svc.Name + ":" + Tag(opts.Version)
		path, err := write(opts, svc.Name, ref, img)
		if err != nil {
			return results, fmt.Errorf("image %s: %w", svc.Name, err)
		}
		d, err := img.Digest()
		if err != nil {
			return results, err
		}
		fmt.Fprintf(opts.Log, "wrote %s %s -> %s\n", ref, d, path)
		results = append(results, Result{Service: svc.Name, Reference: ref, Path: path, Digest: d})
	}
	return results, nil
}

// LDFlags are the linker flags that stamp version and revision and strip
// the symbol table.
func LDFlags(version, revision string) string {
	return fmt.Sprintf("-s -w -X bosun.dev/pkg/version.Version=%s -X bosun.dev/pkg/version.Revision=%s", version, revision)
}

// compile builds svc into out as a static binary for the target platform
// and refuses a result that is not static.
func compile(ctx context.Context, opts Options, svc Service, out string) error {
	cmd := exec.CommandContext(ctx, opts.Go, "build", "-trimpath", "-buildvcs=false",
		"-ldflags", LDFlags(opts.Version, opts.Revision), "-o", out, svc.Package)
	cmd.Dir = filepath.Join(opts.Root, svc.Dir)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+opts.OS, "GOARCH="+opts.Arch,
		"GOWORK="+filepath.Join(opts.Root, "go.work"))
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s in %s: %w\n%s", svc.Package, svc.Dir, err, output)
	}
	f, err := os.Open(out)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := CheckStatic(f); err != nil {
		return fmt.Errorf("%s: %w", svc.Name, err)
	}
	return nil
}
