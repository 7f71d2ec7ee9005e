package cli

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"bosun.dev/pkg/apierrors"
)

// errReported is returned by a command that has already printed its errors
// and only needs a non-zero exit code.
var errReported = errors.New("errors were reported")

// formatError renders an error the way kubectl does: server errors as
// "Error from server (Reason): message", everything else as "error: ...".
func formatError(err error) string {
	st, ok := status.FromError(err)
	if !ok || st.Code() == codes.OK || st.Code() == codes.Unknown && apierrors.Reason(err) == "" {
		return "error: " + err.Error()
	}
	switch st.Code() {
	case codes.Unavailable:
		return "Unable to connect to the server: " + st.Message()
	case codes.Canceled:
		return "error: " + st.Message()
	}
	return fmt.Sprintf("Error from server (%s): %s", serverReason(err, st.Code()), st.Message())
}

// serverReason names a server error as kubectl's StatusReason would.
func serverReason(err error, code codes.Code) string {
	switch apierrors.Reason(err) {
	case apierrors.ReasonInvalid:
		return "Invalid"
	case apierrors.ReasonBadRequest:
		return "BadRequest"
	case apierrors.ReasonConflict:
		return "Conflict"
	case apierrors.ReasonCompacted:
		return "Expired"
	case apierrors.ReasonNamespaceTerminating:
		return "Forbidden"
	case "":
	default:
		return camel(apierrors.Reason(err))
	}
	switch code {
	case codes.NotFound:
		return "NotFound"
	case codes.AlreadyExists:
		return "AlreadyExists"
	case codes.InvalidArgument:
		return "BadRequest"
	case codes.Aborted:
		return "Conflict"
	case codes.PermissionDenied:
		return "Forbidden"
	case codes.Unauthenticated:
		return "Unauthorized"
	case codes.DeadlineExceeded:
		return "Timeout"
	case codes.ResourceExhausted:
		return "TooManyRequests"
	case codes.Unimplemented:
		return "MethodNotAllowed"
	case codes.FailedPrecondition:
		return "Conflict"
	default:
		return "InternalError"
	}
}

// camel turns "ALREADY_BOUND" into "AlreadyBound".
func camel(reason string) string {
	var b strings.Builder
	for _, part := range strings.Split(strings.ToLower(reason), "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}
