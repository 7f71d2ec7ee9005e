package apiserver

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"bosun.dev/services/apiserver/internal/authn"
	"bosun.dev/services/apiserver/internal/authz"
)

// RPCs that are not verbs on a kind are for system:masters unless listed
// as open.
func TestAuthorizeOtherMethods(t *testing.T) {
	s := &security{authz: authz.Chain{}}
	alice := authn.User{Name: "alice", Groups: []string{authn.GroupAuthenticated}}
	root := authn.User{Name: "root", Groups: []string{authn.GroupMasters}}
	for _, tt := range []struct {
		u      authn.User
		method string
		ok     bool
	}{
		{alice, "/grpc.health.v1.Health/Check", true},
		{alice, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", true},
		{alice, "/bosun.authorization.v1.AccessReviewService/ReviewAccess", true},
		{alice, "/bosun.certificates.v1.NodeCertificateService/IssueNodeCertificate", true},
		{alice, "/bosun.core.v1.NodeAgentService/StreamLogs", false},
		{root, "/bosun.core.v1.NodeAgentService/StreamLogs", true},
	} {
		err := s.authorizeOther(tt.u, tt.method)
		if tt.ok != (err == nil) || (err != nil && status.Code(err) != codes.PermissionDenied) {
			t.Errorf("%s calls %s: %v, want allowed=%v", tt.u.Name, tt.method, err, tt.ok)
		}
	}
	// Without authorization every authenticated caller may call anything.
	if err := (&security{}).authorizeOther(alice, "/x.Y/Z"); err != nil {
		t.Errorf("authorization off: %v", err)
	}
}
