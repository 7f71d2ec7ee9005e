package cli

import (
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"bosun.dev/pkg/apierrors"
)

func TestFormatError(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{apierrors.Invalid("Pod", "web", field.ErrorList{field.Required(field.NewPath("spec", "containers").Index(0).Child("image"), "")}),
			`Error from server (Invalid): Pod "web" is invalid: spec.containers[0].image: Required value`},
		{apierrors.NotFound("Pod", "default", "x"), `Error from server (NotFound): Pod "x" in namespace "default" not found`},
		{apierrors.AlreadyExists("Namespace", "", "shop"), `Error from server (AlreadyExists): Namespace "shop" already exists`},
		{apierrors.Conflict("Pod", "default", "x", "stale"), `Error from server (Conflict): operation cannot be fulfilled on Pod "x" in namespace "default": stale`},
		{apierrors.BadRequest("unable to parse %q", "a=="), `Error from server (BadRequest): unable to parse "a=="`},
		{apierrors.AlreadyBound("default", "p", "n1"), `Error from server (AlreadyBound): pod "p" in namespace "default" is already bound to node "n1"`},
		{status.Error(codes.PermissionDenied, "no"), `Error from server (Forbidden): no`},
		{status.Error(codes.Unimplemented, "unknown service"), `Error from server (MethodNotAllowed): unknown service`},
		{status.Error(codes.Unavailable, "connection refused"), `Unable to connect to the server: connection refused`},
		{errors.New("must specify -f"), `error: must specify -f`},
	}
	for _, tt := range tests {
		if got := formatError(tt.err); got != tt.want {
			t.Errorf("formatError:\n got %s\nwant %s", got, tt.want)
		}
	}
}
