package multinode

import (
	"bytes"
	"os/exec"
	goruntime "runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a child process the test started.
type Process struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
	logs   *lockedBuffer
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
	p := &Process{name: name, cmd: cmd, exited: make(chan struct{}), logs: &lockedBuffer{}}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	release, err := startOnOwnThread(cmd)
	if err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { _ = cmd.Wait(); release(); close(p.exited) }()
	return p
}

// logOnFailure logs the end of the process's output when the test failed.
func (p *Process) logOnFailure(t *testing.T) {
	if t.Failed() {
		t.Logf("%s output:\n%s", p.name, tail(p.logs.String(), 8000))
	}
}

// Stop ends the process with SIGTERM (SIGKILL after 15 s) and waits.
func (p *Process) Stop() {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		p.Kill()
	}
}

// Kill sends SIGKILL and waits for the process to exit.
func (p *Process) Kill() {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// Signal sends sig to the process, if it still runs.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return nil
	}
	return p.cmd.Process.Signal(sig)
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Output is what the process printed so far.
func (p *Process) Output() string { return p.logs.String() }

// startOnOwnThread starts cmd from an OS thread reserved for it, so that
// its Pdeathsig (the child dies with the thread that started it) fires
// only when release is called or the test process dies, never because Go
// ended a thread a goroutine left locked.
func startOnOwnThread(cmd *exec.Cmd) (release func(), err error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		goruntime.LockOSThread() // never unlocked: the thread ends with this goroutine
		errc <- cmd.Start()
		<-done
	}()
	if err := <-errc; err != nil {
		close(done)
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }, nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "...\n" + s[len(s)-n:]
	}
	return s
}
