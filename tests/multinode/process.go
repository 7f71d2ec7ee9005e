package multinode

import (
	"os/exec"
	"testing"
	"time"

	"bosun.dev/tests/internal/testproc"
)

// Process is a child process the test started. It dies with the test
// process (see testproc.StartOnOwnThread), so a panicking test leaves no
// control-plane process or node-agent behind.
type Process struct {
	*testproc.Process
}

// StartProcess starts cmd, keeps its output for the test's log on
// failure, and kills it by PID when the test ends if it still runs.
func StartProcess(t *testing.T, name string, cmd *exec.Cmd) *Process {
	t.Helper()
	p := launch(t, name, cmd)
	t.Cleanup(func() { p.Kill(); p.logOnFailure(t) })
	return p
}

// launch starts cmd; the caller stops it.
func launch(t *testing.T, name string, cmd *exec.Cmd) *Process {
	t.Helper()
	p, err := testproc.StartOnOwnThread(name, cmd)
	if err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	return &Process{p}
}

// logOnFailure logs the end of the process's output when the test failed.
func (p *Process) logOnFailure(t *testing.T) { p.LogOnFailure(t, 8000) }

// Stop ends the process with SIGTERM (SIGKILL after 15 s) and waits.
func (p *Process) Stop() { p.Process.Stop(15 * time.Second) }
