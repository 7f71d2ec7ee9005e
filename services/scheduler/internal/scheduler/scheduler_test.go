package scheduler_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/services/scheduler/internal/scheduler"
)

// Pods are bound to nodes where they fit; a pod that fits nowhere gets
// PodScheduled=False with the per-reason count and an event, and is placed
// as soon as a node that fits it is added.
func TestSchedulesAndExplains(t *testing.T) {
	c := startCluster(t)
	c.addNode("small-1", "1", "1Gi")
	c.addNode("small-2", "1", "1Gi")
	c.addNode("gpu-1", "8", "16Gi", withTaint("dedicated", "gpu", "NoSchedule"))
	c.startScheduler(scheduler.Config{})

	c.addPod("web", requests("500m", "256Mi"))
	if node := c.waitBound("web"); !strings.HasPrefix(node, "small-") {
		t.Fatalf("web bound to %s, want a small node (gpu-1 is tainted)", node)
	}
	c.addPod("big", requests("2", "512Mi"))
	want := "0/3 nodes are available: 2 Insufficient cpu, 1 node(s) had untolerated taint {dedicated: gpu}." +
		" preemption: no node can be made available by evicting lower-priority pods."
	eventually(t, 30*time.Second, func() error {
		cond := condition(c.pod("big"), "PodScheduled")
		if cond == nil || cond.GetStatus() != "False" || cond.GetMessage() != want {
			return fmt.Errorf("PodScheduled condition of big is %v, want False with %q", cond, want)
		}
		return nil
	})
	eventually(t, 30*time.Second, func() error {
		evs, _, err := client.For[*corev1.Event](c.conn).ListAll(context.Background(), client.ListOptions{Namespace: "default"})
		if err != nil {
			return err
		}
		for _, e := range evs {
			if e.GetInvolvedObject().GetName() == "big" && e.GetReason() == scheduler.ReasonFailedScheduling && e.GetMessage() == want {
				return nil
			}
		}
		return fmt.Errorf("no FailedScheduling event for big among %d events", len(evs))
	})
	c.addNode("large-1", "4", "8Gi")
	if node := c.waitBound("big"); node != "large-1" {
		t.Fatalf("big bound to %s, want large-1", node)
	}
}

// A pod naming another scheduler is left alone.
func TestLeavesOtherSchedulersPodsAlone(t *testing.T) {
	c := startCluster(t)
	c.addNode("n1", "4", "8Gi")
	s := c.startScheduler(scheduler.Config{})
	c.addPod("theirs", schedulerName("other-scheduler"))
	c.addPod("ours")
	// Created first, "theirs" would have been popped before "ours".
	c.waitBound("ours")
	if where, ok := s.Queue().Has("default/theirs"); ok {
		t.Fatalf("pod of another scheduler queued in %s", where)
	}
	p := c.pod("theirs")
	if p.GetSpec().GetNodeName() != "" || condition(p, "PodScheduled") != nil {
		t.Fatalf("pod of another scheduler was touched: node %q, conditions %v", p.GetSpec().GetNodeName(), p.GetStatus().GetConditions())
	}
}

// A pod created before any node waits as unschedulable and is placed when
// the first node registers.
func TestPlacesPodWhenTheFirstNodeArrives(t *testing.T) {
	c := startCluster(t)
	s := c.startScheduler(scheduler.Config{})
	c.addPod("early")
	eventually(t, 30*time.Second, func() error {
		cond := condition(c.pod("early"), "PodScheduled")
		if cond == nil || cond.GetMessage() != "0/0 nodes are available: no nodes are registered." {
			return fmt.Errorf("condition %v", cond)
		}
		return nil
	})
	if where, _ := s.Queue().Has("default/early"); where != "unschedulable" {
		t.Fatalf("pod waits in %q, want unschedulable", where)
	}
	c.addNode("n1", "1", "1Gi")
	if node := c.waitBound("early"); node != "n1" {
		t.Fatalf("bound to %s", node)
	}
}
