package images

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
)

// CheckStatic fails unless r is an ELF executable that needs no dynamic
// loader and no shared library: the only kind of binary that runs on the
// images' base, which has no libc.
func CheckStatic(r io.ReaderAt) error {
	f, err := elf.NewFile(r)
	if err != nil {
		return fmt.Errorf("not an ELF binary: %w", err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("ELF type %s is not an executable", f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp, _ := io.ReadAll(p.Open())
			return fmt.Errorf("dynamically linked: needs the loader %q (build with CGO_ENABLED=0)", trimNUL(interp))
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return fmt.Errorf("reading imported libraries: %w", err)
	}
	if len(libs) > 0 {
		return fmt.Errorf("dynamically linked: needs %v (build with CGO_ENABLED=0)", libs)
	}
	return nil
}

func trimNUL(b []byte) string {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return string(b)
}
