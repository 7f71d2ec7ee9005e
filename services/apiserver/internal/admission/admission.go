// Package admission runs the apiserver's admission plugins on objects about
// to be created or updated, after authorization and before defaulting,
// validation and storage. A plugin may change the object (Mutator) and may
// refuse it (Validator); Chain runs every mutator, then every validator.
//
// Plugins: PodSecurity enforces the pod security level a namespace asks for
// with the label pod-security.kubernetes.io/enforce (privileged, baseline or
// restricted); DefaultTolerations gives pods the not-ready and unreachable
// NoExecute tolerations they do not set. More plugins implement Mutator or
// Validator and join the chain by name through Registry.
package admission

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/util/validation/field"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/services/apiserver/internal/authn"
)

// Operation is what a request does to the object.
type Operation string

// Operations admission sees.
const (
	Create Operation = "CREATE"
	Update Operation = "UPDATE"
)

// ReasonForbidden is the ErrorInfo reason of an admission refusal.
const ReasonForbidden = "FORBIDDEN"

// Request is one object on its way to storage.
type Request struct {
	Operation Operation
	Kind      *api.Kind
	// Object is the object to store; mutators change it in place.
	Object api.Object
	// Namespace is the object's namespace as stored; nil for cluster-scoped
	// objects and when the namespace does not exist (storage refuses those).
	Namespace *corev1.Namespace
	User      authn.User
}

// Plugin is an admission plugin.
type Plugin interface {
	// Name is the plugin's name in --admission-plugins.
	Name() string
}

// Mutator changes objects before they are stored.
type Mutator interface {
	Plugin
	// Mutate changes r.Object in place, or refuses it with an error.
	Mutate(ctx context.Context, r *Request) error
}

// Validator refuses objects.
type Validator interface {
	Plugin
	// Validate returns an error that refuses r.Object, or nil.
	Validate(ctx context.Context, r *Request) error
}

// Chain is the apiserver's admission chain.
type Chain []Plugin

// Admit runs every mutator in order, then every validator in order; the
// first error refuses the request.
func (c Chain) Admit(ctx context.Context, r *Request) error {
	for _, p := range c {
		if m, ok := p.(Mutator); ok {
			if err := m.Mutate(ctx, r); err != nil {
				return err
			}
		}
	}
	for _, p := range c {
		if v, ok := p.(Validator); ok {
			if err := v.Validate(ctx, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// Factory makes a plugin from the admission options.
type Factory func(Options) (Plugin, error)

// Options configure the built-in plugins.
type Options struct {
	// DefaultTolerationSeconds is how long DefaultTolerations lets pods stay
	// on a not-ready or unreachable node; default 300.
	DefaultTolerationSeconds int64
}

// Registry maps plugin names to factories.
var Registry = map[string]Factory{
	PodSecurityName:        func(Options) (Plugin, error) { return PodSecurity{}, nil },
	DefaultTolerationsName: func(o Options) (Plugin, error) { return NewDefaultTolerations(o.DefaultTolerationSeconds), nil },
}

// New builds the chain of the named plugins, in order.
func New(names []string, opts Options) (Chain, error) {
	var c Chain
	for _, n := range names {
		f, ok := Registry[n]
		if !ok {
			known := make([]string, 0, len(Registry))
			for k := range Registry {
				known = append(known, k)
			}
			sort.Strings(known)
			return nil, fmt.Errorf("unknown admission plugin %q (known: %s)", n, strings.Join(known, ", "))
		}
		p, err := f(opts)
		if err != nil {
			return nil, fmt.Errorf("admission plugin %s: %w", n, err)
		}
		c = append(c, p)
	}
	return c, nil
}

// Forbidden refuses an object for the reasons in errs: PERMISSION_DENIED with
// reason FORBIDDEN and one field violation per field, e.g.
//
//	Pod "web" is forbidden: violates PodSecurity "restricted": spec.containers[0].securityContext.privileged: Forbidden: privileged containers are not allowed
func Forbidden(kind, namespace, name, policy string, errs field.ErrorList) error {
	br := &errdetails.BadRequest{}
	msgs := make([]string, 0, len(errs))
	for _, e := range errs {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field: e.Field, Description: e.ErrorBody(), Reason: string(e.Type),
		})
		msgs = append(msgs, e.Error())
	}
	msg := fmt.Sprintf("%s %q is forbidden: violates %s: %s", kind, name, policy, strings.Join(msgs, "; "))
	st := status.New(codes.PermissionDenied, msg)
	info := &errdetails.ErrorInfo{Reason: ReasonForbidden, Domain: apierrors.Domain, Metadata: map[string]string{"kind": kind, "name": name, "namespace": namespace}}
	if d, err := st.WithDetails(info, br); err == nil {
		st = d
	}
	return st.Err()
}
