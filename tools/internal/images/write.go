package images

import (
	"archive/tar"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations on the image's entry in the layout's index.json: the OCI tag
// and the full name containerd gives an imported image.
const (
	AnnotationRefName       = "org.opencontainers.image.ref.name"
	AnnotationContainerdRef = "io.containerd.image.name"
)

// write stores img as the format asks and returns the path written. An
// existing layout or archive of the same name is replaced.
func write(opts Options, name, ref string, img v1.Image) (string, error) {
	dir := filepath.Join(opts.OutDir, name)
	if opts.Format == FormatArchive {
		tmp, err := os.MkdirTemp(opts.OutDir, "."+name+"-layout-")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(tmp)
		if err := WriteLayout(tmp, ref, img); err != nil {
			return "", err
		}
		archive := dir + ".tar"
		if err := tarDir(tmp, archive, opts); err != nil {
			return "", err
		}
		return archive, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	return dir, WriteLayout(dir, ref, img)
}

// WriteLayout writes img into a new OCI image layout at dir, its index entry
// annotated with ref's tag and full name.
func WriteLayout(dir, ref string, img v1.Image) error {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	p, err := layout.Write(dir, idx)
	if err != nil {
		return err
	}
	tag := ref
	if i := lastColon(ref); i >= 0 {
		tag = ref[i+1:]
	}
	return p.AppendImage(img, layout.WithAnnotations(map[string]string{
		AnnotationRefName:       tag,
		AnnotationContainerdRef: ref,
	}))
}

// lastColon is the index of the tag separator in ref, or -1 without a tag.
func lastColon(ref string) int {
	for i := len(ref) - 1; i >= 0; i-- {
		switch ref[i] {
		case ':':
			return i
		case '/':
			return -1
		}
	}
	return -1
}

// tarDir writes the files under dir into a tar at out, in lexical order,
// dated opts.Created.
func tarDir(dir, out string, opts Options) (err error) {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), ModTime: opts.Created, Format: tar.FormatPAX, Mode: 0o644}
		if d.IsDir() {
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, hdr.Name+"/", 0o755
			return tw.WriteHeader(hdr)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, info.Size()
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
