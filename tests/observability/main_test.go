// Package observability checks, end to end, that Bosun's services export
// traces that follow one request across processes and Prometheus metrics
// that parse and contain what docs/observability.md lists.
package observability

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// services are the binaries the test builds and runs, by name.
var services = map[string]string{
	"apiserver":      "bosun.dev/services/apiserver/cmd/apiserver",
	"scheduler":      "bosun.dev/services/scheduler/cmd/scheduler",
	"controller":     "bosun.dev/services/controller/cmd/controller",
	"health-checker": "bosun.dev/services/health-checker/cmd/health-checker",
	"service-proxy":  "bosun.dev/services/service-proxy/cmd/service-proxy",
	"node-agent":     "bosun.dev/services/node-agent/cmd/node-agent",
}

// bin holds the binaries built for this run.
var bin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run() // the test skips itself; nothing to build
	}
	dir, err := os.MkdirTemp("", "bosun-observability-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, pkg := range services {
		args = append(args, pkg)
	}
	args = append(args, "bosun.dev/tools/cmd/bosun")
	build := exec.Command("go", args...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building binaries:", err)
		return 1
	}
	bin = dir
	return m.Run()
}
