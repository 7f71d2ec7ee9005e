// Package manager runs Bosun's controllers as one process: it elects a
// leader among the process's replicas through a Lease, and while leading
// starts shared informers, waits for their caches, and runs every enabled
// controller with its own number of workers. Writes are gated on
// leadership: before each one the manager re-reads the Lease and refuses
// the write unless this replica still holds it in the same term, so a
// replica that lost the lease without noticing changes nothing.
package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/utils/clock"

	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/leaderelection"
	"bosun.dev/services/controller/internal/controller"
)

// Runner is a controller: it waits for its caches and runs workers until
// ctx ends.
type Runner interface {
	Run(ctx context.Context, workers int)
}

// Factory builds one controller.
type Factory func(c *controller.Context, cfg *Config) (Runner, error)

// Config configures a Manager.
type Config struct {
	// Conn reaches the apiserver.
	Conn grpc.ClientConnInterface
	// Controllers are the names of the controllers to run; nil runs all.
	Controllers []string
	// Workers is the number of workers per controller name; DefaultWorkers
	// for names it does not list.
	Workers map[string]int
	// LeaderElect runs controllers only while holding Lock.
	LeaderElect bool
	// Lock is the Lease replicas compete for.
	Lock leaderelection.Lock
	// Identity names this replica; required with LeaderElect.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod tune the election
	// (leaderelection's defaults when zero).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// ClusterCIDR is the range node IPAM gives pod CIDRs from; "" disables
	// node IPAM.
	ClusterCIDR string
	// NodeCIDRMaskSize is the prefix length of each node's pod CIDR.
	NodeCIDRMaskSize int
	// ResyncPeriod redelivers every cached object to the controllers.
	ResyncPeriod time.Duration
	// Registry receives the work queue metrics; none when nil.
	Registry prometheus.Registerer
	// Clock is the clock of the election and the controllers; the real one
	// when nil.
	Clock clock.Clock
	// Log receives logs; slog.Default() when nil.
	Log *slog.Logger
	// Factories are the controllers that may run, by name; Registry() when
	// nil.
	Factories map[string]Factory
}

// DefaultWorkers is the number of workers of a controller Config.Workers
// does not mention.
const DefaultWorkers = 5

// Manager runs controllers.
type Manager struct {
	cfg     Config
	names   []string
	metrics *queueMetrics
	log     *slog.Logger

	mu     sync.Mutex
	terms  int
	leader bool
}

// New checks cfg and returns a Manager.
func New(cfg Config) (*Manager, error) {
	if cfg.Conn == nil {
		return nil, errors.New("manager: Conn is required")
	}
	if cfg.Factories == nil {
		cfg.Factories = Registry()
	}
	names := cfg.Controllers
	if names == nil {
		for n := range cfg.Factories {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		if _, ok := cfg.Factories[n]; !ok {
			return nil, fmt.Errorf("--controllers: unknown controller %q (known: %s)", n, strings.Join(Names(cfg.Factories), ", "))
		}
	}
	for n, w := range cfg.Workers {
		if _, ok := cfg.Factories[n]; !ok {
			return nil, fmt.Errorf("--workers: unknown controller %q (known: %s)", n, strings.Join(Names(cfg.Factories), ", "))
		}
		if w < 1 {
			return nil, fmt.Errorf("--workers: %s=%d: must be at least 1", n, w)
		}
	}
	if cfg.LeaderElect && cfg.Identity == "" {
		return nil, errors.New("manager: Identity is required with leader election")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Manager{cfg: cfg, names: names, metrics: newQueueMetrics(cfg.Registry), log: cfg.Log}, nil
}

// Names lists the controllers of factories, sorted.
func Names(factories map[string]Factory) []string {
	out := make([]string, 0, len(factories))
	for n := range factories {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// IsLeader reports whether the manager is running its controllers.
func (m *Manager) IsLeader() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leader
}

// Run runs until ctx ends: with leader election, the controllers run during
// each term this replica leads; without, they run at once.
func (m *Manager) Run(ctx context.Context) error {
	if !m.cfg.LeaderElect {
		return m.runControllers(ctx, nil)
	}
	var runErr error
	el, err := leaderelection.New(leaderelection.Config{
		Conn: m.cfg.Conn, Lock: m.cfg.Lock, Identity: m.cfg.Identity,
		LeaseDuration: m.cfg.LeaseDuration, RenewDeadline: m.cfg.RenewDeadline, RetryPeriod: m.cfg.RetryPeriod,
		Clock: m.cfg.Clock, Logger: m.log,
		Callbacks: leaderelection.Callbacks{
			OnStartedLeading: func(ctx context.Context, fence leaderelection.Fence) {
				m.log.Info("leading", "fence", fence.String())
				gate := m.leaseGate(fence)
				// Writes the previous leader sent just before it stopped
				// may still be landing: give them a retry period to show
				// up before the caches are filled.
				if !sleepCtx(ctx, m.retryPeriod()) {
					return
				}
				if err := m.runControllers(ctx, gate); err != nil {
					runErr = err
				}
			},
			OnStoppedLeading: func() { m.log.Info("stopped leading") },
			OnNewLeader:      func(id string) { m.log.Info("leader observed", "leader", id) },
		},
	})
	if err != nil {
		return err
	}
	if err := el.Run(ctx); err != nil {
		return err
	}
	return runErr
}

// ErrNotLeader refuses a write from a replica that no longer leads.
var ErrNotLeader = status.Error(codes.FailedPrecondition, "controller manager: this replica no longer holds the leader lease")

// leaseGate re-reads the Lease: a write goes ahead only while this replica
// holds it in the term that began with fence.
func (m *Manager) leaseGate(fence leaderelection.Fence) controller.Gate {
	leases := client.For[*coordinationv1.Lease](m.cfg.Conn)
	return func(ctx context.Context) error {
		l, err := leases.Get(ctx, m.cfg.Lock.Namespace, m.cfg.Lock.Name)
		if err != nil {
			return err
		}
		if l.GetSpec().GetHolderIdentity() != m.cfg.Identity || int64(l.GetSpec().GetLeaseTransitions()) != fence.Token {
			return ErrNotLeader
		}
		return nil
	}
}

// runControllers runs one term: fresh informers and controllers, until ctx
// ends.
func (m *Manager) runControllers(ctx context.Context, gate controller.Gate) error {
	m.mu.Lock()
	m.leader = true
	m.terms++
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.leader = false
		m.mu.Unlock()
	}()
	conn := m.cfg.Conn
	if gate != nil {
		conn = controller.GatedConn{ClientConnInterface: m.cfg.Conn, Gate: gate}
	}
	informers := controller.NewInformers(m.cfg.Conn, controller.InformerOptions{ResyncPeriod: m.cfg.ResyncPeriod, Logger: m.log})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var runners []Runner
	for _, n := range m.names {
		r, err := m.cfg.Factories[n](&controller.Context{
			Conn: conn, Informers: informers, Metrics: m.metrics, Clock: m.cfg.Clock, Log: m.log.With("controller", n),
		}, &m.cfg)
		if err != nil {
			return fmt.Errorf("starting controller %s: %w", n, err)
		}
		runners = append(runners, r)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); informers.Run(ctx) }()
	if !informers.WaitForSync(ctx) {
		wg.Wait()
		return nil
	}
	m.log.Info("caches synced; starting controllers", "controllers", strings.Join(m.names, ","))
	for i, r := range runners {
		workers := DefaultWorkers
		if w, ok := m.cfg.Workers[m.names[i]]; ok {
			workers = w
		}
		wg.Add(1)
		go func() { defer wg.Done(); r.Run(ctx, workers) }()
	}
	wg.Wait()
	return nil
}

// idle is a controller with nothing to do (node IPAM without a cluster CIDR).
type idle struct{}

func (idle) Run(ctx context.Context, _ int) { <-ctx.Done() }

func (m *Manager) retryPeriod() time.Duration {
	if m.cfg.RetryPeriod > 0 {
		return m.cfg.RetryPeriod
	}
	return leaderelection.DefaultRetryPeriod
}

// sleepCtx waits d, or until ctx ends (then false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
