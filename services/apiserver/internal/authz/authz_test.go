package authz

import (
	"context"
	"fmt"
	"strings"
	"testing"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	rbacv1 "bosun.dev/gen/bosun/rbac/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/services/apiserver/internal/authn"
)

// fakeSource is an in-memory Source.
type fakeSource struct {
	objs map[*api.Kind][]api.Object
	rev  int64
}

func newFakeSource(objs ...api.Object) *fakeSource {
	s := &fakeSource{objs: map[*api.Kind][]api.Object{}}
	for _, o := range objs {
		s.add(o)
	}
	return s
}

func (s *fakeSource) add(o api.Object) {
	k, err := api.KindOf(o)
	if err != nil {
		panic(err)
	}
	s.objs[k] = append(s.objs[k], o)
	s.rev++
}

func (s *fakeSource) Get(k *api.Kind, namespace, name string) (api.Object, bool) {
	for _, o := range s.objs[k] {
		if o.GetMetadata().GetNamespace() == namespace && o.GetMetadata().GetName() == name {
			return o, true
		}
	}
	return nil, false
}

func (s *fakeSource) Range(k *api.Kind, fn func(api.Object) bool) {
	for _, o := range s.objs[k] {
		if !fn(o) {
			return
		}
	}
}

func (s *fakeSource) Revision(*api.Kind) int64 { return s.rev }

func meta(ns, name string) *metav1.ObjectMeta { return &metav1.ObjectMeta{Namespace: ns, Name: name} }

var deploymentKind = mustKind(&appsv1.Deployment{})

// policy: the built-in roles, plus
//   - alice: view in team-a (RoleBinding to the ClusterRole view);
//   - bob: edit in team-a and team-b;
//   - carol: the Role pod-reader in team-b (get pods, named "web" only for update);
//   - group ops: view everywhere (ClusterRoleBinding);
//   - dave: admin in team-a.
func testPolicy() *fakeSource {
	src := newFakeSource()
	for _, o := range Bootstrap() {
		src.add(o)
	}
	rb := func(ns, name, kind, subject, roleKind, role string) *rbacv1.RoleBinding {
		return &rbacv1.RoleBinding{Metadata: meta(ns, name), Subjects: []*rbacv1.Subject{{Kind: kind, Name: subject}}, RoleRef: &rbacv1.RoleRef{Kind: roleKind, Name: role}}
	}
	src.add(rb("team-a", "alice-view", "User", "alice", "ClusterRole", "view"))
	src.add(rb("team-a", "bob-edit", "User", "bob", "ClusterRole", "edit"))
	src.add(rb("team-b", "bob-edit", "User", "bob", "ClusterRole", "edit"))
	src.add(rb("team-a", "dave-admin", "User", "dave", "ClusterRole", "admin"))
	src.add(&rbacv1.Role{Metadata: meta("team-b", "pod-reader"), Rules: []*rbacv1.PolicyRule{
		{Verbs: []string{"get", "list"}, ApiGroups: []string{""}, Resources: []string{"pods"}},
		{Verbs: []string{"update"}, ApiGroups: []string{""}, Resources: []string{"pods"}, ResourceNames: []string{"web"}},
	}})
	src.add(rb("team-b", "carol-reader", "User", "carol", "Role", "pod-reader"))
	// A binding to a Role of another namespace grants nothing.
	src.add(rb("team-a", "carol-wrong-ns", "User", "carol", "Role", "pod-reader"))
	src.add(&rbacv1.ClusterRoleBinding{Metadata: meta("", "ops-view"), Subjects: []*rbacv1.Subject{{Kind: "Group", Name: "ops"}}, RoleRef: &rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"}})
	return src
}

func TestRBACMatrix(t *testing.T) {
	chain := Chain{NewNode(testPolicy()), NewRBAC(testPolicy())}
	user := func(name string, groups ...string) authn.User { return authn.User{Name: name, Groups: groups} }
	alice, bob, carol, dave, erin := user("alice"), user("bob"), user("carol"), user("dave"), user("erin")
	opsUser := user("frank", "ops")
	root := user("root", authn.GroupMasters)
	sched, ctrl, hc, proxy := user(SchedulerUser), user(ControllerUser), user(HealthCheckerUser), user(ServiceProxyUser)

	tests := []struct {
		u         authn.User
		verb      string
		kind      *api.Kind
		sub, ns   string
		name      string
		wantAllow bool
	}{
		// alice: view in team-a.
		{alice, VerbGet, PodKind, "", "team-a", "web", true},
		{alice, VerbList, PodKind, "", "team-a", "", true},
		{alice, VerbWatch, PodKind, "", "team-a", "", true},
		{alice, VerbList, deploymentKind, "", "team-a", "", true},
		{alice, VerbCreate, PodKind, "", "team-a", "x", false},
		{alice, VerbUpdate, PodKind, "", "team-a", "web", false},
		{alice, VerbDelete, PodKind, "", "team-a", "web", false},
		{alice, VerbGet, SecretKind, "", "team-a", "db", false},
		{alice, VerbGet, PodKind, "", "team-b", "web", false},
		{alice, VerbList, PodKind, "", "", "", false},
		{alice, VerbGet, NodeKind, "", "", "n1", false},
		{alice, VerbCreate, RoleBindingKind, "", "team-a", "x", false},
		// bob: edit in team-a and team-b.
		{bob, VerbCreate, PodKind, "", "team-a", "x", true},
		{bob, VerbDelete, deploymentKind, "", "team-b", "d", true},
		{bob, VerbGet, SecretKind, "", "team-b", "db", true},
		{bob, VerbCreate, PodKind, "", "team-c", "x", false},
		{bob, VerbCreate, RoleKind, "", "team-a", "r", false},
		{bob, VerbUpdate, NamespaceKind, "", "", "team-a", false},
		{bob, VerbBind, PodKind, "", "team-a", "x", false},
		// carol: the Role pod-reader in team-b only.
		{carol, VerbGet, PodKind, "", "team-b", "any", true},
		{carol, VerbList, PodKind, "", "team-b", "", true},
		{carol, VerbWatch, PodKind, "", "team-b", "", false},
		{carol, VerbUpdate, PodKind, "", "team-b", "web", true},
		{carol, VerbUpdate, PodKind, "", "team-b", "api", false},
		{carol, VerbUpdate, PodKind, "status", "team-b", "web", false},
		{carol, VerbGet, PodKind, "", "team-a", "any", false},
		// dave: admin in team-a.
		{dave, VerbCreate, RoleBindingKind, "", "team-a", "rb", true},
		{dave, VerbBind, ClusterRoleKind, "", "team-a", "edit", true},
		{dave, VerbGet, SecretKind, "", "team-a", "db", true},
		{dave, VerbCreate, RoleBindingKind, "", "team-b", "rb", false},
		{dave, VerbCreate, ClusterRoleBindingKind, "", "", "crb", false},
		// erin: nothing at all.
		{erin, VerbGet, PodKind, "", "team-a", "web", false},
		{erin, VerbList, NamespaceKind, "", "", "", false},
		// group ops: view everywhere.
		{opsUser, VerbList, PodKind, "", "", "", true},
		{opsUser, VerbGet, deploymentKind, "", "team-z", "d", true},
		{opsUser, VerbList, NamespaceKind, "", "", "", true},
		{opsUser, VerbGet, SecretKind, "", "team-a", "db", false},
		{opsUser, VerbDelete, PodKind, "", "team-a", "web", false},
		// system:masters: everything.
		{root, VerbDelete, NamespaceKind, "", "", "team-a", true},
		{root, VerbCreate, ClusterRoleBindingKind, "", "", "x", true},
		// The services' built-in roles.
		{sched, VerbBind, PodKind, "", "team-a", "web", true},
		{sched, VerbList, NodeKind, "", "", "", true},
		{sched, VerbUpdate, PodKind, "status", "team-a", "web", true},
		{sched, VerbCreate, PodKind, "", "team-a", "x", false},
		{sched, VerbDelete, PodKind, "", "team-a", "web", true}, // preemption evicts victims
		{sched, VerbUpdate, PodKind, "", "team-a", "web", false},
		{sched, VerbGet, SecretKind, "", "team-a", "db", false},
		{ctrl, VerbCreate, PodKind, "", "team-a", "x", true},
		{ctrl, VerbUpdate, deploymentKind, "status", "team-a", "d", true},
		{ctrl, VerbDelete, SecretKind, "", "team-a", "db", true},
		{ctrl, VerbCreate, ClusterRoleBindingKind, "", "", "x", false},
		{ctrl, VerbBind, PodKind, "", "team-a", "web", false},
		{hc, VerbUpdate, NodeKind, "status", "", "n1", true},
		{hc, VerbDelete, PodKind, "", "team-a", "web", true},
		{hc, VerbCreate, deploymentKind, "", "team-a", "d", false},
		{proxy, VerbWatch, EndpointsKind, "", "", "", true},
		{proxy, VerbUpdate, ServiceKind, "", "team-a", "s", false},
		{proxy, VerbGet, SecretKind, "", "team-a", "s", false},
	}
	if len(tests) < 40 {
		t.Fatalf("the matrix has %d cases", len(tests))
	}
	for _, tt := range tests {
		a := Attributes{User: tt.u, Verb: tt.verb, Kind: tt.kind, Subresource: tt.sub, Namespace: tt.ns, Name: tt.name}
		t.Run(fmt.Sprintf("%s %s", tt.u.Name, a), func(t *testing.T) {
			d, reason := chain.Authorize(context.Background(), a)
			if (d == Allow) != tt.wantAllow {
				t.Fatalf("decision %s (%s), want allow=%v", d, reason, tt.wantAllow)
			}
			if d == Deny && (!strings.Contains(reason, tt.verb) || !strings.Contains(reason, tt.kind.Kind) || !strings.Contains(reason, tt.u.Name)) {
				t.Errorf("refusal %q does not name the user, verb and kind", reason)
			}
		})
	}
}

func TestBindingNeedsBindOnTheRole(t *testing.T) {
	chain := Chain{NewRBAC(testPolicy())}
	dave := authn.User{Name: "dave"}
	binding := func(roleKind, role string) Attributes {
		return Attributes{User: dave, Verb: VerbCreate, Kind: RoleBindingKind, Namespace: "team-a", Name: "rb",
			Object: &rbacv1.RoleBinding{Metadata: meta("team-a", "rb"), RoleRef: &rbacv1.RoleRef{Kind: roleKind, Name: role}}}
	}
	// admin may bind ClusterRoles within its namespace: "bind" on clusterroles.
	if d, reason := chain.Authorize(context.Background(), binding("ClusterRole", "edit")); d != Allow {
		t.Fatalf("dave binds edit in team-a: %s %s", d, reason)
	}
	// bob (edit) may create nothing in rbac, let alone bind.
	bob := binding("ClusterRole", "cluster-admin")
	bob.User = authn.User{Name: "bob"}
	if d, _ := chain.Authorize(context.Background(), bob); d != Deny {
		t.Fatalf("bob binds cluster-admin: %s", d)
	}
	// A user allowed to create bindings but not to bind the role is refused.
	src := testPolicy()
	src.add(&rbacv1.Role{Metadata: meta("team-a", "binder"), Rules: []*rbacv1.PolicyRule{{Verbs: []string{"create"}, ApiGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"rolebindings"}}}})
	src.add(&rbacv1.RoleBinding{Metadata: meta("team-a", "gina-binder"), Subjects: []*rbacv1.Subject{{Kind: "User", Name: "gina"}}, RoleRef: &rbacv1.RoleRef{Kind: "Role", Name: "binder"}})
	gina := binding("ClusterRole", "cluster-admin")
	gina.User = authn.User{Name: "gina"}
	d, reason := Chain{NewRBAC(src)}.Authorize(context.Background(), gina)
	if d != Deny || !strings.Contains(reason, "bind") || !strings.Contains(reason, "cluster-admin") {
		t.Fatalf("gina binds cluster-admin: %s %q", d, reason)
	}
}

func TestRBACSeesChanges(t *testing.T) {
	src := newFakeSource()
	for _, o := range Bootstrap() {
		src.add(o)
	}
	r := NewRBAC(src)
	a := Attributes{User: authn.User{Name: "hana"}, Verb: VerbGet, Kind: PodKind, Namespace: "ns", Name: "p"}
	if d, _ := r.Authorize(context.Background(), a); d != NoOpinion {
		t.Fatalf("before the binding: %s", d)
	}
	src.add(&rbacv1.RoleBinding{Metadata: meta("ns", "hana"), Subjects: []*rbacv1.Subject{{Kind: "User", Name: "hana"}}, RoleRef: &rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"}})
	if d, _ := r.Authorize(context.Background(), a); d != Allow {
		t.Fatalf("after the binding: %s", d)
	}
}

func nodeUser(n string) authn.User {
	return authn.User{Name: authn.NodeUserPrefix + n, Groups: []string{authn.GroupNodes, authn.GroupAuthenticated}}
}

func TestNodeAuthorizer(t *testing.T) {
	podOn := func(name, node string, volSecret, envCM string) *corev1.Pod {
		p := &corev1.Pod{Metadata: meta("default", name), Spec: &corev1.PodSpec{NodeName: node, Containers: []*corev1.Container{{Name: "c"}}}}
		if volSecret != "" {
			p.Spec.Volumes = []*corev1.Volume{{Name: "v", Source: &corev1.Volume_Secret{Secret: &corev1.SecretVolumeSource{SecretName: volSecret}}}}
		}
		if envCM != "" {
			p.Spec.Containers[0].EnvFrom = []*corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{Name: envCM}}}
		}
		return p
	}
	src := newFakeSource(podOn("pa", "a", "sa", "cma"), podOn("pb", "b", "sb", "cmb"))
	n := NewNode(src)
	a, b := nodeUser("a"), nodeUser("b")
	fakeNode := authn.User{Name: "system:node:a"} // not in system:nodes
	tests := []struct {
		u         authn.User
		verb      string
		kind      *api.Kind
		sub, ns   string
		name      string
		want      Decision
		wantWords string
	}{
		{a, VerbUpdate, NodeKind, "", "", "a", Allow, ""},
		{a, VerbUpdate, NodeKind, "status", "", "a", Allow, ""},
		{a, VerbCreate, NodeKind, "", "", "a", Allow, ""},
		{a, VerbUpdate, NodeKind, "", "", "b", Deny, "own Node"},
		{a, VerbUpdate, NodeKind, "status", "", "b", Deny, "own Node"},
		{a, VerbDelete, NodeKind, "", "", "a", Deny, ""},
		{a, VerbList, NodeKind, "", "", "", Allow, ""},
		{a, VerbUpdate, LeaseKind, "", "bosun-node-lease", "a", Allow, ""},
		{a, VerbCreate, LeaseKind, "", "bosun-system", "a", Allow, ""},
		{a, VerbUpdate, LeaseKind, "", "bosun-node-lease", "b", Deny, "Lease"},
		{a, VerbUpdate, PodKind, "status", "default", "pa", Allow, ""},
		{a, VerbUpdate, PodKind, "status", "default", "pb", Deny, "not bound"},
		{a, VerbDelete, PodKind, "", "default", "pa", Allow, ""},
		{a, VerbDelete, PodKind, "", "default", "pb", Deny, "not bound"},
		{a, VerbUpdate, PodKind, "", "default", "pa", Deny, ""},
		{a, VerbCreate, PodKind, "", "default", "new", Deny, ""},
		{a, VerbGet, PodKind, "", "default", "pb", Allow, ""},
		{a, VerbGet, PodKind, "log", "default", "pb", Deny, "container logs"},
		{a, VerbGet, PodKind, "log", "default", "pa", Deny, "container logs"},
		{a, VerbGet, SecretKind, "", "default", "sa", Allow, ""},
		{a, VerbGet, SecretKind, "", "default", "sb", Deny, "no pod bound"},
		{b, VerbGet, SecretKind, "", "default", "sb", Allow, ""},
		{a, VerbList, SecretKind, "", "default", "", Deny, ""},
		{a, VerbGet, ConfigMapKind, "", "default", "cma", Allow, ""},
		{a, VerbGet, ConfigMapKind, "", "default", "cmb", Deny, ""},
		{a, VerbGet, ConfigMapKind, "", "other", "cma", Deny, ""},
		{a, VerbCreate, EventKind, "", "default", "e", Allow, ""},
		{a, VerbList, deploymentKind, "", "default", "", Deny, "nodes may not"},
		{fakeNode, VerbUpdate, NodeKind, "", "", "b", NoOpinion, ""},
	}
	for _, tt := range tests {
		at := Attributes{User: tt.u, Verb: tt.verb, Kind: tt.kind, Subresource: tt.sub, Namespace: tt.ns, Name: tt.name}
		d, reason := n.Authorize(context.Background(), at)
		if d != tt.want || !strings.Contains(reason, tt.wantWords) {
			t.Errorf("%s %s: %s %q, want %s naming %q", tt.u.Name, at, d, reason, tt.want, tt.wantWords)
		}
	}
}

func TestBootstrapRolesAreValidRules(t *testing.T) {
	for _, r := range BootstrapRoles() {
		if len(r.GetRules()) == 0 {
			t.Errorf("%s has no rules", r.GetMetadata().GetName())
		}
		for _, rule := range r.GetRules() {
			if len(rule.GetVerbs()) == 0 || len(rule.GetResources()) == 0 || len(rule.GetApiGroups()) == 0 {
				t.Errorf("%s: incomplete rule %v", r.GetMetadata().GetName(), rule)
			}
		}
	}
}
