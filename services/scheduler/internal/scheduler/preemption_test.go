package scheduler_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/services/scheduler/internal/scheduler"
)

// A high-priority pod that fits nowhere evicts the lower-priority pod in
// its way, records the nominated node, and is bound there once the victim
// is gone.
func TestPreemptionNominatesAndBinds(t *testing.T) {
	c := startCluster(t)
	c.addNode("n1", "2", "4Gi")
	c.startScheduler(scheduler.Config{})
	ctx := context.Background()

	c.addPod("low", requests("1500m", "1Gi"), priority(10))
	c.waitBound("low")
	c.addPod("high", requests("1500m", "1Gi"), priority(1000))

	// The victim is marked for deletion (its grace period runs); the
	// high-priority pod is nominated to its node meanwhile.
	eventually(t, 30*time.Second, func() error {
		if c.pod("low").GetMetadata().GetDeletionTimestamp() == nil {
			return fmt.Errorf("low is not being deleted")
		}
		if n := c.pod("high").GetStatus().GetNominatedNodeName(); n != "n1" {
			return fmt.Errorf("high is nominated to %q", n)
		}
		return nil
	})
	if n := c.pod("high").GetSpec().GetNodeName(); n != "" {
		t.Fatalf("high bound to %s while the victim still runs", n)
	}
	// The node-agent would now stop the victim's containers and remove it.
	zero := int64(0)
	if _, err := c.pods.Delete(ctx, "default", "low", client.DeleteOptions{GracePeriodSeconds: &zero}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	if node := c.waitBound("high"); node != "n1" {
		t.Fatalf("high bound to %s, want n1", node)
	}
	evs, _, err := client.For[*corev1.Event](c.conn).ListAll(ctx, client.ListOptions{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range evs {
		found = found || (e.GetInvolvedObject().GetName() == "low" && e.GetReason() == "Preempted")
	}
	if !found {
		t.Fatal("no Preempted event recorded on the victim")
	}
}
