// Package probes runs containers' liveness, readiness and startup probes
// (exec, HTTP GET, TCP and gRPC health) on their schedules and keeps each
// probe's current result, with Kubernetes' semantics: initialDelaySeconds,
// periodSeconds, timeoutSeconds, successThreshold and failureThreshold;
// readiness starts failed and liveness successful; liveness and readiness
// wait until the startup probe, if any, has succeeded.
package probes

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"k8s.io/utils/clock"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/node-agent/internal/runtime"
)

// Kind is which probe of a container.
type Kind int

// Probe kinds.
const (
	Liveness Kind = iota
	Readiness
	Startup
)

func (k Kind) String() string {
	return [...]string{"liveness", "readiness", "startup"}[k]
}

// Result is a probe's current verdict.
type Result int

// Results.
const (
	Unknown Result = iota
	Success
	Failure
)

func (r Result) String() string { return [...]string{"Unknown", "Success", "Failure"}[r] }

// Execer runs a command in a container, as runtime.Runtime.Exec.
type Execer interface {
	Exec(ctx context.Context, id string, cmd []string, timeout time.Duration) (runtime.ExecResult, error)
}

// Target is what a probe reaches: the container (for exec) and the pod's
// address (for network probes).
type Target struct {
	ContainerID string
	PodIP       string
	// Ports resolves named ports.
	Ports []*corev1.ContainerPort
}

// Check runs probe once against target and returns whether it succeeded
// and, when not, why.
func Check(ctx context.Context, ex Execer, p *corev1.Probe, t Target) (bool, string) {
	timeout := time.Duration(max(p.GetTimeoutSeconds(), 1)) * time.Second
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case p.GetExec() != nil:
		res, err := ex.Exec(ctx, t.ContainerID, p.GetExec().GetCommand(), timeout)
		if err != nil {
			return false, err.Error()
		}
		if res.ExitCode != 0 {
			return false, fmt.Sprintf("command %q exited with %d: %s", strings.Join(p.GetExec().GetCommand(), " "), res.ExitCode, strings.TrimSpace(string(res.Output)))
		}
		return true, ""
	case p.GetHttpGet() != nil:
		return checkHTTP(ctx, p.GetHttpGet(), t, timeout)
	case p.GetTcpSocket() != nil:
		port, err := resolvePort(p.GetTcpSocket().GetPort(), t.Ports)
		if err != nil {
			return false, err.Error()
		}
		host := p.GetTcpSocket().GetHost()
		if host == "" {
			host = t.PodIP
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return false, fmt.Sprintf("tcp probe: %v", err)
		}
		_ = c.Close()
		return true, ""
	case p.GetGrpc() != nil:
		return checkGRPC(ctx, p.GetGrpc(), t)
	}
	return false, "probe has no handler"
}

func resolvePort(p interface {
	GetIntVal() int32
	GetStrVal() string
}, ports []*corev1.ContainerPort) (int, error) {
	if s := p.GetStrVal(); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			return n, nil
		}
		for _, cp := range ports {
			if cp.GetName() == s {
				return int(cp.GetContainerPort()), nil
			}
		}
		return 0, fmt.Errorf("probe port %q is not a named port of the container", s)
	}
	if p.GetIntVal() <= 0 || p.GetIntVal() > 65535 {
		return 0, fmt.Errorf("probe port %d is out of range", p.GetIntVal())
	}
	return int(p.GetIntVal()), nil
}

func checkHTTP(ctx context.Context, h *corev1.HTTPGetAction, t Target, timeout time.Duration) (bool, string) {
	port, err := resolvePort(h.GetPort(), t.Ports)
	if err != nil {
		return false, err.Error()
	}
	host := h.GetHost()
	if host == "" {
		host = t.PodIP
	}
	scheme := "http"
	if strings.EqualFold(h.GetScheme(), "HTTPS") {
		scheme = "https"
	}
	path := h.GetPath()
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	url := fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(host, strconv.Itoa(port)), path)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("User-Agent", "bosun-probe/1.0")
	for _, hd := range h.GetHttpHeaders() {
		if strings.EqualFold(hd.GetName(), "Host") {
			req.Host = hd.GetValue()
		} else {
			req.Header.Add(hd.GetName(), hd.GetValue())
		}
	}
	c := &http.Client{
		Timeout: timeout,
		// Probes check the container, not what it redirects to; like the
		// kubelet, a redirect counts as success.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // probes do not verify, as in Kubernetes
			DisableKeepAlives: true,
		},
	}
	resp, err := c.Do(req)
	if err != nil {
		return false, fmt.Sprintf("http probe: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return true, ""
	}
	return false, fmt.Sprintf("http probe: GET %s answered %d: %s", path, resp.StatusCode, strings.TrimSpace(string(body)))
}

func checkGRPC(ctx context.Context, g *corev1.GRPCAction, t Target) (bool, string) {
	conn, err := grpc.NewClient(net.JoinHostPort(t.PodIP, strconv.Itoa(int(g.GetPort()))),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return false, fmt.Sprintf("grpc probe: %v", err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: g.GetService()})
	if err != nil {
		return false, fmt.Sprintf("grpc probe: %v", err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return false, fmt.Sprintf("grpc probe: status %s", resp.GetStatus())
	}
	return true, ""
}

// State is one probe's current result.
type State struct {
	Result  Result
	Message string
}

type key struct {
	containerID string
	kind        Kind
}

type worker struct {
	cancel context.CancelFunc
	done   chan struct{}
	state  State
}

// Manager runs probe workers. Each worker probes on its period and calls
// onChange with the pod's uid when its result flips.
type Manager struct {
	ex       Execer
	clock    clock.WithTicker
	onChange func(podUID string)

	mu      sync.Mutex
	workers map[key]*worker
}

// NewManager returns a Manager probing through ex. clk is the real clock
// when nil.
func NewManager(ex Execer, clk clock.WithTicker, onChange func(podUID string)) *Manager {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Manager{ex: ex, clock: clk, onChange: onChange, workers: map[key]*worker{}}
}

// initial is a probe's result before it has run.
func initial(k Kind) Result {
	switch k {
	case Liveness:
		return Success
	case Readiness:
		return Failure
	}
	return Unknown
}

// Ensure starts the probe of kind for a container unless it runs already.
// hasStartup tells liveness and readiness to wait for the startup probe.
func (m *Manager) Ensure(podUID string, k Kind, p *corev1.Probe, t Target, hasStartup bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	kk := key{t.ContainerID, k}
	if _, ok := m.workers[kk]; ok {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &worker{cancel: cancel, done: make(chan struct{}), state: State{Result: initial(k)}}
	m.workers[kk] = w
	go m.run(ctx, w, podUID, kk, p, t, hasStartup)
}

// Get returns a probe's current state; ok is false when it does not run.
func (m *Manager) Get(containerID string, k Kind) (State, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.workers[key{containerID, k}]
	if !ok {
		return State{}, false
	}
	return w.state, true
}

// Remove stops every probe of a container.
func (m *Manager) Remove(containerID string) {
	m.mu.Lock()
	var ws []*worker
	for k, w := range m.workers {
		if k.containerID == containerID {
			ws = append(ws, w)
			delete(m.workers, k)
		}
	}
	m.mu.Unlock()
	for _, w := range ws {
		w.cancel()
		<-w.done
	}
}

func (m *Manager) run(ctx context.Context, w *worker, podUID string, k key, p *corev1.Probe, t Target, hasStartup bool) {
	defer close(w.done)
	period := time.Duration(max(p.GetPeriodSeconds(), 1)) * time.Second
	successes := int(max(p.GetSuccessThreshold(), 1))
	failures := int(max(p.GetFailureThreshold(), 1))
	if d := time.Duration(p.GetInitialDelaySeconds()) * time.Second; d > 0 {
		select {
		case <-ctx.Done():
			return
		case <-m.clock.After(d):
		}
	}
	ticker := m.clock.NewTicker(period)
	defer ticker.Stop()
	var okRun, failRun int
	for {
		if k.kind == Startup || !hasStartup || m.startupDone(k.containerID) {
			ok, msg := Check(ctx, m.ex, p, t)
			if ctx.Err() != nil {
				return
			}
			if ok {
				okRun, failRun = okRun+1, 0
			} else {
				okRun, failRun = 0, failRun+1
			}
			m.mu.Lock()
			prev := w.state.Result
			switch {
			case ok && okRun >= successes:
				w.state = State{Result: Success}
			case !ok && failRun >= failures:
				w.state = State{Result: Failure, Message: msg}
			}
			changed := prev != w.state.Result
			m.mu.Unlock()
			if changed && m.onChange != nil {
				m.onChange(podUID)
			}
			if k.kind == Startup && w.state.Result == Success {
				return // a startup probe stops once it has succeeded
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
		}
	}
}

func (m *Manager) startupDone(containerID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.workers[key{containerID, Startup}]
	return !ok || w.state.Result == Success
}
