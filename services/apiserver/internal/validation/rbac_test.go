package validation

import (
	"strings"
	"testing"

	metav1 "bosun.dev/gen/bosun/meta/v1"
	rbacv1 "bosun.dev/gen/bosun/rbac/v1"
	"bosun.dev/pkg/api"
)

func TestValidateRBAC(t *testing.T) {
	rule := func(verbs, resources []string) *rbacv1.PolicyRule {
		return &rbacv1.PolicyRule{Verbs: verbs, ApiGroups: []string{""}, Resources: resources}
	}
	ref := func(kind, name string) *rbacv1.RoleRef {
		return &rbacv1.RoleRef{ApiGroup: RBACGroup, Kind: kind, Name: name}
	}
	user := []*rbacv1.Subject{{Kind: "User", Name: "alice"}}
	tests := []struct {
		name string
		obj  api.Object
		want []string // field paths; none: valid
	}{
		{"good role", &rbacv1.Role{Metadata: &metav1.ObjectMeta{Name: "r", Namespace: "ns"}, Rules: []*rbacv1.PolicyRule{rule([]string{"get", "list"}, []string{"pods", "pods/status"})}}, nil},
		{"good cluster role with wildcards", &rbacv1.ClusterRole{Metadata: &metav1.ObjectMeta{Name: "r"}, Rules: []*rbacv1.PolicyRule{rule([]string{"*"}, []string{"*"})}}, nil},
		{"unknown verb", &rbacv1.Role{Metadata: &metav1.ObjectMeta{Name: "r", Namespace: "ns"}, Rules: []*rbacv1.PolicyRule{rule([]string{"get", "patch"}, []string{"pods"})}}, []string{"rules[0].verbs[1]"}},
		{"no verbs, no resources", &rbacv1.ClusterRole{Metadata: &metav1.ObjectMeta{Name: "r"}, Rules: []*rbacv1.PolicyRule{{}}}, []string{"rules[0].verbs", "rules[0].resources"}},
		{"empty resource name", &rbacv1.ClusterRole{Metadata: &metav1.ObjectMeta{Name: "r"}, Rules: []*rbacv1.PolicyRule{{Verbs: []string{"get"}, Resources: []string{"pods"}, ResourceNames: []string{""}}}}, []string{"rules[0].resourceNames[0]"}},
		{"good binding", &rbacv1.RoleBinding{Metadata: &metav1.ObjectMeta{Name: "b", Namespace: "ns"}, Subjects: user, RoleRef: ref("ClusterRole", "view")}, nil},
		{"binding without roleRef", &rbacv1.RoleBinding{Metadata: &metav1.ObjectMeta{Name: "b", Namespace: "ns"}, Subjects: user}, []string{"roleRef"}},
		{"bad subject", &rbacv1.RoleBinding{Metadata: &metav1.ObjectMeta{Name: "b", Namespace: "ns"}, Subjects: []*rbacv1.Subject{{Kind: "ServiceAccount"}}, RoleRef: ref("Role", "r")}, []string{"subjects[0].kind", "subjects[0].name"}},
		{"cluster binding to a Role", &rbacv1.ClusterRoleBinding{Metadata: &metav1.ObjectMeta{Name: "b"}, Subjects: user, RoleRef: ref("Role", "r")}, []string{"roleRef.kind"}},
		{"roleRef of another group", &rbacv1.ClusterRoleBinding{Metadata: &metav1.ObjectMeta{Name: "b"}, Subjects: user, RoleRef: &rbacv1.RoleRef{ApiGroup: "apps", Kind: "ClusterRole", Name: "view"}}, []string{"roleRef.apiGroup"}},
		{"role without namespace", &rbacv1.Role{Metadata: &metav1.ObjectMeta{Name: "r"}, Rules: []*rbacv1.PolicyRule{rule([]string{"get"}, []string{"pods"})}}, []string{"metadata.namespace"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := Validate(tt.obj)
			got := map[string]bool{}
			for _, e := range errs {
				got[e.Field] = true
			}
			if len(tt.want) == 0 && len(errs) > 0 {
				t.Fatalf("refused: %v", errs)
			}
			for _, w := range tt.want {
				if !got[w] {
					t.Errorf("no error on %s: %v", w, errs)
				}
			}
		})
	}
}

func TestRoleRefIsImmutable(t *testing.T) {
	old := &rbacv1.RoleBinding{Metadata: &metav1.ObjectMeta{Name: "b", Namespace: "ns", ResourceVersion: "1", Uid: "u"}, Subjects: []*rbacv1.Subject{{Kind: "User", Name: "a"}}, RoleRef: &rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"}}
	next := &rbacv1.RoleBinding{Metadata: &metav1.ObjectMeta{Name: "b", Namespace: "ns", ResourceVersion: "1", Uid: "u"}, Subjects: []*rbacv1.Subject{{Kind: "User", Name: "a"}}, RoleRef: &rbacv1.RoleRef{Kind: "ClusterRole", Name: "edit"}}
	errs := ValidateUpdate(next, old)
	if len(errs) != 1 || errs[0].Field != "roleRef.name" || !strings.Contains(errs[0].Error(), "immutable") {
		t.Fatalf("errs %v, want roleRef.name immutable", errs)
	}
}
