package deployment

import (
	"sort"
	"strconv"

	"google.golang.org/protobuf/proto"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/controller/internal/controller"
)

// Annotations and labels the Deployment controller keeps, as Kubernetes'.
const (
	// RevisionAnnotation numbers a ReplicaSet's template among its
	// Deployment's; on the Deployment, the revision of the current template.
	RevisionAnnotation = "deployment.kubernetes.io/revision"
	// DesiredReplicasAnnotation records the Deployment's replicas when the
	// ReplicaSet was last sized, to tell a scaling from a rollout.
	DesiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas"
	// ChangeCauseAnnotation is copied from the Deployment to the ReplicaSet
	// of each revision; `bosun rollout history` shows it.
	ChangeCauseAnnotation = "kubernetes.io/change-cause"
	// PodTemplateHashLabel tells the pods of one revision from another's.
	PodTemplateHashLabel = "pod-template-hash"
)

// TemplateHash is the pod-template-hash of a template: a short, stable,
// label-safe digest of it and the collision count.
func TemplateHash(t *corev1.PodTemplateSpec, collisionCount int32) string {
	return controller.Hash(t, collisionCount)
}

// SameTemplate reports whether rs runs d's template: equal but for the
// pod-template-hash label.
func SameTemplate(rsTemplate, dTemplate *corev1.PodTemplateSpec) bool {
	a := proto.Clone(rsTemplate).(*corev1.PodTemplateSpec)
	b := proto.Clone(dTemplate).(*corev1.PodTemplateSpec)
	for _, t := range []*corev1.PodTemplateSpec{a, b} {
		if t.GetMetadata() != nil {
			delete(t.Metadata.Labels, PodTemplateHashLabel)
			if len(t.Metadata.Labels) == 0 {
				t.Metadata.Labels = nil
			}
		}
	}
	return proto.Equal(a, b)
}

// Revision reads an object's revision annotation; 0 when absent.
func Revision(annotations map[string]string) int64 {
	v, err := strconv.ParseInt(annotations[RevisionAnnotation], 10, 64)
	if err != nil {
		return 0
	}
	return v
}

func maxRevision(sets []*appsv1.ReplicaSet) int64 {
	var m int64
	for _, rs := range sets {
		m = max(m, Revision(rs.GetMetadata().GetAnnotations()))
	}
	return m
}

// HistoryToDelete returns the old ReplicaSets beyond limit that may go: those
// with no pods, oldest revision first.
func HistoryToDelete(old []*appsv1.ReplicaSet, limit int32) []*appsv1.ReplicaSet {
	var idle []*appsv1.ReplicaSet
	for _, rs := range old {
		if rs.GetSpec().GetReplicas() == 0 && rs.GetStatus().GetReplicas() == 0 && rs.GetMetadata().GetDeletionTimestamp() == nil {
			idle = append(idle, rs)
		}
	}
	extra := len(idle) - int(limit)
	if extra <= 0 {
		return nil
	}
	sort.SliceStable(idle, func(i, j int) bool {
		return Revision(idle[i].GetMetadata().GetAnnotations()) < Revision(idle[j].GetMetadata().GetAnnotations())
	})
	return idle[:extra]
}
