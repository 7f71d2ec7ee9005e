package scheduler

import (
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/tests/conformance/harness"
)

// Capabilities a scheduler may claim beyond the constraints every
// scheduler must respect.
const (
	// CapConditions: a pod that fits nowhere gets PodScheduled=False with
	// reason Unschedulable and a message.
	CapConditions = "conditions"
	// CapAffinity: required pod affinity and anti-affinity.
	CapAffinity = "affinity"
	// CapSpread: topology spread constraints with DoNotSchedule.
	CapSpread = "spread"
	// CapPreemption: a pod that fits nowhere evicts lower-priority pods.
	CapPreemption = "preemption"
	// CapLeaderElection: replicas elect a leader on the Lease
	// bosun-system/scheduler.
	CapLeaderElection = "leader-election"
	// CapEvents: a pod that fits nowhere gets a Warning Event with reason
	// FailedScheduling in its namespace.
	CapEvents = "events"
)

// KnownCapabilities lists every capability the suite can check.
var KnownCapabilities = []string{CapConditions, CapEvents, CapAffinity, CapSpread, CapPreemption, CapLeaderElection}

// testCase is one constraint, checked on a fresh cluster. A case with a
// capability runs only when the implementation claims it.
type testCase struct {
	name       string
	capability string
	run        func(e *env)
}

var cases = []testCase{
	{name: "BindsPodsToNodes", run: bindsPodsToNodes},
	{name: "NodeName", run: nodeName},
	{name: "NodeSelector", run: nodeSelectorCase},
	{name: "RequiredNodeAffinity", run: requiredNodeAffinity},
	{name: "TaintsAndTolerations", run: taintsAndTolerations},
	{name: "Resources", run: resources},
	{name: "HostPorts", run: hostPorts},
	{name: "CordonedNodes", run: cordonedNodes},
	{name: "OtherSchedulerNames", run: otherSchedulerNames},
	{name: "UnschedulableStaysPending", run: unschedulableStaysPending},
	{name: "PodAffinity", capability: CapAffinity, run: podAffinity},
	{name: "TopologySpread", capability: CapSpread, run: topologySpread},
	{name: "Preemption", capability: CapPreemption, run: preemption},
	{name: "LeaderElection", capability: CapLeaderElection, run: leaderElection},
}

// runSuite runs every case against impl, each on its own cluster.
func runSuite(t *testing.T, impl harness.Implementation, caps harness.Capabilities) {
	t.Logf("implementation %s %v, capabilities %s", impl.Name, impl.Args, caps)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.capability != "" {
				caps.Require(t, c.capability)
			}
			c.run(newEnv(t, impl, caps))
		})
	}
}

// Every pod is bound to exactly one existing node.
func bindsPodsToNodes(e *env) {
	for _, n := range []string{"n1", "n2", "n3"} {
		e.node(n)
	}
	for _, p := range names("web", 6) {
		e.pod(p)
	}
	for _, p := range names("web", 6) {
		e.expectOn(p, "n1", "n2", "n3")
	}
}

// A pod created with spec.nodeName is already bound and stays where it
// is; a pod selecting a node by metadata.name goes there.
func nodeName(e *env) {
	for _, n := range []string{"n1", "n2", "n3"} {
		e.node(n)
	}
	e.pod("preset", boundTo("n3"))
	e.pod("by-field", requiredTerms(term("metadata.name In n2")))
	e.pod("by-missing-field", requiredTerms(term("metadata.name In elsewhere")))
	e.expectOn("by-field", "n2")
	e.expectPending("by-missing-field")
	if got := e.get("preset").GetSpec().GetNodeName(); got != "n3" {
		e.t.Errorf("pod preset was created on n3 and is now on %q", got)
	}
}

func nodeSelectorCase(e *env) {
	e.node("ssd-a", labels("disk", "ssd", "zone", "a"))
	e.node("ssd-b", labels("disk", "ssd", "zone", "b"))
	e.node("hdd-a", labels("disk", "hdd", "zone", "a"))
	for _, p := range names("ssd", 3) {
		e.pod(p, nodeSelector("disk", "ssd"))
	}
	for _, p := range names("ssd-zone-b", 2) {
		e.pod(p, nodeSelector("disk", "ssd", "zone", "b"))
	}
	e.pod("nvme", nodeSelector("disk", "nvme"))
	for _, p := range names("ssd", 3) {
		e.expectOn(p, "ssd-a", "ssd-b")
	}
	for _, p := range names("ssd-zone-b", 2) {
		e.expectOn(p, "ssd-b")
	}
	e.expectPending("nvme")
}

func requiredNodeAffinity(e *env) {
	e.node("a", labels("zone", "a", "gen", "3", "gpu", "true"))
	e.node("b", labels("zone", "b", "gen", "5"))
	e.node("c", labels("zone", "c", "gen", "8", "legacy", "yes"))
	want := []struct {
		name  string
		terms []*corev1.NodeSelectorTerm
		on    []string
	}{
		{"in", []*corev1.NodeSelectorTerm{term("zone In b c")}, []string{"b", "c"}},
		{"not-in", []*corev1.NodeSelectorTerm{term("zone NotIn a b")}, []string{"c"}},
		{"exists", []*corev1.NodeSelectorTerm{term("gpu Exists")}, []string{"a"}},
		{"does-not-exist", []*corev1.NodeSelectorTerm{term("gpu DoesNotExist", "legacy DoesNotExist")}, []string{"b"}},
		{"gt", []*corev1.NodeSelectorTerm{term("gen Gt 4")}, []string{"b", "c"}},
		{"lt", []*corev1.NodeSelectorTerm{term("gen Lt 4")}, []string{"a"}},
		{"any-term", []*corev1.NodeSelectorTerm{term("zone In a"), term("gen Gt 7")}, []string{"a", "c"}},
		{"all-requirements", []*corev1.NodeSelectorTerm{term("zone In b c", "gen Lt 6")}, []string{"b"}},
		{"with-selector", []*corev1.NodeSelectorTerm{term("gen Gt 2")}, []string{"c"}},
	}
	for _, w := range want {
		opts := []podOpt{requiredTerms(w.terms...)}
		if w.name == "with-selector" {
			opts = append(opts, nodeSelector("legacy", "yes")) // both must hold
		}
		e.pod(w.name, opts...)
	}
	e.pod("matches-none", requiredTerms(term("zone In x")))
	e.pod("selector-contradicts", requiredTerms(term("zone In a")), nodeSelector("zone", "b"))
	for _, w := range want {
		e.expectOn(w.name, w.on...)
	}
	e.expectPending("matches-none", "selector-contradicts")
}

func taintsAndTolerations(e *env) {
	e.node("no-schedule", taint("dedicated", "gpu", "NoSchedule"))
	e.node("no-execute", taint("maintenance", "yes", "NoExecute"))
	e.node("prefer", taint("spot", "true", "PreferNoSchedule"))
	e.node("plain")
	for _, p := range names("untolerant", 4) {
		e.pod(p)
	}
	e.pod("equal", onHost("no-schedule"), toleration("dedicated", "Equal", "gpu", "NoSchedule"))
	e.pod("exists", onHost("no-schedule"), toleration("dedicated", "Exists", "", ""))
	e.pod("tolerates-no-execute", onHost("no-execute"), toleration("maintenance", "Exists", "", "NoExecute"))
	e.pod("wrong-value", onHost("no-schedule"), toleration("dedicated", "Equal", "cpu", "NoSchedule"))
	e.pod("wrong-effect", onHost("no-schedule"), toleration("dedicated", "Equal", "gpu", "NoExecute"))
	e.pod("no-execute-untolerated", onHost("no-execute"))
	e.pod("no-execute-wrong-key", onHost("no-execute"), toleration("dedicated", "Exists", "", "NoExecute"))
	for _, p := range names("untolerant", 4) {
		e.expectOn(p, "prefer", "plain")
	}
	e.expectOn("equal", "no-schedule")
	e.expectOn("exists", "no-schedule")
	e.expectOn("tolerates-no-execute", "no-execute")
	e.expectPending("wrong-value", "wrong-effect", "no-execute-untolerated", "no-execute-wrong-key")
}

// Requests of the pods on a node never exceed its allocatable cpu, memory
// and pod count; init containers count with their largest request.
func resources(e *env) {
	e.node("big", allocatable("2", "4Gi", "10"))
	e.node("small", allocatable("1", "1Gi", "2"))
	cpuPods := names("cpu", 8)
	for _, p := range cpuPods {
		e.pod(p, requests("500m", ""))
	}
	// 2 cpu on big (4 pods) + 1 cpu on small (2 pods): 6 of 8 fit.
	bound := e.countBound(6, cpuPods...)
	perNode := map[string]int{}
	for _, n := range bound {
		perNode[n]++
	}
	if perNode["big"] != 4 || perNode["small"] != 2 {
		e.t.Errorf("cpu pods per node %v, want big:4 small:2", perNode)
	}
	e.pod("memory-fits-big", requests("", "3Gi"))
	e.expectOn("memory-fits-big", "big")
	e.pod("memory-too-much", requests("", "2Gi"))
	e.pod("init-too-big", initRequests("3"))
	e.pod("cpu-too-big", requests("3", ""))
	var pending []string
	for _, p := range cpuPods {
		if bound[p] == "" {
			pending = append(pending, p)
		}
	}
	e.expectPending(append(pending, "memory-too-much", "init-too-big", "cpu-too-big")...)
	checkAllocatable(e)
}

// checkAllocatable fails for every node whose bound pods request more
// than it has.
func checkAllocatable(e *env) {
	for node, pods := range e.boundPods() {
		n, err := e.nodes.Get(e.ctx, "", node)
		if err != nil {
			e.t.Fatal(err)
		}
		alloc := n.GetStatus().GetAllocatable()
		if limit := resource.MustParse(alloc["pods"]); int64(len(pods)) > limit.Value() {
			e.t.Errorf("node %s runs %d pods, allocatable %s", node, len(pods), alloc["pods"])
		}
		for _, res := range []string{"cpu", "memory"} {
			var sum resource.Quantity
			for _, p := range pods {
				for _, c := range p.GetSpec().GetContainers() {
					if s, ok := c.GetResources().GetRequests()[res]; ok {
						sum.Add(resource.MustParse(s))
					}
				}
			}
			if sum.Cmp(resource.MustParse(alloc[res])) > 0 {
				e.t.Errorf("node %s: pods request %s %s, allocatable %s", node, sum.String(), res, alloc[res])
			}
		}
	}
}

// A host port and protocol is taken once per node.
func hostPorts(e *env) {
	e.node("h1")
	e.node("h2")
	tcp := names("tcp-8080", 3)
	for _, p := range tcp {
		e.pod(p, hostPort(8080, "TCP"))
	}
	udp := names("udp-8080", 2)
	for _, p := range udp {
		e.pod(p, hostPort(8080, "UDP"))
	}
	bound := e.countBound(2, tcp...)
	for _, p := range udp {
		e.expectOn(p, "h1", "h2")
	}
	var pending []string
	for _, p := range tcp {
		if bound[p] == "" {
			pending = append(pending, p)
		}
	}
	e.expectPending(pending...)
	for node, pods := range e.boundPods() {
		seen := map[string]string{}
		for _, p := range pods {
			for _, c := range p.GetSpec().GetContainers() {
				for _, port := range c.GetPorts() {
					if port.GetHostPort() == 0 {
						continue
					}
					key := fmt.Sprintf("%d/%s", port.GetHostPort(), port.GetProtocol())
					if other, dup := seen[key]; dup {
						e.t.Errorf("node %s: pods %s and %s both hold host port %s", node, other, p.GetMetadata().GetName(), key)
					}
					seen[key] = p.GetMetadata().GetName()
				}
			}
		}
	}
}

// Cordoned nodes take no new pods (unless a pod tolerates the
// unschedulable taint); uncordoning lets the waiting pods in.
func cordonedNodes(e *env) {
	e.node("c1", cordoned)
	e.node("c2", cordoned)
	for _, p := range names("waiting", 2) {
		e.pod(p)
	}
	e.pod("tolerates-cordon", toleration("node.kubernetes.io/unschedulable", "Exists", "", "NoSchedule"))
	e.expectOn("tolerates-cordon", "c1", "c2")
	e.expectPending(names("waiting", 2)...)
	err := client.RetryOnConflict(e.ctx, client.DefaultRetry, func() error {
		n, err := e.nodes.Get(e.ctx, "", "c1")
		if err != nil {
			return err
		}
		n.Spec.Unschedulable = false
		_, err = e.nodes.Update(e.ctx, n)
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, p := range names("waiting", 2) {
		e.expectOn(p, "c1")
	}
}

// Pods naming another scheduler are left alone.
func otherSchedulerNames(e *env) {
	e.node("n1")
	e.pod("theirs", schedulerName("someone-else"))
	e.pod("ours", schedulerName("default-scheduler"))
	e.pod("defaulted")
	e.expectOn("ours", "n1")
	e.expectOn("defaulted", "n1")
	e.settle()
	if got := e.get("theirs").GetSpec().GetNodeName(); got != "" {
		e.t.Errorf("pod with schedulerName someone-else was bound to %s", got)
	}
	for _, c := range e.get("theirs").GetStatus().GetConditions() {
		if c.GetType() == "PodScheduled" {
			e.t.Errorf("pod with schedulerName someone-else got condition %v", c)
		}
	}
}

// A pod that fits nowhere stays pending, and is bound once a node that
// fits appears.
func unschedulableStaysPending(e *env) {
	e.node("n1")
	e.pod("needs-gpu", nodeSelector("gpu", "true"))
	e.expectPending("needs-gpu")
	e.node("gpu-node", labels("gpu", "true"))
	e.expectOn("needs-gpu", "gpu-node")
}

func antiAffinity(key, value string) podOpt {
	return func(p *corev1.Pod) {
		if p.Spec.Affinity == nil {
			p.Spec.Affinity = &corev1.Affinity{}
		}
		p.Spec.Affinity.PodAntiAffinity = &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []*corev1.PodAffinityTerm{{
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{key: value}},
				TopologyKey:   "kubernetes.io/hostname",
			}},
		}
	}
}

func affinity(key, value, topology string) podOpt {
	return func(p *corev1.Pod) {
		if p.Spec.Affinity == nil {
			p.Spec.Affinity = &corev1.Affinity{}
		}
		p.Spec.Affinity.PodAffinity = &corev1.PodAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []*corev1.PodAffinityTerm{{
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{key: value}},
				TopologyKey:   topology,
			}},
		}
	}
}

// Required anti-affinity keeps matching pods on distinct nodes; required
// affinity brings a pod to the topology domain of its match.
func podAffinity(e *env) {
	e.node("z1", labels("zone", "a"))
	e.node("z2", labels("zone", "b"))
	e.node("z3", labels("zone", "c"))
	e.pod("db", boundTo("z2"), podLabels("app", "db"))
	web := names("web", 4)
	for _, p := range web {
		e.pod(p, podLabels("app", "web"), antiAffinity("app", "web"))
	}
	e.pod("cache", affinity("app", "db", "zone"))
	e.pod("orphan", affinity("app", "nothing", "zone"))
	bound := e.countBound(3, web...)
	seen := map[string]string{}
	for p, n := range bound {
		if other, dup := seen[n]; dup {
			e.t.Errorf("anti-affine pods %s and %s share node %s", other, p, n)
		}
		seen[n] = p
	}
	e.expectOn("cache", "z2")
	e.expectPending("orphan")
}

// DoNotSchedule spread keeps the skew between zones within maxSkew.
func topologySpread(e *env) {
	e.node("a1", labels("zone", "a"))
	e.node("a2", labels("zone", "a"))
	e.node("b1", labels("zone", "b"))
	pods := names("spread", 6)
	for _, p := range pods {
		e.pod(p, podLabels("app", "spread"), func(p *corev1.Pod) {
			p.Spec.TopologySpreadConstraints = []*corev1.TopologySpreadConstraint{{
				MaxSkew: 1, TopologyKey: "zone", WhenUnsatisfiable: "DoNotSchedule",
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "spread"}},
			}}
		})
	}
	zones := map[string]int{}
	for _, p := range pods {
		n := e.expectOn(p, "a1", "a2", "b1")
		zones[map[string]string{"a1": "a", "a2": "a", "b1": "b"}[n]]++
	}
	if zones["a"] != 3 || zones["b"] != 3 {
		e.t.Errorf("pods per zone %v, want a:3 b:3 (maxSkew 1)", zones)
	}
}

// A high-priority pod that fits nowhere evicts a lower-priority one; a pod
// with preemptionPolicy Never does not.
func preemption(e *env) {
	e.node("p1", allocatable("1", "1Gi", "10"))
	e.pod("low", requests("1", ""), priority(0))
	e.expectOn("low", "p1")
	e.pod("polite", requests("1", ""), priority(50), func(p *corev1.Pod) { p.Spec.PreemptionPolicy = "Never" })
	e.expectPending("polite")
	if _, err := e.pods.Get(e.ctx, namespace, "low"); err != nil {
		e.t.Fatalf("pod low after a pod with preemptionPolicy Never arrived: %v", err)
	}
	e.pod("high", requests("1", ""), priority(100))
	harness.Eventually(e.t, waitFor, "pod high bound to p1 after evicting low", func() error {
		// Play the node-agent: a victim marked for deletion is gone at once.
		if low, err := e.pods.Get(e.ctx, namespace, "low"); err == nil && low.GetMetadata().GetDeletionTimestamp() != nil {
			zero := int64(0)
			_, _ = e.pods.Delete(e.ctx, namespace, "low", client.DeleteOptions{GracePeriodSeconds: &zero})
		}
		high := e.get("high")
		if n := high.GetSpec().GetNodeName(); n != "p1" {
			_, lowErr := e.pods.Get(e.ctx, namespace, "low")
			return fmt.Errorf("high on %q, status %v; reading low: %v", n, high.GetStatus(), lowErr)
		}
		return nil
	})
	if _, err := e.pods.Get(e.ctx, namespace, "low"); err == nil {
		e.t.Errorf("pod low still exists beside high on a node that fits one of them")
	}
}

// The leader holds the Lease bosun-system/scheduler, the one every
// scheduler replacing Bosun's uses, so that old and new replicas never
// schedule at once during a rollout.
func leaderElection(e *env) {
	harness.Eventually(e.t, waitFor, "Lease bosun-system/scheduler held", func() error {
		l, err := leaseHolder(e)
		if err != nil {
			return err
		}
		if l == "" {
			return fmt.Errorf("no holder")
		}
		return nil
	})
}
