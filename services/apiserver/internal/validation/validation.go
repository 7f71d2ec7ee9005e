// Package validation checks Bosun objects before the apiserver stores them,
// with Kubernetes' rules and Kubernetes' error shapes: every problem is a
// field.Error whose path is written with the manifest's (JSON, lowerCamel)
// field names, such as spec.containers[0].image or
// spec.template.spec.containers[0].resources.limits[memory], so that a user
// sees exactly the field they wrote.
//
// Validate checks a new object, ValidateUpdate a changed one against the
// stored one (everything Validate checks plus what may not change), and
// ValidateStatus the status written through a kind's UpdateStatus. The
// apiserver runs defaulting first; fields that defaulting always fills
// (restartPolicy, imagePullPolicy, a port's protocol...) are nonetheless
// accepted empty, so that Validate gives the same answer on a manifest as it
// was written.
//
// Files follow the kinds: meta.go (ObjectMeta, labels, selectors, sizes),
// pod.go and container.go (pod specs), workload.go (Deployment, ReplicaSet,
// DaemonSet, StatefulSet, Job), service.go (Service, Endpoints), node.go,
// config.go (ConfigMap, Secret), misc.go (Namespace, Event, Lease) and
// status.go.
package validation

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	batchv1 "bosun.dev/gen/bosun/batch/v1"
	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	rbacv1 "bosun.dev/gen/bosun/rbac/v1"
	"bosun.dev/pkg/api"
)

// Validate checks an object for create: its metadata, its kind's own rules
// and its encoded size.
func Validate(obj api.Object) field.ErrorList {
	if obj == nil {
		return field.ErrorList{field.InternalError(nil, fmt.Errorf("no object to validate"))}
	}
	k, err := api.KindOf(obj)
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	errs := ValidateObjectMeta(obj.GetMetadata(), k.Namespaced, nameFuncFor(obj), field.NewPath("metadata"))
	switch o := obj.(type) {
	case *corev1.Namespace:
		errs = append(errs, validateNamespace(o)...)
	case *corev1.Node:
		errs = append(errs, validateNode(o)...)
	case *corev1.Pod:
		errs = append(errs, validatePod(o)...)
	case *corev1.Service:
		errs = append(errs, validateService(o)...)
	case *corev1.Endpoints:
		errs = append(errs, validateEndpoints(o)...)
	case *corev1.ConfigMap:
		errs = append(errs, validateConfigMap(o)...)
	case *corev1.Secret:
		errs = append(errs, validateSecret(o)...)
	case *corev1.Event:
		errs = append(errs, validateEvent(o)...)
	case *appsv1.Deployment:
		errs = append(errs, validateDeployment(o)...)
	case *appsv1.ReplicaSet:
		errs = append(errs, validateReplicaSet(o)...)
	case *appsv1.DaemonSet:
		errs = append(errs, validateDaemonSet(o)...)
	case *appsv1.StatefulSet:
		errs = append(errs, validateStatefulSet(o)...)
	case *batchv1.Job:
		errs = append(errs, validateJob(o)...)
	case *coordinationv1.Lease:
		errs = append(errs, validateLease(o)...)
	case *rbacv1.Role:
		errs = append(errs, validateRole(o)...)
	case *rbacv1.ClusterRole:
		errs = append(errs, validateClusterRole(o)...)
	case *rbacv1.RoleBinding:
		errs = append(errs, validateRoleBinding(o)...)
	case *rbacv1.ClusterRoleBinding:
		errs = append(errs, validateClusterRoleBinding(o)...)
	}
	return append(errs, ValidateObjectSize(obj)...)
}

// ValidateUpdate checks an update of an object's metadata and spec: obj is
// the new object, old the stored one. It reports everything Validate reports
// about obj, then what changed that may not change (metadata identity, a
// pod's spec beyond images, tolerations and activeDeadlineSeconds, a bound
// pod's node, workload selectors, a Job's template, a Service's clusterIP, the
// contents of an immutable ConfigMap or Secret...).
func ValidateUpdate(obj, old api.Object) field.ErrorList {
	errs := Validate(obj)
	if old == nil || obj == nil || obj.ProtoReflect().Descriptor() != old.ProtoReflect().Descriptor() {
		return append(errs, field.InternalError(nil, fmt.Errorf("cannot update a %T with a %T", old, obj)))
	}
	errs = append(errs, ValidateObjectMetaUpdate(obj.GetMetadata(), old.GetMetadata(), field.NewPath("metadata"))...)
	switch o := obj.(type) {
	case *corev1.Node:
		errs = append(errs, validateNodeUpdate(o, old.(*corev1.Node))...)
	case *corev1.Pod:
		errs = append(errs, validatePodUpdate(o, old.(*corev1.Pod))...)
	case *corev1.Service:
		errs = append(errs, validateServiceUpdate(o, old.(*corev1.Service))...)
	case *corev1.ConfigMap:
		errs = append(errs, validateConfigMapUpdate(o, old.(*corev1.ConfigMap))...)
	case *corev1.Secret:
		errs = append(errs, validateSecretUpdate(o, old.(*corev1.Secret))...)
	case *appsv1.Deployment:
		errs = append(errs, validateSelectorUpdate(o.GetSpec().GetSelector(), old.(*appsv1.Deployment).GetSpec().GetSelector())...)
	case *appsv1.ReplicaSet:
		errs = append(errs, validateSelectorUpdate(o.GetSpec().GetSelector(), old.(*appsv1.ReplicaSet).GetSpec().GetSelector())...)
	case *appsv1.DaemonSet:
		errs = append(errs, validateSelectorUpdate(o.GetSpec().GetSelector(), old.(*appsv1.DaemonSet).GetSpec().GetSelector())...)
	case *appsv1.StatefulSet:
		errs = append(errs, validateStatefulSetUpdate(o, old.(*appsv1.StatefulSet))...)
	case *batchv1.Job:
		errs = append(errs, validateJobUpdate(o, old.(*batchv1.Job))...)
	case *rbacv1.RoleBinding:
		errs = append(errs, validateRoleRefUpdate(o.GetRoleRef(), old.(*rbacv1.RoleBinding).GetRoleRef())...)
	case *rbacv1.ClusterRoleBinding:
		errs = append(errs, validateRoleRefUpdate(o.GetRoleRef(), old.(*rbacv1.ClusterRoleBinding).GetRoleRef())...)
	}
	return errs
}

// ValidateStatus checks the status of an object written through its kind's
// UpdateStatus: phases, condition statuses, IP addresses and counts. It does
// not look at metadata or spec, which UpdateStatus does not change; it does
// check the encoded size of the whole object. Kinds without a status give no
// errors.
func ValidateStatus(obj api.Object) field.ErrorList {
	var errs field.ErrorList
	statusPath := field.NewPath("status")
	switch o := obj.(type) {
	case *corev1.Namespace:
		errs = validateNamespaceStatus(o.GetStatus(), statusPath)
	case *corev1.Node:
		errs = validateNodeStatus(o.GetStatus(), statusPath)
	case *corev1.Pod:
		errs = validatePodStatus(o.GetStatus(), statusPath)
	case *corev1.Service:
		errs = validateServiceStatus(o.GetStatus(), statusPath)
	case *appsv1.Deployment:
		errs = validateDeploymentStatus(o.GetStatus(), statusPath)
	case *appsv1.ReplicaSet:
		errs = validateReplicaSetStatus(o.GetStatus(), statusPath)
	case *appsv1.DaemonSet:
		errs = validateDaemonSetStatus(o.GetStatus(), statusPath)
	case *appsv1.StatefulSet:
		errs = validateStatefulSetStatus(o.GetStatus(), statusPath)
	case *batchv1.Job:
		errs = validateJobStatus(o.GetStatus(), statusPath)
	}
	return append(errs, ValidateObjectSize(obj)...)
}

// nameFuncFor gives the name rule of obj's kind: DNS-1123 labels for
// Namespaces and Services, whose names become DNS labels, DNS-1123
// subdomains for everything else.
func nameFuncFor(obj api.Object) NameFunc {
	switch obj.(type) {
	case *corev1.Namespace, *corev1.Service:
		return NameIsDNSLabel
	default:
		return NameIsDNSSubdomain
	}
}
