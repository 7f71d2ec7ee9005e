package node_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	testingclock "k8s.io/utils/clock/testing"

	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/node-agent/internal/agenttest"
	"bosun.dev/services/node-agent/internal/node"
)

func cond(n *corev1.Node, typ string) *corev1.NodeCondition {
	for _, c := range n.GetStatus().GetConditions() {
		if c.GetType() == typ {
			return c
		}
	}
	return nil
}

func TestRegisterReportsCapacityLabelsAndConditions(t *testing.T) {
	nodes, leases := agenttest.NewStore[*corev1.Node](), agenttest.NewStore[*coordinationv1.Lease]()
	host := &node.Fixed{
		Cap: map[string]string{"cpu": "4", "memory": "8Gi", "ephemeral-storage": "100Gi"},
		Use: node.Usage{MemoryAvailableBytes: 4 << 30, DiskAvailableBytes: 50 << 30, DiskTotalBytes: 100 << 30, PIDsInUse: 100, PIDsMax: 4096},
	}
	var imgs []*corev1.ContainerImage
	for i := 0; i < 60; i++ {
		imgs = append(imgs, &corev1.ContainerImage{Names: []string{fmt.Sprintf("r.local/img%d:v1", i)}, SizeBytes: int64(i)})
	}
	a := node.New(nodes, leases, node.Options{
		Name: "n1", InternalIP: "192.0.2.7", Hostname: "n1.example", PodCIDR: "10.244.3.0/24",
		Port: 10250, MaxPods: 50, Labels: map[string]string{"zone": "a"}, Host: host,
		Images: func() ([]*corev1.ContainerImage, error) { return imgs, nil },
	}, nil)
	n, err := a.Register(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"kubernetes.io/hostname": "n1", "kubernetes.io/os": "linux", "zone": "a"} {
		if n.GetMetadata().GetLabels()[k] != v {
			t.Errorf("label %s = %q, want %q", k, n.GetMetadata().GetLabels()[k], v)
		}
	}
	if n.GetSpec().GetPodCidr() != "10.244.3.0/24" {
		t.Errorf("podCIDR %q", n.GetSpec().GetPodCidr())
	}
	st := n.GetStatus()
	if st.GetCapacity()["cpu"] != "4" || st.GetCapacity()["pods"] != "50" || st.GetAllocatable()["memory"] != "8Gi" {
		t.Errorf("capacity %v allocatable %v", st.GetCapacity(), st.GetAllocatable())
	}
	if len(st.GetAddresses()) != 2 || st.GetAddresses()[0].GetAddress() != "192.0.2.7" {
		t.Errorf("addresses %v", st.GetAddresses())
	}
	if st.GetDaemonEndpoints().GetKubeletEndpoint().GetPort() != 10250 {
		t.Errorf("daemon endpoint %v", st.GetDaemonEndpoints())
	}
	if got := st.GetImages(); len(got) != node.MaxImagesInStatus || got[0].GetNames()[0] != "r.local/img59:v1" {
		t.Errorf("images: %d, first %v; want the %d largest", len(got), got[0], node.MaxImagesInStatus)
	}
	if c := cond(n, "Ready"); c.GetStatus() != "True" {
		t.Errorf("Ready %v", c)
	}
	for _, typ := range []string{"MemoryPressure", "DiskPressure", "PIDPressure"} {
		if c := cond(n, typ); c.GetStatus() != "False" {
			t.Errorf("%s %v", typ, c)
		}
	}

	// Pressure shows, and a second registration keeps the node.
	host.Use.MemoryAvailableBytes = 10 << 20
	host.Use.DiskAvailableBytes = 1 << 30
	n, err = a.Register(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cond(n, "MemoryPressure").GetStatus() != "True" || cond(n, "DiskPressure").GetStatus() != "True" || cond(n, "PIDPressure").GetStatus() != "False" {
		t.Errorf("conditions %v", n.GetStatus().GetConditions())
	}
}

func TestRegisterRefusesAConflictingPodCIDR(t *testing.T) {
	nodes, leases := agenttest.NewStore[*corev1.Node](), agenttest.NewStore[*coordinationv1.Lease]()
	host := &node.Fixed{Cap: map[string]string{"cpu": "1"}}
	if _, err := node.New(nodes, leases, node.Options{Name: "n1", PodCIDR: "10.1.0.0/24", Host: host}, nil).Register(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := node.New(nodes, leases, node.Options{Name: "n1", PodCIDR: "10.2.0.0/24", Host: host}, nil).Register(context.Background())
	if err == nil || err.Error() != `node "n1" has spec.podCIDR 10.1.0.0/24, but --pod-cidr is 10.2.0.0/24` {
		t.Errorf("err = %v", err)
	}
}

func TestLeaseIsCreatedAndRenewed(t *testing.T) {
	nodes, leases := agenttest.NewStore[*corev1.Node](), agenttest.NewStore[*coordinationv1.Lease]()
	a := node.New(nodes, leases, node.Options{Name: "n1", Host: &node.Fixed{Cap: map[string]string{"cpu": "1"}},
		LeaseDuration: 4 * time.Second, RenewInterval: 10 * time.Millisecond}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var first time.Time
	agenttest.Eventually(t, 5*time.Second, func() error {
		l, err := leases.Get(ctx, "bosun-node-lease", "n1")
		if err != nil {
			return err
		}
		if first.IsZero() {
			first = l.GetSpec().GetRenewTime().AsTime()
		}
		if l.GetSpec().GetHolderIdentity() != "n1" || l.GetSpec().GetLeaseDurationSeconds() != 4 {
			t.Fatalf("lease spec %v", l.GetSpec())
		}
		if !l.GetSpec().GetRenewTime().AsTime().After(first) {
			return errIn("not renewed yet")
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

type errIn string

func (e errIn) Error() string { return string(e) }

// switchableHost is a Host whose memory pressure the test switches.
type switchableHost struct {
	mu       sync.Mutex
	pressure bool
}

func (h *switchableHost) Capacity() (map[string]string, error) {
	return map[string]string{"cpu": "2", "memory": "4Gi"}, nil
}

func (h *switchableHost) Usage() (node.Usage, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	u := node.Usage{MemoryAvailableBytes: 2 << 30}
	if h.pressure {
		u.MemoryAvailableBytes = 1 << 20
	}
	return u, nil
}

func (h *switchableHost) set(pressure bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pressure = pressure
}

// Status writes are conditional on the Node the agent last wrote: it reads
// its Node again only when another writer (here the health-checker marking
// it Unknown) changed it in between, and then keeps nothing of that
// writer's transition times for a condition whose status differs.
func TestStatusWritesReadTheNodeOnlyAfterAnotherWriter(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nodes, leases := agenttest.NewStore[*corev1.Node](), agenttest.NewStore[*coordinationv1.Lease]()
	host := &switchableHost{}
	clk := testingclock.NewFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	a := node.New(nodes, leases, node.Options{Name: "n1", Host: host, Clock: clk,
		RenewInterval: time.Second, StatusInterval: time.Hour}, nil)
	if _, err := a.Register(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()

	ownReads := 0
	// step moves the clock one renew interval, with the host under pressure
	// or not, and waits for the agent to report it.
	step := func(pressure bool) *corev1.Node {
		t.Helper()
		host.set(pressure)
		want := map[bool]string{true: "True", false: "False"}[pressure]
		var n *corev1.Node
		agenttest.Eventually(t, 10*time.Second, func() error {
			if clk.HasWaiters() {
				clk.Step(time.Second)
			}
			var err error
			n, err = nodes.Get(ctx, "", "n1")
			ownReads++
			if err != nil {
				return err
			}
			if got := cond(n, "MemoryPressure").GetStatus(); got != want {
				return errIn("MemoryPressure " + got + ", want " + want)
			}
			return nil
		})
		return n
	}
	before := nodes.Reads()
	for _, pressure := range []bool{true, false, true, false} {
		step(pressure)
	}
	if agent := nodes.Reads() - before - ownReads; agent != 0 {
		t.Fatalf("the agent read its Node %d times for 4 status writes nobody else interleaved, want 0", agent)
	}

	// The health-checker marks the node Unknown.
	n, err := nodes.Get(ctx, "", "n1")
	if err != nil {
		t.Fatal(err)
	}
	// Later than the agent's own Ready transition at registration, so that
	// an agent keeping that earlier time is caught.
	clk.Step(time.Minute)
	unknownAt := timestamppb.New(clk.Now())
	cond(n, "Ready").Status, cond(n, "Ready").LastTransitionTime = "Unknown", unknownAt
	if _, err := nodes.UpdateStatus(ctx, n); err != nil {
		t.Fatal(err)
	}
	before, ownReads = nodes.Reads(), 0
	n = step(true)
	if agent := nodes.Reads() - before - ownReads; agent != 1 {
		t.Fatalf("after another writer the agent read its Node %d times, want 1", agent)
	}
	ready := cond(n, "Ready")
	if ready.GetStatus() != "True" {
		t.Fatalf("Ready %v after the agent's write, want True", ready)
	}
	if got := ready.GetLastTransitionTime().AsTime(); got.Before(unknownAt.AsTime()) {
		t.Fatalf("Ready went Unknown -> True but its transition time %v is before the Unknown one %v", got, unknownAt.AsTime())
	}
}

// conflictingNodes refuses the next conflicts status writes as stale, as
// the apiserver does when other writers keep changing the Node.
type conflictingNodes struct {
	*agenttest.Store[*corev1.Node]
	mu        sync.Mutex
	conflicts int
}

func (c *conflictingNodes) UpdateStatus(ctx context.Context, n *corev1.Node) (*corev1.Node, error) {
	c.mu.Lock()
	if c.conflicts > 0 {
		c.conflicts--
		c.mu.Unlock()
		return nil, status.Error(codes.Aborted, "the object has been modified")
	}
	c.mu.Unlock()
	return c.Store.UpdateStatus(ctx, n)
}

// Writers interleaving several times in a row delay registration; they do
// not fail it.
func TestRegisterOutlastsRepeatedConflicts(t *testing.T) {
	nodes := &conflictingNodes{Store: agenttest.NewStore[*corev1.Node](), conflicts: 3}
	a := node.New(nodes, agenttest.NewStore[*coordinationv1.Lease](), node.Options{Name: "n1", Host: &switchableHost{}}, nil)
	n, err := a.Register(context.Background())
	if err != nil {
		t.Fatalf("Register after 3 conflicts: %v", err)
	}
	if cond(n, "Ready").GetStatus() != "True" || nodes.conflicts != 0 {
		t.Fatalf("Ready %v, %d conflicts left", cond(n, "Ready"), nodes.conflicts)
	}
}
