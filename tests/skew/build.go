package skew

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// Commands are the main packages a skew run builds from each tree, by the
// name of the binary: the five control-plane services and the node
// simulator, which runs the node-agent's pod workers on its in-memory
// runtime.
var Commands = map[string]string{
	"apiserver":      "bosun.dev/services/apiserver/cmd/apiserver",
	"scheduler":      "bosun.dev/services/scheduler/cmd/scheduler",
	"controller":     "bosun.dev/services/controller/cmd/controller",
	"health-checker": "bosun.dev/services/health-checker/cmd/health-checker",
	"service-proxy":  "bosun.dev/services/service-proxy/cmd/service-proxy",
	"nodesim":        "bosun.dev/tools/cmd/nodesim",
}

// CLI is the bosun command, built from the current tree only.
const CLI = "bosun.dev/tools/cmd/bosun"

// Tree is a source tree of Bosun: the repository's working tree or a
// baseline exported from it.
type Tree struct {
	// Dir is the directory holding go.work.
	Dir string
	// Version and Revision are stamped into the binaries
	// (bosun.dev/pkg/version) so that each reports which tree it is from.
	Version, Revision string
}

// Has reports whether the tree holds the main package pkg (a bosun.dev
// import path); a release older than a service has none.
func (t Tree) Has(pkg string) bool {
	rel, ok := strings.CutPrefix(pkg, "bosun.dev/")
	if !ok {
		return false
	}
	info, err := os.Stat(filepath.Join(t.Dir, filepath.FromSlash(rel)))
	return err == nil && info.IsDir()
}

// Build compiles the main packages pkgs of tree in one go build against
// the tree's own go.work, into out, and returns each binary's path by
// package. Builds are -trimpath, so the packages both trees share hit the
// build cache the second time.
func Build(ctx context.Context, tree Tree, pkgs []string, out string) (map[string]string, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	ldflags := fmt.Sprintf("-X bosun.dev/pkg/version.Version=%s -X bosun.dev/pkg/version.Revision=%s", tree.Version, tree.Revision)
	args := append([]string{"build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", out + string(filepath.Separator)}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = tree.Dir
	cmd.Env = append(os.Environ(), "GOWORK="+filepath.Join(tree.Dir, "go.work"))
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build in %s: %v\n%s", tree.Dir, err, b)
	}
	bins := map[string]string{}
	for _, p := range pkgs {
		bins[p] = filepath.Join(out, path.Base(p))
	}
	return bins, nil
}
