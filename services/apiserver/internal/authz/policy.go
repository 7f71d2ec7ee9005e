package authz

import (
	metav1 "bosun.dev/gen/bosun/meta/v1"
	rbacv1 "bosun.dev/gen/bosun/rbac/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/services/apiserver/internal/authn"
)

// Users of Bosun's own services: the CommonName of their client
// certificates, made by `bosun certs init`. Node-agents are
// system:node:<node> in the group system:nodes instead.
const (
	SchedulerUser     = "bosun-scheduler"
	ControllerUser    = "bosun-controller"
	HealthCheckerUser = "bosun-health-checker"
	ServiceProxyUser  = "bosun-service-proxy"
)

// BootstrapLabel marks the RBAC objects the apiserver writes at start.
const BootstrapLabel = "bosun.dev/bootstrapping"

var (
	read      = []string{VerbGet, VerbList, VerbWatch}
	readWrite = []string{VerbGet, VerbList, VerbWatch, VerbCreate, VerbUpdate, VerbDelete}
)

func rule(verbs []string, groups []string, resources ...string) *rbacv1.PolicyRule {
	return &rbacv1.PolicyRule{Verbs: verbs, ApiGroups: groups, Resources: resources}
}

var (
	core  = []string{""}
	apps  = []string{"apps"}
	batch = []string{"batch"}
	coord = []string{"coordination.k8s.io"}
	rbac  = []string{"rbac.authorization.k8s.io"}
)

// workloads are the namespaced kinds users run applications with.
func workloadRules(verbs []string) []*rbacv1.PolicyRule {
	return []*rbacv1.PolicyRule{
		rule(verbs, core, "pods", "services", "endpoints", "configmaps", "events"),
		rule(verbs, apps, "deployments", "replicasets", "daemonsets", "statefulsets"),
		rule(verbs, batch, "jobs"),
	}
}

// BootstrapRoles returns the built-in ClusterRoles:
//
//   - cluster-admin: everything (bound to the group system:masters);
//   - admin: everything within a namespace, roles and role bindings included
//     (grant it with a RoleBinding);
//   - edit: read and write workloads, Services, ConfigMaps and Secrets, but
//     not roles;
//   - view: read workloads, Services and ConfigMaps; not Secrets;
//   - admin, edit and view may also read container logs (get pods/log,
//     proxied to the node-agent), as in Kubernetes; loading images into a
//     node (create nodes/images) is for cluster-admin only;
//   - bosun-scheduler, bosun-controller, bosun-health-checker and
//     bosun-service-proxy: what each service needs and no more.
func BootstrapRoles() []*rbacv1.ClusterRole {
	leaderElection := rule(readWrite[:5], coord, "leases")
	roles := []*rbacv1.ClusterRole{
		clusterRole("cluster-admin", rule([]string{"*"}, []string{"*"}, "*")),
		clusterRole("admin", append(workloadRules(readWrite),
			rule(readWrite, core, "secrets", "pods/status"),
			rule(readWrite, coord, "leases"),
			rule(append(readWrite, VerbBind), rbac, "roles", "rolebindings"),
			rule([]string{VerbBind}, rbac, "clusterroles"),
			rule([]string{VerbBind}, core, "pods"),
			rule([]string{VerbGet}, core, "pods/log"),
		)...),
		clusterRole("edit", append(workloadRules(readWrite),
			rule(readWrite, core, "secrets"),
			rule(readWrite, coord, "leases"),
			rule([]string{VerbGet}, core, "pods/log"),
		)...),
		clusterRole("view", append(workloadRules(read),
			rule(read, core, "namespaces"),
			rule([]string{VerbGet}, core, "pods/log"),
		)...),
		clusterRole("bosun-scheduler",
			rule(read, core, "pods", "nodes", "namespaces"),
			rule([]string{VerbBind}, core, "pods"),
			// Preemption deletes the lower-priority victims it chose.
			rule([]string{VerbDelete}, core, "pods"),
			rule([]string{VerbUpdate}, core, "pods/status"),
			rule([]string{VerbCreate}, core, "events"),
			leaderElection,
		),
		// The controller manager: the workload controllers, Endpoints, the
		// namespace controller (which deletes what a terminating namespace
		// holds) and the garbage collector (which reads every kind and edits
		// owner references and finalizers). It never binds pods.
		clusterRole("bosun-controller",
			rule(readWrite, core, "pods", "pods/status", "endpoints", "events", "services", "configmaps", "secrets"),
			rule(readWrite, apps, "deployments", "replicasets", "daemonsets", "statefulsets",
				"deployments/status", "replicasets/status", "daemonsets/status", "statefulsets/status"),
			rule(readWrite, batch, "jobs", "jobs/status"),
			rule([]string{VerbGet, VerbList, VerbWatch, VerbUpdate, VerbDelete}, core, "namespaces", "namespaces/status"),
			rule([]string{VerbGet, VerbList, VerbWatch, VerbUpdate}, core, "nodes"),
			rule([]string{VerbList, VerbDelete}, rbac, "roles", "rolebindings"),
			rule(readWrite, coord, "leases"),
		),
		clusterRole("bosun-health-checker",
			rule([]string{VerbGet, VerbList, VerbWatch, VerbUpdate}, core, "nodes", "nodes/status"),
			rule([]string{VerbGet, VerbList, VerbWatch, VerbDelete}, core, "pods"),
			rule([]string{VerbUpdate}, core, "pods/status"),
			rule([]string{VerbCreate}, core, "events"),
			leaderElection,
		),
		clusterRole("bosun-service-proxy",
			rule(read, core, "services", "endpoints", "nodes", "pods"),
			rule([]string{VerbCreate}, core, "events"),
		),
	}
	return roles
}

// BootstrapBindings returns the built-in ClusterRoleBindings: cluster-admin
// to system:masters, and each service's role to its user.
func BootstrapBindings() []*rbacv1.ClusterRoleBinding {
	return []*rbacv1.ClusterRoleBinding{
		clusterBinding("cluster-admin", "Group", authn.GroupMasters),
		clusterBinding("bosun-scheduler", "User", SchedulerUser),
		clusterBinding("bosun-controller", "User", ControllerUser),
		clusterBinding("bosun-health-checker", "User", HealthCheckerUser),
		clusterBinding("bosun-service-proxy", "User", ServiceProxyUser),
	}
}

// Bootstrap returns every built-in object, roles first.
func Bootstrap() []api.Object {
	var out []api.Object
	for _, r := range BootstrapRoles() {
		out = append(out, r)
	}
	for _, b := range BootstrapBindings() {
		out = append(out, b)
	}
	return out
}

func bootstrapMeta(name string) *metav1.ObjectMeta {
	return &metav1.ObjectMeta{Name: name, Labels: map[string]string{BootstrapLabel: "rbac-defaults"}}
}

func clusterRole(name string, rules ...*rbacv1.PolicyRule) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{Metadata: bootstrapMeta(name), Rules: rules}
}

func clusterBinding(role, kind, subject string) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		Metadata: bootstrapMeta(role),
		Subjects: []*rbacv1.Subject{{Kind: kind, ApiGroup: "rbac.authorization.k8s.io", Name: subject}},
		RoleRef:  &rbacv1.RoleRef{ApiGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
	}
}
