package images

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Labels on every image.
const (
	LabelTitle       = "org.opencontainers.image.title"
	LabelDescription = "org.opencontainers.image.description"
	LabelVersion     = "org.opencontainers.image.version"
	LabelRevision    = "org.opencontainers.image.revision"
	LabelCreated     = "org.opencontainers.image.created"
)

// entry is one file or folder of a layer.
type entry struct {
	name     string // absolute path in the image
	mode     int64
	uid, gid int
	dir      bool
	link     string // target of a symbolic link
	data     []byte
}

// BaseLayer is the minimal root file system every image shares: users,
// name service switch, CA certificates and /tmp. It fails when the CA
// bundle cannot be read.
func BaseLayer(opts Options) (v1.Layer, error) {
	opts.fill()
	certs, err := os.ReadFile(opts.CACertificates)
	if err != nil {
		return nil, fmt.Errorf("CA certificates for the base layer: %w", err)
	}
	uid := strconv.Itoa(NonRootUID)
	passwd := "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nonroot:x:" + uid + ":" + uid + ":nonroot:/home/nonroot:/sbin/nologin\n"
	group := "root:x:0:\nnonroot:x:" + uid + ":\n"
	return layer(opts.Created, []entry{
		{name: "/etc", mode: 0o755, dir: true},
		{name: "/etc/group", mode: 0o644, data: []byte(group)},
		{name: "/etc/nsswitch.conf", mode: 0o644, data: []byte("hosts: files dns\n")},
		{name: "/etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "/etc/ssl", mode: 0o755, dir: true},
		{name: "/etc/ssl/certs", mode: 0o755, dir: true},
		{name: "/etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: certs},
		{name: "/home", mode: 0o755, dir: true},
		{name: "/home/nonroot", mode: 0o700, dir: true, uid: NonRootUID, gid: NonRootUID},
		{name: "/root", mode: 0o700, dir: true},
		{name: "/tmp", mode: 0o1777, dir: true},
		{name: "/usr", mode: 0o755, dir: true},
		{name: "/usr/local", mode: 0o755, dir: true},
		{name: "/usr/local/bin", mode: 0o755, dir: true},
	})
}

// ServiceImage puts the binary at binPath on top of base and sets the
// config: platform, user, entrypoint, environment, ports and labels.
func ServiceImage(opts Options, svc Service, base v1.Layer, binPath string) (v1.Image, error) {
	opts.fill()
	bin, err := os.ReadFile(binPath)
	if err != nil {
		return nil, err
	}
	if err := CheckStatic(bytes.NewReader(bin)); err != nil {
		return nil, err
	}
	binLayer, err := layer(opts.Created, []entry{{name: path.Join(BinaryDir, svc.Name), mode: 0o755, data: bin}})
	if err != nil {
		return nil, err
	}
	created := v1.Time{Time: opts.Created}
	adds := []mutate.Addendum{{Layer: base, History: v1.History{Created: created, CreatedBy: "bosun images: base (users, CA certificates, /tmp)"}}}
	if len(svc.HostTools)+len(svc.HostDirs) > 0 {
		tools, err := HostToolsLayer(opts, svc.HostTools, svc.HostDirs)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.Addendum{Layer: tools, History: v1.History{Created: created,
			CreatedBy: "bosun images: host programs " + strings.Join(append(append([]string(nil), svc.HostTools...), svc.HostDirs...), " ")}})
	}
	adds = append(adds, mutate.Addendum{Layer: binLayer, History: v1.History{Created: created, CreatedBy: "bosun images: " + path.Join(BinaryDir, svc.Name)}})
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = opts.OS
	cf.Architecture = opts.Arch
	cf.Created = created
	cf.Author = "Bosun"
	ports := map[string]struct{}{}
	for _, p := range svc.Ports {
		ports[strconv.Itoa(p)+"/tcp"] = struct{}{}
	}
	cf.Config = v1.Config{
		User:         strconv.Itoa(NonRootUID) + ":" + strconv.Itoa(NonRootUID),
		Entrypoint:   []string{path.Join(BinaryDir, svc.Name)},
		Env:          []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
		WorkingDir:   "/",
		ExposedPorts: ports,
		Labels: map[string]string{
			LabelTitle:       svc.Name,
			LabelDescription: svc.Description,
			LabelVersion:     opts.Version,
			LabelRevision:    opts.Revision,
			LabelCreated:     opts.Created.Format(time.RFC3339),
		},
	}
	if len(ports) == 0 {
		cf.Config.ExposedPorts = nil
	}
	return mutate.ConfigFile(img, cf)
}

// layer makes a gzip-compressed OCI layer of entries, in the order given,
// every file dated t.
func layer(t time.Time, entries []entry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{
			Name: e.name[1:], Mode: e.mode, Uid: e.uid, Gid: e.gid,
			ModTime: t, Format: tar.FormatPAX,
		}
		if e.uid == NonRootUID {
			hdr.Uname, hdr.Gname = "nonroot", "nonroot"
		} else {
			hdr.Uname, hdr.Gname = "root", "root"
		}
		switch {
		case e.link != "":
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.link
		case e.dir:
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		default:
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
