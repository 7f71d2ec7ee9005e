package apiserver_test

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	authorizationv1 "bosun.dev/gen/bosun/authorization/v1"
	certificatesv1 "bosun.dev/gen/bosun/certificates/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	rbacv1 "bosun.dev/gen/bosun/rbac/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/pki"
)

func TestNodeJoinsWithBootstrapToken(t *testing.T) {
	ss := startSecure(t)
	ctx := ctxT(t)
	ss.writeTokens("boot-n9,system:bootstrap:n9,9,\"system:bootstrappers\"")
	boot := certificatesv1.NewNodeCertificateServiceClient(ss.dialToken("boot-n9"))

	csr, key, err := pki.NewCertificateRequest("system:node:n9", []string{"system:nodes"})
	if err != nil {
		t.Fatal(err)
	}
	// The token is bound to n9: no certificate for another node.
	other, _, _ := pki.NewCertificateRequest("system:node:n8", []string{"system:nodes"})
	_, err = boot.IssueNodeCertificate(ctx, &certificatesv1.IssueNodeCertificateRequest{NodeName: "n8", CertificateRequest: other})
	wantCode(t, "bootstrap token of n9 asks for n8", err, codes.PermissionDenied, `"n8"`)
	// The request's subject must be the node's.
	_, err = boot.IssueNodeCertificate(ctx, &certificatesv1.IssueNodeCertificateRequest{NodeName: "n9", CertificateRequest: other})
	wantCode(t, "request for another subject", err, codes.InvalidArgument, "certificateRequest.subject.commonName")
	masters, _, _ := pki.NewCertificateRequest("system:node:n9", []string{"system:nodes", "system:masters"})
	_, err = boot.IssueNodeCertificate(ctx, &certificatesv1.IssueNodeCertificateRequest{NodeName: "n9", CertificateRequest: masters})
	wantCode(t, "request for system:masters", err, codes.InvalidArgument, "certificateRequest.subject.organization")
	_, err = boot.IssueNodeCertificate(ctx, &certificatesv1.IssueNodeCertificateRequest{NodeName: "n9", CertificateRequest: []byte("junk")})
	wantCode(t, "junk request", err, codes.InvalidArgument, "certificateRequest")
	_, err = boot.IssueNodeCertificate(ctx, &certificatesv1.IssueNodeCertificateRequest{NodeName: "N9!", CertificateRequest: csr})
	wantCode(t, "bad node name", err, codes.InvalidArgument, "nodeName")
	// A bootstrap token reads nothing.
	_, err = client.For[*corev1.Pod](ss.dialToken("boot-n9")).List(ctx, client.ListOptions{Namespace: "default"})
	wantCode(t, "bootstrap token lists pods", err, codes.PermissionDenied)

	resp, err := boot.IssueNodeCertificate(ctx, &certificatesv1.IssueNodeCertificateRequest{NodeName: "n9", CertificateRequest: csr})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "n9.crt"), filepath.Join(dir, "n9.key")
	if err := pki.WriteKeyPair(certFile, keyFile, resp.GetCertificate(), key); err != nil {
		t.Fatal(err)
	}
	if ca, _ := os.ReadFile(ss.ca()); string(ca) != string(resp.GetCaCertificate()) {
		t.Error("the response's CA is not the cluster CA")
	}
	// The certificate also serves the node-agent's listener under the
	// node's name, and under no other.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(resp.GetCaCertificate())
	block, _ := pem.Decode(resp.GetCertificate())
	issued, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := issued.Verify(x509.VerifyOptions{DNSName: "n9", Roots: pool}); err != nil {
		t.Errorf("issued certificate does not serve as n9: %v", err)
	}
	if _, err := issued.Verify(x509.VerifyOptions{DNSName: "n8", Roots: pool}); err == nil {
		t.Error("issued certificate for n9 also serves as n8")
	}
	n9 := ss.dial(client.Config{CertFile: certFile, KeyFile: keyFile})
	if _, err := client.For[*corev1.Node](n9).Create(ctx, &corev1.Node{Metadata: &metav1.ObjectMeta{Name: "n9"}}); err != nil {
		t.Fatalf("n9 registers with its issued certificate: %v", err)
	}
	_, err = client.For[*corev1.Node](n9).Create(ctx, &corev1.Node{Metadata: &metav1.ObjectMeta{Name: "n10"}})
	wantCode(t, "n9 registers n10", err, codes.PermissionDenied)
	// The node renews its own certificate, and only its own.
	renew, _, _ := pki.NewCertificateRequest("system:node:n9", []string{"system:nodes"})
	if _, err := certificatesv1.NewNodeCertificateServiceClient(n9).IssueNodeCertificate(ctx, &certificatesv1.IssueNodeCertificateRequest{NodeName: "n9", CertificateRequest: renew}); err != nil {
		t.Fatalf("n9 renews: %v", err)
	}
	_, err = certificatesv1.NewNodeCertificateServiceClient(n9).IssueNodeCertificate(ctx, &certificatesv1.IssueNodeCertificateRequest{NodeName: "n8", CertificateRequest: other})
	wantCode(t, "n9 asks for n8", err, codes.PermissionDenied)
}

func TestReviewAccess(t *testing.T) {
	ss := startSecure(t)
	ctx := ctxT(t)
	createNamespace(t, ctx, ss.admin, "team-a", nil)
	if _, err := client.For[*rbacv1.RoleBinding](ss.admin).Create(ctx, viewerBinding("team-a", "viewer")); err != nil {
		t.Fatal(err)
	}
	viewer := authorizationv1.NewAccessReviewServiceClient(ss.dialToken("viewer-token"))
	waitAllowed := func(req *authorizationv1.ReviewAccessRequest) *authorizationv1.ReviewAccessResponse {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := viewer.ReviewAccess(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetAllowed() {
				return resp
			}
			if time.Now().After(deadline) {
				t.Fatalf("%v never allowed: %s", req, resp.GetReason())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	resp := waitAllowed(&authorizationv1.ReviewAccessRequest{Verb: "list", Resource: "po", Namespace: "team-a"})
	if resp.GetUser() != "viewer" {
		t.Errorf("answered for %q", resp.GetUser())
	}
	resp, err := viewer.ReviewAccess(ctx, &authorizationv1.ReviewAccessRequest{Verb: "create", Resource: "pods", Namespace: "team-a"})
	if err != nil || resp.GetAllowed() || resp.GetReason() == "" {
		t.Fatalf("viewer create pods: %v %v", resp, err)
	}
	_, err = viewer.ReviewAccess(ctx, &authorizationv1.ReviewAccessRequest{Verb: "get", Resource: "pods", User: "admin", Groups: []string{"system:masters"}})
	wantCode(t, "viewer asks about admin", err, codes.PermissionDenied)
	_, err = viewer.ReviewAccess(ctx, &authorizationv1.ReviewAccessRequest{Verb: "fly", Resource: "pvc"})
	wantCode(t, "bad review", err, codes.InvalidArgument, "verb", "resource")
	if v := apierrors.FieldViolations(err); len(v) != 2 {
		t.Errorf("field violations %v", v)
	}
	admin := authorizationv1.NewAccessReviewServiceClient(ss.admin)
	resp, err = admin.ReviewAccess(ctx, &authorizationv1.ReviewAccessRequest{Verb: "update", Resource: "nodes/status", Name: "b", User: "system:node:a", Groups: []string{"system:nodes"}})
	if err != nil || resp.GetAllowed() {
		t.Fatalf("node a updates node b's status: %v %v", resp, err)
	}
	resp, err = admin.ReviewAccess(ctx, &authorizationv1.ReviewAccessRequest{Verb: "update", Resource: "nodes/status", Name: "a", User: "system:node:a", Groups: []string{"system:nodes"}})
	if err != nil || !resp.GetAllowed() {
		t.Fatalf("node a updates its own status: %v %v", resp, err)
	}
}
