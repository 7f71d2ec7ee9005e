package deployment

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	"bosun.dev/pkg/api"
)

// Condition types and reasons, as Kubernetes'.
const (
	ConditionAvailable   = "Available"
	ConditionProgressing = "Progressing"

	ReasonMinimumReplicasAvailable   = "MinimumReplicasAvailable"
	ReasonMinimumReplicasUnavailable = "MinimumReplicasUnavailable"
	ReasonNewReplicaSetCreated       = "NewReplicaSetCreated"
	ReasonReplicaSetUpdated          = "ReplicaSetUpdated"
	ReasonNewReplicaSetAvailable     = "NewReplicaSetAvailable"
	ReasonProgressDeadlineExceeded   = "ProgressDeadlineExceeded"
	ReasonPaused                     = "DeploymentPaused"
)

// Condition returns the condition of type t, or nil.
func Condition(st *appsv1.DeploymentStatus, t string) *appsv1.DeploymentCondition {
	for _, c := range st.GetConditions() {
		if c.GetType() == t {
			return c
		}
	}
	return nil
}

func setCondition(st *appsv1.DeploymentStatus, c *appsv1.DeploymentCondition) {
	for i, old := range st.Conditions {
		if old.GetType() != c.GetType() {
			continue
		}
		if old.GetStatus() == c.GetStatus() {
			c.LastTransitionTime = old.GetLastTransitionTime()
		}
		st.Conditions[i] = c
		return
	}
	st.Conditions = append(st.Conditions, c)
}

// syncStatus computes the Deployment's status from its ReplicaSets, judges
// progress against the deadline, and writes status and revision when they
// changed.
func (d *Controller) syncStatus(ctx context.Context, st *state) error {
	if err := d.syncRevision(ctx, st); err != nil {
		return err
	}
	dep := st.d
	old := dep.GetStatus()
	next := &appsv1.DeploymentStatus{
		ObservedGeneration: dep.GetMetadata().GetGeneration(),
	}
	if old != nil {
		next.CollisionCount = old.CollisionCount
	}
	for _, c := range old.GetConditions() {
		next.Conditions = append(next.Conditions, proto.Clone(c).(*appsv1.DeploymentCondition))
	}
	for _, rs := range st.all {
		next.Replicas += rs.GetStatus().GetReplicas()
		next.ReadyReplicas += rs.GetStatus().GetReadyReplicas()
		next.AvailableReplicas += rs.GetStatus().GetAvailableReplicas()
	}
	if st.newRS != nil {
		next.UpdatedReplicas = st.newRS.GetStatus().GetReplicas()
	}
	replicas := dep.GetSpec().GetReplicas()
	next.UnavailableReplicas = max(replicas-next.AvailableReplicas, 0)

	now := timestamppb.New(d.now())
	_, unavailable, err := Fenceposts(dep)
	if err != nil || dep.GetSpec().GetStrategy().GetType() == Recreate {
		unavailable = 0
	}
	if next.AvailableReplicas >= replicas-unavailable {
		setCondition(next, &appsv1.DeploymentCondition{Type: ConditionAvailable, Status: "True", LastUpdateTime: now, LastTransitionTime: now,
			Reason: ReasonMinimumReplicasAvailable, Message: "Deployment has minimum availability."})
	} else {
		setCondition(next, &appsv1.DeploymentCondition{Type: ConditionAvailable, Status: "False", LastUpdateTime: now, LastTransitionTime: now,
			Reason: ReasonMinimumReplicasUnavailable, Message: "Deployment does not have minimum availability."})
	}
	if keep := Condition(old, ConditionAvailable); keep != nil {
		if c := Condition(next, ConditionAvailable); c.Status == keep.Status && c.Reason == keep.Reason {
			c.LastUpdateTime = keep.LastUpdateTime
		}
	}

	requeue := d.progress(st, old, next, now)
	if requeue > 0 {
		d.queue.AddAfter(api.KeyOf(dep), requeue)
	}
	if proto.Equal(next, old) {
		return nil
	}
	out := proto.Clone(dep).(*appsv1.Deployment)
	out.Status = next
	_, err = d.dAPI.UpdateStatus(ctx, out)
	return err
}

// progress sets the Progressing condition and returns when to look again
// for an exceeded deadline (0: no need).
func (d *Controller) progress(st *state, old, next *appsv1.DeploymentStatus, now *timestamppb.Timestamp) time.Duration {
	dep := st.d
	prev := Condition(old, ConditionProgressing)
	if dep.GetSpec().GetPaused() {
		if prev == nil || prev.GetReason() != ReasonPaused {
			setCondition(next, &appsv1.DeploymentCondition{Type: ConditionProgressing, Status: "Unknown", LastUpdateTime: now, LastTransitionTime: now,
				Reason: ReasonPaused, Message: "Deployment is paused"})
		}
		return 0
	}
	name := ""
	if st.newRS != nil {
		name = st.newRS.GetMetadata().GetName()
	}
	set := func(status, reason, msg string) {
		setCondition(next, &appsv1.DeploymentCondition{Type: ConditionProgressing, Status: status, LastUpdateTime: now, LastTransitionTime: now, Reason: reason, Message: msg})
	}
	switch {
	case st.newRS != nil && complete(st):
		if prev == nil || prev.GetReason() != ReasonNewReplicaSetAvailable {
			set("True", ReasonNewReplicaSetAvailable, fmt.Sprintf("ReplicaSet %q has successfully progressed.", name))
		} else {
			next.Conditions = replaceKeep(next.Conditions, prev)
		}
		return 0
	case st.created:
		set("True", ReasonNewReplicaSetCreated, fmt.Sprintf("Created new replica set %q", name))
	case prev == nil || prev.GetReason() == ReasonPaused:
		set("True", ReasonReplicaSetUpdated, fmt.Sprintf("ReplicaSet %q is progressing.", name))
	case st.progressed || madeProgress(old, next) || prev.GetReason() == ReasonNewReplicaSetAvailable:
		set("True", ReasonReplicaSetUpdated, fmt.Sprintf("ReplicaSet %q is progressing.", name))
	default:
		next.Conditions = replaceKeep(next.Conditions, prev)
	}
	deadline := dep.GetSpec().ProgressDeadlineSeconds
	if deadline == nil {
		return 0
	}
	cur := Condition(next, ConditionProgressing)
	if cur.GetReason() == ReasonProgressDeadlineExceeded {
		return 0
	}
	expires := cur.GetLastUpdateTime().AsTime().Add(time.Duration(*deadline) * time.Second)
	if !d.clock.Now().Before(expires) {
		set("False", ReasonProgressDeadlineExceeded, fmt.Sprintf("ReplicaSet %q has timed out progressing.", name))
		return 0
	}
	return expires.Sub(d.clock.Now()) + time.Second
}

func replaceKeep(conds []*appsv1.DeploymentCondition, keep *appsv1.DeploymentCondition) []*appsv1.DeploymentCondition {
	for i, c := range conds {
		if c.GetType() == keep.GetType() {
			conds[i] = proto.Clone(keep).(*appsv1.DeploymentCondition)
		}
	}
	return conds
}

// madeProgress reports whether the rollout moved between two statuses.
func madeProgress(old, next *appsv1.DeploymentStatus) bool {
	return next.GetUpdatedReplicas() > old.GetUpdatedReplicas() ||
		next.GetReadyReplicas() > old.GetReadyReplicas() ||
		next.GetAvailableReplicas() > old.GetAvailableReplicas() ||
		next.GetReplicas() < old.GetReplicas()
}

// syncRevision copies the new ReplicaSet's revision to the Deployment.
func (d *Controller) syncRevision(ctx context.Context, st *state) error {
	if st.newRS == nil {
		return nil
	}
	rev := st.newRS.GetMetadata().GetAnnotations()[RevisionAnnotation]
	if rev == "" || st.d.GetMetadata().GetAnnotations()[RevisionAnnotation] == rev {
		return nil
	}
	next := proto.Clone(st.d).(*appsv1.Deployment)
	if next.Metadata.Annotations == nil {
		next.Metadata.Annotations = map[string]string{}
	}
	next.Metadata.Annotations[RevisionAnnotation] = rev
	out, err := d.dAPI.Update(ctx, next)
	if err != nil {
		return err
	}
	st.d = out
	return nil
}
