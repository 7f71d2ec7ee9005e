// Package defaults fills in the fields a user may leave out of a Bosun object,
// with the values Kubernetes uses, so that every stored object is complete and
// the controllers, scheduler and node-agent never have to guess.
//
// The apiserver calls Apply on create and update, after it has set
// metadata.uid, metadata.namespace and metadata.creationTimestamp and before it
// validates the object. Apply fills in unset fields and derives a few more
// from the rest of the object: a Pod's status.qosClass, a Job's generated
// selector (from its uid), and a Secret's data, into which stringData is
// folded. Each is a function of the object, so applying Apply twice gives the
// same object as applying it once.
package defaults

import (
	appsv1 "bosun.dev/gen/bosun/apps/v1"
	batchv1 "bosun.dev/gen/bosun/batch/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/api"
)

// Apply fills in the defaults of obj in place. Objects of kinds without
// defaults (Node, ConfigMap, Lease) and nil objects are left alone.
func Apply(obj api.Object) {
	switch o := obj.(type) {
	case *corev1.Pod:
		applyPod(o)
	case *corev1.Service:
		applyService(o)
	case *corev1.Endpoints:
		applyEndpoints(o)
	case *corev1.Secret:
		applySecret(o)
	case *corev1.Namespace:
		applyNamespace(o)
	case *corev1.Event:
		applyEvent(o)
	case *appsv1.Deployment:
		applyDeployment(o)
	case *appsv1.ReplicaSet:
		applyReplicaSet(o)
	case *appsv1.DaemonSet:
		applyDaemonSet(o)
	case *appsv1.StatefulSet:
		applyStatefulSet(o)
	case *batchv1.Job:
		applyJob(o)
	}
}

func ptr[T any](v T) *T { return &v }

// setIfNil points *p at a fresh copy of v when *p is nil.
func setIfNil[T any](p **T, v T) {
	if *p == nil {
		*p = &v
	}
}

// setIfEmpty sets *p to v when *p is the zero value.
func setIfEmpty[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}
