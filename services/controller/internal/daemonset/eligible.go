package daemonset

import (
	"strconv"

	corev1 "bosun.dev/gen/bosun/core/v1"
)

// Eligible reports whether a daemon pod with spec should run on node: the
// node matches its nodeSelector and required node affinity, and the pod
// tolerates every NoSchedule and NoExecute taint of the node.
func Eligible(node *corev1.Node, spec *corev1.PodSpec) bool {
	lbls := node.GetMetadata().GetLabels()
	for k, v := range spec.GetNodeSelector() {
		if w, ok := lbls[k]; !ok || w != v {
			return false
		}
	}
	if req := spec.GetAffinity().GetNodeAffinity().GetRequiredDuringSchedulingIgnoredDuringExecution(); req != nil {
		ok := false
		for _, term := range req.GetNodeSelectorTerms() {
			if termMatches(node, term) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, t := range node.GetSpec().GetTaints() {
		if t.GetEffect() != "NoSchedule" && t.GetEffect() != "NoExecute" {
			continue
		}
		if !tolerated(t, spec.GetTolerations()) {
			return false
		}
	}
	return true
}

func termMatches(node *corev1.Node, term *corev1.NodeSelectorTerm) bool {
	if len(term.GetMatchExpressions()) == 0 && len(term.GetMatchFields()) == 0 {
		return false
	}
	for _, r := range term.GetMatchExpressions() {
		v, ok := node.GetMetadata().GetLabels()[r.GetKey()]
		if !requirementMatches(r, v, ok) {
			return false
		}
	}
	for _, r := range term.GetMatchFields() {
		if r.GetKey() != "metadata.name" || !requirementMatches(r, node.GetMetadata().GetName(), true) {
			return false
		}
	}
	return true
}

func requirementMatches(r *corev1.NodeSelectorRequirement, v string, present bool) bool {
	in := func() bool {
		for _, x := range r.GetValues() {
			if x == v {
				return true
			}
		}
		return false
	}
	switch r.GetOperator() {
	case "In":
		return present && in()
	case "NotIn":
		return !present || !in()
	case "Exists":
		return present
	case "DoesNotExist":
		return !present
	case "Gt", "Lt":
		if !present || len(r.GetValues()) != 1 {
			return false
		}
		a, err1 := strconv.ParseInt(v, 10, 64)
		b, err2 := strconv.ParseInt(r.GetValues()[0], 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if r.GetOperator() == "Gt" {
			return a > b
		}
		return a < b
	}
	return false
}

func tolerated(t *corev1.Taint, tolerations []*corev1.Toleration) bool {
	for _, tol := range tolerations {
		if tol.GetEffect() != "" && tol.GetEffect() != t.GetEffect() {
			continue
		}
		if tol.GetKey() == "" && tol.GetOperator() == "Exists" {
			return true
		}
		if tol.GetKey() != t.GetKey() {
			continue
		}
		switch tol.GetOperator() {
		case "Exists":
			return true
		case "", "Equal":
			if tol.GetValue() == t.GetValue() {
				return true
			}
		}
	}
	return false
}
