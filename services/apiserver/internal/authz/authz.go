// Package authz decides whether an authenticated user may do what a request
// asks. Two authorizers run in order: Node confines node-agents (users
// system:node:<name> in the group system:nodes) to their own Node, Lease and
// pods and to the Secrets and ConfigMaps those pods use; RBAC evaluates the
// Role, ClusterRole, RoleBinding and ClusterRoleBinding objects of the
// apiserver's watch cache. Members of system:masters may do everything.
//
// An authorizer answers Allow, Deny or NoOpinion; Chain asks each in turn and
// the first that does not answer NoOpinion decides. Nothing allowed is
// denied.
package authz

import (
	"context"
	"fmt"

	"bosun.dev/pkg/api"
	"bosun.dev/services/apiserver/internal/authn"
)

// Verbs of authorization, as RBAC rules name them.
const (
	VerbGet    = "get"
	VerbList   = "list"
	VerbWatch  = "watch"
	VerbCreate = "create"
	VerbUpdate = "update"
	VerbDelete = "delete"
	VerbBind   = "bind"
)

// Attributes describe a request.
type Attributes struct {
	User authn.User
	// Verb is one of the Verb constants; BindPod is the verb bind on pods.
	Verb string
	// Kind is the kind acted on.
	Kind *api.Kind
	// Subresource is "status" for status updates.
	Subresource string
	// Namespace is the request's namespace; "" for cluster-scoped kinds and
	// for lists and watches across every namespace.
	Namespace string
	// Name is the object's name; "" for lists, watches and generateName.
	Name string
	// Object is the object written by create and update, when there is one.
	Object api.Object
}

// Resource is the resource as RBAC rules name it: "pods", "pods/status".
func (a Attributes) Resource() string {
	if a.Subresource == "" {
		return a.Kind.Resource
	}
	return a.Kind.Resource + "/" + a.Subresource
}

// String describes the request the way a refusal names it:
//
//	create Pod "web" in the namespace "team-a" (resource "pods", API group "")
func (a Attributes) String() string {
	s := a.Verb + " " + a.Kind.Kind
	if a.Subresource != "" {
		s += " " + a.Subresource
	}
	if a.Name != "" {
		s += fmt.Sprintf(" %q", a.Name)
	}
	switch {
	case a.Namespace != "":
		s += fmt.Sprintf(" in the namespace %q", a.Namespace)
	case a.Kind.Namespaced:
		s += " in every namespace"
	default:
		s += " at the cluster scope"
	}
	return s + fmt.Sprintf(" (resource %q, API group %q)", a.Resource(), a.Kind.Group)
}

// Decision is an authorizer's answer.
type Decision int

// Decisions.
const (
	NoOpinion Decision = iota
	Allow
	Deny
)

func (d Decision) String() string {
	switch d {
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	}
	return "no opinion"
}

// Authorizer decides on requests.
type Authorizer interface {
	// Authorize returns a decision and, for Deny, the reason.
	Authorize(ctx context.Context, a Attributes) (Decision, string)
}

// Source reads the objects authorizers decide by: the apiserver's watch
// caches. Objects returned are shared and must not be modified.
type Source interface {
	// Get returns one object.
	Get(k *api.Kind, namespace, name string) (api.Object, bool)
	// Range calls fn for every object of a kind until fn returns false.
	Range(k *api.Kind, fn func(api.Object) bool)
	// Revision changes whenever an object of the kind changes.
	Revision(k *api.Kind) int64
}

// Chain asks each authorizer in order; the first decision other than
// NoOpinion counts. Members of system:masters are always allowed. Creating
// or updating a RoleBinding or ClusterRoleBinding also needs the verb bind on
// the role it grants, so that nobody grants more than they may grant.
type Chain []Authorizer

// Authorize implements Authorizer; it never returns NoOpinion.
func (c Chain) Authorize(ctx context.Context, a Attributes) (Decision, string) {
	d, reason := c.decide(ctx, a)
	if d != Allow {
		return d, reason
	}
	if ref, ok := grantedRole(a); ok {
		return c.decide(ctx, ref)
	}
	return Allow, ""
}

func (c Chain) decide(ctx context.Context, a Attributes) (Decision, string) {
	if a.User.InGroup(authn.GroupMasters) {
		return Allow, ""
	}
	for _, z := range c {
		if d, reason := z.Authorize(ctx, a); d != NoOpinion {
			if d == Deny && reason == "" {
				reason = Forbidden(a)
			}
			return d, reason
		}
	}
	return Deny, Forbidden(a)
}

// Forbidden is the standard refusal: who may not do what.
func Forbidden(a Attributes) string {
	return fmt.Sprintf("user %q cannot %s", a.User.Name, a)
}

// AlwaysAllow allows everything; the apiserver runs it when authorization is off.
type AlwaysAllow struct{}

// Authorize implements Authorizer.
func (AlwaysAllow) Authorize(context.Context, Attributes) (Decision, string) { return Allow, "" }
