package images_test

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"bosun.dev/tools/internal/images"
)

// rootfs unpacks every layer of img into dir: folders, files and symbolic
// links, later layers over earlier ones.
func rootfs(t *testing.T, img v1.Image, dir string) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
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
			p := filepath.Join(dir, filepath.FromSlash(hdr.Name))
			if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
				t.Fatalf("layer entry %q escapes the root", hdr.Name)
			}
			switch hdr.Typeflag {
			case tar.TypeDir:
				if err := os.MkdirAll(p, os.FileMode(hdr.Mode).Perm()|0o700); err != nil {
					t.Fatal(err)
				}
			case tar.TypeSymlink:
				_ = os.Remove(p)
				if err := os.Symlink(hdr.Linkname, p); err != nil {
					t.Fatal(err)
				}
			case tar.TypeReg:
				data, err := io.ReadAll(tr)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, data, os.FileMode(hdr.Mode).Perm()); err != nil {
					t.Fatal(err)
				}
			default:
				t.Fatalf("layer entry %q of type %c", hdr.Name, hdr.Typeflag)
			}
		}
		rc.Close()
	}
}

// The node-agent's image carries the host's iptables: in the image's root
// file system alone, in a network namespace of its own, iptables lists the
// nat table and adds a MASQUERADE rule, which needs its extension library.
func TestHostToolsRunInTheImage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chroot and a network namespace need root")
	}
	var nodeAgent images.Service
	for _, s := range images.Services() {
		if s.Name == "node-agent" {
			nodeAgent = s
		}
	}
	if _, err := os.Stat(nodeAgent.HostTools[0]); err != nil {
		t.Skipf("no %s on this machine (apt-get install iptables)", nodeAgent.HostTools[0])
	}
	svc := hello
	svc.HostTools, svc.HostDirs = nodeAgent.HostTools, nodeAgent.HostDirs
	opts := options(t, images.FormatLayout)
	res, err := images.Build(context.Background(), opts, []images.Service{svc})
	if err != nil {
		t.Fatal(err)
	}
	img, _ := openLayout(t, res[0].Path)
	if layers, _ := img.Layers(); len(layers) != 3 {
		t.Errorf("%d layers, want base, host programs and binary", len(layers))
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(cf.Config.Env, " "), "/usr/sbin") {
		t.Errorf("PATH in %v does not hold /usr/sbin", cf.Config.Env)
	}
	if len(cf.History) != 3 || !strings.Contains(cf.History[1].CreatedBy, "/usr/sbin/iptables") {
		t.Errorf("history %+v", cf.History)
	}

	root := t.TempDir()
	rootfs(t, img, root)
	// Both commands run in one fresh network namespace, so the rule
	// touches nothing outside it; the shell is the host's, the programs are
	// the image's.
	run := func(script string) string {
		t.Helper()
		cmd := exec.Command("unshare", "--net", "/bin/sh", "-c", script)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "ROOT=" + root}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
		return string(out)
	}
	if out := run(`chroot "$ROOT" iptables --version`); !strings.HasPrefix(out, "iptables v") {
		t.Errorf("iptables --version printed %q", out)
	}
	out := run(`chroot "$ROOT" iptables -t nat -A POSTROUTING -s 10.244.0.0/16 -j MASQUERADE && chroot "$ROOT" iptables-save -t nat`)
	if !strings.Contains(out, "-A POSTROUTING -s 10.244.0.0/16 -j MASQUERADE") {
		t.Errorf("the rule was not added:\n%s", out)
	}
}
