package validation

import (
	"k8s.io/apimachinery/pkg/util/validation/field"

	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
)

func validateNamespace(ns *corev1.Namespace) field.ErrorList {
	var errs field.ErrorList
	for i, f := range ns.GetSpec().GetFinalizers() {
		errs = append(errs, validateQualifiedName(f, specPath().Child("finalizers").Index(i))...)
	}
	return errs
}

func validateEvent(ev *corev1.Event) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("involvedObject")
	if ev.InvolvedObject.GetKind() == "" {
		errs = append(errs, field.Required(p.Child("kind"), ""))
	}
	if ev.InvolvedObject.GetName() == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	}
	errs = append(errs, validateEnum(ev.Type, field.NewPath("type"), true, "Normal", "Warning")...)
	errs = append(errs, validateNonNegative(ev.Count, field.NewPath("count"))...)
	return errs
}

func validateLease(l *coordinationv1.Lease) field.ErrorList {
	var errs field.ErrorList
	s := l.GetSpec()
	if s == nil {
		return errs
	}
	if s.LeaseDurationSeconds != nil {
		errs = append(errs, validatePositive(*s.LeaseDurationSeconds, specPath().Child("leaseDurationSeconds"))...)
	}
	errs = append(errs, validateNonNegativePtr(s.LeaseTransitions, specPath().Child("leaseTransitions"))...)
	return errs
}
