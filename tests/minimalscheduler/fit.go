package minimalscheduler

import (
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/api/resource"

	corev1 "bosun.dev/gen/bosun/core/v1"
)

// UnschedulableTaintKey is the taint a cordoned node implicitly carries: a
// pod that tolerates it (with effect NoSchedule) may go to a cordoned node.
const UnschedulableTaintKey = "node.kubernetes.io/unschedulable"

// Fits reports whether pod may run on node, which already runs onNode (the
// pods bound or being bound to it). It returns nil when the pod fits, and
// otherwise an error that says which constraint refused it.
func Fits(pod *corev1.Pod, node *corev1.Node, onNode []*corev1.Pod) error {
	spec := pod.GetSpec()
	if node.GetSpec().GetUnschedulable() &&
		!Tolerates(spec.GetTolerations(), &corev1.Taint{Key: UnschedulableTaintKey, Effect: "NoSchedule"}) {
		return fmt.Errorf("node is cordoned")
	}
	for _, t := range node.GetSpec().GetTaints() {
		if (t.GetEffect() == "NoSchedule" || t.GetEffect() == "NoExecute") && !Tolerates(spec.GetTolerations(), t) {
			return fmt.Errorf("untolerated taint %s=%s:%s", t.GetKey(), t.GetValue(), t.GetEffect())
		}
	}
	labels := node.GetMetadata().GetLabels()
	for k, v := range spec.GetNodeSelector() {
		if got, ok := labels[k]; !ok || got != v {
			return fmt.Errorf("node selector %s=%s does not match", k, v)
		}
	}
	if req := spec.GetAffinity().GetNodeAffinity().GetRequiredDuringSchedulingIgnoredDuringExecution(); req != nil &&
		!MatchesNodeSelector(req, node) {
		return fmt.Errorf("required node affinity does not match")
	}
	if err := fitsResources(pod, node, onNode); err != nil {
		return err
	}
	return fitsHostPorts(pod, onNode)
}

// Tolerates reports whether one of tolerations matches taint.
func Tolerates(tolerations []*corev1.Toleration, taint *corev1.Taint) bool {
	for _, tol := range tolerations {
		if tol.GetEffect() != "" && tol.GetEffect() != taint.GetEffect() {
			continue
		}
		switch tol.GetOperator() {
		case "Exists":
			if tol.GetKey() == "" || tol.GetKey() == taint.GetKey() {
				return true
			}
		case "", "Equal":
			if tol.GetKey() == taint.GetKey() && tol.GetValue() == taint.GetValue() {
				return true
			}
		}
	}
	return false
}

// MatchesNodeSelector reports whether node matches any term of sel. A term
// matches when all its requirements do; a term without requirements
// matches nothing.
func MatchesNodeSelector(sel *corev1.NodeSelector, node *corev1.Node) bool {
	for _, term := range sel.GetNodeSelectorTerms() {
		if len(term.GetMatchExpressions())+len(term.GetMatchFields()) == 0 {
			continue
		}
		ok := true
		for _, r := range term.GetMatchExpressions() {
			v, has := node.GetMetadata().GetLabels()[r.GetKey()]
			ok = ok && matches(r, v, has)
		}
		for _, r := range term.GetMatchFields() {
			// metadata.name is the only field nodes are selected by.
			ok = ok && r.GetKey() == "metadata.name" && matches(r, node.GetMetadata().GetName(), true)
		}
		if ok {
			return true
		}
	}
	return false
}

func matches(r *corev1.NodeSelectorRequirement, value string, has bool) bool {
	in := func() bool {
		for _, v := range r.GetValues() {
			if v == value {
				return true
			}
		}
		return false
	}
	switch r.GetOperator() {
	case "In":
		return has && in()
	case "NotIn":
		return !has || !in()
	case "Exists":
		return has
	case "DoesNotExist":
		return !has
	case "Gt", "Lt":
		if !has || len(r.GetValues()) != 1 {
			return false
		}
		got, err1 := strconv.ParseInt(value, 10, 64)
		want, err2 := strconv.ParseInt(r.GetValues()[0], 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if r.GetOperator() == "Gt" {
			return got > want
		}
		return got < want
	}
	return false
}

// Requests sums what a pod asks for: its containers' requests, or the
// largest init container's when that is more, per resource.
func Requests(pod *corev1.Pod) map[string]resource.Quantity {
	sum := map[string]resource.Quantity{}
	for _, c := range pod.GetSpec().GetContainers() {
		for name, s := range c.GetResources().GetRequests() {
			q := sum[name]
			q.Add(parse(s))
			sum[name] = q
		}
	}
	for _, c := range pod.GetSpec().GetInitContainers() {
		for name, s := range c.GetResources().GetRequests() {
			if q := parse(s); q.Cmp(sum[name]) > 0 {
				sum[name] = q
			}
		}
	}
	return sum
}

// parse reads a quantity the apiserver has already validated.
func parse(s string) resource.Quantity {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return resource.Quantity{}
	}
	return q
}

func fitsResources(pod *corev1.Pod, node *corev1.Node, onNode []*corev1.Pod) error {
	alloc := node.GetStatus().GetAllocatable()
	if s, ok := alloc["pods"]; ok {
		if limit := parse(s); int64(len(onNode))+1 > limit.Value() {
			return fmt.Errorf("too many pods: %d of %d", len(onNode), limit.Value())
		}
	}
	used := map[string]resource.Quantity{}
	for _, p := range onNode {
		for name, q := range Requests(p) {
			u := used[name]
			u.Add(q)
			used[name] = u
		}
	}
	for name, want := range Requests(pod) {
		if want.IsZero() {
			continue
		}
		total := used[name]
		total.Add(want)
		if total.Cmp(parse(alloc[name])) > 0 {
			return fmt.Errorf("insufficient %s", name)
		}
	}
	return nil
}

type hostPort struct {
	protocol string
	port     int32
	ip       string
}

func hostPorts(pod *corev1.Pod) []hostPort {
	var out []hostPort
	for _, c := range pod.GetSpec().GetContainers() {
		for _, p := range c.GetPorts() {
			if p.GetHostPort() == 0 {
				continue
			}
			hp := hostPort{protocol: p.GetProtocol(), port: p.GetHostPort(), ip: p.GetHostIp()}
			if hp.protocol == "" {
				hp.protocol = "TCP"
			}
			if hp.ip == "0.0.0.0" {
				hp.ip = ""
			}
			out = append(out, hp)
		}
	}
	return out
}

func fitsHostPorts(pod *corev1.Pod, onNode []*corev1.Pod) error {
	want := hostPorts(pod)
	if len(want) == 0 {
		return nil
	}
	for _, other := range onNode {
		for _, taken := range hostPorts(other) {
			for _, w := range want {
				if w.protocol == taken.protocol && w.port == taken.port &&
					(w.ip == "" || taken.ip == "" || w.ip == taken.ip) {
					return fmt.Errorf("host port %d/%s is taken", w.port, w.protocol)
				}
			}
		}
	}
	return nil
}
