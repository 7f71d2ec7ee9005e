package multinode

import (
	"context"
	"fmt"
	"testing"
	"time"

	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/tests/conformance/harness"
)

// partitionFor is how long the node stays cut off.
const partitionFor = 30 * time.Second

// A node is cut off the network (iptables DROP in its namespace) for 30 s
// and healed. As in Kubernetes: the node goes Unknown and is tainted
// unreachable after the grace period, its pods are replaced on the other
// nodes, while its agent, cut off, keeps their containers running; once
// healed the node is Ready and untainted again, its agent removes the stale
// pods' containers and sandboxes, and at no moment do more live pods exist
// than the Deployment's replicas.
func TestNetworkPartitionEvictsAndHeals(t *testing.T) {
	c := Start(t, 3)
	ctx := context.Background()
	rec := c.RecordWatches(t, KindPod, KindNode, KindDeployment, KindReplicaSet)
	before := deployWeb(t, c, replicas)
	checkPodNetwork(t, c, before)
	placed := runningOn(before)
	t.Logf("pods per node before the partition: %v", placed)

	var victim *Node
	for _, nd := range c.Nodes {
		if victim == nil || placed[nd.Name] > placed[victim.Name] {
			victim = nd
		}
	}
	oldUIDs := map[string]bool{}
	for _, p := range before {
		if p.GetSpec().GetNodeName() == victim.Name {
			oldUIDs[p.GetMetadata().GetUid()] = true
		}
	}

	cut := time.Now()
	victim.Partition(t)
	healed := false
	t.Cleanup(func() {
		if !healed {
			victim.Heal(t)
		}
	})
	t.Logf("cut %s (%d pods) off the network", victim.Name, len(oldUIDs))

	var unknown, evicted, replaced time.Duration
	maxLive := 0
	for time.Since(cut) < partitionFor {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if unknown == 0 {
			if nd, err := client.For[*corev1.Node](c.Conn).Get(pctx, "", victim.Name); err == nil && ReadyStatus(nd) == "Unknown" {
				unknown = time.Since(cut)
			}
		}
		if pods, err := deploymentPods(pctx, c); err == nil {
			live := 0
			gone := true
			for _, p := range pods {
				if p.GetMetadata().GetDeletionTimestamp() == nil {
					live++
				}
				gone = gone && !oldUIDs[p.GetMetadata().GetUid()]
			}
			maxLive = max(maxLive, live)
			if gone && evicted == 0 {
				evicted = time.Since(cut)
			}
			elsewhere := 0
			for node, k := range runningOn(pods) {
				if node != victim.Name {
					elsewhere += k
				}
			}
			if elsewhere == replicas && replaced == 0 {
				replaced = time.Since(cut)
			}
		}
		cancel()
		time.Sleep(100 * time.Millisecond)
	}
	if unknown == 0 {
		t.Fatalf("%s not Unknown %v into its partition (grace %v)", victim.Name, partitionFor, gracePeriod)
	}
	if replaced == 0 {
		pods, _ := deploymentPods(ctx, c)
		t.Fatalf("the Deployment's pods not Running on the other nodes %v into the partition: %s", partitionFor, describePods(pods))
	}
	c.WaitNode(t, victim.Name, 5*time.Second, "tainted unreachable", func(nd *corev1.Node) error {
		if !hasTaint(nd, unreachableTaint) {
			return fmt.Errorf("taints %v", nd.GetSpec().GetTaints())
		}
		return nil
	})
	// Cut off, the agent knows nothing of the eviction: the stale pods'
	// containers still run on the node.
	stillRunning := 0
	for uid := range oldUIDs {
		stillRunning += len(victim.TaskPIDs(t)[uid])
	}
	t.Logf("partition: %s Unknown after %.2f s (grace %v); its %d pods deleted after %.2f s, Running elsewhere after %.2f s; %d stale containers still running on the cut-off node at the heal",
		victim.Name, unknown.Seconds(), gracePeriod, len(oldUIDs), evicted.Seconds(), replaced.Seconds(), stillRunning)

	leaseBefore := nodeLeaseRenewed(ctx, c, victim.Name)
	healAt := time.Now()
	victim.Heal(t)
	healed = true
	var renewed, readyAgain, staleGone time.Duration
	harness.Eventually(t, brokenAfter, victim.Name+" Ready and untainted after the heal, stale containers removed", func() error {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if renewed == 0 && nodeLeaseRenewed(pctx, c, victim.Name).After(leaseBefore) {
			renewed = time.Since(healAt)
		}
		if pods, err := deploymentPods(pctx, c); err == nil {
			live := 0
			for _, p := range pods {
				if p.GetMetadata().GetDeletionTimestamp() == nil {
					live++
				}
			}
			maxLive = max(maxLive, live)
		}
		if readyAgain == 0 {
			nd, err := client.For[*corev1.Node](c.Conn).Get(pctx, "", victim.Name)
			if err != nil {
				return err
			}
			if ReadyStatus(nd) != "True" || hasTaint(nd, unreachableTaint) || hasTaint(nd, notReadyTaint) {
				return fmt.Errorf("Ready=%q taints %v", ReadyStatus(nd), nd.GetSpec().GetTaints())
			}
			readyAgain = time.Since(healAt)
		}
		if staleGone == 0 {
			for uid, ids := range victim.Containers(t) {
				if oldUIDs[uid] {
					return fmt.Errorf("containers %v of replaced pod %s remain", ids, uid)
				}
			}
			staleGone = time.Since(healAt)
		}
		return nil
	})
	t.Logf("partition heal: %s renewed its Lease %.2f s after the heal, Ready and untainted after %.2f s, stale containers removed after %.2f s; most live pods seen at once: %d (replicas %d)",
		victim.Name, renewed.Seconds(), readyAgain.Seconds(), staleGone.Seconds(), maxLive, replicas)
	if maxLive > replicas {
		t.Errorf("%d live pods of the Deployment seen at once, more than its %d replicas", maxLive, replicas)
	}
	after := waitWebRunning(t, c, replicas, 30*time.Second)
	for _, p := range after {
		if oldUIDs[p.GetMetadata().GetUid()] {
			t.Errorf("evicted pod %s is back after the heal", p.GetMetadata().GetName())
		}
	}
	checkPodNetwork(t, c, after)
	c.CheckFinalState(t)
	rec.Check(t)
}

// nodeLeaseRenewed is the renew time of the node's Lease (the zero time
// when it cannot be read).
func nodeLeaseRenewed(ctx context.Context, c *Cluster, node string) time.Time {
	l, err := client.For[*coordinationv1.Lease](c.Conn).Get(ctx, "bosun-node-lease", node)
	if err != nil {
		return time.Time{}
	}
	return l.GetSpec().GetRenewTime().AsTime()
}
