// Package chartcheck checks Bosun's Helm charts the way CI does: `helm lint`
// and `helm template` with the default and the highly available values,
// then every rendered manifest decoded strictly into its Kubernetes type
// (an unknown or misspelt field is an error, as it would be for the API
// server) and checked for the mistakes the API server would refuse or that
// would leave a workload broken: invalid names and labels, selectors that
// match no pod template, mounts of volumes that do not exist, probes and
// Service target ports naming ports no container has.
//
// The helm binary is the one pinned in tools/devtools (`make devtools`
// builds it into .bin/tools).
package chartcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// Helm runs a helm binary with its caches, configuration and data kept in a
// folder of their own, so that a check neither reads nor changes the user's
// repositories.
type Helm struct {
	// Binary is the helm executable.
	Binary string
	// Home holds helm's cache, config and data folders.
	Home string
}

// run runs helm with args in dir and returns its standard output; the error
// carries the command and its standard error.
func (h Helm) run(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, h.Binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(h.Home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(h.Home, "config"),
		"HELM_DATA_HOME="+filepath.Join(h.Home, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return stdout.Bytes(), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), nil
}

// Lint runs `helm lint --strict` on a chart with the given values files.
func (h Helm) Lint(ctx context.Context, chart string, valuesFiles ...string) error {
	args := []string{"lint", "--strict", chart}
	for _, f := range valuesFiles {
		args = append(args, "--values", f)
	}
	_, err := h.run(ctx, "", args...)
	return err
}

// Render is one `helm template` invocation.
type Render struct {
	Release   string
	Namespace string
	Chart     string
	// ValuesFiles are passed with --values, in order.
	ValuesFiles []string
	// Set are --set key=value overrides.
	Set []string
}

// Template runs `helm template` and returns the rendered manifests.
func (h Helm) Template(ctx context.Context, r Render) ([]byte, error) {
	args := []string{"template", r.Release, r.Chart, "--namespace", r.Namespace}
	for _, f := range r.ValuesFiles {
		args = append(args, "--values", f)
	}
	for _, s := range r.Set {
		args = append(args, "--set", s)
	}
	return h.run(ctx, "", args...)
}

// chartFile is what Prepare reads of a Chart.yaml.
type chartFile struct {
	Name         string `json:"name"`
	Dependencies []struct {
		Name       string `json:"name"`
		Repository string `json:"repository"`
	} `json:"dependencies"`
}

// Prepare copies the charts folder src into dst (leaving out dependencies
// built earlier) and runs `helm dependency build` on every chart, each
// chart's local (file://) dependencies before the chart itself, so that
// the copies lint and render. The source tree is not changed.
func (h Helm) Prepare(ctx context.Context, src, dst string) error {
	if err := copyCharts(src, dst); err != nil {
		return err
	}
	entries, err := os.ReadDir(dst)
	if err != nil {
		return err
	}
	built := map[string]bool{}
	var build func(dir string, path []string) error
	build = func(dir string, path []string) error {
		if built[dir] {
			return nil
		}
		for _, p := range path {
			if p == dir {
				return fmt.Errorf("charts depend on each other in a cycle: %s", strings.Join(append(path, dir), " -> "))
			}
		}
		data, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
		if err != nil {
			return err
		}
		var cf chartFile
		if err := yaml.Unmarshal(data, &cf); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(dir, "Chart.yaml"), err)
		}
		for _, d := range cf.Dependencies {
			local, ok := strings.CutPrefix(d.Repository, "file://")
			if !ok {
				return fmt.Errorf("%s: dependency %s comes from %q; only local (file://) dependencies can be built offline", cf.Name, d.Name, d.Repository)
			}
			if err := build(filepath.Clean(filepath.Join(dir, local)), append(path, dir)); err != nil {
				return err
			}
		}
		if len(cf.Dependencies) > 0 {
			if _, err := h.run(ctx, dir, "dependency", "build", "--skip-refresh", "."); err != nil {
				return fmt.Errorf("chart %s: %w", cf.Name, err)
			}
		}
		built[dir] = true
		return nil
	}
	for _, e := range entries {
		dir := filepath.Join(dst, e.Name())
		if _, err := os.Stat(filepath.Join(dir, "Chart.yaml")); err != nil {
			continue
		}
		if err := build(dir, nil); err != nil {
			return err
		}
	}
	return nil
}

// copyCharts copies src to dst, leaving out every chart's charts/ folder
// and Chart.lock, which `helm dependency build` makes.
func copyCharts(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if len(parts) == 2 && (parts[1] == "charts" && d.IsDir() || parts[1] == "Chart.lock") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return errors.New(p + ": not a regular file")
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}
