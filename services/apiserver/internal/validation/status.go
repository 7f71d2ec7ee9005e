package validation

import (
	"k8s.io/apimachinery/pkg/util/validation/field"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	batchv1 "bosun.dev/gen/bosun/batch/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
)

// count is a named non-negative status counter.
type count struct {
	name string
	v    int64
}

func validateCounts(fldPath *field.Path, counts ...count) field.ErrorList {
	var errs field.ErrorList
	for _, c := range counts {
		errs = append(errs, validateNonNegative(c.v, fldPath.Child(c.name))...)
	}
	return errs
}

// condition is what every kind's status condition shares.
type condition interface {
	GetType() string
	GetStatus() string
}

func validateConditions[C condition](conds []C, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, c := range conds {
		p := fldPath.Index(i)
		if c.GetType() == "" {
			errs = append(errs, field.Required(p.Child("type"), ""))
		}
		errs = append(errs, validateConditionStatus(c.GetStatus(), p.Child("status"))...)
	}
	return errs
}

func validatePodStatus(st *corev1.PodStatus, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if st == nil {
		return errs
	}
	errs = append(errs, validateEnum(st.Phase, fldPath.Child("phase"), true, "Pending", "Running", "Succeeded", "Failed", "Unknown")...)
	errs = append(errs, validateConditions(st.Conditions, fldPath.Child("conditions"))...)
	if st.PodIp != "" {
		errs = append(errs, validateIP(st.PodIp, fldPath.Child("podIP"))...)
	}
	if st.HostIp != "" {
		errs = append(errs, validateIP(st.HostIp, fldPath.Child("hostIP"))...)
	}
	seen := map[string]bool{}
	for i, ip := range st.PodIps {
		p := fldPath.Child("podIPs").Index(i).Child("ip")
		errs = append(errs, validateIP(ip.GetIp(), p)...)
		if seen[ip.GetIp()] {
			errs = append(errs, field.Duplicate(p, ip.GetIp()))
		}
		seen[ip.GetIp()] = true
	}
	if len(st.PodIps) > 0 && st.PodIp != "" && st.PodIps[0].GetIp() != st.PodIp {
		errs = append(errs, field.Invalid(fldPath.Child("podIPs").Index(0).Child("ip"), st.PodIps[0].GetIp(), "must match `podIP`"))
	}
	if st.NominatedNodeName != "" {
		errs = append(errs, validateDNSSubdomain(st.NominatedNodeName, fldPath.Child("nominatedNodeName"))...)
	}
	errs = append(errs, validateEnum(st.QosClass, fldPath.Child("qosClass"), true, "Guaranteed", "Burstable", "BestEffort")...)
	for _, list := range []struct {
		name     string
		statuses []*corev1.ContainerStatus
	}{{"initContainerStatuses", st.InitContainerStatuses}, {"containerStatuses", st.ContainerStatuses}} {
		for i, cs := range list.statuses {
			p := fldPath.Child(list.name).Index(i)
			if cs.GetName() == "" {
				errs = append(errs, field.Required(p.Child("name"), ""))
			}
			errs = append(errs, validateNonNegative(cs.GetRestartCount(), p.Child("restartCount"))...)
		}
	}
	return errs
}

func validateNamespaceStatus(st *corev1.NamespaceStatus, fldPath *field.Path) field.ErrorList {
	errs := validateEnum(st.GetPhase(), fldPath.Child("phase"), true, "Active", "Terminating")
	return append(errs, validateConditions(st.GetConditions(), fldPath.Child("conditions"))...)
}

func validateServiceStatus(st *corev1.ServiceStatus, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, in := range st.GetLoadBalancer().GetIngress() {
		p := fldPath.Child("loadBalancer", "ingress").Index(i)
		if in.GetIp() != "" {
			errs = append(errs, validateIP(in.GetIp(), p.Child("ip"))...)
		}
		if in.GetHostname() != "" {
			errs = append(errs, validateDNSSubdomain(in.GetHostname(), p.Child("hostname"))...)
		}
	}
	return append(errs, validateConditions(st.GetConditions(), fldPath.Child("conditions"))...)
}

func validateDeploymentStatus(st *appsv1.DeploymentStatus, fldPath *field.Path) field.ErrorList {
	if st == nil {
		return nil
	}
	errs := validateCounts(fldPath,
		count{"observedGeneration", st.ObservedGeneration},
		count{"replicas", int64(st.Replicas)},
		count{"updatedReplicas", int64(st.UpdatedReplicas)},
		count{"readyReplicas", int64(st.ReadyReplicas)},
		count{"availableReplicas", int64(st.AvailableReplicas)},
		count{"unavailableReplicas", int64(st.UnavailableReplicas)},
	)
	errs = append(errs, validateNonNegativePtr(st.CollisionCount, fldPath.Child("collisionCount"))...)
	return append(errs, validateConditions(st.Conditions, fldPath.Child("conditions"))...)
}

func validateReplicaSetStatus(st *appsv1.ReplicaSetStatus, fldPath *field.Path) field.ErrorList {
	if st == nil {
		return nil
	}
	errs := validateCounts(fldPath,
		count{"replicas", int64(st.Replicas)},
		count{"fullyLabeledReplicas", int64(st.FullyLabeledReplicas)},
		count{"readyReplicas", int64(st.ReadyReplicas)},
		count{"availableReplicas", int64(st.AvailableReplicas)},
		count{"observedGeneration", st.ObservedGeneration},
	)
	return append(errs, validateConditions(st.Conditions, fldPath.Child("conditions"))...)
}

func validateDaemonSetStatus(st *appsv1.DaemonSetStatus, fldPath *field.Path) field.ErrorList {
	if st == nil {
		return nil
	}
	errs := validateCounts(fldPath,
		count{"currentNumberScheduled", int64(st.CurrentNumberScheduled)},
		count{"numberMisscheduled", int64(st.NumberMisscheduled)},
		count{"desiredNumberScheduled", int64(st.DesiredNumberScheduled)},
		count{"numberReady", int64(st.NumberReady)},
		count{"observedGeneration", st.ObservedGeneration},
		count{"updatedNumberScheduled", int64(st.UpdatedNumberScheduled)},
		count{"numberAvailable", int64(st.NumberAvailable)},
		count{"numberUnavailable", int64(st.NumberUnavailable)},
	)
	errs = append(errs, validateNonNegativePtr(st.CollisionCount, fldPath.Child("collisionCount"))...)
	return append(errs, validateConditions(st.Conditions, fldPath.Child("conditions"))...)
}

func validateStatefulSetStatus(st *appsv1.StatefulSetStatus, fldPath *field.Path) field.ErrorList {
	if st == nil {
		return nil
	}
	errs := validateCounts(fldPath,
		count{"observedGeneration", st.ObservedGeneration},
		count{"replicas", int64(st.Replicas)},
		count{"readyReplicas", int64(st.ReadyReplicas)},
		count{"currentReplicas", int64(st.CurrentReplicas)},
		count{"updatedReplicas", int64(st.UpdatedReplicas)},
		count{"availableReplicas", int64(st.AvailableReplicas)},
	)
	errs = append(errs, validateNonNegativePtr(st.CollisionCount, fldPath.Child("collisionCount"))...)
	return append(errs, validateConditions(st.Conditions, fldPath.Child("conditions"))...)
}

func validateJobStatus(st *batchv1.JobStatus, fldPath *field.Path) field.ErrorList {
	if st == nil {
		return nil
	}
	errs := validateCounts(fldPath,
		count{"active", int64(st.Active)},
		count{"succeeded", int64(st.Succeeded)},
		count{"failed", int64(st.Failed)},
	)
	errs = append(errs, validateNonNegativePtr(st.Ready, fldPath.Child("ready"))...)
	return append(errs, validateConditions(st.Conditions, fldPath.Child("conditions"))...)
}
