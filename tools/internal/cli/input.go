package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"bosun.dev/pkg/api"
	"bosun.dev/pkg/manifest"
)

// manifestExtensions are the files a directory given to -f contributes.
var manifestExtensions = map[string]bool{".yaml": true, ".yml": true, ".json": true}

// readManifests decodes the objects of every -f argument: a file, a
// directory (its .yaml, .yml and .json files, sorted) or "-" for stdin.
func readManifests(paths []string, stdin io.Reader) ([]api.Object, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("must specify -f")
	}
	var objs []api.Object
	for _, p := range paths {
		files, err := expandPath(p)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			var data []byte
			if f == "-" {
				data, err = io.ReadAll(stdin)
			} else {
				data, err = os.ReadFile(f)
			}
			if err != nil {
				return nil, err
			}
			decoded, err := manifest.Decode(data)
			if err != nil {
				name := f
				if f == "-" {
					name = "stdin"
				}
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			objs = append(objs, decoded...)
		}
	}
	return objs, nil
}

func expandPath(p string) ([]string, error) {
	if p == "-" {
		return []string{p}, nil
	}
	info, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("the path %q does not exist", p)
	}
	if !info.IsDir() {
		return []string{p}, nil
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		if !e.IsDir() && manifestExtensions[strings.ToLower(filepath.Ext(e.Name()))] {
			files = append(files, filepath.Join(p, e.Name()))
		}
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("no .yaml, .yml or .json files in %s", p)
	}
	return files, nil
}
