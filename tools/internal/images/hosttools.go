package images

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// HostToolsLayer copies programs of the build host into a layer at the
// same paths: each of tools (symbolic links on the way kept as links, so
// that Debian's alternatives still resolve), every file under dirs, and the
// shared libraries and dynamic loader that these ELF files need,
// transitively. It serves programs a service runs that cannot be built
// here, such as iptables for the node-agent's CNI plugins. The host must be
// of the image's platform.
func HostToolsLayer(opts Options, tools, dirs []string) (v1.Layer, error) {
	opts.fill()
	if opts.OS != runtime.GOOS || opts.Arch != runtime.GOARCH {
		return nil, fmt.Errorf("host programs %v come from this %s/%s machine; they cannot go into a %s/%s image", tools, runtime.GOOS, runtime.GOARCH, opts.OS, opts.Arch)
	}
	c := &collector{entries: map[string]entry{}}
	for _, t := range tools {
		if err := c.add(t, 0); err != nil {
			return nil, fmt.Errorf("host program %s: %w", t, err)
		}
	}
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return c.add(p, 0)
		})
		if err != nil {
			return nil, fmt.Errorf("host folder %s: %w", d, err)
		}
	}
	names := make([]string, 0, len(c.entries))
	for n := range c.entries {
		names = append(names, n)
	}
	sort.Strings(names) // parents before children
	entries := make([]entry, len(names))
	for i, n := range names {
		entries[i] = c.entries[n]
	}
	return layer(opts.Created, entries)
}

// collector gathers the entries of a host tools layer by absolute path.
type collector struct {
	entries map[string]entry
}

// maxLinks bounds the symbolic links followed for one path.
const maxLinks = 40

// add copies p: every folder and symbolic link on its way, then the file
// itself and, for an ELF file, its loader and libraries.
func (c *collector) add(p string, depth int) error {
	if depth > maxLinks {
		return fmt.Errorf("%s: too many symbolic links", p)
	}
	if !path.IsAbs(p) {
		return fmt.Errorf("%s: not an absolute path", p)
	}
	parts := strings.Split(strings.Trim(path.Clean(p), "/"), "/")
	cur := ""
	for i, part := range parts {
		cur += "/" + part
		info, err := os.Lstat(cur)
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(cur)
			if err != nil {
				return err
			}
			c.entries[cur] = entry{name: cur, mode: 0o777, link: target}
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(cur), target)
			}
			return c.add(path.Join(append([]string{target}, parts[i+1:]...)...), depth+1)
		case info.IsDir():
			if _, ok := c.entries[cur]; !ok {
				c.entries[cur] = entry{name: cur, mode: int64(info.Mode().Perm()), dir: true}
			}
		case info.Mode().IsRegular():
			if i != len(parts)-1 {
				return fmt.Errorf("%s: not a folder", cur)
			}
			if _, ok := c.entries[cur]; ok {
				return nil
			}
			data, err := os.ReadFile(cur)
			if err != nil {
				return err
			}
			c.entries[cur] = entry{name: cur, mode: int64(info.Mode().Perm()), data: data}
			return c.addDependencies(cur, depth)
		default:
			return fmt.Errorf("%s: neither a file, a folder nor a symbolic link", cur)
		}
	}
	return nil
}

// addDependencies adds the loader and the libraries an ELF file needs; a
// file that is not ELF needs none.
func (c *collector) addDependencies(p string, depth int) error {
	f, err := elf.Open(p)
	if err != nil {
		return nil // a script or data file
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			buf := make([]byte, prog.Filesz)
			if _, err := prog.ReadAt(buf, 0); err != nil {
				return fmt.Errorf("%s: reading its loader: %w", p, err)
			}
			if err := c.add(trimNUL(buf), depth); err != nil {
				return fmt.Errorf("%s: loader: %w", p, err)
			}
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return fmt.Errorf("%s: %w", p, err)
	}
	for _, lib := range libs {
		found := ""
		for _, dir := range librarySearchPath(f.Machine) {
			if _, err := os.Stat(path.Join(dir, lib)); err == nil {
				found = path.Join(dir, lib)
				break
			}
		}
		if found == "" {
			return fmt.Errorf("%s needs %s, found in none of %v", p, lib, librarySearchPath(f.Machine))
		}
		if err := c.add(found, depth); err != nil {
			return err
		}
	}
	return nil
}

// librarySearchPath is where the dynamic loader of a Debian-style
// (multiarch) system looks for libraries.
func librarySearchPath(m elf.Machine) []string {
	triplet := map[elf.Machine]string{
		elf.EM_X86_64: "x86_64-linux-gnu", elf.EM_AARCH64: "aarch64-linux-gnu",
		elf.EM_386: "i386-linux-gnu", elf.EM_ARM: "arm-linux-gnueabihf",
		elf.EM_PPC64: "powerpc64le-linux-gnu", elf.EM_S390: "s390x-linux-gnu",
		elf.EM_RISCV: "riscv64-linux-gnu",
	}[m]
	dirs := []string{}
	if triplet != "" {
		dirs = append(dirs, "/lib/"+triplet, "/usr/lib/"+triplet)
	}
	return append(dirs, "/lib64", "/usr/lib64", "/lib", "/usr/lib")
}
