package scheduler

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/tests/conformance/harness"
)

// namespace holds every pod a case creates.
const namespace = "default"

// waitFor bounds every wait for the implementation to act.
const waitFor = 30 * time.Second

// env is one case's cluster: a fresh apiserver, the implementation under
// test connected to it as bosun-scheduler, and the API seen by an
// administrator.
type env struct {
	t       *testing.T
	ctx     context.Context
	caps    harness.Capabilities
	cluster *harness.Cluster
	nodes   *client.Resource[*corev1.Node]
	pods    *client.Resource[*corev1.Pod]
	witness int
}

func newEnv(t *testing.T, impl harness.Implementation, caps harness.Capabilities) *env {
	t.Helper()
	c := harness.StartCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, caps: caps, cluster: c,
		nodes: client.For[*corev1.Node](c.Admin), pods: client.For[*corev1.Pod](c.Admin)}
	c.Start(t, impl, "bosun-scheduler")
	return e
}

// nodeOpt and podOpt shape the objects a case creates.
type (
	nodeOpt func(*corev1.Node)
	podOpt  func(*corev1.Pod)
)

func labels(kv ...string) nodeOpt {
	return func(n *corev1.Node) {
		for i := 0; i+1 < len(kv); i += 2 {
			n.Metadata.Labels[kv[i]] = kv[i+1]
		}
	}
}

func taint(key, value, effect string) nodeOpt {
	return func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, &corev1.Taint{Key: key, Value: value, Effect: effect})
	}
}

func allocatable(cpu, memory, pods string) nodeOpt {
	return func(n *corev1.Node) {
		n.Status.Allocatable = map[string]string{"cpu": cpu, "memory": memory, "pods": pods}
		n.Status.Capacity = n.Status.Allocatable
	}
}

func cordoned(n *corev1.Node) { n.Spec.Unschedulable = true }

// node creates a Ready node with 4 cpu, 8Gi and 110 pods allocatable and
// the label kubernetes.io/hostname, as a node-agent registers one.
func (e *env) node(name string, opts ...nodeOpt) *corev1.Node {
	e.t.Helper()
	n := &corev1.Node{
		Metadata: &metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Spec:     &corev1.NodeSpec{},
		Status: &corev1.NodeStatus{
			Conditions: []*corev1.NodeCondition{{Type: "Ready", Status: "True", Reason: "NodeAgentReady"}},
			Addresses:  []*corev1.NodeAddress{{Type: "InternalIP", Address: "127.0.0.1"}},
		},
	}
	allocatable("4", "8Gi", "110")(n)
	for _, o := range opts {
		o(n)
	}
	created, err := e.nodes.Create(e.ctx, n)
	if err != nil {
		e.t.Fatalf("creating node %s: %v", name, err)
	}
	return created
}

func requests(cpu, memory string) podOpt {
	return func(p *corev1.Pod) {
		r := map[string]string{}
		if cpu != "" {
			r["cpu"] = cpu
		}
		if memory != "" {
			r["memory"] = memory
		}
		p.Spec.Containers[0].Resources = &corev1.ResourceRequirements{Requests: r}
	}
}

func initRequests(cpu string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.InitContainers = append(p.Spec.InitContainers, &corev1.Container{
			Name: "init", Image: "registry.invalid/init:1",
			Resources: &corev1.ResourceRequirements{Requests: map[string]string{"cpu": cpu}},
		})
	}
}

func nodeSelector(kv ...string) podOpt {
	return func(p *corev1.Pod) {
		if p.Spec.NodeSelector == nil {
			p.Spec.NodeSelector = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Spec.NodeSelector[kv[i]] = kv[i+1]
		}
	}
}

// onHost pins a pod to one node by its hostname label.
func onHost(node string) podOpt { return nodeSelector("kubernetes.io/hostname", node) }

// requiredTerms sets required node affinity: any of the terms.
func requiredTerms(terms ...*corev1.NodeSelectorTerm) podOpt {
	return func(p *corev1.Pod) {
		if p.Spec.Affinity == nil {
			p.Spec.Affinity = &corev1.Affinity{}
		}
		p.Spec.Affinity.NodeAffinity = &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms},
		}
	}
}

// term is one node selector term: all of the requirements "key op v1 v2".
func term(reqs ...string) *corev1.NodeSelectorTerm {
	t := &corev1.NodeSelectorTerm{}
	for _, r := range reqs {
		f := strings.Fields(r)
		req := &corev1.NodeSelectorRequirement{Key: f[0], Operator: f[1], Values: f[2:]}
		if f[0] == "metadata.name" {
			t.MatchFields = append(t.MatchFields, req)
		} else {
			t.MatchExpressions = append(t.MatchExpressions, req)
		}
	}
	return t
}

func toleration(key, op, value, effect string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Tolerations = append(p.Spec.Tolerations, &corev1.Toleration{Key: key, Operator: op, Value: value, Effect: effect})
	}
}

func hostPort(port int32, protocol string) podOpt {
	return func(p *corev1.Pod) {
		c := p.Spec.Containers[0]
		c.Ports = append(c.Ports, &corev1.ContainerPort{ContainerPort: port, HostPort: port, Protocol: protocol})
	}
}

func schedulerName(name string) podOpt { return func(p *corev1.Pod) { p.Spec.SchedulerName = name } }

func boundTo(node string) podOpt { return func(p *corev1.Pod) { p.Spec.NodeName = node } }

func podLabels(kv ...string) podOpt {
	return func(p *corev1.Pod) {
		for i := 0; i+1 < len(kv); i += 2 {
			p.Metadata.Labels[kv[i]] = kv[i+1]
		}
	}
}

func priority(v int32) podOpt {
	return func(p *corev1.Pod) { p.Spec.Priority = proto.Int32(v) }
}

// pod creates a pod in namespace; it names no node and (by default) no
// scheduler, so the apiserver gives it default-scheduler.
func (e *env) pod(name string, opts ...podOpt) *corev1.Pod {
	e.t.Helper()
	p := &corev1.Pod{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{}},
		Spec: &corev1.PodSpec{
			Containers:                    []*corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}},
			TerminationGracePeriodSeconds: proto.Int64(0),
		},
	}
	for _, o := range opts {
		o(p)
	}
	created, err := e.pods.Create(e.ctx, p)
	if err != nil {
		e.t.Fatalf("creating pod %s: %v", name, err)
	}
	return created
}

func (e *env) get(name string) *corev1.Pod {
	e.t.Helper()
	p, err := e.pods.Get(e.ctx, namespace, name)
	if err != nil {
		e.t.Fatalf("reading pod %s: %v", name, err)
	}
	return p
}

// expectOn waits until pod name is bound and fails unless its node is one
// of nodes.
func (e *env) expectOn(name string, nodes ...string) string {
	e.t.Helper()
	var got string
	harness.Eventually(e.t, waitFor, "pod "+name+" bound", func() error {
		got = e.get(name).GetSpec().GetNodeName()
		if got == "" {
			return fmt.Errorf("still unbound")
		}
		return nil
	})
	for _, n := range nodes {
		if n == got {
			return got
		}
	}
	e.t.Errorf("pod %s bound to %s, want one of %v", name, got, nodes)
	return got
}

// settle returns once the implementation has acted on every pod created
// before: it adds a node only a fresh witness pod tolerates and selects,
// and waits until the witness is bound. Pods are placed oldest first, so
// by then every older pod has been considered at least once.
func (e *env) settle() {
	e.t.Helper()
	e.witness++
	name := fmt.Sprintf("witness-%d", e.witness)
	e.node(name, taint("conformance.bosun.dev/witness", name, "NoSchedule"))
	e.pod(name, onHost(name), toleration("conformance.bosun.dev/witness", "Equal", name, "NoSchedule"))
	e.expectOn(name, name)
}

// expectPending settles, then fails for every named pod that is bound. With
// capability conditions it also waits for PodScheduled=False on each, with
// capability events for a FailedScheduling Event about each.
func (e *env) expectPending(names ...string) {
	e.t.Helper()
	e.settle()
	if e.caps["conditions"] {
		for _, name := range names {
			harness.Eventually(e.t, waitFor, "PodScheduled=False on pending pod "+name, func() error {
				p := e.get(name)
				for _, c := range p.GetStatus().GetConditions() {
					if c.GetType() == "PodScheduled" {
						if c.GetStatus() == "False" && c.GetReason() == "Unschedulable" && c.GetMessage() != "" {
							return nil
						}
						return fmt.Errorf("PodScheduled=%s reason %q message %q", c.GetStatus(), c.GetReason(), c.GetMessage())
					}
				}
				return fmt.Errorf("no PodScheduled condition in %v", p.GetStatus().GetConditions())
			})
		}
	}
	if e.caps["events"] {
		events := client.For[*corev1.Event](e.cluster.Admin)
		for _, name := range names {
			harness.Eventually(e.t, waitFor, "FailedScheduling Event for pending pod "+name, func() error {
				all, _, err := events.ListAll(e.ctx, client.ListOptions{Namespace: namespace})
				if err != nil {
					return err
				}
				for _, ev := range all {
					o := ev.GetInvolvedObject()
					if o.GetKind() == "Pod" && o.GetName() == name && ev.GetReason() == "FailedScheduling" &&
						ev.GetType() == "Warning" && ev.GetMessage() != "" {
						return nil
					}
				}
				return fmt.Errorf("none among %d events", len(all))
			})
		}
	}
	for _, name := range names {
		if node := e.get(name).GetSpec().GetNodeName(); node != "" {
			e.t.Errorf("pod %s was bound to %s; it fits no node and must stay pending", name, node)
		}
	}
}

// boundPods lists the case's bound pods by node, witnesses left out.
func (e *env) boundPods() map[string][]*corev1.Pod {
	e.t.Helper()
	all, _, err := e.pods.ListAll(e.ctx, client.ListOptions{Namespace: namespace})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string][]*corev1.Pod{}
	for _, p := range all {
		if n := p.GetSpec().GetNodeName(); n != "" && !strings.HasPrefix(n, "witness-") {
			out[n] = append(out[n], p)
		}
	}
	return out
}

// countBound waits until exactly want pods among names are bound and stay
// so once the implementation settled, and returns their nodes by pod.
func (e *env) countBound(want int, names ...string) map[string]string {
	e.t.Helper()
	bound := map[string]string{}
	harness.Eventually(e.t, waitFor, fmt.Sprintf("%d of %v bound", want, names), func() error {
		bound = map[string]string{}
		for _, n := range names {
			if node := e.get(n).GetSpec().GetNodeName(); node != "" {
				bound[n] = node
			}
		}
		if len(bound) < want {
			return fmt.Errorf("bound: %v", bound)
		}
		return nil
	})
	e.settle()
	bound = map[string]string{}
	for _, n := range names {
		if node := e.get(n).GetSpec().GetNodeName(); node != "" {
			bound[n] = node
		}
	}
	if len(bound) != want {
		e.t.Errorf("%d pods bound (%v), want exactly %d", len(bound), bound, want)
	}
	return bound
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
