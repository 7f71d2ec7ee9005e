package apiserver

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	k8svalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	authorizationv1 "bosun.dev/gen/bosun/authorization/v1"
	certificatesv1 "bosun.dev/gen/bosun/certificates/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/pki"
	"bosun.dev/services/apiserver/internal/authn"
	"bosun.dev/services/apiserver/internal/authz"
)

// Bootstrap tokens: a token file line `token,system:bootstrap:<node>,uid,"system:bootstrappers"`
// lets a new node-agent get a certificate for <node>, and nothing else.
const (
	GroupBootstrappers  = "system:bootstrappers"
	BootstrapUserPrefix = "system:bootstrap:"
)

// DefaultNodeCertificateValidity is how long issued node certificates last.
const DefaultNodeCertificateValidity = 365 * 24 * time.Hour

var reviewVerbs = []string{authz.VerbGet, authz.VerbList, authz.VerbWatch, authz.VerbCreate, authz.VerbUpdate, authz.VerbDelete, authz.VerbBind}

// accessReview serves AccessReviewService with the apiserver's authorizers.
type accessReview struct {
	authorizationv1.UnimplementedAccessReviewServiceServer
	sec *security
}

func (r accessReview) ReviewAccess(ctx context.Context, req *authorizationv1.ReviewAccessRequest) (*authorizationv1.ReviewAccessResponse, error) {
	caller, ok := authn.UserFrom(ctx)
	if !ok {
		caller = anonymous
	}
	var errs field.ErrorList
	if !slices.Contains(reviewVerbs, req.GetVerb()) {
		errs = append(errs, field.NotSupported(field.NewPath("verb"), req.GetVerb(), reviewVerbs))
	}
	resource, sub, _ := strings.Cut(req.GetResource(), "/")
	k, err := api.Lookup(resource)
	if err != nil {
		errs = append(errs, field.Invalid(field.NewPath("resource"), req.GetResource(), err.Error()))
	}
	if len(errs) > 0 {
		return nil, apierrors.Invalid("ReviewAccessRequest", req.GetResource(), errs)
	}
	subject := caller
	if req.GetUser() != "" {
		// Asking about someone else needs the power to read the whole policy.
		a := authz.Attributes{User: caller, Verb: authz.VerbList, Kind: authz.ClusterRoleBindingKind}
		if err := r.sec.authorize(ctx, a); err != nil {
			return nil, err
		}
		subject = authn.User{Name: req.GetUser(), Groups: append(slices.Clone(req.GetGroups()), authn.GroupAuthenticated)}
	}
	a := authz.Attributes{User: subject, Verb: req.GetVerb(), Kind: k, Subresource: sub, Namespace: req.GetNamespace(), Name: req.GetName()}
	if !k.Namespaced {
		a.Namespace = ""
	}
	resp := &authorizationv1.ReviewAccessResponse{Allowed: true, User: subject.Name, Groups: subject.Groups}
	if r.sec.authz != nil {
		d, reason := r.sec.authz.Authorize(ctx, a)
		resp.Allowed, resp.Reason = d == authz.Allow, reason
	}
	return resp, nil
}

// nodeCertificates serves NodeCertificateService, signing with the cluster CA.
type nodeCertificates struct {
	certificatesv1.UnimplementedNodeCertificateServiceServer
	sec      *security
	ca       *pki.CA
	validity time.Duration
}

func (n nodeCertificates) IssueNodeCertificate(ctx context.Context, req *certificatesv1.IssueNodeCertificateRequest) (*certificatesv1.IssueNodeCertificateResponse, error) {
	start := time.Now()
	caller, ok := authn.UserFrom(ctx)
	if !ok {
		caller = anonymous
	}
	node := req.GetNodeName()
	resp, err := n.issue(caller, node, req.GetCertificateRequest())
	kind := &api.Kind{Kind: "NodeCertificate", Resource: "nodecertificates"}
	n.sec.logAudit(start, requestID(ctx), "/bosun.certificates.v1.NodeCertificateService/IssueNodeCertificate",
		caller, authn.FromGRPC(ctx), authz.Attributes{Verb: authz.VerbCreate, Kind: kind, Name: node}, nil, err)
	return resp, err
}

func (n nodeCertificates) issue(caller authn.User, node string, csrPEM []byte) (*certificatesv1.IssueNodeCertificateResponse, error) {
	if msgs := k8svalidation.IsDNS1123Subdomain(node); len(msgs) > 0 {
		return nil, apierrors.Invalid("IssueNodeCertificateRequest", node, field.ErrorList{field.Invalid(field.NewPath("nodeName"), node, strings.Join(msgs, "; "))})
	}
	allowed := caller.InGroup(authn.GroupMasters) || caller.NodeName() == node ||
		(caller.InGroup(GroupBootstrappers) && caller.Name == BootstrapUserPrefix+node)
	if !allowed {
		return nil, securityError(codes.PermissionDenied, ReasonForbidden, fmt.Sprintf(
			"forbidden: user %q may not get a certificate for node %q: a bootstrap token serves only the node it names (%s%s), a node only itself",
			caller.Name, node, BootstrapUserPrefix, node), map[string]string{"node": node})
	}
	csr, err := pki.ParseCertificateRequest(csrPEM)
	if err != nil {
		return nil, apierrors.Invalid("IssueNodeCertificateRequest", node, field.ErrorList{field.Invalid(field.NewPath("certificateRequest"), "", err.Error())})
	}
	var errs field.ErrorList
	p := field.NewPath("certificateRequest")
	if want := authn.NodeUserPrefix + node; csr.Subject.CommonName != want {
		errs = append(errs, field.Invalid(p.Child("subject", "commonName"), csr.Subject.CommonName, fmt.Sprintf("must be %q", want)))
	}
	if !slices.Equal(csr.Subject.Organization, []string{authn.GroupNodes}) {
		errs = append(errs, field.Invalid(p.Child("subject", "organization"), strings.Join(csr.Subject.Organization, ","), fmt.Sprintf("must be %q alone", authn.GroupNodes)))
	}
	if len(csr.DNSNames)+len(csr.IPAddresses)+len(csr.EmailAddresses)+len(csr.URIs) > 0 {
		errs = append(errs, field.Forbidden(p.Child("subjectAltNames"), "the apiserver names the node itself; requests carry no alternative names"))
	}
	if len(errs) > 0 {
		return nil, apierrors.Invalid("IssueNodeCertificateRequest", node, errs)
	}
	cert, err := n.ca.SignNode(csr, node, n.validity)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "signing: %v", err)
	}
	n.sec.log.Info("issued a node certificate", "node", node, "by", caller.Name)
	return &certificatesv1.IssueNodeCertificateResponse{Certificate: cert, CaCertificate: n.ca.PEM}, nil
}
