package bench

import (
	"fmt"
	"os"
	"strings"
)

// FileHeader starts a results file that does not exist yet.
const FileHeader = "# Bosun benchmarks\n\n" +
	"Figures come from `make bench` on the machine named in each section; " +
	"throughputs are medians of interleaved rounds.\n"

// Markers delimit a benchmark's section of the results file.
func Markers(name string) (begin, end string) {
	return "<!-- bench:" + name + " begin -->", "<!-- bench:" + name + " end -->"
}

// ReplaceSection returns doc with the section of the named benchmark
// replaced by body, or appended when doc has none. Everything outside the
// markers is kept as it is. An empty doc gets FileHeader first. A begin
// marker without its end marker (or after it) is an error: the file was
// edited by hand and is left for a person to fix.
func ReplaceSection(doc, name, body string) (string, error) {
	begin, end := Markers(name)
	section := begin + "\n" + strings.TrimRight(body, "\n") + "\n" + end
	b := strings.Index(doc, begin)
	e := strings.Index(doc, end)
	switch {
	case b < 0 && e < 0:
		if strings.TrimSpace(doc) == "" {
			doc = FileHeader
		}
		return strings.TrimRight(doc, "\n") + "\n\n" + section + "\n", nil
	case b < 0 || e < 0 || e < b:
		return "", fmt.Errorf("section %q: markers %q and %q are missing or out of order", name, begin, end)
	case strings.Count(doc, begin) > 1 || strings.Count(doc, end) > 1:
		return "", fmt.Errorf("section %q appears more than once", name)
	}
	return doc[:b] + section + doc[e+len(end):], nil
}

// WriteSection replaces the named section of the file at path, creating
// the file when it does not exist.
func WriteSection(path, name, body string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	doc, err := ReplaceSection(string(old), name, body)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(doc), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
