package authz

import (
	"context"
	"fmt"

	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/api"
)

// Kinds the node authorizer decides on.
var (
	NodeKind      = mustKind(&corev1.Node{})
	PodKind       = mustKind(&corev1.Pod{})
	SecretKind    = mustKind(&corev1.Secret{})
	ConfigMapKind = mustKind(&corev1.ConfigMap{})
	LeaseKind     = mustKind(&coordinationv1.Lease{})
	EventKind     = mustKind(&corev1.Event{})
	NamespaceKind = mustKind(&corev1.Namespace{})
	ServiceKind   = mustKind(&corev1.Service{})
	EndpointsKind = mustKind(&corev1.Endpoints{})
)

// Node confines node-agents. A user system:node:<name> in the group
// system:nodes may:
//
//   - read Nodes, Pods, Namespaces, Services and Endpoints;
//   - create and update its own Node (and its status);
//   - get, create, update and delete the Lease named after its node, in any
//     namespace (the node heartbeat);
//   - update the status of, and delete, pods bound to its node;
//   - get a Secret or ConfigMap that a pod bound to its node uses (volume,
//     env or envFrom);
//   - create Events.
//
// Everything else a node asks is denied, whatever RBAC says. Users that are
// not nodes get no opinion.
type Node struct {
	src Source
}

// NewNode returns a node authorizer over src.
func NewNode(src Source) *Node { return &Node{src: src} }

// Authorize implements Authorizer.
func (n *Node) Authorize(_ context.Context, a Attributes) (Decision, string) {
	node := a.User.NodeName()
	if node == "" {
		return NoOpinion, ""
	}
	read := a.Verb == VerbGet || a.Verb == VerbList || a.Verb == VerbWatch
	deny := func(why string) (Decision, string) {
		return Deny, fmt.Sprintf("%s: %s", Forbidden(a), why)
	}
	switch a.Kind {
	case NodeKind:
		switch {
		case read:
			return Allow, ""
		case (a.Verb == VerbCreate || a.Verb == VerbUpdate) && a.Name == node:
			return Allow, ""
		}
		return deny(fmt.Sprintf("node %q may only create and update its own Node", node))
	case LeaseKind:
		if a.Name == node && a.Verb != VerbList && a.Verb != VerbWatch {
			return Allow, ""
		}
		return deny(fmt.Sprintf("node %q may only use the Lease named %q", node, node))
	case PodKind:
		if a.Subresource == "log" {
			// Logs are read through the apiserver's proxy by users; a node
			// has its own containers' logs and nobody else's to read.
			return deny(fmt.Sprintf("node %q may not read container logs", node))
		}
		if read {
			return Allow, ""
		}
		if (a.Subresource == "status" && a.Verb == VerbUpdate) || (a.Subresource == "" && a.Verb == VerbDelete) {
			if n.podOnNode(a.Namespace, a.Name, node) {
				return Allow, ""
			}
			return deny(fmt.Sprintf("pod %q is not bound to node %q", api.Key(a.Namespace, a.Name), node))
		}
		return deny(fmt.Sprintf("node %q may only update the status of and delete pods bound to it", node))
	case SecretKind, ConfigMapKind:
		if a.Verb != VerbGet {
			return deny(fmt.Sprintf("node %q may only get the %ss its pods use, one by one", node, a.Kind.Kind))
		}
		if n.usedByNode(a.Kind, a.Namespace, a.Name, node) {
			return Allow, ""
		}
		return deny(fmt.Sprintf("no pod bound to node %q uses %s %q", node, a.Kind.Kind, api.Key(a.Namespace, a.Name)))
	case EventKind:
		if a.Verb == VerbCreate {
			return Allow, ""
		}
		return deny(fmt.Sprintf("node %q may only create Events", node))
	case NamespaceKind, ServiceKind, EndpointsKind:
		if read {
			return Allow, ""
		}
	}
	return deny(fmt.Sprintf("nodes may not %s %s", a.Verb, a.Resource()))
}

func (n *Node) podOnNode(namespace, name, node string) bool {
	obj, ok := n.src.Get(PodKind, namespace, name)
	return ok && obj.(*corev1.Pod).GetSpec().GetNodeName() == node
}

func (n *Node) usedByNode(k *api.Kind, namespace, name, node string) bool {
	used := false
	n.src.Range(PodKind, func(o api.Object) bool {
		p := o.(*corev1.Pod)
		if p.GetMetadata().GetNamespace() == namespace && p.GetSpec().GetNodeName() == node && PodUses(p, k, name) {
			used = true
			return false
		}
		return true
	})
	return used
}

// PodUses reports whether a pod refers to the Secret or ConfigMap name: as a
// volume, an env var source or an envFrom source of any container.
func PodUses(p *corev1.Pod, k *api.Kind, name string) bool {
	secret := k == SecretKind
	for _, v := range p.GetSpec().GetVolumes() {
		if secret && v.GetSecret() != nil && v.GetSecret().GetSecretName() == name {
			return true
		}
		if !secret && v.GetConfigMap() != nil && v.GetConfigMap().GetName() == name {
			return true
		}
	}
	containers := append(append([]*corev1.Container(nil), p.GetSpec().GetInitContainers()...), p.GetSpec().GetContainers()...)
	for _, c := range containers {
		for _, e := range c.GetEnv() {
			src := e.GetValueFrom()
			if secret && src.GetSecretKeyRef() != nil && src.GetSecretKeyRef().GetName() == name {
				return true
			}
			if !secret && src.GetConfigMapKeyRef() != nil && src.GetConfigMapKeyRef().GetName() == name {
				return true
			}
		}
		for _, e := range c.GetEnvFrom() {
			if secret && e.GetSecretRef() != nil && e.GetSecretRef().GetName() == name {
				return true
			}
			if !secret && e.GetConfigMapRef() != nil && e.GetConfigMapRef().GetName() == name {
				return true
			}
		}
	}
	return false
}
