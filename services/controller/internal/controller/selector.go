package controller

import (
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	metav1 "bosun.dev/gen/bosun/meta/v1"
)

// Selector converts an API label selector into one that matches label sets.
// A nil or empty selector matches nothing: a workload must say what it owns.
func Selector(sel *metav1.LabelSelector) (labels.Selector, error) {
	if sel == nil || (len(sel.GetMatchLabels()) == 0 && len(sel.GetMatchExpressions()) == 0) {
		return labels.Nothing(), nil
	}
	out := labels.NewSelector()
	keys := make([]string, 0, len(sel.GetMatchLabels()))
	for k := range sel.GetMatchLabels() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		r, err := labels.NewRequirement(k, selection.Equals, []string{sel.GetMatchLabels()[k]})
		if err != nil {
			return nil, fmt.Errorf("selector matchLabels[%s]: %w", k, err)
		}
		out = out.Add(*r)
	}
	for i, e := range sel.GetMatchExpressions() {
		var op selection.Operator
		switch e.GetOperator() {
		case "In":
			op = selection.In
		case "NotIn":
			op = selection.NotIn
		case "Exists":
			op = selection.Exists
		case "DoesNotExist":
			op = selection.DoesNotExist
		default:
			return nil, fmt.Errorf("selector matchExpressions[%d].operator: unknown operator %q", i, e.GetOperator())
		}
		r, err := labels.NewRequirement(e.GetKey(), op, e.GetValues())
		if err != nil {
			return nil, fmt.Errorf("selector matchExpressions[%d]: %w", i, err)
		}
		out = out.Add(*r)
	}
	return out, nil
}

// Matches reports whether sel selects an object with labels lbls; a broken
// selector selects nothing.
func Matches(sel *metav1.LabelSelector, lbls map[string]string) bool {
	s, err := Selector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(lbls))
}
