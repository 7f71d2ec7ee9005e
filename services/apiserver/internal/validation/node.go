package validation

import (
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	corev1 "bosun.dev/gen/bosun/core/v1"
)

func taintEffects() []string { return []string{"NoSchedule", "PreferNoSchedule", "NoExecute"} }

func validateNode(n *corev1.Node) field.ErrorList {
	var errs field.ErrorList
	if s := n.GetSpec(); s != nil {
		sp := specPath()
		if s.PodCidr != "" {
			errs = append(errs, validation.IsValidCIDR(sp.Child("podCIDR"), s.PodCidr)...)
		}
		if len(s.PodCidrs) > 2 {
			errs = append(errs, field.TooMany(sp.Child("podCIDRs"), len(s.PodCidrs), 2))
		}
		for i, c := range s.PodCidrs {
			p := sp.Child("podCIDRs").Index(i)
			errs = append(errs, validation.IsValidCIDR(p, c)...)
			if i == 0 && s.PodCidr != "" && c != s.PodCidr {
				errs = append(errs, field.Invalid(p, c, "must match `podCIDR`"))
			}
		}
		errs = append(errs, validateTaints(s.Taints, sp.Child("taints"))...)
	}
	// A node-agent registers its Node with its capacity, so status is checked
	// on create too.
	if st := n.GetStatus(); st != nil {
		errs = append(errs, validateNodeStatus(st, field.NewPath("status"))...)
	}
	return errs
}

func validateTaints(taints []*corev1.Taint, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[[2]string]bool{}
	for i, t := range taints {
		p := fldPath.Index(i)
		if t == nil {
			errs = append(errs, field.Required(p, ""))
			continue
		}
		if t.Key == "" {
			errs = append(errs, field.Required(p.Child("key"), ""))
		} else {
			errs = append(errs, validateQualifiedName(t.Key, p.Child("key"))...)
		}
		errs = append(errs, validateLabelValue(t.Value, p.Child("value"))...)
		errs = append(errs, validateEnum(t.Effect, p.Child("effect"), false, taintEffects()...)...)
		k := [2]string{t.Key, t.Effect}
		if seen[k] {
			errs = append(errs, field.Duplicate(p, "taints must be unique by key and effect pair: "+t.Key+":"+t.Effect))
		}
		seen[k] = true
	}
	return errs
}

// validateNodeUpdate keeps pod CIDRs once allocated: pods already have
// addresses from them.
func validateNodeUpdate(n, old *corev1.Node) field.ErrorList {
	var errs field.ErrorList
	s, os := n.GetSpec(), old.GetSpec()
	if os.GetPodCidr() != "" {
		errs = append(errs, immutable(s.GetPodCidr(), os.GetPodCidr(), specPath().Child("podCIDR"))...)
	}
	if len(os.GetPodCidrs()) > 0 {
		cur := s.GetPodCidrs()
		for i, c := range os.GetPodCidrs() {
			if i >= len(cur) || cur[i] != c {
				errs = append(errs, field.Forbidden(specPath().Child("podCIDRs"), "may not be changed once set"))
				break
			}
		}
	}
	return errs
}

func validateNodeStatus(st *corev1.NodeStatus, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if st == nil {
		return errs
	}
	_, e := validateResourceList(st.Capacity, fldPath.Child("capacity"))
	errs = append(errs, e...)
	_, e = validateResourceList(st.Allocatable, fldPath.Child("allocatable"))
	errs = append(errs, e...)
	for i, c := range st.Conditions {
		p := fldPath.Child("conditions").Index(i)
		if c == nil {
			errs = append(errs, field.Required(p, ""))
			continue
		}
		if c.Type == "" {
			errs = append(errs, field.Required(p.Child("type"), ""))
		}
		errs = append(errs, validateConditionStatus(c.Status, p.Child("status"))...)
	}
	for i, a := range st.Addresses {
		p := fldPath.Child("addresses").Index(i)
		if a == nil {
			errs = append(errs, field.Required(p, ""))
			continue
		}
		errs = append(errs, validateEnum(a.Type, p.Child("type"), false, "Hostname", "InternalIP", "ExternalIP", "InternalDNS", "ExternalDNS")...)
		if a.Address == "" {
			errs = append(errs, field.Required(p.Child("address"), ""))
		}
	}
	errs = append(errs, validateEnum(st.Phase, fldPath.Child("phase"), true, "Pending", "Running", "Terminated")...)
	return errs
}
