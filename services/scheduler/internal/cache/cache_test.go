package cache_test

import (
	"testing"

	"bosun.dev/services/scheduler/internal/cache"
	st "bosun.dev/services/scheduler/internal/schedtest"
)

func TestAssumeConfirmForget(t *testing.T) {
	c := cache.New()
	c.AddNode(st.Node("n1").Obj())
	c.AddNode(st.Node("n2").Obj())
	snap := cache.NewSnapshot()

	pod := st.Pod("p").Req("1", "1Gi")
	if err := c.AssumePod(pod.Info(), "n1"); err != nil {
		t.Fatal(err)
	}
	if err := c.AssumePod(pod.Info(), "n2"); err == nil {
		t.Fatal("a pod was assumed twice")
	}
	c.UpdateSnapshot(snap)
	n1, _ := snap.Get("n1")
	if len(n1.Pods) != 1 || n1.Requested.MilliCPU != 1000 {
		t.Fatalf("assumed pod not counted: %d pods, %dm", len(n1.Pods), n1.Requested.MilliCPU)
	}
	if !c.IsAssumedPod(pod.Obj()) {
		t.Fatal("not assumed")
	}

	// The bind failed: forget.
	if err := c.ForgetPod(pod.Obj()); err != nil {
		t.Fatal(err)
	}
	c.UpdateSnapshot(snap)
	n1, _ = snap.Get("n1")
	if len(n1.Pods) != 0 || n1.Requested.MilliCPU != 0 {
		t.Fatalf("forgotten pod still counted: %d pods", len(n1.Pods))
	}

	// Assume again, then the informer reports it bound: confirmed, counted once.
	if err := c.AssumePod(pod.Info(), "n2"); err != nil {
		t.Fatal(err)
	}
	bound := st.Pod("p").Req("1", "1Gi").NodeName("n2").Obj()
	if err := c.AddPod(bound); err != nil {
		t.Fatal(err)
	}
	if c.IsAssumedPod(bound) {
		t.Fatal("still assumed after the informer confirmed it")
	}
	if err := c.ForgetPod(bound); err == nil {
		t.Fatal("a confirmed pod was forgotten")
	}
	c.UpdateSnapshot(snap)
	n2, _ := snap.Get("n2")
	if len(n2.Pods) != 1 {
		t.Fatalf("n2 holds %d pods, want 1", len(n2.Pods))
	}
	if err := c.RemovePod(bound); err != nil {
		t.Fatal(err)
	}
	c.UpdateSnapshot(snap)
	n2, _ = snap.Get("n2")
	if len(n2.Pods) != 0 || c.PodCount() != 0 {
		t.Fatalf("removed pod still counted")
	}
}

func TestBoundElsewhereMovesThePod(t *testing.T) {
	c := cache.New()
	c.AddNode(st.Node("n1").Obj())
	c.AddNode(st.Node("n2").Obj())
	pod := st.Pod("p").Req("1", "1Gi")
	if err := c.AssumePod(pod.Info(), "n1"); err != nil {
		t.Fatal(err)
	}
	// Another scheduler (or an earlier leader) bound it to n2.
	if err := c.AddPod(st.Pod("p").Req("1", "1Gi").NodeName("n2").Obj()); err != nil {
		t.Fatal(err)
	}
	d := c.Dump()
	if len(d["n1"].Pods) != 0 || len(d["n2"].Pods) != 1 {
		t.Fatalf("n1 %d pods, n2 %d pods; want 0 and 1", len(d["n1"].Pods), len(d["n2"].Pods))
	}
}

func TestSnapshotCopiesOnlyChangedNodes(t *testing.T) {
	c := cache.New()
	for _, n := range []string{"a", "b", "c"} {
		c.AddNode(st.Node(n).Obj())
	}
	snap := cache.NewSnapshot()
	c.UpdateSnapshot(snap)
	a1, _ := snap.Get("a")
	b1, _ := snap.Get("b")
	if err := c.AddPod(st.Pod("p").NodeName("b").Obj()); err != nil {
		t.Fatal(err)
	}
	c.UpdateSnapshot(snap)
	a2, _ := snap.Get("a")
	b2, _ := snap.Get("b")
	if a1 != a2 {
		t.Error("an unchanged node was copied again")
	}
	if b1 == b2 || len(b1.Pods) != 0 || len(b2.Pods) != 1 {
		t.Error("the changed node was not copied, or the old copy was modified")
	}
	if l := snap.List(); len(l) != 3 || l[1] != b2 {
		t.Errorf("list not refreshed: %v", l)
	}
	// Affinity lists follow pods with affinity terms.
	if err := c.AddPod(st.Pod("q").NodeName("c").PodAntiAffinity("kubernetes.io/hostname", "app", "x").Obj()); err != nil {
		t.Fatal(err)
	}
	c.UpdateSnapshot(snap)
	if l := snap.HavePodsWithRequiredAntiAffinityList(); len(l) != 1 || l[0].Name() != "c" {
		t.Errorf("anti-affinity list: %v", l)
	}
	c.RemoveNode(st.Node("a").Obj())
	c.UpdateSnapshot(snap)
	if len(snap.List()) != 2 {
		t.Errorf("removed node still listed")
	}
}

func TestPodsOfUnknownNodeWaitForIt(t *testing.T) {
	c := cache.New()
	if err := c.AddPod(st.Pod("p").Req("1", "1Gi").NodeName("late").Obj()); err != nil {
		t.Fatal(err)
	}
	snap := cache.NewSnapshot()
	c.UpdateSnapshot(snap)
	if len(snap.List()) != 0 {
		t.Fatal("a node without a Node object is listed")
	}
	c.AddNode(st.Node("late").Obj())
	c.UpdateSnapshot(snap)
	ni, err := snap.Get("late")
	if err != nil || len(ni.Pods) != 1 || ni.Requested.MilliCPU != 1000 {
		t.Fatalf("late node: %v %v", ni, err)
	}
}
