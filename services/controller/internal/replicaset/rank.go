package replicaset

import (
	"sort"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/controller/internal/controller"
)

// Rank orders pods for scale-down, the first to delete first: pods not yet
// scheduled, then pending, then not ready, then the newest. It returns a new
// slice and leaves pods as it was.
func Rank(pods []*corev1.Pod) []*corev1.Pod {
	out := append([]*corev1.Pod(nil), pods...)
	sort.SliceStable(out, func(i, j int) bool { return deleteBefore(out[i], out[j]) })
	return out
}

func deleteBefore(a, b *corev1.Pod) bool {
	if sa, sb := a.GetSpec().GetNodeName() != "", b.GetSpec().GetNodeName() != ""; sa != sb {
		return !sa
	}
	if pa, pb := phaseRank(a), phaseRank(b); pa != pb {
		return pa < pb
	}
	if ra, rb := controller.IsPodReady(a), controller.IsPodReady(b); ra != rb {
		return !ra
	}
	ta, tb := a.GetMetadata().GetCreationTimestamp().AsTime(), b.GetMetadata().GetCreationTimestamp().AsTime()
	if !ta.Equal(tb) {
		return ta.After(tb)
	}
	return a.GetMetadata().GetName() > b.GetMetadata().GetName()
}

func phaseRank(p *corev1.Pod) int {
	switch p.GetStatus().GetPhase() {
	case controller.PodPending, "":
		return 0
	case "Unknown":
		return 1
	default:
		return 2
	}
}
