package scheduler

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/tests/conformance/harness"
)

// A rollout from one scheduler to another: the implementation under test
// (Bosun's by default) leads, the minimal scheduler waits on the same Lease
// and binds nothing; when the leader stops, the minimal scheduler takes
// over. The proof that the standby stays idle is a pod with pod
// anti-affinity against the only node's pod: the leader (claiming
// affinity) leaves it pending, while the minimal scheduler, which does not
// claim affinity, would bind it as soon as it acted.
func TestHandoverToMinimalScheduler(t *testing.T) {
	skipShort(t)
	leader := harness.FromEnv(t, EnvScheduler, bosunScheduler, bosunArgs)
	standby := harness.Implementation{Name: minimalScheduler, Binary: harness.Build(t, minimalScheduler)}
	c := harness.StartCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := &env{t: t, ctx: ctx, caps: harness.Capabilities{}, cluster: c,
		nodes: client.For[*corev1.Node](c.Admin), pods: client.For[*corev1.Pod](c.Admin)}

	first := c.Start(t, leader, "bosun-scheduler")
	var holder string
	harness.Eventually(t, waitFor, "the first scheduler holds bosun-system/scheduler", func() error {
		var err error
		if holder, err = leaseHolder(e); err == nil && holder == "" {
			err = fmt.Errorf("no holder")
		}
		return err
	})
	c.Start(t, standby, "bosun-scheduler")
	e.node("n1")
	e.pod("db", podLabels("app", "db"))
	e.expectOn("db", "n1")
	e.pod("apart", antiAffinity("app", "db"))
	e.expectPending("apart")
	if now, err := leaseHolder(e); err != nil || now != holder {
		t.Fatalf("Lease holder %q (%v) while the first scheduler runs; want %q", now, err, holder)
	}

	first.Stop()
	harness.Eventually(t, waitFor, "the minimal scheduler takes the Lease over", func() error {
		now, err := leaseHolder(e)
		if err == nil && (now == "" || now == holder) {
			err = fmt.Errorf("holder %q", now)
		}
		return err
	})
	e.pod("after")
	e.expectOn("after", "n1")
	e.expectOn("apart", "n1")
}
