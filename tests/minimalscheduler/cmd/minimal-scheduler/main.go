// Command minimal-scheduler runs the minimal scheduler of package
// minimalscheduler as a Bosun service: the shared flags of pkg/server
// (--apiserver, TLS, --listen with gRPC health, --metrics-listen), leader
// election on a Lease, and the scheduler as the leader's work.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"bosun.dev/pkg/leaderelection"
	"bosun.dev/pkg/server"
	"bosun.dev/tests/minimalscheduler"
)

func main() {
	var (
		schedulerName  string
		leaderElect    bool
		leaseNamespace string
		leaseName      string
		timing         leaderelection.Config
	)
	server.Run(server.Spec{
		Name:          "minimal-scheduler",
		DefaultListen: "127.0.0.1:10251",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&schedulerName, "scheduler-name", minimalscheduler.DefaultSchedulerName, "spec.schedulerName of the pods to place")
			fs.BoolVar(&leaderElect, "leader-elect", true, "elect a leader among replicas through a Lease; only the leader schedules")
			fs.StringVar(&leaseNamespace, "leader-elect-lease-namespace", "bosun-system", "namespace of the leader election Lease")
			fs.StringVar(&leaseName, "leader-elect-lease-name", "scheduler", "name of the leader election Lease (the one Bosun's scheduler uses, so the two never schedule at once)")
			fs.DurationVar(&timing.LeaseDuration, "leader-elect-lease-duration", leaderelection.DefaultLeaseDuration, "how long standbys wait after the leader's last renewal")
			fs.DurationVar(&timing.RenewDeadline, "leader-elect-renew-deadline", leaderelection.DefaultRenewDeadline, "how long the leader keeps scheduling without renewing")
			fs.DurationVar(&timing.RetryPeriod, "leader-elect-retry-period", leaderelection.DefaultRetryPeriod, "interval between attempts to acquire or renew the Lease")
		},
		Check: func() error {
			switch {
			case !leaderElect:
				return nil
			case leaseNamespace == "" || leaseName == "":
				return errors.New("--leader-elect needs --leader-elect-lease-namespace and --leader-elect-lease-name")
			case timing.RetryPeriod <= 0 || timing.RetryPeriod >= timing.RenewDeadline || timing.RenewDeadline >= timing.LeaseDuration:
				return fmt.Errorf("--leader-elect-retry-period %v, --leader-elect-renew-deadline %v and --leader-elect-lease-duration %v must grow in that order",
					timing.RetryPeriod, timing.RenewDeadline, timing.LeaseDuration)
			}
			return nil
		},
		Body: func(ctx context.Context, s *server.Service) error {
			schedule := func(ctx context.Context) error {
				return minimalscheduler.New(minimalscheduler.Config{Conn: s.Conn, SchedulerName: schedulerName, Logger: s.Log}).Run(ctx)
			}
			if !leaderElect {
				return schedule(ctx)
			}
			host, _ := os.Hostname()
			e, err := leaderelection.New(leaderelection.Config{
				Conn:     s.Conn,
				Lock:     leaderelection.Lock{Namespace: leaseNamespace, Name: leaseName},
				Identity: fmt.Sprintf("%s-%d", host, os.Getpid()),
				Logger:   s.Log,

				LeaseDuration: timing.LeaseDuration,
				RenewDeadline: timing.RenewDeadline,
				RetryPeriod:   timing.RetryPeriod,
				Callbacks: leaderelection.Callbacks{
					OnStartedLeading: func(ctx context.Context, _ leaderelection.Fence) { _ = schedule(ctx) },
				},
			})
			if err != nil {
				return err
			}
			return e.Run(ctx)
		},
	})
}
