package checker

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"bosun.dev/pkg/leaderelection"
	"bosun.dev/services/health-checker/internal/eviction"
	"bosun.dev/services/health-checker/internal/lease"
	"bosun.dev/services/health-checker/internal/probe"
)

// Defaults of Options.
const (
	DefaultGracePeriod   = 4 * time.Second
	DefaultMonitorPeriod = 500 * time.Millisecond
	DefaultLockNamespace = "bosun-system"
	DefaultLockName      = "health-checker"
)

// Options are the health-checker's own settings, one flag each.
type Options struct {
	LeaseNamespace string
	// GracePeriod is how long a node may be silent (Lease not renewed, or
	// health endpoint not answering) before it is Unknown.
	GracePeriod time.Duration
	// MonitorPeriod is the interval between two passes over every node.
	MonitorPeriod time.Duration

	ProbeInterval    time.Duration
	ProbeTimeout     time.Duration
	ProbeConcurrency int
	ProbeJitter      float64
	// NodeAgentCAFile, when set, probes over TLS verified with this CA;
	// NodeAgentCertFile and NodeAgentKeyFile add a client certificate.
	NodeAgentCAFile, NodeAgentCertFile, NodeAgentKeyFile string

	DefaultTolerationSeconds int64
	UnhealthyThreshold       float64
	EvictionRate             float64
	EvictionBurst            int

	LeaderElect   bool
	LockNamespace string
	LockName      string
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
}

// DefaultOptions are the defaults of every flag.
func DefaultOptions() Options {
	return Options{
		LeaseNamespace:           lease.DefaultNamespace,
		GracePeriod:              DefaultGracePeriod,
		MonitorPeriod:            DefaultMonitorPeriod,
		ProbeInterval:            probe.DefaultInterval,
		ProbeTimeout:             probe.DefaultTimeout,
		ProbeConcurrency:         probe.DefaultConcurrency,
		ProbeJitter:              probe.DefaultJitter,
		DefaultTolerationSeconds: eviction.DefaultTolerationSeconds,
		UnhealthyThreshold:       eviction.DefaultUnhealthyThreshold,
		EvictionRate:             eviction.DefaultEvictionRate,
		EvictionBurst:            eviction.DefaultEvictionBurst,
		LeaderElect:              true,
		LockNamespace:            DefaultLockNamespace,
		LockName:                 DefaultLockName,
		LeaseDuration:            leaderelection.DefaultLeaseDuration,
		RenewDeadline:            leaderelection.DefaultRenewDeadline,
		RetryPeriod:              leaderelection.DefaultRetryPeriod,
	}
}

// RegisterFlags adds one flag per option to fs, with o's values as defaults.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.LeaseNamespace, "node-lease-namespace", o.LeaseNamespace, "namespace of the node heartbeat Leases (one per node, named after it)")
	fs.DurationVar(&o.GracePeriod, "node-grace-period", o.GracePeriod, "how long a node may go without renewing its Lease or answering health checks before it is Unknown and tainted unreachable")
	fs.DurationVar(&o.MonitorPeriod, "node-monitor-period", o.MonitorPeriod, "interval between two passes over every node (conditions, taints, evictions)")
	fs.DurationVar(&o.ProbeInterval, "probe-interval", o.ProbeInterval, "interval between two gRPC health checks of one node-agent")
	fs.DurationVar(&o.ProbeTimeout, "probe-timeout", o.ProbeTimeout, "timeout of one gRPC health check")
	fs.IntVar(&o.ProbeConcurrency, "probe-concurrency", o.ProbeConcurrency, "most health checks in flight at once")
	fs.Float64Var(&o.ProbeJitter, "probe-jitter", o.ProbeJitter, "share of --probe-interval by which each node's next check moves at random, either way (0 to 1)")
	fs.StringVar(&o.NodeAgentCAFile, "node-agent-ca-file", o.NodeAgentCAFile, "CA of the node-agents' serving certificates for the health checks, which verify the node's name (default: --client-ca-file, presenting --client-cert-file; plaintext with --insecure)")
	fs.StringVar(&o.NodeAgentCertFile, "node-agent-cert-file", o.NodeAgentCertFile, "client certificate presented to node-agents (with --node-agent-ca-file)")
	fs.StringVar(&o.NodeAgentKeyFile, "node-agent-key-file", o.NodeAgentKeyFile, "key of --node-agent-cert-file")
	fs.Int64Var(&o.DefaultTolerationSeconds, "default-toleration-seconds", o.DefaultTolerationSeconds, "seconds a pod without a toleration of the unreachable or not-ready taint stays on such a node before it is evicted")
	fs.Float64Var(&o.UnhealthyThreshold, "unhealthy-threshold", o.UnhealthyThreshold, "share of nodes (0 to 1) that, when exceeded by the unhealthy ones, stops all evictions")
	fs.Float64Var(&o.EvictionRate, "eviction-rate", o.EvictionRate, "most pod evictions per second")
	fs.IntVar(&o.EvictionBurst, "eviction-burst", o.EvictionBurst, "most pod evictions at once before --eviction-rate applies")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "elect a leader among replicas; only the leader checks nodes")
	fs.StringVar(&o.LockNamespace, "leader-elect-namespace", o.LockNamespace, "namespace of the leader election Lease")
	fs.StringVar(&o.LockName, "leader-elect-name", o.LockName, "name of the leader election Lease")
	fs.DurationVar(&o.LeaseDuration, "leader-elect-lease-duration", o.LeaseDuration, "how long standbys wait after the last renewal before taking over")
	fs.DurationVar(&o.RenewDeadline, "leader-elect-renew-deadline", o.RenewDeadline, "how long the leader keeps leading without renewing")
	fs.DurationVar(&o.RetryPeriod, "leader-elect-retry-period", o.RetryPeriod, "interval between attempts to acquire or renew leadership")
}

// Validate checks o and names the flag of the first wrong value.
func (o *Options) Validate() error {
	var errs []error
	bad := func(flag string, v any, why string) {
		errs = append(errs, fmt.Errorf("--%s=%v: %s", flag, v, why))
	}
	if o.LeaseNamespace == "" {
		bad("node-lease-namespace", `""`, "must not be empty")
	}
	if o.GracePeriod <= 0 {
		bad("node-grace-period", o.GracePeriod, "must be positive")
	}
	if o.MonitorPeriod <= 0 {
		bad("node-monitor-period", o.MonitorPeriod, "must be positive")
	} else if o.GracePeriod > 0 && o.MonitorPeriod > o.GracePeriod {
		bad("node-monitor-period", o.MonitorPeriod, fmt.Sprintf("must not exceed --node-grace-period (%v)", o.GracePeriod))
	}
	if o.ProbeInterval <= 0 {
		bad("probe-interval", o.ProbeInterval, "must be positive")
	} else if o.GracePeriod > 0 && o.ProbeInterval >= o.GracePeriod {
		bad("probe-interval", o.ProbeInterval, fmt.Sprintf("must be less than --node-grace-period (%v), or one lost probe makes a node Unknown", o.GracePeriod))
	}
	if o.ProbeTimeout <= 0 {
		bad("probe-timeout", o.ProbeTimeout, "must be positive")
	} else if o.GracePeriod > 0 && o.ProbeTimeout >= o.GracePeriod {
		bad("probe-timeout", o.ProbeTimeout, fmt.Sprintf("must be less than --node-grace-period (%v)", o.GracePeriod))
	}
	if o.ProbeConcurrency < 1 {
		bad("probe-concurrency", o.ProbeConcurrency, "must be at least 1")
	}
	if o.ProbeJitter < 0 || o.ProbeJitter > 1 {
		bad("probe-jitter", o.ProbeJitter, "must be between 0 and 1")
	}
	if (o.NodeAgentCertFile == "") != (o.NodeAgentKeyFile == "") {
		bad("node-agent-cert-file", o.NodeAgentCertFile, "--node-agent-cert-file and --node-agent-key-file go together")
	}
	if (o.NodeAgentCertFile != "") && o.NodeAgentCAFile == "" {
		bad("node-agent-ca-file", `""`, "is required with --node-agent-cert-file")
	}
	if o.DefaultTolerationSeconds < 0 {
		bad("default-toleration-seconds", o.DefaultTolerationSeconds, "must not be negative")
	}
	if !(o.UnhealthyThreshold > 0 && o.UnhealthyThreshold <= 1) {
		bad("unhealthy-threshold", o.UnhealthyThreshold, "must be above 0 and at most 1")
	}
	if !(o.EvictionRate > 0) {
		bad("eviction-rate", o.EvictionRate, "must be positive")
	}
	if o.EvictionBurst < 1 {
		bad("eviction-burst", o.EvictionBurst, "must be at least 1")
	}
	if o.LeaderElect {
		if o.LockNamespace == "" {
			bad("leader-elect-namespace", `""`, "must not be empty")
		}
		if o.LockName == "" {
			bad("leader-elect-name", `""`, "must not be empty")
		}
		if o.RetryPeriod <= 0 || o.RenewDeadline <= o.RetryPeriod || o.LeaseDuration <= o.RenewDeadline {
			bad("leader-elect-renew-deadline", o.RenewDeadline, fmt.Sprintf(
				"need 0 < --leader-elect-retry-period (%v) < --leader-elect-renew-deadline < --leader-elect-lease-duration (%v)",
				o.RetryPeriod, o.LeaseDuration))
		}
	}
	return errors.Join(errs...)
}
