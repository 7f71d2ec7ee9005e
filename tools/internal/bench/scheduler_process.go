package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Scheduler is the scheduler binary running as a child process.
type Scheduler struct {
	// MetricsAddr serves its /metrics.
	MetricsAddr string
	cmd         *exec.Cmd
	done        chan struct{}
	err         error
	logs        *tailBuffer
}

// StartScheduler runs the scheduler at path against the apiserver at
// apiAddr (plaintext), with its default flags otherwise (leader election
// on), and waits until it leads. Stop ends it.
func StartScheduler(ctx context.Context, path, apiAddr string, extraArgs ...string) (*Scheduler, error) {
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	metrics, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := append([]string{
		"--insecure", "--apiserver", apiAddr, "--listen", listen, "--metrics-listen", metrics, "--log-level", "warn",
	}, extraArgs...)
	cmd := exec.Command(path, args...)
	logs := &tailBuffer{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", path, err)
	}
	s := &Scheduler{MetricsAddr: metrics, cmd: cmd, done: make(chan struct{}), logs: logs}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	if err := s.WaitMetric(ctx, "bosun_scheduler_is_leader", 1, 30*time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// PID is the scheduler's process id.
func (s *Scheduler) PID() int { return s.cmd.Process.Pid }

// Logs returns the tail of what the scheduler wrote.
func (s *Scheduler) Logs() string { return s.logs.String() }

// Metric reads one unlabelled metric from /metrics.
func (s *Scheduler) Metric(ctx context.Context, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.MetricsAddr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// WaitMetric waits until the named metric equals want.
func (s *Scheduler) WaitMetric(ctx context.Context, name string, want float64, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last float64
	var lastErr error
	for {
		v, err := s.Metric(ctx, name)
		if err == nil && v == want {
			return nil
		}
		last, lastErr = v, err
		select {
		case <-s.done:
			return fmt.Errorf("scheduler exited (%v):\n%s", s.err, s.Logs())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("scheduler metric %s is %v (err %v), not %v, after %s:\n%s", name, last, lastErr, want, limit, s.Logs())
		}
	}
}

// Stop sends SIGTERM, SIGKILL after stopGrace, and waits for the exit.
func (s *Scheduler) Stop() error {
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(stopGrace):
			_ = s.cmd.Process.Kill()
			<-s.done
			return fmt.Errorf("scheduler (pid %d) ignored SIGTERM for %s and was killed", s.PID(), stopGrace)
		}
	}
	var exit *exec.ExitError
	if errors.As(s.err, &exit) {
		return fmt.Errorf("scheduler (pid %d) exited: %v\n%s", s.PID(), s.err, s.Logs())
	}
	return s.err
}
