package deployment

import (
	"sort"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	"bosun.dev/services/controller/internal/controller"
)

// Fenceposts resolves a rolling update's maxSurge and maxUnavailable against
// replicas: surge rounds up, unavailability rounds down, and when both come
// to zero one pod may be unavailable so that the rollout can move at all.
func Fenceposts(d *appsv1.Deployment) (surge, unavailable int32, err error) {
	ru := d.GetSpec().GetStrategy().GetRollingUpdate()
	replicas := int(d.GetSpec().GetReplicas())
	s, err := controller.ScaledValue(ru.GetMaxSurge(), replicas, true)
	if err != nil {
		return 0, 0, err
	}
	u, err := controller.ScaledValue(ru.GetMaxUnavailable(), replicas, false)
	if err != nil {
		return 0, 0, err
	}
	if s == 0 && u == 0 {
		u = 1
	}
	return int32(s), int32(u), nil
}

func specReplicas(rs *appsv1.ReplicaSet) int32 { return rs.GetSpec().GetReplicas() }

// podCeiling is the most pods rs may have: its spec, or the pods its status
// still counts when they have not gone yet.
func podCeiling(rs *appsv1.ReplicaSet) int32 {
	return max(rs.GetSpec().GetReplicas(), rs.GetStatus().GetReplicas())
}

// NewReplicas is the size the new ReplicaSet may grow to now: never more
// pods in all than replicas+surge, counting the pods of old ReplicaSets that
// are still there.
func NewReplicas(replicas, surge int32, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) int32 {
	var current int32
	for _, rs := range all {
		current += podCeiling(rs)
	}
	maxTotal := replicas + surge
	if current >= maxTotal {
		return specReplicas(newRS)
	}
	up := min(maxTotal-current, replicas-specReplicas(newRS))
	return specReplicas(newRS) + max(up, 0)
}

// ScaleDownOld says how far to shrink each old ReplicaSet (oldest first):
// first their pods that are not available, which count for nothing, then
// available ones, never leaving fewer than replicas-unavailable available
// pods in all. It returns the new size of each old ReplicaSet, in order.
func ScaleDownOld(replicas, unavailable int32, old []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) []int32 {
	minAvailable := replicas - unavailable
	sizes := make([]int32, len(old))
	var allPods, available int32
	for i, rs := range old {
		sizes[i] = specReplicas(rs)
		allPods += specReplicas(rs)
		available += min(rs.GetStatus().GetAvailableReplicas(), specReplicas(rs))
	}
	newUnavailable := int32(0)
	if newRS != nil {
		allPods += specReplicas(newRS)
		available += min(newRS.GetStatus().GetAvailableReplicas(), specReplicas(newRS))
		newUnavailable = max(specReplicas(newRS)-newRS.GetStatus().GetAvailableReplicas(), 0)
	}
	// Unhealthy pods of old ReplicaSets first.
	budget := allPods - minAvailable - newUnavailable
	for i, rs := range old {
		if budget <= 0 {
			break
		}
		unhealthy := max(specReplicas(rs)-rs.GetStatus().GetAvailableReplicas(), 0)
		cut := min(unhealthy, budget)
		sizes[i] -= cut
		budget -= cut
	}
	// Then available pods, while enough stay available.
	spare := available - minAvailable
	for i, rs := range old {
		if spare <= 0 {
			break
		}
		avail := min(rs.GetStatus().GetAvailableReplicas(), sizes[i])
		cut := min(avail, spare)
		sizes[i] -= cut
		spare -= cut
	}
	return sizes
}

// ProportionalSizes spreads a change of replicas over the active ReplicaSets
// of a rollout in proportion to their sizes, so that scaling mid-rollout
// keeps the mix of old and new: sizes are the current sizes, target the
// total to reach. Leftovers from rounding go to the largest.
func ProportionalSizes(sizes []int32, target int32) []int32 {
	out := append([]int32(nil), sizes...)
	var total int32
	for _, s := range sizes {
		total += s
	}
	if total == 0 || len(sizes) == 0 {
		if len(out) > 0 {
			out[0] = max(target, 0)
		}
		return out
	}
	target = max(target, 0)
	var given int32
	for i, s := range sizes {
		out[i] = int32(int64(target) * int64(s) / int64(total))
		given += out[i]
	}
	order := make([]int, len(sizes))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return sizes[order[a]] > sizes[order[b]] })
	for rest := target - given; rest > 0; {
		for _, i := range order {
			if rest == 0 {
				break
			}
			out[i]++
			rest--
		}
	}
	for i := range out {
		out[i] = max(out[i], 0)
	}
	return out
}
