// Command scheduler binds pending pods to nodes through its plugin
// framework (see services/scheduler/README.md): it watches pods, nodes and
// namespaces, places each pod whose schedulerName is one of its profiles on
// the best feasible node, binds it through the apiserver, and records why a
// pod that fits nowhere is pending. Replicas elect a leader; only the leader
// binds.
package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"bosun.dev/pkg/leaderelection"
	"bosun.dev/pkg/server"
	"bosun.dev/services/scheduler/internal/framework"
	"bosun.dev/services/scheduler/internal/plugins"
	"bosun.dev/services/scheduler/internal/queue"
	"bosun.dev/services/scheduler/internal/scheduler"
)

const name = "scheduler"

// options are the scheduler's own flags.
type options struct {
	configFile               string
	percentageOfNodesToScore int
	parallelism              int
	maxConcurrentBinds       int
	bindTimeout              time.Duration
	initialBackoff           time.Duration
	maxBackoff               time.Duration
	seed                     uint64
	leaderElect              bool
	leaseNamespace           string
	leaseName                string
	identity                 string
	leaseDuration            time.Duration
	renewDeadline            time.Duration
	retryPeriod              time.Duration
}

func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.configFile, "config", "", "scheduler configuration file (YAML: profiles, plugins, weights); default: one profile, default-scheduler, with the default plugins")
	fs.IntVar(&o.percentageOfNodesToScore, "percentage-of-nodes-to-score", -1, "share of nodes (1-100) searched for feasible ones before scoring; 0 adapts to the cluster size; -1 takes the configuration file's value")
	fs.IntVar(&o.parallelism, "parallelism", scheduler.DefaultParallelism, "most goroutines filtering and scoring nodes in one scheduling cycle (no more than GOMAXPROCS; a cycle whose work is light uses one)")
	fs.IntVar(&o.maxConcurrentBinds, "max-concurrent-binds", scheduler.DefaultMaxConcurrentBinds, "binding calls in flight at once")
	fs.DurationVar(&o.bindTimeout, "bind-timeout", scheduler.DefaultBindTimeout, "timeout of one bind call")
	fs.DurationVar(&o.initialBackoff, "pod-initial-backoff", queue.DefaultInitialBackoff, "back-off of a pod after its first failed attempt; doubles per attempt")
	fs.DurationVar(&o.maxBackoff, "pod-max-backoff", queue.DefaultMaxBackoff, "longest back-off of a failed pod")
	fs.Uint64Var(&o.seed, "seed", 0, "seed of the random choice between equally scored nodes (runs with the same seed, cluster and pods decide alike)")
	fs.BoolVar(&o.leaderElect, "leader-elect", true, "elect a leader among replicas through a Lease; only the leader schedules")
	fs.StringVar(&o.leaseNamespace, "leader-elect-lease-namespace", scheduler.DefaultLeaseNamespace, "namespace of the leader election Lease")
	fs.StringVar(&o.leaseName, "leader-elect-lease-name", scheduler.DefaultLeaseName, "name of the leader election Lease")
	fs.StringVar(&o.identity, "leader-elect-identity", "", "this replica's identity in the Lease (default: hostname-pid)")
	fs.DurationVar(&o.leaseDuration, "leader-elect-lease-duration", leaderelection.DefaultLeaseDuration, "how long standbys wait after the leader's last renewal before taking over")
	fs.DurationVar(&o.renewDeadline, "leader-elect-renew-deadline", leaderelection.DefaultRenewDeadline, "how long the leader keeps scheduling without renewing; less than the lease duration")
	fs.DurationVar(&o.retryPeriod, "leader-elect-retry-period", leaderelection.DefaultRetryPeriod, "interval between attempts to acquire or renew the Lease")
}

func main() {
	var o options
	var cfg *framework.Configuration
	var sched *scheduler.Scheduler
	server.Run(server.Spec{
		Name:          name,
		DefaultListen: "127.0.0.1:10251",
		Flags:         o.register,
		Check: func() (err error) {
			cfg, err = configuration(o)
			return err
		},
		Setup: func(_ context.Context, s *server.Service) (err error) {
			sched, err = scheduler.New(scheduler.Config{
				Conn: s.Conn, Configuration: cfg,
				Parallelism: o.parallelism, MaxConcurrentBinds: o.maxConcurrentBinds, BindTimeout: o.bindTimeout,
				InitialBackoff: o.initialBackoff, MaxBackoff: o.maxBackoff, Seed: o.seed,
				LeaderElection: scheduler.LeaderElection{
					Enabled: o.leaderElect, Namespace: o.leaseNamespace, Name: o.leaseName, Identity: o.identity,
					LeaseDuration: o.leaseDuration, RenewDeadline: o.renewDeadline, RetryPeriod: o.retryPeriod,
				},
				Logger: s.Log, Metrics: s.Server.Registry(),
			})
			return err
		},
		Body: func(ctx context.Context, _ *server.Service) error { return sched.Run(ctx) },
	})
}

// configuration reads --config (or the default) and applies the flags that
// override it.
func configuration(o options) (*framework.Configuration, error) {
	cfg := framework.DefaultConfiguration()
	if o.configFile != "" {
		var err error
		if cfg, err = framework.LoadConfiguration(o.configFile, plugins.NewRegistry(), plugins.Defaults()); err != nil {
			return nil, err
		}
	}
	if o.percentageOfNodesToScore > 100 || o.percentageOfNodesToScore < -1 {
		return nil, fmt.Errorf("--percentage-of-nodes-to-score: %d is not between 0 and 100 (or -1)", o.percentageOfNodesToScore)
	}
	if o.percentageOfNodesToScore >= 0 {
		cfg.PercentageOfNodesToScore = int32(o.percentageOfNodesToScore)
	}
	switch {
	case o.parallelism < 1:
		return nil, fmt.Errorf("--parallelism: %d must be at least 1", o.parallelism)
	case o.maxConcurrentBinds < 1:
		return nil, fmt.Errorf("--max-concurrent-binds: %d must be at least 1", o.maxConcurrentBinds)
	case o.bindTimeout <= 0:
		return nil, fmt.Errorf("--bind-timeout: %s must be positive", o.bindTimeout)
	case o.initialBackoff <= 0 || o.maxBackoff < o.initialBackoff:
		return nil, fmt.Errorf("--pod-initial-backoff %s must be positive and at most --pod-max-backoff %s", o.initialBackoff, o.maxBackoff)
	}
	return cfg, nil
}
