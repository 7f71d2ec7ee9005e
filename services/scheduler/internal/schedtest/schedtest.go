// Package schedtest builds pods, nodes and node infos for the scheduler's
// tests, and a Handle over a fixed snapshot for testing plugins alone.
package schedtest

import (
	"context"

	"google.golang.org/grpc"
	"k8s.io/apimachinery/pkg/labels"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/services/scheduler/internal/cache"
	"bosun.dev/services/scheduler/internal/framework"
)

// PodWrapper builds a pod.
type PodWrapper struct{ p *corev1.Pod }

// Pod starts a pod in namespace default with uid "uid-<name>" and one
// container that requests nothing.
func Pod(name string) *PodWrapper {
	return &PodWrapper{p: &corev1.Pod{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default", Uid: "uid-" + name, Labels: map[string]string{}},
		Spec:     &corev1.PodSpec{SchedulerName: framework.DefaultSchedulerName, Containers: []*corev1.Container{{Name: "c", Image: "img"}}},
		Status:   &corev1.PodStatus{Phase: "Pending"},
	}}
}

// Obj returns the pod.
func (w *PodWrapper) Obj() *corev1.Pod { return w.p }

// Info returns the pod parsed.
func (w *PodWrapper) Info() *framework.PodInfo { return framework.NewPodInfo(w.p) }

// Namespace sets the namespace.
func (w *PodWrapper) Namespace(ns string) *PodWrapper { w.p.Metadata.Namespace = ns; return w }

// Req sets the first container's cpu and memory requests ("" for none).
func (w *PodWrapper) Req(cpu, mem string) *PodWrapper {
	r := map[string]string{}
	if cpu != "" {
		r["cpu"] = cpu
	}
	if mem != "" {
		r["memory"] = mem
	}
	w.p.Spec.Containers[0].Resources = &corev1.ResourceRequirements{Requests: r}
	return w
}

// InitReq adds an init container with these requests.
func (w *PodWrapper) InitReq(cpu, mem string) *PodWrapper {
	w.p.Spec.InitContainers = append(w.p.Spec.InitContainers, &corev1.Container{Name: "init", Image: "img",
		Resources: &corev1.ResourceRequirements{Requests: map[string]string{"cpu": cpu, "memory": mem}}})
	return w
}

// Label sets a label.
func (w *PodWrapper) Label(k, v string) *PodWrapper { w.p.Metadata.Labels[k] = v; return w }

// NodeName sets spec.nodeName (the pod is bound).
func (w *PodWrapper) NodeName(n string) *PodWrapper { w.p.Spec.NodeName = n; return w }

// Priority sets spec.priority.
func (w *PodWrapper) Priority(p int32) *PodWrapper { w.p.Spec.Priority = &p; return w }

// NodeSelector adds a node selector entry.
func (w *PodWrapper) NodeSelector(k, v string) *PodWrapper {
	if w.p.Spec.NodeSelector == nil {
		w.p.Spec.NodeSelector = map[string]string{}
	}
	w.p.Spec.NodeSelector[k] = v
	return w
}

// Toleration adds a toleration.
func (w *PodWrapper) Toleration(key, op, value, effect string) *PodWrapper {
	w.p.Spec.Tolerations = append(w.p.Spec.Tolerations, &corev1.Toleration{Key: key, Operator: op, Value: value, Effect: effect})
	return w
}

// HostPort adds a container port taken on the host.
func (w *PodWrapper) HostPort(port int32, protocol, ip string) *PodWrapper {
	c := w.p.Spec.Containers[0]
	c.Ports = append(c.Ports, &corev1.ContainerPort{ContainerPort: port, HostPort: port, Protocol: protocol, HostIp: ip})
	return w
}

func (w *PodWrapper) affinity() *corev1.Affinity {
	if w.p.Spec.Affinity == nil {
		w.p.Spec.Affinity = &corev1.Affinity{}
	}
	return w.p.Spec.Affinity
}

// RequiredNodeAffinity adds a required node affinity term with one expression.
func (w *PodWrapper) RequiredNodeAffinity(key, op string, values ...string) *PodWrapper {
	a := w.affinity()
	if a.NodeAffinity == nil {
		a.NodeAffinity = &corev1.NodeAffinity{}
	}
	if a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{}
	}
	ns := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	ns.NodeSelectorTerms = append(ns.NodeSelectorTerms, &corev1.NodeSelectorTerm{
		MatchExpressions: []*corev1.NodeSelectorRequirement{{Key: key, Operator: op, Values: values}},
	})
	return w
}

// PreferredNodeAffinity adds a weighted node preference with one expression.
func (w *PodWrapper) PreferredNodeAffinity(weight int32, key, op string, values ...string) *PodWrapper {
	a := w.affinity()
	if a.NodeAffinity == nil {
		a.NodeAffinity = &corev1.NodeAffinity{}
	}
	a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution = append(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution,
		&corev1.PreferredSchedulingTerm{Weight: weight, Preference: &corev1.NodeSelectorTerm{
			MatchExpressions: []*corev1.NodeSelectorRequirement{{Key: key, Operator: op, Values: values}},
		}})
	return w
}

func term(topologyKey, k, v string) *corev1.PodAffinityTerm {
	return &corev1.PodAffinityTerm{TopologyKey: topologyKey, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{k: v}}}
}

// PodAffinity adds a required pod affinity term to pods labelled k=v.
func (w *PodWrapper) PodAffinity(topologyKey, k, v string) *PodWrapper {
	a := w.affinity()
	if a.PodAffinity == nil {
		a.PodAffinity = &corev1.PodAffinity{}
	}
	a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution = append(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution, term(topologyKey, k, v))
	return w
}

// PodAntiAffinity adds a required pod anti-affinity term against pods labelled k=v.
func (w *PodWrapper) PodAntiAffinity(topologyKey, k, v string) *PodWrapper {
	a := w.affinity()
	if a.PodAntiAffinity == nil {
		a.PodAntiAffinity = &corev1.PodAntiAffinity{}
	}
	a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution = append(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution, term(topologyKey, k, v))
	return w
}

// PreferredPodAffinity adds a weighted pod affinity term.
func (w *PodWrapper) PreferredPodAffinity(weight int32, topologyKey, k, v string) *PodWrapper {
	a := w.affinity()
	if a.PodAffinity == nil {
		a.PodAffinity = &corev1.PodAffinity{}
	}
	a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution = append(a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution,
		&corev1.WeightedPodAffinityTerm{Weight: weight, PodAffinityTerm: term(topologyKey, k, v)})
	return w
}

// PreferredPodAntiAffinity adds a weighted pod anti-affinity term.
func (w *PodWrapper) PreferredPodAntiAffinity(weight int32, topologyKey, k, v string) *PodWrapper {
	a := w.affinity()
	if a.PodAntiAffinity == nil {
		a.PodAntiAffinity = &corev1.PodAntiAffinity{}
	}
	a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution = append(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution,
		&corev1.WeightedPodAffinityTerm{Weight: weight, PodAffinityTerm: term(topologyKey, k, v)})
	return w
}

// Spread adds a topology spread constraint over pods labelled k=v.
func (w *PodWrapper) Spread(maxSkew int32, topologyKey, when, k, v string) *PodWrapper {
	w.p.Spec.TopologySpreadConstraints = append(w.p.Spec.TopologySpreadConstraints, &corev1.TopologySpreadConstraint{
		MaxSkew: maxSkew, TopologyKey: topologyKey, WhenUnsatisfiable: when,
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{k: v}},
	})
	return w
}

// NodeWrapper builds a node.
type NodeWrapper struct{ n *corev1.Node }

// Node starts a node with label kubernetes.io/hostname=<name> and
// allocatable 4 cpu, 8Gi memory, 110 pods.
func Node(name string) *NodeWrapper {
	res := map[string]string{"cpu": "4", "memory": "8Gi", "pods": "110"}
	return &NodeWrapper{n: &corev1.Node{
		Metadata: &metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Spec:     &corev1.NodeSpec{},
		Status:   &corev1.NodeStatus{Capacity: res, Allocatable: res},
	}}
}

// Obj returns the node.
func (w *NodeWrapper) Obj() *corev1.Node { return w.n }

// Capacity sets allocatable (and capacity) cpu, memory and pods.
func (w *NodeWrapper) Capacity(cpu, mem, pods string) *NodeWrapper {
	res := map[string]string{"cpu": cpu, "memory": mem, "pods": pods}
	w.n.Status.Capacity, w.n.Status.Allocatable = res, res
	return w
}

// Label sets a label.
func (w *NodeWrapper) Label(k, v string) *NodeWrapper { w.n.Metadata.Labels[k] = v; return w }

// Taint adds a taint.
func (w *NodeWrapper) Taint(key, value, effect string) *NodeWrapper {
	w.n.Spec.Taints = append(w.n.Spec.Taints, &corev1.Taint{Key: key, Value: value, Effect: effect})
	return w
}

// Unschedulable cordons the node.
func (w *NodeWrapper) Unschedulable() *NodeWrapper { w.n.Spec.Unschedulable = true; return w }

// NodeInfo returns the node's info with pods on it.
func NodeInfo(node *corev1.Node, pods ...*corev1.Pod) *framework.NodeInfo {
	ni := framework.NewNodeInfo(node)
	for _, p := range pods {
		ni.AddPodInfo(framework.NewPodInfo(p))
	}
	return ni
}

// Handle is a framework.Handle over a fixed snapshot, for plugins tested
// alone: no apiserver, no nominated pods, parallelism 1.
type Handle struct {
	Snapshot   *cache.Snapshot
	Namespaces map[string]labels.Set
}

var _ framework.Handle = &Handle{}

// NewHandle returns a Handle over the node infos.
func NewHandle(infos ...*framework.NodeInfo) *Handle {
	return &Handle{Snapshot: cache.NewSnapshotFrom(infos...)}
}

// SnapshotSharedLister implements framework.Handle.
func (h *Handle) SnapshotSharedLister() framework.NodeInfoLister { return h.Snapshot }

// Parallelizer implements framework.Handle.
func (h *Handle) Parallelizer() framework.Parallelizer { return framework.Parallelizer{Parallelism: 1} }

// Conn implements framework.Handle; there is none.
func (h *Handle) Conn() grpc.ClientConnInterface { return nil }

// NamespaceLabels implements framework.Handle.
func (h *Handle) NamespaceLabels(ns string) labels.Set { return h.Namespaces[ns] }

// Nominator implements framework.Handle; nothing is nominated.
func (h *Handle) Nominator() framework.Nominator { return nil }

// SchedulerName implements framework.Handle.
func (h *Handle) SchedulerName() string { return framework.DefaultSchedulerName }

// RunFilterPluginsWithNominatedPods implements framework.Handle; it filters nothing.
func (h *Handle) RunFilterPluginsWithNominatedPods(context.Context, *framework.CycleState, *framework.PodInfo, *framework.NodeInfo) *framework.Status {
	return nil
}

// RunPreFilterExtensionAddPod implements framework.Handle; it does nothing.
func (h *Handle) RunPreFilterExtensionAddPod(context.Context, *framework.CycleState, *framework.PodInfo, *framework.PodInfo, *framework.NodeInfo) *framework.Status {
	return nil
}

// RunPreFilterExtensionRemovePod implements framework.Handle; it does nothing.
func (h *Handle) RunPreFilterExtensionRemovePod(context.Context, *framework.CycleState, *framework.PodInfo, *framework.PodInfo, *framework.NodeInfo) *framework.Status {
	return nil
}

// WaitingPod implements framework.Handle; none wait.
func (h *Handle) WaitingPod(string) *framework.WaitingPod { return nil }

// FilterAll runs a plugin's PreFilter (when it has one) and then its Filter
// on every node of the handle's snapshot, and returns each node's status
// by name. A PreFilter rejection is every node's status; Skip means every
// node passes.
func FilterAll(t interface{ Fatalf(string, ...any) }, pl framework.Plugin, h *Handle, pod *framework.PodInfo) map[string]*framework.Status {
	ctx := context.Background()
	state := framework.NewCycleState()
	out := map[string]*framework.Status{}
	if pf, ok := pl.(framework.PreFilterPlugin); ok {
		s := pf.PreFilter(ctx, state, pod)
		if s.IsSkip() {
			for _, ni := range h.Snapshot.List() {
				out[ni.Name()] = nil
			}
			return out
		}
		if !s.IsSuccess() {
			for _, ni := range h.Snapshot.List() {
				out[ni.Name()] = s
			}
			return out
		}
	}
	f, ok := pl.(framework.FilterPlugin)
	if !ok {
		t.Fatalf("%s is not a Filter plugin", pl.Name())
	}
	for _, ni := range h.Snapshot.List() {
		out[ni.Name()] = f.Filter(ctx, state, pod, ni)
	}
	return out
}

// ScoreAll runs a plugin's PreScore (when it has one), Score on every node
// and NormalizeScore, and returns the scores by node name; nil when
// PreScore returned Skip.
func ScoreAll(t interface{ Fatalf(string, ...any) }, pl framework.ScorePlugin, h *Handle, pod *framework.PodInfo) map[string]int64 {
	ctx := context.Background()
	state := framework.NewCycleState()
	nodes := h.Snapshot.List()
	if ps, ok := pl.(framework.PreScorePlugin); ok {
		s := ps.PreScore(ctx, state, pod, nodes)
		if s.IsSkip() {
			return nil
		}
		if !s.IsSuccess() {
			t.Fatalf("PreScore: %v", s)
		}
	}
	scores := make(framework.NodeScoreList, len(nodes))
	for i, ni := range nodes {
		s, st := pl.Score(ctx, state, pod, ni)
		if !st.IsSuccess() {
			t.Fatalf("Score on %s: %v", ni.Name(), st)
		}
		scores[i] = framework.NodeScore{Name: ni.Name(), Score: s}
	}
	if ext := pl.ScoreExtensions(); ext != nil {
		if st := ext.NormalizeScore(ctx, state, pod, scores); !st.IsSuccess() {
			t.Fatalf("NormalizeScore: %v", st)
		}
	}
	out := map[string]int64{}
	for _, s := range scores {
		out[s.Name] = s.Score
	}
	return out
}
