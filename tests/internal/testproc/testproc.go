// Package testproc runs the child processes of Bosun's cross-service tests
// (services, etcd members, node-agents): it keeps each one's output for the
// test's log, stops it with SIGTERM and then SIGKILL, and only ever signals
// the processes it started, by their PID.
package testproc

import (
	"bytes"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Process is a running child process.
type Process struct {
	// Name names it in logs.
	Name    string
	cmd     *exec.Cmd
	logs    Buffer
	done    chan struct{}
	err     error
	stopped atomic.Bool
}

// Start starts cmd with its output captured.
func Start(name string, cmd *exec.Cmd) (*Process, error) {
	p := newProcess(name, cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go p.wait(func() {})
	return p, nil
}

// StartOnOwnThread is Start for a child that must die with the test: it
// gets SIGKILL as its parent-death signal, and starts from an OS thread
// reserved for it, so that the signal fires only when the process has
// ended or the test process dies, never because Go ended a thread that a
// goroutine left locked.
func StartOnOwnThread(name string, cmd *exec.Cmd) (*Process, error) {
	p := newProcess(name, cmd)
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	errc := make(chan error, 1)
	release := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		errc <- cmd.Start()
		<-release
	}()
	if err := <-errc; err != nil {
		close(release)
		return nil, err
	}
	go p.wait(func() { close(release) })
	return p, nil
}

func newProcess(name string, cmd *exec.Cmd) *Process {
	p := &Process{Name: name, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.logs, &p.logs
	return p
}

func (p *Process) wait(after func()) {
	p.err = p.cmd.Wait()
	after()
	close(p.done)
}

// Stop ends the process with SIGTERM, SIGKILL after grace, and waits for it.
func (p *Process) Stop(grace time.Duration) {
	p.stopped.Store(true)
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.Kill()
	}
}

// Kill sends SIGKILL and waits for the process to end.
func (p *Process) Kill() {
	p.stopped.Store(true)
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
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
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitedOnItsOwn reports whether the process ended without Stop or Kill.
func (p *Process) ExitedOnItsOwn() bool { return p.Exited() && !p.stopped.Load() }

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is how the process ended, once Done is closed.
func (p *Process) Err() error { return p.err }

// Pid is the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Output is everything the process printed so far.
func (p *Process) Output() string { return p.logs.String() }

// Tail is the last n bytes of the output.
func (p *Process) Tail(n int) string { return p.logs.Tail(n) }

// LogOnFailure logs the last n bytes of the output when t failed.
func (p *Process) LogOnFailure(t testing.TB, n int) {
	if t.Failed() {
		t.Logf("%s output:\n%s", p.Name, p.Tail(n))
	}
}

// Buffer is a bytes.Buffer safe for concurrent writers and readers.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Tail is the last n bytes written, marked as cut when there were more.
func (b *Buffer) Tail(n int) string {
	s := b.String()
	if len(s) > n {
		return "...\n" + s[len(s)-n:]
	}
	return s
}
