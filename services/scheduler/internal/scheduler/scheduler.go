// Package scheduler runs Bosun's scheduler: informers on pods, nodes and
// namespaces feed the cache (bound and assumed pods per node) and the
// scheduling queue (pending pods); one goroutine runs scheduling cycles,
// one pod at a time over a snapshot of the cache, and hands each placed pod
// to a binding goroutine, so that binding (a round trip to the apiserver)
// overlaps with the next cycles. With leader election only the leader
// schedules; standbys keep their caches warm.
//
// Pods whose spec.schedulerName names no profile of this scheduler are left
// alone, so another scheduler can run beside it.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/clock"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/informer"
	"bosun.dev/pkg/leaderelection"
	"bosun.dev/services/scheduler/internal/cache"
	"bosun.dev/services/scheduler/internal/framework"
	"bosun.dev/services/scheduler/internal/plugins"
	"bosun.dev/services/scheduler/internal/queue"
)

// Defaults of Config.
const (
	DefaultParallelism        = 16
	DefaultMaxConcurrentBinds = 256
	DefaultBindTimeout        = 30 * time.Second
	DefaultLeaseNamespace     = "bosun-system"
	DefaultLeaseName          = "scheduler"
)

// LeaderElection configures leader election among replicas.
type LeaderElection struct {
	// Enabled: without it this replica schedules alone.
	Enabled bool
	// Namespace and Name of the Lease; DefaultLeaseNamespace/DefaultLeaseName.
	Namespace, Name string
	// Identity of this replica; hostname plus pid when empty.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod as in pkg/leaderelection;
	// its defaults when zero.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// Config configures a Scheduler.
type Config struct {
	// Conn reaches the apiserver.
	Conn grpc.ClientConnInterface
	// Configuration holds the profiles; framework.DefaultConfiguration()
	// when nil.
	Configuration *framework.Configuration
	// Registry and DefaultPlugins are the plugins; the built-in ones when nil.
	Registry       framework.Registry
	DefaultPlugins []framework.PluginRef
	// Parallelism bounds the goroutines filtering and scoring nodes in one
	// cycle; DefaultParallelism when zero.
	Parallelism int
	// MaxConcurrentBinds bounds the binding cycles in flight;
	// DefaultMaxConcurrentBinds when zero.
	MaxConcurrentBinds int
	// BindTimeout bounds one bind call; DefaultBindTimeout when zero.
	BindTimeout time.Duration
	// Seed seeds the tie-breaking between equally scored nodes, so that
	// runs over the same cluster and pods are reproducible.
	Seed uint64
	// InitialBackoff and MaxBackoff bound the back-off of failed pods;
	// the queue's defaults (1 s, 10 s) when zero.
	InitialBackoff, MaxBackoff time.Duration
	// LeaderElection among replicas.
	LeaderElection LeaderElection
	// Clock times back-offs; the real clock when nil.
	Clock clock.Clock
	// Logger receives logs; slog.Default() when nil.
	Logger *slog.Logger
	// Metrics registers the scheduler's metrics when not nil.
	Metrics prometheus.Registerer
}

// Scheduler binds pending pods to nodes.
type Scheduler struct {
	cfg      Config
	log      *slog.Logger
	cache    *cache.Cache
	queue    *queue.Queue
	snapshot *cache.Snapshot
	profiles map[string]*framework.Framework
	metrics  *metrics
	rec      *recorder

	pods       *informer.Informer[*corev1.Pod]
	nodes      *informer.Informer[*corev1.Node]
	namespaces *informer.Informer[*corev1.Namespace]

	percentageOfNodesToScore int32
	nextStartNodeIndex       int
	rng                      *rand.Rand
	// feasibleBuf and statusBuf are the per-cycle scratch of filtering,
	// reused across cycles (only the scheduling goroutine uses them).
	feasibleBuf []*framework.NodeInfo
	statusBuf   []*framework.Status

	bindSem chan struct{}
	binds   sync.WaitGroup
	leading atomic.Bool
}

// New builds a Scheduler; Run starts it.
func New(cfg Config) (*Scheduler, error) {
	if cfg.Conn == nil {
		return nil, errors.New("scheduler: Conn is required")
	}
	if cfg.Configuration == nil {
		cfg.Configuration = framework.DefaultConfiguration()
	}
	if cfg.Registry == nil {
		cfg.Registry = plugins.NewRegistry()
	}
	if cfg.DefaultPlugins == nil {
		cfg.DefaultPlugins = plugins.Defaults()
	}
	if err := cfg.Configuration.Validate(cfg.Registry, cfg.DefaultPlugins); err != nil {
		return nil, err
	}
	if cfg.Parallelism <= 0 {
		cfg.Parallelism = DefaultParallelism
	}
	if cfg.MaxConcurrentBinds <= 0 {
		cfg.MaxConcurrentBinds = DefaultMaxConcurrentBinds
	}
	if cfg.BindTimeout <= 0 {
		cfg.BindTimeout = DefaultBindTimeout
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	le := &cfg.LeaderElection
	if le.Namespace == "" {
		le.Namespace = DefaultLeaseNamespace
	}
	if le.Name == "" {
		le.Name = DefaultLeaseName
	}
	if le.Identity == "" {
		host, _ := os.Hostname()
		le.Identity = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	s := &Scheduler{
		cfg:                      cfg,
		log:                      cfg.Logger,
		cache:                    cache.New(),
		snapshot:                 cache.NewSnapshot(),
		profiles:                 map[string]*framework.Framework{},
		metrics:                  newMetrics(cfg.Metrics),
		percentageOfNodesToScore: cfg.Configuration.PercentageOfNodesToScore,
		rng:                      rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		bindSem:                  make(chan struct{}, cfg.MaxConcurrentBinds),
	}
	logger := cfg.Logger
	s.pods = informer.New(client.For[*corev1.Pod](cfg.Conn), informer.Options{Logger: logger})
	s.nodes = informer.New(client.For[*corev1.Node](cfg.Conn), informer.Options{Logger: logger})
	s.namespaces = informer.New(client.For[*corev1.Namespace](cfg.Conn), informer.Options{Logger: logger})

	events := map[string][]framework.ClusterEvent{}
	var fws []*framework.Framework
	for _, p := range cfg.Configuration.Profiles {
		fw, err := framework.New(p, cfg.Registry, cfg.DefaultPlugins, framework.Options{
			Snapshot: s.snapshot, Conn: cfg.Conn, Parallelism: cfg.Parallelism,
			Nominator: nominator{s}, NamespaceLabels: s.namespaceLabels,
		})
		if err != nil {
			return nil, err
		}
		s.profiles[p.SchedulerName] = fw
		fws = append(fws, fw)
	}
	// A plugin's events are the union over profiles (the same plugin
	// registers the same events in each).
	for _, fw := range fws {
		for name, evs := range fw.QueueingEvents() {
			events[name] = evs
		}
	}
	s.queue = queue.New(queue.Options{Clock: cfg.Clock, InitialBackoff: cfg.InitialBackoff, MaxBackoff: cfg.MaxBackoff, QueueingEvents: events})
	s.rec = newRecorder(cfg.Conn, le.Identity, logger)
	s.addEventHandlers()
	return s, nil
}

// nominator breaks the cycle between the frameworks (built first) and the
// queue (built with their events).
type nominator struct{ s *Scheduler }

func (n nominator) NominatedPodsForNode(name string) []*framework.PodInfo {
	return n.s.queue.NominatedPodsForNode(name)
}

func (s *Scheduler) namespaceLabels(name string) labels.Set {
	ns, ok := s.namespaces.Get("", name)
	if !ok {
		return nil
	}
	return ns.GetMetadata().GetLabels()
}

// Leading reports whether this replica is scheduling.
func (s *Scheduler) Leading() bool { return s.leading.Load() }

// Cache is the scheduler's cache, for tests.
func (s *Scheduler) Cache() *cache.Cache { return s.cache }

// Queue is the scheduler's queue, for tests.
func (s *Scheduler) Queue() *queue.Queue { return s.queue }

// Run starts the informers, waits for their caches, and schedules until ctx
// ends (with leader election: while this replica leads). A replica that
// loses leadership (an apiserver restart longer than the renew deadline
// will do it) waits for its binds in flight, which the apiserver's
// compare-and-set keeps from binding twice, and stands for election again,
// as the controller and the health-checker do; its informers keep its
// cache current meanwhile. It returns nil when ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, run := range []func(context.Context) error{s.namespaces.Run, s.nodes.Run, s.pods.Run} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = run(ctx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); s.reportQueueLength(ctx) }()
	if !informer.WaitForCacheSync(ctx, s.namespaces, s.nodes, s.pods) {
		return nil
	}
	s.log.Info("caches synced", "nodes", s.cache.NodeCount(), "pods", s.cache.PodCount())
	le := s.cfg.LeaderElection
	if !le.Enabled {
		s.schedule(ctx)
		return nil
	}
	el, err := leaderelection.New(leaderelection.Config{
		Conn: s.cfg.Conn, Lock: leaderelection.Lock{Namespace: le.Namespace, Name: le.Name}, Identity: le.Identity,
		LeaseDuration: le.LeaseDuration, RenewDeadline: le.RenewDeadline, RetryPeriod: le.RetryPeriod,
		Logger: s.log,
		Callbacks: leaderelection.Callbacks{
			OnStartedLeading: func(lctx context.Context, fence leaderelection.Fence) {
				s.log.Info("leading: scheduling", "fence", fence.String())
				s.schedule(lctx)
			},
			OnStoppedLeading: func() {
				if ctx.Err() == nil {
					s.log.Warn("lost leadership; standing for election again")
				}
			},
		},
	})
	if err != nil {
		return err
	}
	return el.Run(ctx)
}

// schedule runs scheduling cycles until ctx ends, then waits for the
// binding cycles in flight.
func (s *Scheduler) schedule(ctx context.Context) {
	s.leading.Store(true)
	s.metrics.leader.Set(1)
	defer func() {
		s.leading.Store(false)
		s.metrics.leader.Set(0)
	}()
	stop := make(chan struct{})
	done := make(chan struct{})
	s.queue.Open() // closed when an earlier term ended
	go func() { defer close(done); s.queue.Run(stop) }()
	go func() { <-ctx.Done(); close(stop) }()
	for {
		if err := s.scheduleOne(ctx); err != nil {
			break
		}
	}
	<-done
	s.binds.Wait()
	s.rec.wait()
}

func (s *Scheduler) reportQueueLength(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a, b, u := s.queue.Len()
			s.metrics.pending.WithLabelValues("active").Set(float64(a))
			s.metrics.pending.WithLabelValues("backoff").Set(float64(b))
			s.metrics.pending.WithLabelValues("unschedulable").Set(float64(u))
			s.metrics.cacheNodes.Set(float64(s.cache.NodeCount()))
			s.metrics.cachePods.Set(float64(s.cache.PodCount()))
		}
	}
}
