package validation

import (
	"slices"

	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	batchv1 "bosun.dev/gen/bosun/batch/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
)

// workloadSpec is what the workload kinds share: a selector over the pods
// that a template stamps out.
type workloadSpec struct {
	selector *metav1.LabelSelector
	template *corev1.PodTemplateSpec
	// restartPolicies are the template restart policies the kind allows; ""
	// is accepted when it is the first, the one defaulting fills in.
	restartPolicies []string
	// allowDeadline says whether the template may set activeDeadlineSeconds,
	// which would kill the pods of a long-running workload.
	allowDeadline bool
}

func alwaysRestart() []string   { return []string{"Always"} }
func jobRestart() []string      { return []string{"OnFailure", "Never"} }
func specPath() *field.Path     { return field.NewPath("spec") }
func templatePath() *field.Path { return specPath().Child("template") }

// validateWorkload checks selector and template: the selector is required
// and must select the template's labels, and the template must be a valid
// pod template for the kind.
func validateWorkload(w workloadSpec) field.ErrorList {
	var errs field.ErrorList
	selPath := specPath().Child("selector")
	switch {
	case w.selector == nil:
		errs = append(errs, field.Required(selPath, ""))
	case selectorIsEmpty(w.selector):
		errs = append(errs, field.Invalid(selPath, "{}", "empty selector is invalid: it would select every pod in the namespace"))
	default:
		errs = append(errs, ValidateLabelSelector(w.selector, selPath)...)
	}
	tp := templatePath()
	if w.template == nil {
		return append(errs, field.Required(tp, ""))
	}
	labels := w.template.GetMetadata().GetLabels()
	if w.template.Metadata != nil {
		mp := tp.Child("metadata")
		errs = append(errs, ValidateLabels(w.template.Metadata.Labels, mp.Child("labels"))...)
		errs = append(errs, ValidateAnnotations(w.template.Metadata.Annotations, mp.Child("annotations"))...)
	}
	if len(errs) == 0 && !selectorMatches(w.selector, labels) {
		if labels == nil {
			labels = map[string]string{}
		}
		errs = append(errs, field.Invalid(tp.Child("metadata", "labels"), labels, "selector does not match template labels"))
	}
	sp := tp.Child("spec")
	if w.template.Spec == nil {
		return append(errs, field.Required(sp, ""))
	}
	errs = append(errs, ValidatePodSpec(w.template.Spec, sp)...)
	rp := w.template.Spec.RestartPolicy
	if rp == "" && w.restartPolicies[0] == "Always" {
		rp = "Always"
	}
	if !slices.Contains(w.restartPolicies, rp) {
		if rp == "" {
			errs = append(errs, field.Required(sp.Child("restartPolicy"), "supported values: \"OnFailure\", \"Never\""))
		} else {
			errs = append(errs, field.NotSupported(sp.Child("restartPolicy"), rp, w.restartPolicies))
		}
	}
	if !w.allowDeadline && w.template.Spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Forbidden(sp.Child("activeDeadlineSeconds"), "not supported in the templates of long-running workloads"))
	}
	return errs
}

func validateReplicas(r *int32) field.ErrorList {
	return validateNonNegativePtr(r, specPath().Child("replicas"))
}

func validateDeployment(d *appsv1.Deployment) field.ErrorList {
	s := d.GetSpec()
	if s == nil {
		return field.ErrorList{field.Required(specPath(), "")}
	}
	errs := validateReplicas(s.Replicas)
	errs = append(errs, validateWorkload(workloadSpec{s.Selector, s.Template, alwaysRestart(), false})...)
	errs = append(errs, validateNonNegative(s.MinReadySeconds, specPath().Child("minReadySeconds"))...)
	errs = append(errs, validateNonNegativePtr(s.RevisionHistoryLimit, specPath().Child("revisionHistoryLimit"))...)
	if pd := s.ProgressDeadlineSeconds; pd != nil {
		p := specPath().Child("progressDeadlineSeconds")
		if *pd <= s.MinReadySeconds {
			errs = append(errs, field.Invalid(p, *pd, "must be greater than minReadySeconds"))
		}
	}
	if st := s.Strategy; st != nil {
		p := specPath().Child("strategy")
		errs = append(errs, validateEnum(st.Type, p.Child("type"), true, "RollingUpdate", "Recreate")...)
		if st.Type == "Recreate" && st.RollingUpdate != nil {
			errs = append(errs, field.Forbidden(p.Child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'"))
		} else if st.RollingUpdate != nil {
			errs = append(errs, validateRollingUpdate(st.RollingUpdate.MaxUnavailable, st.RollingUpdate.MaxSurge, p.Child("rollingUpdate"), false)...)
		}
	}
	return errs
}

// validateRollingUpdate checks maxUnavailable and maxSurge: each a
// non-negative integer or percentage, maxUnavailable at most 100%, and not
// both zero. A DaemonSet (exclusive) may not use both at once either.
func validateRollingUpdate(maxUnavailable, maxSurge *metav1.IntOrString, fldPath *field.Path, exclusive bool) field.ErrorList {
	up, sp := fldPath.Child("maxUnavailable"), fldPath.Child("maxSurge")
	errs := validateIntOrPercent(maxUnavailable, up)
	errs = append(errs, validateIntOrPercent(maxSurge, sp)...)
	if len(errs) > 0 {
		return errs
	}
	if maxUnavailable != nil && maxUnavailable.StrVal != "" && percentOf(maxUnavailable) > 100 {
		errs = append(errs, field.Invalid(up, maxUnavailable.StrVal, "must not be greater than 100%"))
	}
	switch {
	case isZero(maxUnavailable) && isZero(maxSurge):
		errs = append(errs, field.Invalid(up, intOrStringValue(maxUnavailable), "may not be 0 when maxSurge is 0"))
	case exclusive && !isZero(maxUnavailable) && !isZero(maxSurge):
		errs = append(errs, field.Invalid(sp, intOrStringValue(maxSurge), "may not be set when maxUnavailable is non-zero"))
	}
	return errs
}

func validateIntOrPercent(v *metav1.IntOrString, fldPath *field.Path) field.ErrorList {
	if v == nil {
		return nil
	}
	if v.StrVal != "" {
		if msgs := validation.IsValidPercent(v.StrVal); len(msgs) > 0 {
			return field.ErrorList{field.Invalid(fldPath, v.StrVal, "must be an integer or percentage (e.g '5%')")}
		}
		return nil
	}
	return validateNonNegative(v.IntVal, fldPath)
}

// percentOf returns N of a valid "N%".
func percentOf(v *metav1.IntOrString) int {
	n := 0
	for _, c := range v.StrVal[:len(v.StrVal)-1] {
		n = n*10 + int(c-'0')
		if n > 1000 {
			break
		}
	}
	return n
}

// isZero reports whether an int-or-percentage is zero; nil counts as zero.
func isZero(v *metav1.IntOrString) bool {
	if v == nil {
		return true
	}
	if v.StrVal != "" {
		return percentOf(v) == 0
	}
	return v.IntVal == 0
}

func intOrStringValue(v *metav1.IntOrString) any {
	if v == nil {
		return 0
	}
	if v.StrVal != "" {
		return v.StrVal
	}
	return v.IntVal
}

func validateReplicaSet(rs *appsv1.ReplicaSet) field.ErrorList {
	s := rs.GetSpec()
	if s == nil {
		return field.ErrorList{field.Required(specPath(), "")}
	}
	errs := validateReplicas(s.Replicas)
	errs = append(errs, validateNonNegative(s.MinReadySeconds, specPath().Child("minReadySeconds"))...)
	return append(errs, validateWorkload(workloadSpec{s.Selector, s.Template, alwaysRestart(), false})...)
}

func validateDaemonSet(ds *appsv1.DaemonSet) field.ErrorList {
	s := ds.GetSpec()
	if s == nil {
		return field.ErrorList{field.Required(specPath(), "")}
	}
	errs := validateWorkload(workloadSpec{s.Selector, s.Template, alwaysRestart(), false})
	errs = append(errs, validateNonNegative(s.MinReadySeconds, specPath().Child("minReadySeconds"))...)
	errs = append(errs, validateNonNegativePtr(s.RevisionHistoryLimit, specPath().Child("revisionHistoryLimit"))...)
	if us := s.UpdateStrategy; us != nil {
		p := specPath().Child("updateStrategy")
		errs = append(errs, validateEnum(us.Type, p.Child("type"), true, "RollingUpdate", "OnDelete")...)
		if us.Type == "OnDelete" && us.RollingUpdate != nil {
			errs = append(errs, field.Forbidden(p.Child("rollingUpdate"), "may not be specified when updateStrategy `type` is 'OnDelete'"))
		} else if us.RollingUpdate != nil {
			errs = append(errs, validateRollingUpdate(us.RollingUpdate.MaxUnavailable, us.RollingUpdate.MaxSurge, p.Child("rollingUpdate"), true)...)
		}
	}
	return errs
}

func validateStatefulSet(ss *appsv1.StatefulSet) field.ErrorList {
	s := ss.GetSpec()
	if s == nil {
		return field.ErrorList{field.Required(specPath(), "")}
	}
	errs := validateReplicas(s.Replicas)
	errs = append(errs, validateWorkload(workloadSpec{s.Selector, s.Template, alwaysRestart(), false})...)
	errs = append(errs, validateNonNegative(s.MinReadySeconds, specPath().Child("minReadySeconds"))...)
	errs = append(errs, validateNonNegativePtr(s.RevisionHistoryLimit, specPath().Child("revisionHistoryLimit"))...)
	if s.ServiceName != "" {
		errs = append(errs, validateDNSLabel(s.ServiceName, specPath().Child("serviceName"))...)
	}
	errs = append(errs, validateEnum(s.PodManagementPolicy, specPath().Child("podManagementPolicy"), true, "OrderedReady", "Parallel")...)
	if us := s.UpdateStrategy; us != nil {
		p := specPath().Child("updateStrategy")
		errs = append(errs, validateEnum(us.Type, p.Child("type"), true, "RollingUpdate", "OnDelete")...)
		if us.Type == "OnDelete" && us.RollingUpdate != nil {
			errs = append(errs, field.Forbidden(p.Child("rollingUpdate"), "only allowed for updateStrategy 'RollingUpdate'"))
		} else if ru := us.RollingUpdate; ru != nil {
			rp := p.Child("rollingUpdate")
			errs = append(errs, validateNonNegativePtr(ru.Partition, rp.Child("partition"))...)
			if ru.MaxUnavailable != nil {
				errs = append(errs, validateIntOrPercent(ru.MaxUnavailable, rp.Child("maxUnavailable"))...)
				if isZero(ru.MaxUnavailable) {
					errs = append(errs, field.Invalid(rp.Child("maxUnavailable"), intOrStringValue(ru.MaxUnavailable), "must be greater than 0"))
				}
			}
		}
	}
	if o := s.Ordinals; o != nil {
		errs = append(errs, validateNonNegative(o.Start, specPath().Child("ordinals", "start"))...)
	}
	return errs
}

func validateJob(j *batchv1.Job) field.ErrorList {
	s := j.GetSpec()
	if s == nil {
		return field.ErrorList{field.Required(specPath(), "")}
	}
	errs := validateWorkload(workloadSpec{s.Selector, s.Template, jobRestart(), true})
	sp := specPath()
	errs = append(errs, validateNonNegativePtr(s.Parallelism, sp.Child("parallelism"))...)
	errs = append(errs, validateNonNegativePtr(s.Completions, sp.Child("completions"))...)
	errs = append(errs, validateNonNegativePtr(s.BackoffLimit, sp.Child("backoffLimit"))...)
	errs = append(errs, validateNonNegativePtr(s.TtlSecondsAfterFinished, sp.Child("ttlSecondsAfterFinished"))...)
	if s.ActiveDeadlineSeconds != nil {
		errs = append(errs, validatePositive(*s.ActiveDeadlineSeconds, sp.Child("activeDeadlineSeconds"))...)
	}
	errs = append(errs, validateEnum(s.CompletionMode, sp.Child("completionMode"), true, "NonIndexed", "Indexed")...)
	if s.CompletionMode == "Indexed" && s.Completions == nil {
		errs = append(errs, field.Required(sp.Child("completions"), "when completion mode is Indexed"))
	}
	return errs
}

// validateSelectorUpdate refuses a changed selector: the workload would
// orphan the pods it owns.
func validateSelectorUpdate(sel, old *metav1.LabelSelector) field.ErrorList {
	if !proto.Equal(sel, old) {
		return field.ErrorList{field.Invalid(specPath().Child("selector"), selectorString(sel), fieldImmutable)}
	}
	return nil
}

func selectorString(sel *metav1.LabelSelector) string {
	if sel == nil {
		return ""
	}
	return sel.String()
}

func validateStatefulSetUpdate(ss, old *appsv1.StatefulSet) field.ErrorList {
	errs := validateSelectorUpdate(ss.GetSpec().GetSelector(), old.GetSpec().GetSelector())
	errs = append(errs, immutable(ss.GetSpec().GetServiceName(), old.GetSpec().GetServiceName(), specPath().Child("serviceName"))...)
	return append(errs, immutable(ss.GetSpec().GetPodManagementPolicy(), old.GetSpec().GetPodManagementPolicy(), specPath().Child("podManagementPolicy"))...)
}

// validateJobUpdate refuses changes to what a running Job's pods were made
// from: selector, template, completions and completion mode.
func validateJobUpdate(j, old *batchv1.Job) field.ErrorList {
	s, os := j.GetSpec(), old.GetSpec()
	if s == nil || os == nil {
		return nil
	}
	errs := validateSelectorUpdate(s.Selector, os.Selector)
	if !proto.Equal(s.Template, os.Template) {
		errs = append(errs, field.Invalid(templatePath(), "<template>", fieldImmutable))
	}
	if !equalPtr(s.Completions, os.Completions) {
		errs = append(errs, field.Invalid(specPath().Child("completions"), s.GetCompletions(), fieldImmutable))
	}
	return append(errs, immutable(s.CompletionMode, os.CompletionMode, specPath().Child("completionMode"))...)
}

func equalPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
