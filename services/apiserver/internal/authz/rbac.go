package authz

import (
	"context"
	"slices"
	"sync"

	rbacv1 "bosun.dev/gen/bosun/rbac/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/services/apiserver/internal/authn"
)

// The RBAC kinds.
var (
	RoleKind               = mustKind(&rbacv1.Role{})
	ClusterRoleKind        = mustKind(&rbacv1.ClusterRole{})
	RoleBindingKind        = mustKind(&rbacv1.RoleBinding{})
	ClusterRoleBindingKind = mustKind(&rbacv1.ClusterRoleBinding{})
)

func mustKind(obj api.Object) *api.Kind {
	k, err := api.KindOf(obj)
	if err != nil {
		panic(err)
	}
	return k
}

// RBAC authorizes by the RBAC objects in a Source. It allows a request when a
// ClusterRoleBinding, or a RoleBinding in the request's namespace, grants one
// of the user's names or groups a role with a rule that matches the request;
// otherwise it has no opinion. Its index of the RBAC objects is rebuilt when
// any of them changes.
type RBAC struct {
	src Source

	mu    sync.Mutex
	revs  [4]int64
	index *rbacIndex
}

// NewRBAC returns an RBAC authorizer over src.
func NewRBAC(src Source) *RBAC { return &RBAC{src: src} }

type binding struct {
	subjects []*rbacv1.Subject
	ref      *rbacv1.RoleRef
}

type rbacIndex struct {
	roles           map[string][]*rbacv1.PolicyRule // namespace/name
	clusterRoles    map[string][]*rbacv1.PolicyRule
	bindings        map[string][]binding // by namespace
	clusterBindings []binding
}

// Authorize implements Authorizer.
func (r *RBAC) Authorize(_ context.Context, a Attributes) (Decision, string) {
	idx := r.current()
	for _, b := range idx.clusterBindings {
		if matchesSubject(a.User, b.subjects) && anyRuleAllows(idx.clusterRoles[b.ref.GetName()], a) {
			return Allow, ""
		}
	}
	if a.Namespace != "" {
		for _, b := range idx.bindings[a.Namespace] {
			if !matchesSubject(a.User, b.subjects) {
				continue
			}
			var rules []*rbacv1.PolicyRule
			if b.ref.GetKind() == "ClusterRole" {
				rules = idx.clusterRoles[b.ref.GetName()]
			} else {
				rules = idx.roles[api.Key(a.Namespace, b.ref.GetName())]
			}
			if anyRuleAllows(rules, a) {
				return Allow, ""
			}
		}
	}
	return NoOpinion, ""
}

// RulesFor returns the rules that apply to user in namespace (cluster-wide
// rules first), for `bosun auth can-i --list` and for tests.
func (r *RBAC) RulesFor(user authn.User, namespace string) []*rbacv1.PolicyRule {
	idx := r.current()
	var out []*rbacv1.PolicyRule
	for _, b := range idx.clusterBindings {
		if matchesSubject(user, b.subjects) {
			out = append(out, idx.clusterRoles[b.ref.GetName()]...)
		}
	}
	for _, b := range idx.bindings[namespace] {
		if matchesSubject(user, b.subjects) {
			if b.ref.GetKind() == "ClusterRole" {
				out = append(out, idx.clusterRoles[b.ref.GetName()]...)
			} else {
				out = append(out, idx.roles[api.Key(namespace, b.ref.GetName())]...)
			}
		}
	}
	return out
}

func (r *RBAC) current() *rbacIndex {
	kinds := [4]*api.Kind{RoleKind, ClusterRoleKind, RoleBindingKind, ClusterRoleBindingKind}
	var revs [4]int64
	for i, k := range kinds {
		revs[i] = r.src.Revision(k)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.index != nil && revs == r.revs {
		return r.index
	}
	idx := &rbacIndex{roles: map[string][]*rbacv1.PolicyRule{}, clusterRoles: map[string][]*rbacv1.PolicyRule{}, bindings: map[string][]binding{}}
	r.src.Range(RoleKind, func(o api.Object) bool {
		idx.roles[api.KeyOf(o)] = o.(*rbacv1.Role).GetRules()
		return true
	})
	r.src.Range(ClusterRoleKind, func(o api.Object) bool {
		idx.clusterRoles[o.GetMetadata().GetName()] = o.(*rbacv1.ClusterRole).GetRules()
		return true
	})
	r.src.Range(RoleBindingKind, func(o api.Object) bool {
		b := o.(*rbacv1.RoleBinding)
		ns := b.GetMetadata().GetNamespace()
		idx.bindings[ns] = append(idx.bindings[ns], binding{subjects: b.GetSubjects(), ref: b.GetRoleRef()})
		return true
	})
	r.src.Range(ClusterRoleBindingKind, func(o api.Object) bool {
		b := o.(*rbacv1.ClusterRoleBinding)
		if b.GetRoleRef().GetKind() == "ClusterRole" {
			idx.clusterBindings = append(idx.clusterBindings, binding{subjects: b.GetSubjects(), ref: b.GetRoleRef()})
		}
		return true
	})
	r.revs, r.index = revs, idx
	return idx
}

func matchesSubject(u authn.User, subjects []*rbacv1.Subject) bool {
	for _, s := range subjects {
		switch s.GetKind() {
		case "User":
			if s.GetName() == u.Name {
				return true
			}
		case "Group":
			if u.InGroup(s.GetName()) {
				return true
			}
		}
	}
	return false
}

func anyRuleAllows(rules []*rbacv1.PolicyRule, a Attributes) bool {
	for _, r := range rules {
		if RuleAllows(r, a) {
			return true
		}
	}
	return false
}

// RuleAllows reports whether one rule matches a request's verb, API group,
// resource and name. A rule with resource names matches only requests that
// name one of them (never lists, watches or creates without a name).
func RuleAllows(r *rbacv1.PolicyRule, a Attributes) bool {
	if !matches(r.GetVerbs(), a.Verb) || !matches(r.GetApiGroups(), a.Kind.Group) {
		return false
	}
	if !matches(r.GetResources(), a.Resource()) {
		return false
	}
	if len(r.GetResourceNames()) > 0 {
		return a.Name != "" && slices.Contains(r.GetResourceNames(), a.Name)
	}
	return true
}

func matches(list []string, v string) bool {
	return slices.Contains(list, "*") || slices.Contains(list, v)
}

// grantedRole returns the bind check of a binding written by a: the verb bind
// on the role the binding grants.
func grantedRole(a Attributes) (Attributes, bool) {
	if a.Verb != VerbCreate && a.Verb != VerbUpdate || a.Object == nil {
		return Attributes{}, false
	}
	var ref *rbacv1.RoleRef
	ns := ""
	switch o := a.Object.(type) {
	case *rbacv1.RoleBinding:
		ref, ns = o.GetRoleRef(), a.Namespace
	case *rbacv1.ClusterRoleBinding:
		ref = o.GetRoleRef()
	default:
		return Attributes{}, false
	}
	k := ClusterRoleKind
	if ref.GetKind() == "Role" {
		k = RoleKind
	}
	return Attributes{User: a.User, Verb: VerbBind, Kind: k, Namespace: ns, Name: ref.GetName()}, true
}
