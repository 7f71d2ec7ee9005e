// Package probe actively checks every node-agent's gRPC health endpoint
// (grpc.health.v1.Health/Check, service ""), the second liveness signal
// next to the node's Lease.
//
// Each node is probed once per Interval, at a phase of its own chosen at
// random and moved by up to Jitter of the interval every round, so that
// thousands of nodes spread their probes over the interval instead of
// arriving together. At most Concurrency probes are in flight at once; a node
// whose previous probe is still running is not probed again. One gRPC
// connection per node is kept and re-used, reconnecting with a back-off
// capped at Interval so a restarted agent is seen again within a round.
package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"k8s.io/utils/clock"

	corev1 "bosun.dev/gen/bosun/core/v1"
)

// Defaults of Config.
const (
	DefaultInterval    = time.Second
	DefaultTimeout     = time.Second
	DefaultConcurrency = 64
	DefaultJitter      = 0.2
)

// Config configures a Prober.
type Config struct {
	// Interval between two probes of one node; DefaultInterval when zero.
	Interval time.Duration
	// Timeout of one probe; DefaultTimeout when zero.
	Timeout time.Duration
	// Concurrency bounds the probes in flight; DefaultConcurrency when zero.
	Concurrency int
	// Jitter moves each node's next probe by up to this fraction of
	// Interval, either way; DefaultJitter when zero, none when negative.
	Jitter float64
	// TLS, when set, secures every connection. Each connection verifies
	// the node's name (tls.Config.ServerName), not its address: a
	// node-agent's certificate names its Node.
	TLS *tls.Config
	// DialOptions are added to every connection; plaintext when neither
	// they nor TLS set transport credentials.
	DialOptions []grpc.DialOption
	// Clock schedules rounds and stamps results; the real clock when nil.
	// Timeouts of the calls themselves are always real time.
	Clock clock.Clock
	// Logger receives the prober's logs; slog.Default() when nil.
	Logger *slog.Logger
}

// Result is what the probes of one node found.
type Result struct {
	// Endpoint is the address probed.
	Endpoint string
	// Added is when the endpoint became a target: silence is not counted
	// from before it.
	Added time.Time
	// LastAttempt is when the last probe finished.
	LastAttempt time.Time
	// LastAnswer is when the agent last answered at all (SERVING or not);
	// zero if it never has.
	LastAnswer time.Time
	// Status is the last answer's status.
	Status healthpb.HealthCheckResponse_ServingStatus
	// Err is the last probe's failure; nil when it answered.
	Err error
}

// Answered reports whether the agent has ever answered.
func (r Result) Answered() bool { return !r.LastAnswer.IsZero() }

// Serving reports whether the last probe answered SERVING.
func (r Result) Serving() bool {
	return r.Err == nil && r.Status == healthpb.HealthCheckResponse_SERVING
}

type target struct {
	endpoint string
	conn     *grpc.ClientConn
	next     time.Time
	inFlight bool
	result   Result
	gen      uint64 // bumped when the endpoint changes, to drop stale results
}

// Prober probes the health endpoints of a changing set of nodes.
type Prober struct {
	cfg   Config
	clock clock.Clock
	log   *slog.Logger
	sem   chan struct{}
	wake  chan struct{}

	mu      sync.Mutex
	targets map[string]*target
	gen     uint64
	closed  bool
	wg      sync.WaitGroup
}

// New returns a Prober with no targets.
func New(cfg Config) *Prober {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Jitter == 0 {
		cfg.Jitter = DefaultJitter
	}
	if cfg.Jitter < 0 {
		cfg.Jitter = 0
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Prober{
		cfg: cfg, clock: cfg.Clock, log: log.With("component", "probe"),
		sem: make(chan struct{}, cfg.Concurrency), wake: make(chan struct{}, 1),
		targets: map[string]*target{},
	}
}

// Set makes node's health endpoint (host:port) a target, replacing an
// earlier endpoint of the node. An empty endpoint removes the node.
func (p *Prober) Set(node, endpoint string) error {
	if endpoint == "" {
		p.Remove(node)
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("probe: prober closed")
	}
	if t, ok := p.targets[node]; ok && t.endpoint == endpoint {
		return nil
	}
	conn, err := grpc.NewClient(endpoint, p.dialOptions(node)...)
	if err != nil {
		return fmt.Errorf("node %q health endpoint %q: %w", node, endpoint, err)
	}
	if old, ok := p.targets[node]; ok {
		_ = old.conn.Close()
	}
	p.gen++
	offset := time.Duration(rand.Int64N(int64(p.cfg.Interval)))
	p.targets[node] = &target{endpoint: endpoint, conn: conn, next: p.clock.Now().Add(offset), gen: p.gen,
		result: Result{Endpoint: endpoint, Added: p.clock.Now()}}
	p.poke()
	return nil
}

func (p *Prober) dialOptions(node string) []grpc.DialOption {
	bo := backoff.DefaultConfig
	bo.BaseDelay = 100 * time.Millisecond
	bo.MaxDelay = p.cfg.Interval
	creds := insecure.NewCredentials()
	if p.cfg.TLS != nil {
		tc := p.cfg.TLS.Clone()
		tc.ServerName = node
		creds = credentials.NewTLS(tc)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: p.cfg.Timeout}),
	}
	return append(opts, p.cfg.DialOptions...)
}

// Remove stops probing node and forgets its results.
func (p *Prober) Remove(node string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.targets[node]; ok {
		_ = t.conn.Close()
		delete(p.targets, node)
	}
}

// Result returns the results of node's probes, and whether it is a target.
func (p *Prober) Result(node string) (Result, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.targets[node]
	if !ok {
		return Result{}, false
	}
	return t.result, true
}

// Endpoint returns the endpoint probed for node, "" when none.
func (p *Prober) Endpoint(node string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.targets[node]; ok {
		return t.endpoint
	}
	return ""
}

func (p *Prober) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// ProbeAll probes every target not already being probed, at most
// Concurrency at a time, and returns when they have all finished or ctx
// ended.
func (p *Prober) ProbeAll(ctx context.Context) {
	var wg sync.WaitGroup
	p.mu.Lock()
	var due []string
	for node, t := range p.targets {
		if !t.inFlight {
			due = append(due, node)
		}
	}
	p.mu.Unlock()
	for _, node := range due {
		if !p.start(ctx, node, &wg) {
			break
		}
	}
	wg.Wait()
}

// Run probes every target once per Interval until ctx ends, then closes
// every connection.
func (p *Prober) Run(ctx context.Context) {
	defer p.close()
	for {
		now := p.clock.Now()
		var due []string
		next := now.Add(p.cfg.Interval)
		p.mu.Lock()
		for node, t := range p.targets {
			if t.inFlight {
				continue
			}
			if !t.next.After(now) {
				due = append(due, node)
				t.next = now.Add(p.jittered())
			}
			if t.next.Before(next) {
				next = t.next
			}
		}
		p.mu.Unlock()
		for _, node := range due {
			if !p.start(ctx, node, &p.wg) {
				return
			}
		}
		// Wake no more often than every Interval/20: targets due within
		// that slack are probed together, so a pass over thousands of
		// targets happens a few dozen times per interval, not once per node.
		wait := max(next.Sub(now), p.cfg.Interval/20)
		timer := p.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C():
		case <-p.wake:
			timer.Stop()
		}
	}
}

func (p *Prober) jittered() time.Duration {
	d := p.cfg.Interval
	if j := p.cfg.Jitter; j > 0 {
		d += time.Duration((rand.Float64()*2 - 1) * j * float64(p.cfg.Interval))
	}
	return d
}

// start probes node in its own goroutine once a concurrency slot is free. It
// returns false if ctx ended while waiting for one.
func (p *Prober) start(ctx context.Context, node string, wg *sync.WaitGroup) bool {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	p.mu.Lock()
	t, ok := p.targets[node]
	if !ok || t.inFlight {
		p.mu.Unlock()
		<-p.sem
		return true
	}
	t.inFlight = true
	conn, gen, endpoint := t.conn, t.gen, t.endpoint
	p.mu.Unlock()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() { <-p.sem }()
		status, err := p.check(ctx, conn)
		p.record(node, gen, endpoint, status, err)
	}()
	return true
}

func (p *Prober) check(ctx context.Context, conn *grpc.ClientConn) (healthpb.HealthCheckResponse_ServingStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return healthpb.HealthCheckResponse_UNKNOWN, err
	}
	return resp.GetStatus(), nil
}

func (p *Prober) record(node string, gen uint64, endpoint string, status healthpb.HealthCheckResponse_ServingStatus, err error) {
	now := p.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.targets[node]
	if !ok || t.gen != gen {
		return
	}
	t.inFlight = false
	t.result.Endpoint = endpoint
	t.result.LastAttempt = now
	t.result.Err = err
	if err == nil {
		t.result.LastAnswer = now
		t.result.Status = status
	} else {
		p.log.Debug("probe failed", "node", node, "endpoint", endpoint, "err", err)
	}
}

func (p *Prober) close() {
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for node, t := range p.targets {
		_ = t.conn.Close()
		delete(p.targets, node)
	}
}

// Close stops using every connection. Call it when the prober was used
// through ProbeAll only; Run closes on its own.
func (p *Prober) Close() { p.close() }

// EndpointAnnotation on a Node overrides the health endpoint (host:port)
// derived from its status.
const EndpointAnnotation = "health.bosun.dev/endpoint"

// EndpointOf is the node-agent health endpoint of n: the EndpointAnnotation
// when set, else the node's first InternalIP (then ExternalIP, then
// Hostname) with status.daemonEndpoints.kubeletEndpoint.Port. "" when the
// node advertises none; such a node is judged by its Lease alone.
func EndpointOf(n *corev1.Node) string {
	if a := n.GetMetadata().GetAnnotations()[EndpointAnnotation]; a != "" {
		return a
	}
	port := n.GetStatus().GetDaemonEndpoints().GetKubeletEndpoint().GetPort()
	if port <= 0 {
		return ""
	}
	for _, typ := range []string{"InternalIP", "ExternalIP", "Hostname"} {
		for _, a := range n.GetStatus().GetAddresses() {
			if a.GetType() == typ && a.GetAddress() != "" {
				return net.JoinHostPort(a.GetAddress(), strconv.Itoa(int(port)))
			}
		}
	}
	return ""
}
