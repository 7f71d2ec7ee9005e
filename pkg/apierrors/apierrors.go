// Package apierrors defines how Bosun's API reports errors, and lets clients
// recognise them. Every error is a gRPC status with a code used as gRPC means it
// and a google.rpc.ErrorInfo whose reason tells the cases apart:
//
//	NOT_FOUND            NotFound            the object does not exist
//	ALREADY_EXISTS       AlreadyExists       an object with that name exists
//	CONFLICT             Aborted             stale resource_version or precondition: re-read and retry
//	INVALID              InvalidArgument     field violations in google.rpc.BadRequest
//	RESOURCE_VERSION_COMPACTED OutOfRange    the revision was compacted: list again, then watch
//	ALREADY_BOUND        FailedPrecondition  BindPod on a pod that already has a node
//	NAMESPACE_TERMINATING FailedPrecondition creating in a namespace being deleted
//	OBJECT_TERMINATING   FailedPrecondition binding a pod that is being deleted
//	RESERVED             FailedPrecondition deleting a namespace Bosun keeps
//
// Servers build errors with the constructors; clients test them with the Is
// functions. Both live here so the two sides cannot drift apart.
package apierrors

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Domain is the ErrorInfo domain of every Bosun API error.
const Domain = "bosun.dev"

// Reasons carried in ErrorInfo.
const (
	ReasonNotFound             = "NOT_FOUND"
	ReasonAlreadyExists        = "ALREADY_EXISTS"
	ReasonConflict             = "CONFLICT"
	ReasonInvalid              = "INVALID"
	ReasonCompacted            = "RESOURCE_VERSION_COMPACTED"
	ReasonAlreadyBound         = "ALREADY_BOUND"
	ReasonNamespaceTerminating = "NAMESPACE_TERMINATING"
	ReasonObjectTerminating    = "OBJECT_TERMINATING"
	ReasonReserved             = "RESERVED"
	ReasonBadRequest           = "BAD_REQUEST"
)

func newStatus(code codes.Code, reason, msg string, meta map[string]string, more ...protoadapt.MessageV1) error {
	st := status.New(code, msg)
	details := append([]protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: reason, Domain: Domain, Metadata: meta}}, more...)
	withDetails, err := st.WithDetails(details...)
	if err != nil {
		return st.Err()
	}
	return withDetails.Err()
}

func qualified(kind, namespace, name string) string {
	if namespace == "" {
		return fmt.Sprintf("%s %q", kind, name)
	}
	return fmt.Sprintf("%s %q in namespace %q", kind, name, namespace)
}

func meta(kind, namespace, name string) map[string]string {
	m := map[string]string{"kind": kind, "name": name}
	if namespace != "" {
		m["namespace"] = namespace
	}
	return m
}

// NotFound reports that an object does not exist.
func NotFound(kind, namespace, name string) error {
	return newStatus(codes.NotFound, ReasonNotFound, qualified(kind, namespace, name)+" not found", meta(kind, namespace, name))
}

// AlreadyExists reports that an object of that name exists.
func AlreadyExists(kind, namespace, name string) error {
	return newStatus(codes.AlreadyExists, ReasonAlreadyExists, qualified(kind, namespace, name)+" already exists", meta(kind, namespace, name))
}

// Conflict reports that a write was based on a stale resource_version or that
// a precondition failed; the caller should re-read the object and try again.
func Conflict(kind, namespace, name, why string) error {
	return newStatus(codes.Aborted, ReasonConflict,
		fmt.Sprintf("operation cannot be fulfilled on %s: %s", qualified(kind, namespace, name), why), meta(kind, namespace, name))
}

// Compacted reports that a watch or list asked for a revision that etcd has
// compacted away; the caller must list again and watch from the new revision.
// oldest is the first revision still available, or 0 when unknown.
func Compacted(requested, oldest int64) error {
	msg := fmt.Sprintf("resource version %d is too old: its history was compacted; list again", requested)
	meta := map[string]string{"requested": fmt.Sprint(requested)}
	if oldest > 0 {
		msg = fmt.Sprintf("resource version %d is too old: history before %d was compacted; list again", requested, oldest)
		meta["oldest"] = fmt.Sprint(oldest)
	}
	return newStatus(codes.OutOfRange, ReasonCompacted, msg, meta)
}

// AlreadyBound reports a BindPod on a pod that already has a node.
func AlreadyBound(namespace, name, node string) error {
	return newStatus(codes.FailedPrecondition, ReasonAlreadyBound,
		fmt.Sprintf("pod %q in namespace %q is already bound to node %q", name, namespace, node), meta("Pod", namespace, name))
}

// NamespaceTerminating reports a create in a namespace that is being deleted.
func NamespaceTerminating(namespace string) error {
	return newStatus(codes.FailedPrecondition, ReasonNamespaceTerminating,
		fmt.Sprintf("namespace %q is being terminated; no new objects may be created in it", namespace), map[string]string{"namespace": namespace})
}

// Terminating reports an operation refused because the object is being deleted.
func Terminating(kind, namespace, name, what string) error {
	return newStatus(codes.FailedPrecondition, ReasonObjectTerminating,
		fmt.Sprintf("%s is being deleted and %s", qualified(kind, namespace, name), what), meta(kind, namespace, name))
}

// Reserved reports a delete of an object Bosun needs to keep, such as the
// default namespace.
func Reserved(kind, name string) error {
	return newStatus(codes.FailedPrecondition, ReasonReserved,
		fmt.Sprintf("%s %q is reserved and cannot be deleted", kind, name), meta(kind, "", name))
}

// BadRequest reports a malformed request that is not about an object's fields,
// such as an unparsable selector or page token.
func BadRequest(format string, args ...any) error {
	return newStatus(codes.InvalidArgument, ReasonBadRequest, fmt.Sprintf(format, args...), nil)
}

// Invalid reports field violations of an object, one per field, in the form
// users know from Kubernetes:
//
//	Pod "web" is invalid: spec.containers[0].image: Required value
func Invalid(kind, name string, errs field.ErrorList) error {
	br := &errdetails.BadRequest{}
	msgs := make([]string, 0, len(errs))
	for _, e := range errs {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field: e.Field, Description: e.ErrorBody(), Reason: string(e.Type),
		})
		msgs = append(msgs, e.Error())
	}
	msg := fmt.Sprintf("%s %q is invalid: %s", kind, name, strings.Join(msgs, ", "))
	if len(msgs) > 1 {
		msg = fmt.Sprintf("%s %q is invalid: [%s]", kind, name, strings.Join(msgs, ", "))
	}
	return newStatus(codes.InvalidArgument, ReasonInvalid, msg, map[string]string{"kind": kind, "name": name}, br)
}

// Reason returns the ErrorInfo reason of a Bosun API error, or "".
func Reason(err error) string {
	st, ok := statusOf(err)
	if !ok {
		return ""
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == Domain {
			return info.GetReason()
		}
	}
	return ""
}

// FieldViolations returns the field violations of an INVALID error.
func FieldViolations(err error) []*errdetails.BadRequest_FieldViolation {
	st, ok := statusOf(err)
	if !ok {
		return nil
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			return br.GetFieldViolations()
		}
	}
	return nil
}

// Code returns the gRPC code of err (codes.OK for nil, codes.Unknown for a
// non-status error).
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	st, ok := statusOf(err)
	if !ok {
		return codes.Unknown
	}
	return st.Code()
}

func statusOf(err error) (*status.Status, bool) {
	if err == nil {
		return nil, false
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return se.GRPCStatus(), true
	}
	return nil, false
}

// IsNotFound reports whether err says the object does not exist.
func IsNotFound(err error) bool { return Code(err) == codes.NotFound }

// IsAlreadyExists reports whether err says an object of that name exists.
func IsAlreadyExists(err error) bool { return Code(err) == codes.AlreadyExists }

// IsConflict reports whether err is a stale-resource_version or precondition conflict.
func IsConflict(err error) bool { return Code(err) == codes.Aborted }

// IsInvalid reports whether err carries field violations.
func IsInvalid(err error) bool { return Reason(err) == ReasonInvalid }

// IsCompacted reports whether err says the requested revision was compacted.
func IsCompacted(err error) bool { return Reason(err) == ReasonCompacted }

// IsAlreadyBound reports whether err refused a BindPod on a bound pod.
func IsAlreadyBound(err error) bool { return Reason(err) == ReasonAlreadyBound }
