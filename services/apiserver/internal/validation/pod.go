package validation

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	corev1 "bosun.dev/gen/bosun/core/v1"
)

func validatePod(p *corev1.Pod) field.ErrorList {
	specPath := field.NewPath("spec")
	if p.Spec == nil {
		return field.ErrorList{field.Required(specPath, "")}
	}
	return ValidatePodSpec(p.Spec, specPath)
}

// ValidatePodSpec checks a pod spec, of a Pod (fldPath "spec") or of a
// workload's template ("spec.template.spec"): containers, volumes and their
// mounts, probes, resources, scheduling constraints and policies.
func ValidatePodSpec(spec *corev1.PodSpec, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if spec == nil {
		return append(errs, field.Required(fldPath, ""))
	}
	volumes, vErrs := validateVolumes(spec.Volumes, fldPath.Child("volumes"))
	errs = append(errs, vErrs...)

	if len(spec.Containers) == 0 {
		errs = append(errs, field.Required(fldPath.Child("containers"), "must have at least one container"))
	}
	names := map[string]bool{}
	for i, c := range spec.InitContainers {
		errs = append(errs, validateContainer(c, volumes, names, false, fldPath.Child("initContainers").Index(i))...)
	}
	for i, c := range spec.Containers {
		errs = append(errs, validateContainer(c, volumes, names, true, fldPath.Child("containers").Index(i))...)
	}

	errs = append(errs, validateEnum(spec.RestartPolicy, fldPath.Child("restartPolicy"), true, "Always", "OnFailure", "Never")...)
	// "None" needs a dnsConfig, which Bosun's PodSpec does not have.
	errs = append(errs, validateEnum(spec.DnsPolicy, fldPath.Child("dnsPolicy"), true, "ClusterFirst", "ClusterFirstWithHostNet", "Default")...)
	errs = append(errs, validateEnum(spec.PreemptionPolicy, fldPath.Child("preemptionPolicy"), true, "PreemptLowerPriority", "Never")...)
	errs = append(errs, validateNonNegativePtr(spec.TerminationGracePeriodSeconds, fldPath.Child("terminationGracePeriodSeconds"))...)
	if spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, validatePositive(*spec.ActiveDeadlineSeconds, fldPath.Child("activeDeadlineSeconds"))...)
	}
	errs = append(errs, ValidateLabels(spec.NodeSelector, fldPath.Child("nodeSelector"))...)
	for _, f := range []struct {
		v    string
		name string
		dns  func(string, *field.Path) field.ErrorList
	}{
		{spec.NodeName, "nodeName", validateDNSSubdomain},
		{spec.ServiceAccountName, "serviceAccountName", validateDNSSubdomain},
		{spec.SchedulerName, "schedulerName", validateDNSSubdomain},
		{spec.PriorityClassName, "priorityClassName", validateDNSSubdomain},
		{spec.Hostname, "hostname", validateDNSLabel},
		{spec.Subdomain, "subdomain", validateDNSLabel},
	} {
		if f.v != "" {
			errs = append(errs, f.dns(f.v, fldPath.Child(f.name))...)
		}
	}
	errs = append(errs, validateTolerations(spec.Tolerations, fldPath.Child("tolerations"))...)
	errs = append(errs, validateAffinity(spec.Affinity, fldPath.Child("affinity"))...)
	errs = append(errs, validateTopologySpread(spec.TopologySpreadConstraints, fldPath.Child("topologySpreadConstraints"))...)
	if sc := spec.SecurityContext; sc != nil {
		p := fldPath.Child("securityContext")
		errs = append(errs, validateNonNegativePtr(sc.RunAsUser, p.Child("runAsUser"))...)
		errs = append(errs, validateNonNegativePtr(sc.RunAsGroup, p.Child("runAsGroup"))...)
		errs = append(errs, validateNonNegativePtr(sc.FsGroup, p.Child("fsGroup"))...)
		for i, g := range sc.SupplementalGroups {
			errs = append(errs, validateNonNegative(g, p.Child("supplementalGroups").Index(i))...)
		}
	}
	return errs
}

// validateVolumes checks the pod's volumes and returns the set of their names
// for the mounts to refer to.
func validateVolumes(vols []*corev1.Volume, fldPath *field.Path) (map[string]bool, field.ErrorList) {
	var errs field.ErrorList
	names := map[string]bool{}
	for i, v := range vols {
		p := fldPath.Index(i)
		if v == nil {
			errs = append(errs, field.Required(p, ""))
			continue
		}
		switch {
		case v.Name == "":
			errs = append(errs, field.Required(p.Child("name"), ""))
		case names[v.Name]:
			errs = append(errs, field.Duplicate(p.Child("name"), v.Name))
		default:
			errs = append(errs, validateDNSLabel(v.Name, p.Child("name"))...)
		}
		names[v.Name] = true
		errs = append(errs, validateVolumeSource(v, p)...)
	}
	return names, errs
}

func validateVolumeSource(v *corev1.Volume, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch src := v.Source.(type) {
	case *corev1.Volume_EmptyDir:
		if src.EmptyDir == nil {
			break
		}
		ep := p.Child("emptyDir")
		errs = append(errs, validateEnum(src.EmptyDir.Medium, ep.Child("medium"), true, "Memory")...)
		if src.EmptyDir.SizeLimit != "" {
			errs = append(errs, validateQuantity(src.EmptyDir.SizeLimit, ep.Child("sizeLimit"))...)
		}
		return errs
	case *corev1.Volume_HostPath:
		if src.HostPath == nil {
			break
		}
		hp := p.Child("hostPath")
		if src.HostPath.Path == "" {
			errs = append(errs, field.Required(hp.Child("path"), ""))
		} else {
			if !path.IsAbs(src.HostPath.Path) {
				errs = append(errs, field.Invalid(hp.Child("path"), src.HostPath.Path, "must be an absolute path"))
			}
			errs = append(errs, validateNoBacksteps(src.HostPath.Path, hp.Child("path"))...)
		}
		errs = append(errs, validateEnum(src.HostPath.Type, hp.Child("type"), true,
			"DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice")...)
		return errs
	case *corev1.Volume_ConfigMap:
		if src.ConfigMap == nil {
			break
		}
		cp := p.Child("configMap")
		errs = append(errs, validateRequiredName(src.ConfigMap.Name, cp.Child("name"))...)
		errs = append(errs, validateKeyToPaths(src.ConfigMap.Items, cp.Child("items"))...)
		errs = append(errs, validateFileMode(src.ConfigMap.DefaultMode, cp.Child("defaultMode"))...)
		return errs
	case *corev1.Volume_Secret:
		if src.Secret == nil {
			break
		}
		sp := p.Child("secret")
		errs = append(errs, validateRequiredName(src.Secret.SecretName, sp.Child("secretName"))...)
		errs = append(errs, validateKeyToPaths(src.Secret.Items, sp.Child("items"))...)
		errs = append(errs, validateFileMode(src.Secret.DefaultMode, sp.Child("defaultMode"))...)
		return errs
	}
	return append(errs, field.Required(p, "must specify a volume type: one of `emptyDir`, `hostPath`, `configMap` or `secret`"))
}

func validateKeyToPaths(items []*corev1.KeyToPath, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, it := range items {
		p := fldPath.Index(i)
		if it == nil {
			errs = append(errs, field.Required(p, ""))
			continue
		}
		errs = append(errs, validateConfigMapKey(it.Key, p.Child("key"))...)
		errs = append(errs, validateRelativePath(it.Path, p.Child("path"))...)
		errs = append(errs, validateFileMode(it.Mode, p.Child("mode"))...)
	}
	return errs
}

func validateFileMode(mode *int32, fldPath *field.Path) field.ErrorList {
	if mode != nil && (*mode < 0 || *mode > 0o777) {
		return field.ErrorList{field.Invalid(fldPath, *mode, "must be a number between 0 and 0777 (octal), both inclusive")}
	}
	return nil
}

// validateRelativePath checks a path that is joined to a directory: required,
// relative, and never climbing out with "..".
func validateRelativePath(v string, fldPath *field.Path) field.ErrorList {
	if v == "" {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	if path.IsAbs(v) {
		return field.ErrorList{field.Invalid(fldPath, v, "must be a relative path")}
	}
	return validateNoBacksteps(v, fldPath)
}

func validateNoBacksteps(v string, fldPath *field.Path) field.ErrorList {
	for _, part := range strings.Split(v, "/") {
		if part == ".." {
			return field.ErrorList{field.Invalid(fldPath, v, "must not contain '..'")}
		}
	}
	return nil
}

func validateConfigMapKey(k string, fldPath *field.Path) field.ErrorList {
	if k == "" {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	var errs field.ErrorList
	for _, msg := range validation.IsConfigMapKey(k) {
		errs = append(errs, field.Invalid(fldPath, k, msg))
	}
	return errs
}

func validateTolerations(tols []*corev1.Toleration, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, t := range tols {
		p := fldPath.Index(i)
		if t == nil {
			errs = append(errs, field.Required(p, ""))
			continue
		}
		if t.Key != "" {
			errs = append(errs, validateQualifiedName(t.Key, p.Child("key"))...)
		}
		switch t.Operator {
		case "", "Equal":
			if t.Key == "" {
				errs = append(errs, field.Invalid(p.Child("operator"), t.Operator, "operator must be Exists when `key` is empty, which means \"match all values and all keys\""))
			}
			errs = append(errs, validateLabelValue(t.Value, p.Child("value"))...)
		case "Exists":
			if t.Value != "" {
				errs = append(errs, field.Invalid(p.Child("value"), t.Value, "value must be empty when `operator` is 'Exists'"))
			}
		default:
			errs = append(errs, field.NotSupported(p.Child("operator"), t.Operator, []string{"Equal", "Exists"}))
		}
		errs = append(errs, validateEnum(t.Effect, p.Child("effect"), true, "NoSchedule", "PreferNoSchedule", "NoExecute")...)
		if t.TolerationSeconds != nil && t.Effect != "NoExecute" {
			errs = append(errs, field.Invalid(p.Child("effect"), t.Effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
		}
	}
	return errs
}

func validateAffinity(a *corev1.Affinity, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if a == nil {
		return errs
	}
	if na := a.NodeAffinity; na != nil {
		p := fldPath.Child("nodeAffinity")
		if req := na.RequiredDuringSchedulingIgnoredDuringExecution; req != nil {
			rp := p.Child("requiredDuringSchedulingIgnoredDuringExecution")
			if len(req.NodeSelectorTerms) == 0 {
				errs = append(errs, field.Required(rp.Child("nodeSelectorTerms"), "must have at least one node selector term"))
			}
			for i, t := range req.NodeSelectorTerms {
				errs = append(errs, validateNodeSelectorTerm(t, rp.Child("nodeSelectorTerms").Index(i))...)
			}
		}
		for i, pref := range na.PreferredDuringSchedulingIgnoredDuringExecution {
			pp := p.Child("preferredDuringSchedulingIgnoredDuringExecution").Index(i)
			if pref == nil {
				errs = append(errs, field.Required(pp, ""))
				continue
			}
			errs = append(errs, validateWeight(pref.Weight, pp.Child("weight"))...)
			if pref.Preference == nil {
				errs = append(errs, field.Required(pp.Child("preference"), ""))
			} else {
				errs = append(errs, validateNodeSelectorTerm(pref.Preference, pp.Child("preference"))...)
			}
		}
	}
	if pa := a.PodAffinity; pa != nil {
		errs = append(errs, validatePodAffinityTerms(pa.RequiredDuringSchedulingIgnoredDuringExecution, pa.PreferredDuringSchedulingIgnoredDuringExecution, fldPath.Child("podAffinity"))...)
	}
	if pa := a.PodAntiAffinity; pa != nil {
		errs = append(errs, validatePodAffinityTerms(pa.RequiredDuringSchedulingIgnoredDuringExecution, pa.PreferredDuringSchedulingIgnoredDuringExecution, fldPath.Child("podAntiAffinity"))...)
	}
	return errs
}

func validateWeight(w int32, fldPath *field.Path) field.ErrorList {
	if w < 1 || w > 100 {
		return field.ErrorList{field.Invalid(fldPath, w, "must be in the range 1-100")}
	}
	return nil
}

func validateNodeSelectorTerm(t *corev1.NodeSelectorTerm, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if t == nil {
		return append(errs, field.Required(fldPath, ""))
	}
	for i, r := range t.MatchExpressions {
		p := fldPath.Child("matchExpressions").Index(i)
		if r == nil {
			errs = append(errs, field.Required(p, ""))
			continue
		}
		errs = append(errs, validateNodeSelectorRequirement(r, p)...)
		errs = append(errs, validateQualifiedName(r.Key, p.Child("key"))...)
	}
	for i, r := range t.MatchFields {
		p := fldPath.Child("matchFields").Index(i)
		if r == nil {
			errs = append(errs, field.Required(p, ""))
			continue
		}
		// Nodes can only be selected by name, as in Kubernetes.
		if r.Key != "metadata.name" {
			errs = append(errs, field.NotSupported(p.Child("key"), r.Key, []string{"metadata.name"}))
		}
		switch r.Operator {
		case "In", "NotIn":
			if len(r.Values) != 1 {
				errs = append(errs, field.Required(p.Child("values"), "must be only one value when `operator` is 'In' or 'NotIn' for node field selector"))
			}
		default:
			errs = append(errs, field.NotSupported(p.Child("operator"), r.Operator, []string{"In", "NotIn"}))
		}
	}
	return errs
}

func validateNodeSelectorRequirement(r *corev1.NodeSelectorRequirement, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch r.Operator {
	case "In", "NotIn":
		if len(r.Values) == 0 {
			errs = append(errs, field.Required(p.Child("values"), "must be specified when `operator` is 'In' or 'NotIn'"))
		}
	case "Exists", "DoesNotExist":
		if len(r.Values) > 0 {
			errs = append(errs, field.Forbidden(p.Child("values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
		}
	case "Gt", "Lt":
		if len(r.Values) != 1 {
			errs = append(errs, field.Required(p.Child("values"), "must be specified single value when `operator` is 'Lt' or 'Gt'"))
		} else if _, err := strconv.ParseInt(r.Values[0], 10, 64); err != nil {
			errs = append(errs, field.Invalid(p.Child("values").Index(0), r.Values[0], "must be an integer"))
		}
	default:
		errs = append(errs, field.NotSupported(p.Child("operator"), r.Operator, []string{"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"}))
	}
	return errs
}

func validatePodAffinityTerms(required []*corev1.PodAffinityTerm, preferred []*corev1.WeightedPodAffinityTerm, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, t := range required {
		errs = append(errs, validatePodAffinityTerm(t, fldPath.Child("requiredDuringSchedulingIgnoredDuringExecution").Index(i))...)
	}
	for i, w := range preferred {
		p := fldPath.Child("preferredDuringSchedulingIgnoredDuringExecution").Index(i)
		if w == nil {
			errs = append(errs, field.Required(p, ""))
			continue
		}
		errs = append(errs, validateWeight(w.Weight, p.Child("weight"))...)
		errs = append(errs, validatePodAffinityTerm(w.PodAffinityTerm, p.Child("podAffinityTerm"))...)
	}
	return errs
}

func validatePodAffinityTerm(t *corev1.PodAffinityTerm, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if t == nil {
		return append(errs, field.Required(fldPath, ""))
	}
	errs = append(errs, ValidateLabelSelector(t.LabelSelector, fldPath.Child("labelSelector"))...)
	errs = append(errs, ValidateLabelSelector(t.NamespaceSelector, fldPath.Child("namespaceSelector"))...)
	for i, ns := range t.Namespaces {
		errs = append(errs, validateDNSLabel(ns, fldPath.Child("namespaces").Index(i))...)
	}
	if t.TopologyKey == "" {
		errs = append(errs, field.Required(fldPath.Child("topologyKey"), "can not be empty"))
	} else {
		errs = append(errs, validateQualifiedName(t.TopologyKey, fldPath.Child("topologyKey"))...)
	}
	return errs
}

func validateTopologySpread(cs []*corev1.TopologySpreadConstraint, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[[2]string]bool{}
	for i, c := range cs {
		p := fldPath.Index(i)
		if c == nil {
			errs = append(errs, field.Required(p, ""))
			continue
		}
		if c.MaxSkew <= 0 {
			errs = append(errs, field.Invalid(p.Child("maxSkew"), c.MaxSkew, "must be greater than zero"))
		}
		if c.TopologyKey == "" {
			errs = append(errs, field.Required(p.Child("topologyKey"), "can not be empty"))
		} else {
			errs = append(errs, validateQualifiedName(c.TopologyKey, p.Child("topologyKey"))...)
		}
		errs = append(errs, validateEnum(c.WhenUnsatisfiable, p.Child("whenUnsatisfiable"), false, "DoNotSchedule", "ScheduleAnyway")...)
		if c.MinDomains != nil {
			if *c.MinDomains <= 0 {
				errs = append(errs, field.Invalid(p.Child("minDomains"), *c.MinDomains, "must be greater than 0"))
			} else if c.WhenUnsatisfiable != "DoNotSchedule" {
				errs = append(errs, field.Invalid(p.Child("minDomains"), *c.MinDomains, "can only use minDomains if whenUnsatisfiable=DoNotSchedule"))
			}
		}
		errs = append(errs, ValidateLabelSelector(c.LabelSelector, p.Child("labelSelector"))...)
		key := [2]string{c.TopologyKey, c.WhenUnsatisfiable}
		if seen[key] {
			errs = append(errs, field.Duplicate(p, fmt.Sprintf("{%v, %v}", c.TopologyKey, c.WhenUnsatisfiable)))
		}
		seen[key] = true
	}
	return errs
}

func validateQuantity(v string, fldPath *field.Path) field.ErrorList {
	q, err := resource.ParseQuantity(v)
	if err != nil {
		return field.ErrorList{field.Invalid(fldPath, v, "must be a valid quantity such as 500m, 2 or 128Mi: "+err.Error())}
	}
	if q.Sign() < 0 {
		return field.ErrorList{field.Invalid(fldPath, v, "must be greater than or equal to 0")}
	}
	return nil
}

// validatePodUpdate enforces that a pod's spec is fixed once it exists, but
// for the fields Kubernetes lets a running pod change: container images,
// a shorter activeDeadlineSeconds and new tolerations. The node is assigned
// through BindPod, never through an update.
func validatePodUpdate(p, old *corev1.Pod) field.ErrorList {
	var errs field.ErrorList
	specPath := field.NewPath("spec")
	spec, oldSpec := p.GetSpec(), old.GetSpec()
	if spec == nil || oldSpec == nil {
		return errs
	}
	switch {
	case spec.NodeName == oldSpec.NodeName:
	case oldSpec.NodeName == "":
		errs = append(errs, field.Forbidden(specPath.Child("nodeName"), "may not be set by an update; use BindPod to assign the pod to a node"))
	default:
		errs = append(errs, field.Invalid(specPath.Child("nodeName"), spec.NodeName, "field is immutable once the pod is bound to a node (it is set only by BindPod)"))
	}

	if ad, oldAD := spec.ActiveDeadlineSeconds, oldSpec.ActiveDeadlineSeconds; oldAD != nil {
		if ad == nil {
			errs = append(errs, field.Invalid(specPath.Child("activeDeadlineSeconds"), nil, "must not update from a positive integer to nil value"))
		} else if *ad > *oldAD {
			errs = append(errs, field.Invalid(specPath.Child("activeDeadlineSeconds"), *ad, "must be less than or equal to previous value"))
		}
	}

	for i, t := range oldSpec.Tolerations {
		if i >= len(spec.Tolerations) || !proto.Equal(t, spec.Tolerations[i]) {
			errs = append(errs, field.Forbidden(specPath.Child("tolerations"), "existing tolerations may not be changed or removed; only new ones may be added"))
			break
		}
	}

	// Compare the rest: a copy of the new spec with the mutable fields taken
	// from the old one must equal the old one.
	mutated := proto.Clone(spec).(*corev1.PodSpec)
	mutated.NodeName = oldSpec.NodeName
	mutated.ActiveDeadlineSeconds = oldSpec.ActiveDeadlineSeconds
	mutated.Tolerations = oldSpec.Tolerations
	copyImages(mutated.Containers, oldSpec.Containers)
	copyImages(mutated.InitContainers, oldSpec.InitContainers)
	if !proto.Equal(mutated, oldSpec) {
		errs = append(errs, field.Forbidden(specPath, "pod updates may not change fields other than `spec.containers[*].image`, "+
			"`spec.initContainers[*].image`, `spec.activeDeadlineSeconds` or `spec.tolerations` (only additions to existing tolerations)"))
	}
	return errs
}

func copyImages(dst, src []*corev1.Container) {
	if len(dst) != len(src) {
		return
	}
	for i := range dst {
		if dst[i] != nil && src[i] != nil {
			dst[i].Image = src[i].Image
		}
	}
}
