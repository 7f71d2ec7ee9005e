package images_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"bosun.dev/tools/internal/images"
)

// hello is a small command of this module, built into an image the way a
// service is.
var hello = images.Service{
	Name: "hello", Dir: "tools", Package: "./internal/images/testdata/hello",
	Description: "test command", Ports: []int{8080},
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.work above the test's folder")
		}
		dir = parent
	}
}

func options(t *testing.T, format images.Format) images.Options {
	return images.Options{
		Root: repoRoot(t), OutDir: t.TempDir(), Format: format,
		Version: "v1.2.3+meta", Revision: "0123456789abcdef",
		Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

// file is one regular file or folder read back from an image layer.
type file struct {
	hdr  *tar.Header
	data []byte
}

// files reads every entry of every layer of img, by absolute path.
func files(t *testing.T, img v1.Image) map[string]file {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]file{}
	for _, l := range layers {
		mt, err := l.MediaType()
		if err != nil {
			t.Fatal(err)
		}
		if mt != types.OCILayer {
			t.Errorf("layer media type %s, want %s", mt, types.OCILayer)
		}
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			out["/"+strings.TrimSuffix(hdr.Name, "/")] = file{hdr: hdr, data: data}
		}
		rc.Close()
	}
	return out
}

// openLayout returns the single image of an OCI layout and its index
// annotations.
func openLayout(t *testing.T, dir string) (v1.Image, map[string]string) {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("open layout %s: %v", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("layout holds %d manifests, want 1", len(im.Manifests))
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img, im.Manifests[0].Annotations
}

func TestBuildLayout(t *testing.T) {
	opts := options(t, images.FormatLayout)
	res, err := images.Build(context.Background(), opts, []images.Service{hello})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Path != filepath.Join(opts.OutDir, "hello") || res[0].Reference != "bosun/hello:v1.2.3-meta" {
		t.Fatalf("results %+v", res)
	}
	img, ann := openLayout(t, res[0].Path)
	if ann[images.AnnotationRefName] != "v1.2.3-meta" || ann[images.AnnotationContainerdRef] != "bosun/hello:v1.2.3-meta" {
		t.Errorf("index annotations %v", ann)
	}
	if d, _ := img.Digest(); d != res[0].Digest {
		t.Errorf("digest in layout %s, reported %s", d, res[0].Digest)
	}
	if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %s", mt)
	}

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture == "" {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", cf.Config.User)
	}
	if got := strings.Join(cf.Config.Entrypoint, " "); got != "/usr/local/bin/hello" {
		t.Errorf("entrypoint %q", got)
	}
	if _, ok := cf.Config.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("exposed ports %v", cf.Config.ExposedPorts)
	}
	wantLabels := map[string]string{
		images.LabelTitle: "hello", images.LabelDescription: "test command",
		images.LabelVersion: "v1.2.3+meta", images.LabelRevision: "0123456789abcdef",
		images.LabelCreated: "2026-01-02T03:04:05Z",
	}
	for k, v := range wantLabels {
		if cf.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cf.Config.Labels[k], v)
		}
	}
	if !cf.Created.Time.Equal(opts.Created) {
		t.Errorf("created %s", cf.Created.Time)
	}

	fs := files(t, img)
	bin, ok := fs["/usr/local/bin/hello"]
	if !ok {
		t.Fatalf("no /usr/local/bin/hello in the image; files: %v", keys(fs))
	}
	if bin.hdr.Mode&0o777 != 0o755 || bin.hdr.Uid != 0 {
		t.Errorf("binary mode %o uid %d", bin.hdr.Mode, bin.hdr.Uid)
	}
	if err := images.CheckStatic(bytes.NewReader(bin.data)); err != nil {
		t.Errorf("binary in the image: %v", err)
	}
	if !strings.Contains(string(fs["/etc/passwd"].data), "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no nonroot user 65532:\n%s", fs["/etc/passwd"].data)
	}
	if !strings.Contains(string(fs["/etc/group"].data), "nonroot:x:65532:") {
		t.Errorf("/etc/group has no nonroot group:\n%s", fs["/etc/group"].data)
	}
	host, err := os.ReadFile(images.DefaultCACertificates)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fs["/etc/ssl/certs/ca-certificates.crt"].data, host) {
		t.Error("the image's CA bundle differs from the host's")
	}
	if tmp := fs["/tmp"]; tmp.hdr == nil || tmp.hdr.Typeflag != tar.TypeDir || tmp.hdr.Mode != 0o1777 {
		t.Errorf("/tmp: %+v", tmp.hdr)
	}
	if home := fs["/home/nonroot"]; home.hdr == nil || home.hdr.Uid != images.NonRootUID {
		t.Errorf("/home/nonroot: %+v", home.hdr)
	}
	for name, f := range fs {
		if !f.hdr.ModTime.Equal(opts.Created) {
			t.Errorf("%s dated %s, want %s", name, f.hdr.ModTime, opts.Created)
		}
	}

	// The binary runs on its own, with the version stamped in.
	exe := filepath.Join(t.TempDir(), "hello")
	if err := os.WriteFile(exe, bin.data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(exe).CombinedOutput()
	if err != nil {
		t.Fatalf("running the image's binary: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "hello v1.2.3+meta 0123456789abcdef" {
		t.Errorf("binary printed %q", got)
	}
}

func keys(m map[string]file) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// An archive holds the same image as a layout, and building twice gives the
// same digest.
func TestBuildArchiveReproducible(t *testing.T) {
	var digests []v1.Hash
	for range 2 {
		opts := options(t, images.FormatArchive)
		res, err := images.Build(context.Background(), opts, []images.Service{hello})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Path != filepath.Join(opts.OutDir, "hello.tar") {
			t.Fatalf("archive path %s", res[0].Path)
		}
		dir := t.TempDir()
		untar(t, res[0].Path, dir)
		if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
			t.Fatalf("archive has no oci-layout file: %v", err)
		}
		img, _ := openLayout(t, dir)
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if d != res[0].Digest {
			t.Errorf("archive digest %s, reported %s", d, res[0].Digest)
		}
		entries, err := os.ReadDir(opts.OutDir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 {
			t.Errorf("output folder holds %d entries, want only the archive", len(entries))
		}
		digests = append(digests, d)
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds of the same sources differ: %s and %s", digests[0], digests[1])
	}
}

func untar(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			t.Fatalf("archive entry %q escapes the folder", hdr.Name)
		}
		if hdr.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Rebuilding into the same folder replaces the layout instead of adding a
// second image to it.
func TestBuildReplacesLayout(t *testing.T) {
	opts := options(t, images.FormatLayout)
	for _, version := range []string{"v1", "v2"} {
		opts.Version = version
		if _, err := images.Build(context.Background(), opts, []images.Service{hello}); err != nil {
			t.Fatal(err)
		}
	}
	img, ann := openLayout(t, filepath.Join(opts.OutDir, "hello"))
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.Labels[images.LabelVersion] != "v2" || ann[images.AnnotationRefName] != "v2" {
		t.Errorf("after rebuilding as v2: label %q, tag %q", cf.Config.Labels[images.LabelVersion], ann[images.AnnotationRefName])
	}
}

func TestBuildErrors(t *testing.T) {
	root := repoRoot(t)
	tests := []struct {
		name string
		opts images.Options
		svc  images.Service
		want string
	}{
		{"no root", images.Options{OutDir: t.TempDir()}, hello, "Root"},
		{"no output folder", images.Options{Root: root}, hello, "OutDir"},
		{"bad format", images.Options{Root: root, OutDir: t.TempDir(), Format: "docker"}, hello, `format "docker"`},
		{"version with a space", images.Options{Root: root, OutDir: t.TempDir(), Version: "v1 beta"}, hello, `Version "v1 beta"`},
		{"missing CA bundle", images.Options{Root: root, OutDir: t.TempDir(), CACertificates: "/nonexistent/ca.crt"}, hello, "/nonexistent/ca.crt"},
		{"package that does not build", images.Options{Root: root, OutDir: t.TempDir()},
			images.Service{Name: "nothing", Dir: "tools", Package: "./internal/images/testdata/nothing"}, "go build ./internal/images/testdata/nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := images.Build(context.Background(), tt.opts, []images.Service{tt.svc})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming %q", err, tt.want)
			}
		})
	}
}

func TestCheckStatic(t *testing.T) {
	// Debian's coreutils are linked against libc.
	ls, err := os.Open("/bin/ls")
	if err != nil {
		t.Skip("no /bin/ls")
	}
	defer ls.Close()
	if err := images.CheckStatic(ls); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("/bin/ls: %v, want dynamically linked", err)
	}
	if err := images.CheckStatic(strings.NewReader("#!/bin/sh\necho hi\n")); err == nil || !strings.Contains(err.Error(), "not an ELF binary") {
		t.Errorf("a shell script: %v, want not an ELF binary", err)
	}
}

func TestSelect(t *testing.T) {
	all, err := images.Select(nil)
	if err != nil || len(all) != 6 {
		t.Fatalf("Select(nil) = %d services, %v", len(all), err)
	}
	two, err := images.Select([]string{"node-agent", "apiserver"})
	if err != nil || len(two) != 2 || two[0].Name != "node-agent" || two[1].Dir != "services/apiserver" {
		t.Fatalf("Select(node-agent, apiserver) = %+v, %v", two, err)
	}
	if _, err := images.Select([]string{"kubelet"}); err == nil || !strings.Contains(err.Error(), `unknown service "kubelet"`) {
		t.Errorf("Select(kubelet): %v", err)
	}
}

func TestTag(t *testing.T) {
	for in, want := range map[string]string{
		"v0.3.0":                 "v0.3.0",
		"v0.3.0-2-g1a2b3c-dirty": "v0.3.0-2-g1a2b3c-dirty",
		"1.0+build.5":            "1.0-build.5",
		"-x":                     "v-x",
		strings.Repeat("a", 200): strings.Repeat("a", 128),
	} {
		if got := images.Tag(in); got != want {
			t.Errorf("Tag(%q) = %q, want %q", in, got, want)
		}
	}
}

// A real service's image: its binary reports the stamped version.
func TestServiceImageVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a service")
	}
	svcs, err := images.Select([]string{"controller"})
	if err != nil {
		t.Fatal(err)
	}
	opts := options(t, images.FormatLayout)
	res, err := images.Build(context.Background(), opts, svcs)
	if err != nil {
		t.Fatal(err)
	}
	img, _ := openLayout(t, res[0].Path)
	bin, ok := files(t, img)["/usr/local/bin/controller"]
	if !ok {
		t.Fatal("no /usr/local/bin/controller in the image")
	}
	exe := filepath.Join(t.TempDir(), "controller")
	if err := os.WriteFile(exe, bin.data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(exe, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("controller --version: %v\n%s", err, out)
	}
	if got := string(out); !strings.HasPrefix(got, "controller v1.2.3+meta (revision 0123456789abcdef, go") {
		t.Errorf("controller --version printed %q", got)
	}
}
