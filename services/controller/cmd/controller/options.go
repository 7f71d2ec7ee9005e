package main

import (
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"bosun.dev/pkg/leaderelection"
	"bosun.dev/services/controller/internal/manager"
)

// options are the controller's own flags.
type options struct {
	controllers      string
	workers          string
	leaderElect      bool
	leaseNamespace   string
	leaseName        string
	identity         string
	leaseDuration    time.Duration
	renewDeadline    time.Duration
	retryPeriod      time.Duration
	clusterCIDR      string
	nodeCIDRMaskSize int
	resyncPeriod     time.Duration
}

func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.controllers, "controllers", "", "comma-separated controllers to run (default: all): "+strings.Join(manager.Names(manager.Registry()), ", "))
	fs.StringVar(&o.workers, "workers", "", fmt.Sprintf("workers per controller, e.g. replicaset=10,endpoints=2 (default %d each)", manager.DefaultWorkers))
	fs.BoolVar(&o.leaderElect, "leader-elect", true, "run controllers only while holding the leader Lease, so that replicas can stand by")
	fs.StringVar(&o.leaseNamespace, "leader-elect-namespace", "bosun-system", "namespace of the leader Lease")
	fs.StringVar(&o.leaseName, "leader-elect-name", "controller", "name of the leader Lease")
	fs.StringVar(&o.identity, "identity", "", "this replica's name in the Lease (default: hostname plus a random suffix)")
	fs.DurationVar(&o.leaseDuration, "leader-elect-lease-duration", leaderelection.DefaultLeaseDuration, "how long standbys wait after the leader's last renewal before taking over")
	fs.DurationVar(&o.renewDeadline, "leader-elect-renew-deadline", leaderelection.DefaultRenewDeadline, "how long the leader keeps leading without a successful renewal")
	fs.DurationVar(&o.retryPeriod, "leader-elect-retry-period", leaderelection.DefaultRetryPeriod, "interval between attempts to acquire or renew the Lease")
	fs.StringVar(&o.clusterCIDR, "cluster-cidr", "", "range node IPAM assigns node pod CIDRs from, e.g. 10.244.0.0/16 (\"\": node IPAM off)")
	fs.IntVar(&o.nodeCIDRMaskSize, "node-cidr-mask-size", 24, "prefix length of each node's pod CIDR")
	fs.DurationVar(&o.resyncPeriod, "resync-period", 10*time.Minute, "interval at which every cached object is reconciled again (0: never)")
}

// config turns the flags into a manager configuration, naming the flag of
// any bad value.
func (o options) config(conn grpc.ClientConnInterface, reg prometheus.Registerer, log *slog.Logger) (manager.Config, error) {
	cfg := manager.Config{
		Conn: conn, LeaderElect: o.leaderElect,
		Lock:          leaderelection.Lock{Namespace: o.leaseNamespace, Name: o.leaseName},
		Identity:      o.identity,
		LeaseDuration: o.leaseDuration, RenewDeadline: o.renewDeadline, RetryPeriod: o.retryPeriod,
		ClusterCIDR: o.clusterCIDR, NodeCIDRMaskSize: o.nodeCIDRMaskSize,
		ResyncPeriod: o.resyncPeriod, Registry: reg, Log: log,
	}
	if o.controllers != "" {
		for _, n := range strings.Split(o.controllers, ",") {
			if n = strings.TrimSpace(n); n != "" {
				cfg.Controllers = append(cfg.Controllers, n)
			}
		}
	}
	workers, err := parseWorkers(o.workers)
	if err != nil {
		return cfg, err
	}
	cfg.Workers = workers
	if o.leaderElect && o.leaseName == "" {
		return cfg, fmt.Errorf("--leader-elect-name: must not be empty")
	}
	if cfg.Identity == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		cfg.Identity = host + "_" + hex.EncodeToString(b)
	}
	if o.resyncPeriod < 0 {
		return cfg, fmt.Errorf("--resync-period: %v: must not be negative", o.resyncPeriod)
	}
	return cfg, nil
}

// parseWorkers reads "name=N,name=N".
func parseWorkers(s string) (map[string]int, error) {
	out := map[string]int{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		name, n, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--workers: %q: want name=count", kv)
		}
		v, err := strconv.Atoi(n)
		if err != nil || v < 1 {
			return nil, fmt.Errorf("--workers: %q: the count must be a positive integer", kv)
		}
		out[name] = v
	}
	return out, nil
}
