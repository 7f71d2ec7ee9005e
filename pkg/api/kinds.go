package api

import (
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	batchv1 "bosun.dev/gen/bosun/batch/v1"
	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	rbacv1 "bosun.dev/gen/bosun/rbac/v1"
)

func protoreflectValueOf(m proto.Message) protoreflect.Value {
	return protoreflect.ValueOfMessage(m.ProtoReflect())
}

// Verb is an operation of a resource service.
type Verb string

// The verbs every resource service offers (UpdateStatus only for kinds with a
// status, Bind only for pods).
const (
	VerbGet          Verb = "Get"
	VerbList         Verb = "List"
	VerbCreate       Verb = "Create"
	VerbUpdate       Verb = "Update"
	VerbUpdateStatus Verb = "UpdateStatus"
	VerbDelete       Verb = "Delete"
	VerbWatch        Verb = "Watch"
	VerbBind         Verb = "Bind"
)

// Kind describes one API kind.
type Kind struct {
	// Group is the API group as manifests write it: "" for core, "apps",
	// "batch", "coordination.k8s.io".
	Group string
	// Version is the API version within the group: "v1".
	Version string
	// Kind is the manifest kind, e.g. "Pod".
	Kind string
	// Resource is the lower-case plural used in URLs and storage keys, e.g. "pods".
	Resource string
	// Singular is the lower-case singular, e.g. "pod".
	Singular string
	// ShortNames are command-line abbreviations, e.g. "po".
	ShortNames []string
	// Namespaced is false for cluster-scoped kinds (Namespace, Node).
	Namespaced bool
	// HasStatus is true when the kind has a status written through UpdateStatus.
	HasStatus bool
	// Message is the kind's generated message type.
	Message protoreflect.MessageType
	// Service is the gRPC service that stores the kind.
	Service protoreflect.ServiceDescriptor

	plural  string // method suffix for List and Watch: "Pods"
	methods map[Verb]protoreflect.MethodDescriptor
}

// APIVersion is the manifest apiVersion: "v1" or "apps/v1".
func (k *Kind) APIVersion() string {
	if k.Group == "" {
		return k.Version
	}
	return k.Group + "/" + k.Version
}

// New returns a new, empty object of the kind.
func (k *Kind) New() Object {
	return k.Message.New().Interface().(Object)
}

// Method returns the descriptor of the kind's method for verb, or nil when the
// kind has no such method.
func (k *Kind) Method(v Verb) protoreflect.MethodDescriptor {
	return k.methods[v]
}

// FullMethod returns the gRPC method name for verb, such as
// "/bosun.core.v1.PodService/GetPod", or "" when the kind has no such method.
func (k *Kind) FullMethod(v Verb) string {
	m := k.methods[v]
	if m == nil {
		return ""
	}
	return "/" + string(k.Service.FullName()) + "/" + string(m.Name())
}

// String is the kind's name qualified by its group, e.g. "Deployment.apps".
func (k *Kind) String() string {
	if k.Group == "" {
		return k.Kind
	}
	return k.Kind + "." + k.Group
}

func methodName(k *Kind, v Verb) string {
	switch v {
	case VerbList, VerbWatch:
		return string(v) + k.plural
	case VerbUpdateStatus:
		return "Update" + k.Kind + "Status"
	default:
		return string(v) + k.Kind
	}
}

type kindSpec struct {
	group      string
	msg        proto.Message
	service    protoreflect.FileDescriptor
	resource   string
	plural     string
	short      []string
	namespaced bool
}

var registry = buildRegistry([]kindSpec{
	{"", &corev1.Namespace{}, corev1.File_bosun_core_v1_namespace_service_proto, "namespaces", "Namespaces", []string{"ns"}, false},
	{"", &corev1.Node{}, corev1.File_bosun_core_v1_node_service_proto, "nodes", "Nodes", []string{"no"}, false},
	{"", &corev1.Pod{}, corev1.File_bosun_core_v1_pod_service_proto, "pods", "Pods", []string{"po"}, true},
	{"", &corev1.Service{}, corev1.File_bosun_core_v1_service_service_proto, "services", "Services", []string{"svc"}, true},
	{"", &corev1.Endpoints{}, corev1.File_bosun_core_v1_endpoints_service_proto, "endpoints", "Endpoints", []string{"ep"}, true},
	{"", &corev1.ConfigMap{}, corev1.File_bosun_core_v1_config_map_service_proto, "configmaps", "ConfigMaps", []string{"cm"}, true},
	{"", &corev1.Secret{}, corev1.File_bosun_core_v1_secret_service_proto, "secrets", "Secrets", nil, true},
	{"", &corev1.Event{}, corev1.File_bosun_core_v1_event_service_proto, "events", "Events", []string{"ev"}, true},
	{"apps", &appsv1.Deployment{}, appsv1.File_bosun_apps_v1_deployment_service_proto, "deployments", "Deployments", []string{"deploy"}, true},
	{"apps", &appsv1.ReplicaSet{}, appsv1.File_bosun_apps_v1_replica_set_service_proto, "replicasets", "ReplicaSets", []string{"rs"}, true},
	{"apps", &appsv1.DaemonSet{}, appsv1.File_bosun_apps_v1_daemon_set_service_proto, "daemonsets", "DaemonSets", []string{"ds"}, true},
	{"apps", &appsv1.StatefulSet{}, appsv1.File_bosun_apps_v1_stateful_set_service_proto, "statefulsets", "StatefulSets", []string{"sts"}, true},
	{"batch", &batchv1.Job{}, batchv1.File_bosun_batch_v1_job_service_proto, "jobs", "Jobs", nil, true},
	{"coordination.k8s.io", &coordinationv1.Lease{}, coordinationv1.File_bosun_coordination_v1_lease_service_proto, "leases", "Leases", nil, true},
	{"rbac.authorization.k8s.io", &rbacv1.Role{}, rbacv1.File_bosun_rbac_v1_role_service_proto, "roles", "Roles", nil, true},
	{"rbac.authorization.k8s.io", &rbacv1.ClusterRole{}, rbacv1.File_bosun_rbac_v1_cluster_role_service_proto, "clusterroles", "ClusterRoles", nil, false},
	{"rbac.authorization.k8s.io", &rbacv1.RoleBinding{}, rbacv1.File_bosun_rbac_v1_role_binding_service_proto, "rolebindings", "RoleBindings", nil, true},
	{"rbac.authorization.k8s.io", &rbacv1.ClusterRoleBinding{}, rbacv1.File_bosun_rbac_v1_cluster_role_binding_service_proto, "clusterrolebindings", "ClusterRoleBindings", nil, false},
})

type kindRegistry struct {
	kinds   []*Kind
	byName  map[string]*Kind // lower-case resource, singular, short name and kind
	byGVK   map[string]*Kind // "apps/v1/Deployment"
	byProto map[protoreflect.FullName]*Kind
}

func buildRegistry(specs []kindSpec) *kindRegistry {
	r := &kindRegistry{byName: map[string]*Kind{}, byGVK: map[string]*Kind{}, byProto: map[protoreflect.FullName]*Kind{}}
	for _, s := range specs {
		mt := s.msg.ProtoReflect().Type()
		name := string(mt.Descriptor().Name())
		svcs := s.service.Services()
		if svcs.Len() != 1 {
			panic(fmt.Sprintf("api: %s: expected one service in %s", name, s.service.Path()))
		}
		k := &Kind{
			Group: s.group, Version: "v1", Kind: name, Resource: s.resource,
			Singular: strings.ToLower(name), ShortNames: s.short, Namespaced: s.namespaced,
			HasStatus: mt.Descriptor().Fields().ByName("status") != nil,
			Message:   mt, Service: svcs.Get(0), plural: s.plural,
			methods: map[Verb]protoreflect.MethodDescriptor{},
		}
		verbs := []Verb{VerbGet, VerbList, VerbCreate, VerbUpdate, VerbDelete, VerbWatch}
		if k.HasStatus {
			verbs = append(verbs, VerbUpdateStatus)
		}
		if name == "Pod" {
			verbs = append(verbs, VerbBind)
		}
		for _, v := range verbs {
			md := k.Service.Methods().ByName(protoreflect.Name(methodName(k, v)))
			if md == nil {
				panic(fmt.Sprintf("api: %s has no method %s", k.Service.FullName(), methodName(k, v)))
			}
			k.methods[v] = md
		}
		r.kinds = append(r.kinds, k)
		for _, n := range append([]string{k.Resource, k.Singular, strings.ToLower(k.Kind)}, k.ShortNames...) {
			r.byName[n] = k
		}
		if k.Group != "" {
			r.byName[k.Resource+"."+k.Group] = k
		}
		r.byGVK[k.APIVersion()+"/"+k.Kind] = k
		r.byProto[mt.Descriptor().FullName()] = k
	}
	return r
}

// Kinds returns every kind, in a fixed order (core first).
func Kinds() []*Kind {
	return append([]*Kind(nil), registry.kinds...)
}

// Lookup finds a kind by any of the names a user may type: resource ("pods"),
// singular ("pod"), short name ("po"), kind ("Pod") or "resource.group"
// ("deployments.apps"), case-insensitively.
func Lookup(name string) (*Kind, error) {
	if k, ok := registry.byName[strings.ToLower(name)]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("the server doesn't have a resource type %q (known: %s)", name, strings.Join(resourceNames(), ", "))
}

// ForAPIVersionKind finds the kind a manifest names with apiVersion and kind.
func ForAPIVersionKind(apiVersion, kind string) (*Kind, error) {
	if k, ok := registry.byGVK[apiVersion+"/"+kind]; ok {
		return k, nil
	}
	for _, k := range registry.kinds {
		if k.Kind == kind {
			return nil, fmt.Errorf("kind %q is served as apiVersion %q, not %q", kind, k.APIVersion(), apiVersion)
		}
	}
	return nil, fmt.Errorf("no kind %q in apiVersion %q is supported", kind, apiVersion)
}

// KindOf returns the kind of a message, or an error for a message that is not
// a Bosun object.
func KindOf(m proto.Message) (*Kind, error) {
	if k, ok := registry.byProto[m.ProtoReflect().Descriptor().FullName()]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%s is not a Bosun API kind", m.ProtoReflect().Descriptor().FullName())
}

func resourceNames() []string {
	var out []string
	for _, k := range registry.kinds {
		out = append(out, k.Resource)
	}
	sort.Strings(out)
	return out
}
