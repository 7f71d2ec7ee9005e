package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/client"
)

// stopGrace is how long a stopped apiserver may take before it is killed.
const stopGrace = 10 * time.Second

// APIServer is the apiserver binary running as a child process.
type APIServer struct {
	// Addr is its gRPC address.
	Addr string
	// Conn is a gRPC connection to Addr.
	Conn *grpc.ClientConn
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // the exit status, set before done is closed
	logs *tailBuffer
}

// StartAPIServer runs the apiserver at path against the etcd at endpoint,
// plaintext, on a free local port, with the REST gateway off, and waits until
// namespace "default" can be read. Stop ends it.
func StartAPIServer(ctx context.Context, path, endpoint string, extraArgs ...string) (*APIServer, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := append([]string{
		"--insecure", "--etcd-endpoints=" + endpoint, "--listen", addr,
		"--http-listen", "", "--log-level", "warn",
	}, extraArgs...)
	cmd := exec.Command(path, args...)
	logs := &tailBuffer{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = logs, logs
	// Its own process group keeps a terminal's Ctrl-C away from it, so that it
	// is stopped in order (before etcd); it dies with us if we are killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", path, err)
	}
	a := &APIServer{Addr: addr, cmd: cmd, done: make(chan struct{}), logs: logs}
	go func() {
		a.err = cmd.Wait()
		close(a.done)
	}()
	if err := a.waitReady(ctx); err != nil {
		a.Stop()
		return nil, err
	}
	return a, nil
}

// PID is the process id of the apiserver.
func (a *APIServer) PID() int { return a.cmd.Process.Pid }

// Logs returns the tail of what the apiserver wrote.
func (a *APIServer) Logs() string { return a.logs.String() }

func (a *APIServer) waitReady(ctx context.Context) error {
	conn, err := client.Dial(client.Config{Server: a.Addr, Insecure: true})
	if err != nil {
		return err
	}
	a.Conn = conn
	namespaces := client.For[*corev1.Namespace](conn)
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := namespaces.Get(cctx, "", "default")
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-a.done:
			return fmt.Errorf("apiserver exited before it was ready (%v):\n%s", a.err, a.Logs())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("apiserver not ready within 30s: %v\n%s", err, a.Logs())
		}
	}
}

// Stop sends SIGTERM to the apiserver, SIGKILL after stopGrace, and waits
// until it has exited. It reports an unclean exit.
func (a *APIServer) Stop() error {
	if a.Conn != nil {
		a.Conn.Close()
	}
	select {
	case <-a.done:
	default:
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.done:
		case <-time.After(stopGrace):
			_ = a.cmd.Process.Kill()
			<-a.done
			return fmt.Errorf("apiserver (pid %d) ignored SIGTERM for %s and was killed", a.PID(), stopGrace)
		}
	}
	var exit *exec.ExitError
	if errors.As(a.err, &exit) {
		return fmt.Errorf("apiserver (pid %d) exited: %v\n%s", a.PID(), a.err, a.Logs())
	}
	return a.err
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(t.buf.String())
}

// cpuTime returns the user+system CPU time a process has used, from
// /proc/PID/stat, in clock ticks.
func cpuTime(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	var utime, stime int64
	if _, err := fmt.Sscan(f[11], &utime); err != nil {
		return 0, err
	}
	if _, err := fmt.Sscan(f[12], &stime); err != nil {
		return 0, err
	}
	return utime + stime, nil
}

// waitQuiet waits until none of pids used more than 10% of a CPU over a
// quarter-second window (background work such as applying deletions to a
// watch cache, or garbage collection, is done), or until limit. It reports
// whether they became quiet.
func waitQuiet(ctx context.Context, limit time.Duration, pids ...int) (bool, error) {
	const window = 250 * time.Millisecond
	const ticksPerSec = 100 // USER_HZ on Linux
	maxTicks := int64(window.Seconds() * ticksPerSec * 0.10)
	last := make([]int64, len(pids))
	for i, pid := range pids {
		t, err := cpuTime(pid)
		if err != nil {
			return false, err
		}
		last[i] = t
	}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(window):
		}
		quiet := true
		for i, pid := range pids {
			t, err := cpuTime(pid)
			if err != nil {
				return false, err
			}
			if t-last[i] > maxTicks {
				quiet = false
			}
			last[i] = t
		}
		if quiet {
			return true, nil
		}
	}
	return false, nil
}

func selfPID() int { return os.Getpid() }

// cpuTimes returns the CPU time used so far by this process and by the
// apiserver.
func cpuTimes(apiserverPID int) (cpuUse, error) {
	self, err := cpuTime(selfPID())
	if err != nil {
		return cpuUse{}, err
	}
	api, err := cpuTime(apiserverPID)
	if err != nil {
		return cpuUse{}, err
	}
	return cpuUse{bench: ticks(self), apiserver: ticks(api)}, nil
}

// ticks converts clock ticks (USER_HZ, 100 on Linux) to a duration.
func ticks(n int64) time.Duration { return time.Duration(n) * (time.Second / 100) }
