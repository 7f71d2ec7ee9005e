package defaults

import (
	"k8s.io/apimachinery/pkg/api/validate/content"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	batchv1 "bosun.dev/gen/bosun/batch/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
)

// Workload defaults, as in Kubernetes.
const (
	defaultRevisionHistoryLimit    = 10
	defaultProgressDeadlineSeconds = 600
	defaultJobBackoffLimit         = 6
)

// Labels that tie a Job's pods to it when Bosun generates its selector.
const (
	// JobControllerUIDLabel carries the Job's uid in a generated selector and
	// on its pods.
	JobControllerUIDLabel = "batch.kubernetes.io/controller-uid"
	// JobNameLabel carries the Job's name on its pods.
	JobNameLabel = "batch.kubernetes.io/job-name"
)

func percent(s string) *metav1.IntOrString { return &metav1.IntOrString{StrVal: s} }

func applyDeployment(d *appsv1.Deployment) {
	if d == nil {
		return
	}
	if d.Spec == nil {
		d.Spec = &appsv1.DeploymentSpec{}
	}
	s := d.Spec
	setIfNil(&s.Replicas, 1)
	if s.Strategy == nil {
		s.Strategy = &appsv1.DeploymentStrategy{}
	}
	setIfEmpty(&s.Strategy.Type, "RollingUpdate")
	if s.Strategy.Type == "RollingUpdate" {
		if s.Strategy.RollingUpdate == nil {
			s.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{}
		}
		ru := s.Strategy.RollingUpdate
		if ru.MaxUnavailable == nil {
			ru.MaxUnavailable = percent("25%")
		}
		if ru.MaxSurge == nil {
			ru.MaxSurge = percent("25%")
		}
	}
	setIfNil(&s.RevisionHistoryLimit, defaultRevisionHistoryLimit)
	setIfNil(&s.ProgressDeadlineSeconds, defaultProgressDeadlineSeconds)
	applyPodTemplate(&s.Template)
}

func applyReplicaSet(rs *appsv1.ReplicaSet) {
	if rs == nil {
		return
	}
	if rs.Spec == nil {
		rs.Spec = &appsv1.ReplicaSetSpec{}
	}
	setIfNil(&rs.Spec.Replicas, 1)
	applyPodTemplate(&rs.Spec.Template)
}

func applyDaemonSet(ds *appsv1.DaemonSet) {
	if ds == nil {
		return
	}
	if ds.Spec == nil {
		ds.Spec = &appsv1.DaemonSetSpec{}
	}
	s := ds.Spec
	if s.UpdateStrategy == nil {
		s.UpdateStrategy = &appsv1.DaemonSetUpdateStrategy{}
	}
	setIfEmpty(&s.UpdateStrategy.Type, "RollingUpdate")
	if s.UpdateStrategy.Type == "RollingUpdate" {
		if s.UpdateStrategy.RollingUpdate == nil {
			s.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{}
		}
		ru := s.UpdateStrategy.RollingUpdate
		if ru.MaxUnavailable == nil {
			ru.MaxUnavailable = &metav1.IntOrString{IntVal: 1}
		}
		if ru.MaxSurge == nil {
			ru.MaxSurge = &metav1.IntOrString{IntVal: 0}
		}
	}
	setIfNil(&s.RevisionHistoryLimit, defaultRevisionHistoryLimit)
	applyPodTemplate(&s.Template)
}

func applyStatefulSet(ss *appsv1.StatefulSet) {
	if ss == nil {
		return
	}
	if ss.Spec == nil {
		ss.Spec = &appsv1.StatefulSetSpec{}
	}
	s := ss.Spec
	setIfNil(&s.Replicas, 1)
	setIfEmpty(&s.PodManagementPolicy, "OrderedReady")
	if s.UpdateStrategy == nil {
		s.UpdateStrategy = &appsv1.StatefulSetUpdateStrategy{}
	}
	setIfEmpty(&s.UpdateStrategy.Type, "RollingUpdate")
	if s.UpdateStrategy.Type == "RollingUpdate" {
		if s.UpdateStrategy.RollingUpdate == nil {
			s.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{}
		}
		setIfNil(&s.UpdateStrategy.RollingUpdate.Partition, 0)
	}
	setIfNil(&s.RevisionHistoryLimit, defaultRevisionHistoryLimit)
	applyPodTemplate(&s.Template)
}

func applyJob(j *batchv1.Job) {
	if j == nil {
		return
	}
	if j.Spec == nil {
		j.Spec = &batchv1.JobSpec{}
	}
	s := j.Spec
	// As in Kubernetes: a Job that says neither runs one pod to completion; a
	// Job that sets only parallelism is a work queue and keeps completions unset.
	if s.Completions == nil && s.Parallelism == nil {
		s.Completions = ptr[int32](1)
	}
	setIfNil(&s.Parallelism, 1)
	setIfNil(&s.BackoffLimit, defaultJobBackoffLimit)
	setIfEmpty(&s.CompletionMode, "NonIndexed")
	setIfNil(&s.Suspend, false)
	applyPodTemplate(&s.Template)
	generateJobSelector(j)
}

// generateJobSelector gives a Job without a selector (and without
// manualSelector) one that matches only its own pods: its uid, carried as a
// label on the template. It needs the uid the apiserver assigns on create.
func generateJobSelector(j *batchv1.Job) {
	s := j.Spec
	if s.ManualSelector != nil && *s.ManualSelector {
		return
	}
	if s.Selector != nil && (len(s.Selector.MatchLabels) > 0 || len(s.Selector.MatchExpressions) > 0) {
		return
	}
	uid := j.GetMetadata().GetUid()
	if uid == "" {
		return
	}
	s.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{JobControllerUIDLabel: uid}}
	if s.Template.Metadata == nil {
		s.Template.Metadata = &metav1.ObjectMeta{}
	}
	tm := s.Template.Metadata
	if tm.Labels == nil {
		tm.Labels = map[string]string{}
	}
	tm.Labels[JobControllerUIDLabel] = uid
	// A name longer than a label value allows (63) is still a valid Job name;
	// its pods then go without the convenience label, as in Kubernetes.
	if name := j.GetMetadata().GetName(); len(content.IsLabelValue(name)) == 0 {
		if _, ok := tm.Labels[JobNameLabel]; !ok {
			tm.Labels[JobNameLabel] = name
		}
	}
}
