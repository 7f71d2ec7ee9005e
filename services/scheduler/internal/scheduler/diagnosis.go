package scheduler

import (
	"fmt"
	"sort"
	"strings"

	"bosun.dev/services/scheduler/internal/framework"
)

// FitError says why no node could take a pod.
type FitError struct {
	Pod         *framework.PodInfo
	NumAllNodes int
	// Statuses holds the rejecting status of every node that was filtered.
	Statuses framework.NodeToStatus
	// PreFilterMessage is set when a PreFilter plugin rejected the pod for
	// every node at once.
	PreFilterMessage string
	// PostFilterMessage says why preemption did not help, when it ran.
	PostFilterMessage string
}

func (f *FitError) Error() string { return f.Message() }

// Message is kube-scheduler's explanation: how many nodes rejected the pod
// for each reason, most common first, e.g.
// "0/5 nodes are available: 3 Insufficient cpu, 2 node(s) had untolerated taint {dedicated: gpu}."
func (f *FitError) Message() string {
	var b strings.Builder
	fmt.Fprintf(&b, "0/%d nodes are available", f.NumAllNodes)
	if f.NumAllNodes == 0 {
		b.WriteString(": no nodes are registered")
	}
	if f.PreFilterMessage != "" {
		b.WriteString(": " + f.PreFilterMessage)
	} else if len(f.Statuses) > 0 {
		counts := map[string]int{}
		for _, s := range f.Statuses {
			for _, r := range s.Reasons() {
				counts[r]++
			}
		}
		reasons := make([]string, 0, len(counts))
		for r := range counts {
			reasons = append(reasons, r)
		}
		sort.Slice(reasons, func(i, j int) bool {
			if counts[reasons[i]] != counts[reasons[j]] {
				return counts[reasons[i]] > counts[reasons[j]]
			}
			return reasons[i] < reasons[j]
		})
		parts := make([]string, len(reasons))
		for i, r := range reasons {
			parts[i] = fmt.Sprintf("%d %s", counts[r], r)
		}
		b.WriteString(": " + strings.Join(parts, ", "))
	}
	b.WriteString(".")
	if f.PostFilterMessage != "" {
		b.WriteString(" " + f.PostFilterMessage + ".")
	}
	return b.String()
}

// UnschedulablePlugins are the plugins that rejected the pod.
func (f *FitError) UnschedulablePlugins() map[string]struct{} {
	out := map[string]struct{}{}
	for _, s := range f.Statuses {
		if p := s.Plugin(); p != "" {
			out[p] = struct{}{}
		}
	}
	return out
}
