package validation

import (
	"k8s.io/apimachinery/pkg/util/validation/field"

	rbacv1 "bosun.dev/gen/bosun/rbac/v1"
)

// RBACGroup is the API group of the RBAC kinds.
const RBACGroup = "rbac.authorization.k8s.io"

// ruleVerbs are the verbs a PolicyRule may name.
var ruleVerbs = []string{"get", "list", "watch", "create", "update", "delete", "bind", "*"}

func validateRules(rules []*rbacv1.PolicyRule, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, r := range rules {
		p := fldPath.Index(i)
		if len(r.GetVerbs()) == 0 {
			errs = append(errs, field.Required(p.Child("verbs"), "at least one verb is required"))
		}
		for j, v := range r.GetVerbs() {
			errs = append(errs, validateEnum(v, p.Child("verbs").Index(j), false, ruleVerbs...)...)
		}
		if len(r.GetResources()) == 0 {
			errs = append(errs, field.Required(p.Child("resources"), "at least one resource is required"))
		}
		for j, res := range r.GetResources() {
			if res == "" {
				errs = append(errs, field.Required(p.Child("resources").Index(j), ""))
			}
		}
		for j, n := range r.GetResourceNames() {
			if n == "" {
				errs = append(errs, field.Required(p.Child("resourceNames").Index(j), ""))
			}
		}
	}
	return errs
}

func validateSubjects(subjects []*rbacv1.Subject, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, s := range subjects {
		p := fldPath.Index(i)
		errs = append(errs, validateEnum(s.GetKind(), p.Child("kind"), false, "User", "Group")...)
		if s.GetName() == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		}
		if g := s.GetApiGroup(); g != "" && g != RBACGroup {
			errs = append(errs, field.NotSupported(p.Child("apiGroup"), g, []string{RBACGroup}))
		}
	}
	return errs
}

func validateRoleRef(ref *rbacv1.RoleRef, kinds []string, fldPath *field.Path) field.ErrorList {
	if ref == nil {
		return field.ErrorList{field.Required(fldPath, "roleRef is required")}
	}
	var errs field.ErrorList
	errs = append(errs, validateEnum(ref.GetKind(), fldPath.Child("kind"), false, kinds...)...)
	errs = append(errs, validateRequiredName(ref.GetName(), fldPath.Child("name"))...)
	if g := ref.GetApiGroup(); g != "" && g != RBACGroup {
		errs = append(errs, field.NotSupported(fldPath.Child("apiGroup"), g, []string{RBACGroup}))
	}
	return errs
}

func validateRole(r *rbacv1.Role) field.ErrorList {
	return validateRules(r.GetRules(), field.NewPath("rules"))
}

func validateClusterRole(r *rbacv1.ClusterRole) field.ErrorList {
	return validateRules(r.GetRules(), field.NewPath("rules"))
}

func validateRoleBinding(b *rbacv1.RoleBinding) field.ErrorList {
	return append(validateSubjects(b.GetSubjects(), field.NewPath("subjects")),
		validateRoleRef(b.GetRoleRef(), []string{"Role", "ClusterRole"}, field.NewPath("roleRef"))...)
}

func validateClusterRoleBinding(b *rbacv1.ClusterRoleBinding) field.ErrorList {
	return append(validateSubjects(b.GetSubjects(), field.NewPath("subjects")),
		validateRoleRef(b.GetRoleRef(), []string{"ClusterRole"}, field.NewPath("roleRef"))...)
}

// validateRoleRefUpdate: a binding's roleRef may not change (delete and
// recreate the binding instead), as in Kubernetes.
func validateRoleRefUpdate(ref, old *rbacv1.RoleRef) field.ErrorList {
	p := field.NewPath("roleRef")
	errs := immutable(ref.GetKind(), old.GetKind(), p.Child("kind"))
	return append(errs, immutable(ref.GetName(), old.GetName(), p.Child("name"))...)
}
