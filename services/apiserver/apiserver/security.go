package apiserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/pki"
	"bosun.dev/services/apiserver/internal/admission"
	"bosun.dev/services/apiserver/internal/audit"
	"bosun.dev/services/apiserver/internal/authn"
	"bosun.dev/services/apiserver/internal/authz"
	"bosun.dev/services/apiserver/internal/nodeproxy"
	"bosun.dev/services/apiserver/internal/registry"
	"bosun.dev/services/apiserver/internal/watchcache"
)

// Authorization modes.
const (
	AuthorizationRBAC = "RBAC"
	AuthorizationNode = "Node"
)

// Reasons of the security errors, in the google.rpc.ErrorInfo of the status.
const (
	ReasonUnauthenticated = "UNAUTHENTICATED"
	ReasonForbidden       = "FORBIDDEN"
)

// The user of requests without credentials, when they are let through.
var anonymous = authn.User{Name: "system:anonymous", Groups: []string{"system:unauthenticated"}}

// security holds the request filters: authentication, authorization,
// admission and audit. A nil *security filters nothing.
type security struct {
	log          *slog.Logger
	requireAuthn bool
	authn        authn.Union
	authz        authz.Authorizer // nil allows everything
	rbac         bool
	admission    admission.Chain
	audit        *audit.Logger
	auditClose   io.Closer
	secret       string // the REST gateway's
	methods      map[string]method
	namespaces   *watchcache.Cache
}

type method struct {
	kind *api.Kind
	verb api.Verb
}

// openMethods are the RPCs that are not verbs on a kind and that any
// authenticated caller may make: reflection, and the services that
// authorize their callers themselves. Health checks need no credentials at
// all. Every other RPC that is not a verb on a kind is for system:masters
// only, until it is given authorization attributes here.
var openMethods = map[string]bool{
	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":          true,
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo":     true,
	"/bosun.authorization.v1.AccessReviewService/ReviewAccess":           true,
	"/bosun.certificates.v1.NodeCertificateService/IssueNodeCertificate": true,
}

const healthPrefix = "/grpc.health.v1.Health/"

// authorizeOther decides on an RPC that is not a verb on a kind.
func (s *security) authorizeOther(u authn.User, fullMethod string) error {
	if s.authz == nil || openMethods[fullMethod] || strings.HasPrefix(fullMethod, healthPrefix) || u.InGroup(authn.GroupMasters) {
		return nil
	}
	return securityError(codes.PermissionDenied, ReasonForbidden,
		fmt.Sprintf("forbidden: user %q may not call %s: it is for system:masters only", u.Name, fullMethod), map[string]string{"method": fullMethod})
}

// securityEnabled reports whether any security field of cfg is set.
func securityEnabled(cfg *Config) bool {
	return cfg.Authenticate || cfg.ClientCAFile != "" || cfg.TokenAuthFile != "" || len(cfg.AuthorizationModes) > 0 ||
		len(cfg.AdmissionPlugins) > 0 || cfg.AuditLogPath != "" || cfg.AuditWriter != nil
}

func newSecurity(cfg *Config, log *slog.Logger, caches map[*api.Kind]*watchcache.Cache) (*security, error) {
	if !securityEnabled(cfg) {
		return nil, nil
	}
	if cfg.Insecure && (cfg.Authenticate || cfg.ClientCAFile != "" || cfg.TokenAuthFile != "") {
		return nil, errors.New("--insecure serves plaintext with no authentication: it cannot be combined with authentication (--client-ca-file, --token-auth-file)")
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	s := &security{log: log, requireAuthn: cfg.Authenticate, secret: hex.EncodeToString(secret), methods: map[string]method{}}
	s.authn = append(s.authn, authn.Forwarded{Secret: s.secret})
	if cfg.ClientCAFile != "" {
		pool, err := pki.NewCAPool(cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("--client-ca-file: %w", err)
		}
		s.authn = append(s.authn, authn.Certificates{Roots: pool.Pool})
	}
	if cfg.TokenAuthFile != "" {
		tf, err := authn.NewTokenFile(cfg.TokenAuthFile)
		if err != nil {
			return nil, fmt.Errorf("--token-auth-file: %w", err)
		}
		s.authn = append(s.authn, tf)
	}
	if cfg.Authenticate && len(s.authn) == 1 {
		return nil, errors.New("authentication is on but nothing can authenticate: give --client-ca-file or --token-auth-file (or --insecure for local experiments)")
	}
	src := cacheSource(caches)
	var chain authz.Chain
	for _, m := range cfg.AuthorizationModes {
		switch m {
		case AuthorizationNode:
			chain = append(chain, authz.NewNode(src))
		case AuthorizationRBAC:
			chain = append(chain, authz.NewRBAC(src))
			s.rbac = true
		default:
			return nil, fmt.Errorf("--authorization-mode: unknown mode %q (known: Node, RBAC)", m)
		}
	}
	if len(chain) > 0 {
		s.authz = chain
	}
	var err error
	if s.admission, err = admission.New(cfg.AdmissionPlugins, admission.Options{DefaultTolerationSeconds: cfg.DefaultTolerationSeconds}); err != nil {
		return nil, fmt.Errorf("--admission-plugins: %w", err)
	}
	policy, err := audit.ParsePolicy(cfg.AuditPolicy)
	if err != nil {
		return nil, fmt.Errorf("--audit-policy: %w", err)
	}
	switch {
	case cfg.AuditWriter != nil:
		s.audit = audit.New(cfg.AuditWriter, policy)
	case cfg.AuditLogPath == "-":
		s.audit = audit.New(os.Stdout, policy)
	case cfg.AuditLogPath != "":
		f, err := os.OpenFile(cfg.AuditLogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("--audit-log-path: %w", err)
		}
		s.audit, s.auditClose = audit.New(f, policy), f
	}
	for _, k := range api.Kinds() {
		for _, v := range []api.Verb{api.VerbGet, api.VerbList, api.VerbCreate, api.VerbUpdate, api.VerbUpdateStatus, api.VerbDelete, api.VerbWatch, api.VerbBind} {
			if fm := k.FullMethod(v); fm != "" {
				s.methods[fm] = method{kind: k, verb: v}
			}
		}
		if k == authz.NamespaceKind {
			s.namespaces = caches[k]
		}
	}
	return s, nil
}

func (s *security) close() {
	if s != nil && s.auditClose != nil {
		_ = s.auditClose.Close()
	}
}

// cacheSource reads the watch caches for the authorizers.
type cacheSource map[*api.Kind]*watchcache.Cache

func (c cacheSource) Get(k *api.Kind, namespace, name string) (api.Object, bool) {
	return c[k].Get(namespace, name)
}
func (c cacheSource) Range(k *api.Kind, fn func(api.Object) bool) { c[k].Range(fn) }
func (c cacheSource) Revision(k *api.Kind) int64                  { return c[k].Revision() }

func securityError(code codes.Code, reason, msg string, meta map[string]string) error {
	st := status.New(code, msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: apierrors.Domain, Metadata: meta}); err == nil {
		st = d
	}
	return st.Err()
}

// authenticate returns the caller of a gRPC call. Health checks need no
// credentials; wrong credentials are refused even where none would do.
func (s *security) authenticate(ctx context.Context, fullMethod string) (authn.User, authn.Credentials, error) {
	creds := authn.FromGRPC(ctx)
	u, _, err := s.authn.Authenticate(creds)
	switch {
	case err == nil:
		return u, creds, nil
	case strings.HasPrefix(fullMethod, healthPrefix):
		return anonymous, creds, nil
	case errors.Is(err, authn.ErrNoCredentials) && !s.requireAuthn:
		return anonymous, creds, nil
	}
	return authn.User{}, creds, securityError(codes.Unauthenticated, ReasonUnauthenticated, "unauthenticated: "+err.Error(), nil)
}

func (s *security) authorize(ctx context.Context, a authz.Attributes) error {
	if s.authz == nil {
		return nil
	}
	d, reason := s.authz.Authorize(ctx, a)
	if d == authz.Allow {
		return nil
	}
	meta := map[string]string{"verb": a.Verb, "kind": a.Kind.Kind, "resource": a.Resource()}
	if a.Namespace != "" {
		meta["namespace"] = a.Namespace
	}
	if a.Name != "" {
		meta["name"] = a.Name
	}
	return securityError(codes.PermissionDenied, ReasonForbidden, "forbidden: "+reason, meta)
}

func (s *security) admit(ctx context.Context, m method, a authz.Attributes) error {
	if len(s.admission) == 0 || a.Object == nil {
		return nil
	}
	var op admission.Operation
	switch m.verb {
	case api.VerbCreate:
		op = admission.Create
	case api.VerbUpdate:
		op = admission.Update
	default:
		return nil
	}
	r := &admission.Request{Operation: op, Kind: m.kind, Object: a.Object, User: a.User}
	if m.kind.Namespaced && s.namespaces != nil {
		if ns, ok := s.namespaces.Get("", a.Namespace); ok {
			r.Namespace = ns.(*corev1.Namespace)
		}
	}
	return s.admission.Admit(ctx, r)
}

// attributes describes an API call from its method and request message.
func attributes(m method, req proto.Message) authz.Attributes {
	r := req.ProtoReflect()
	a := authz.Attributes{Kind: m.kind}
	switch m.verb {
	case api.VerbGet:
		a.Verb, a.Namespace, a.Name = authz.VerbGet, str(r, "namespace"), str(r, "name")
	case api.VerbList:
		a.Verb, a.Namespace = authz.VerbList, str(r, "namespace")
	case api.VerbWatch:
		a.Verb, a.Namespace = authz.VerbWatch, str(r, "namespace")
	case api.VerbDelete:
		a.Verb, a.Namespace, a.Name = authz.VerbDelete, str(r, "namespace"), str(r, "name")
	case api.VerbBind:
		a.Verb, a.Namespace, a.Name = authz.VerbBind, str(r, "namespace"), str(r, "name")
	case api.VerbCreate, api.VerbUpdate, api.VerbUpdateStatus:
		a.Verb = authz.VerbUpdate
		if m.verb == api.VerbCreate {
			a.Verb = authz.VerbCreate
		}
		if m.verb == api.VerbUpdateStatus {
			a.Subresource = "status"
		}
		fd := r.Descriptor().Fields().ByNumber(1)
		if fd != nil && fd.Message() != nil && r.Has(fd) {
			if obj, ok := r.Get(fd).Message().Interface().(api.Object); ok {
				a.Object = obj
				a.Namespace, a.Name = obj.GetMetadata().GetNamespace(), obj.GetMetadata().GetName()
			}
		}
	}
	if !m.kind.Namespaced {
		a.Namespace = ""
	}
	return a
}

func str(m protoreflect.Message, name protoreflect.Name) string {
	fd := m.Descriptor().Fields().ByName(name)
	if fd == nil || fd.Kind() != protoreflect.StringKind {
		return ""
	}
	return m.Get(fd).String()
}

// requestID returns the call's x-request-id, or a new one, and sends it back
// in the response header.
func requestID(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("x-request-id"); len(v) > 0 && v[0] != "" && len(v[0]) <= 128 {
		return v[0]
	}
	return uuid.NewString()
}

func (s *security) logAudit(start time.Time, id, fullMethod string, u authn.User, creds authn.Credentials, a authz.Attributes, req proto.Message, err error) {
	if s.audit == nil {
		return
	}
	e := audit.Event{
		Time: start.UTC(), RequestID: id, User: u.Name, Groups: u.Groups, Verb: a.Verb, Subresource: a.Subresource,
		Namespace: a.Namespace, Name: a.Name, Method: fullMethod, Code: status.Code(err).String(),
		Latency: float64(time.Since(start).Microseconds()) / 1000,
	}
	if a.Kind != nil {
		e.Kind = a.Kind.Kind
	}
	if creds.GatewaySecret != "" {
		e.Via = "rest"
	}
	if lerr := s.audit.Log(e, req); lerr != nil {
		s.log.Error("writing the audit log", "err", lerr)
	}
}

func (s *security) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	id := requestID(ctx)
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-request-id", id))
	u, creds, err := s.authenticate(ctx, info.FullMethod)
	m, isAPI := s.methods[info.FullMethod]
	if !isAPI {
		if err == nil {
			err = s.authorizeOther(u, info.FullMethod)
		}
		if err != nil {
			return nil, err
		}
		return handler(authn.WithUser(ctx, u), req)
	}
	msg, _ := req.(proto.Message)
	a := authz.Attributes{Kind: m.kind}
	if msg != nil {
		a = attributes(m, msg)
	}
	a.User = u
	var resp any
	if err == nil {
		err = s.authorize(ctx, a)
	}
	if err == nil {
		err = s.admit(ctx, m, a)
	}
	if err == nil {
		resp, err = handler(authn.WithUser(ctx, u), req)
	}
	s.logAudit(start, id, info.FullMethod, u, creds, a, msg, err)
	return resp, err
}

func (s *security) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	ctx := ss.Context()
	id := requestID(ctx)
	_ = ss.SetHeader(metadata.Pairs("x-request-id", id))
	u, creds, err := s.authenticate(ctx, info.FullMethod)
	m, isAPI := s.methods[info.FullMethod]
	if !isAPI && !nodeproxy.Proxied(info.FullMethod) {
		if err == nil {
			err = s.authorizeOther(u, info.FullMethod)
		}
		if err != nil {
			return err
		}
		return handler(srv, &guardedStream{ServerStream: ss, ctx: authn.WithUser(ctx, u)})
	}
	g := &guardedStream{ServerStream: ss, ctx: authn.WithUser(ctx, u), attrs: authz.Attributes{Kind: m.kind, Verb: strings.ToLower(string(m.verb)), User: u}}
	if err == nil {
		g.check = func(req proto.Message) error {
			if isAPI {
				g.attrs, g.req = attributes(m, req), req
			} else {
				// Proxied to a node-agent: pods/log, nodes/images.
				g.attrs, g.req, _ = nodeproxy.Attributes(info.FullMethod, req)
			}
			g.attrs.User = u
			return s.authorize(ctx, g.attrs)
		}
		err = handler(srv, g)
	}
	s.logAudit(start, id, info.FullMethod, u, creds, g.attrs, g.req, err)
	return err
}

// guardedStream authorizes a server stream's request as it is received.
type guardedStream struct {
	grpc.ServerStream
	ctx     context.Context
	check   func(proto.Message) error
	checked bool
	attrs   authz.Attributes
	req     proto.Message
}

func (g *guardedStream) Context() context.Context { return g.ctx }

func (g *guardedStream) RecvMsg(m any) error {
	if err := g.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if g.check != nil && !g.checked {
		g.checked = true
		if msg, ok := m.(proto.Message); ok {
			return g.check(msg)
		}
	}
	return nil
}

type forwardedKey struct{}

// httpHandler authenticates REST requests before the gateway forwards them;
// the identity travels to the gRPC API with the gateway's secret, where it
// is authorized, admitted and audited like any call.
func (s *security) httpHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			next.ServeHTTP(w, r)
			return
		}
		creds := authn.FromHTTP(r)
		u, _, err := s.authn.Authenticate(creds)
		if err != nil {
			if errors.Is(err, authn.ErrNoCredentials) && !s.requireAuthn {
				u = anonymous
			} else {
				id := r.Header.Get("X-Request-Id")
				if id == "" {
					id = uuid.NewString()
				}
				verb := map[string]string{http.MethodGet: authz.VerbGet, http.MethodPost: authz.VerbCreate, http.MethodPut: authz.VerbUpdate, http.MethodDelete: authz.VerbDelete}[r.Method]
				s.logAudit(time.Now(), id, r.Method+" "+r.URL.Path, authn.User{Name: anonymous.Name}, authn.Credentials{GatewaySecret: "rest"}, authz.Attributes{Verb: verb},
					nil, securityError(codes.Unauthenticated, ReasonUnauthenticated, err.Error(), nil))
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("X-Request-Id", id)
				w.Header().Set("WWW-Authenticate", `Bearer realm="bosun"`)
				w.WriteHeader(http.StatusUnauthorized)
				_ = json.NewEncoder(w).Encode(map[string]any{"code": int(codes.Unauthenticated), "message": "unauthenticated: " + err.Error()})
				return
			}
		}
		r.Header.Del("Authorization")
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), forwardedKey{}, u)))
	})
}

// gatewayOptions make the gateway forward the identity httpHandler found,
// and nothing a client could use to pose as someone else.
func (s *security) gatewayOptions() []runtime.ServeMuxOption {
	return []runtime.ServeMuxOption{
		runtime.WithIncomingHeaderMatcher(func(key string) (string, bool) {
			if key == "X-Request-Id" {
				return "x-request-id", true
			}
			return "", false
		}),
		runtime.WithMetadata(func(ctx context.Context, r *http.Request) metadata.MD {
			md := metadata.Pairs(authn.MetadataGatewaySecret, s.secret)
			if u, ok := r.Context().Value(forwardedKey{}).(authn.User); ok && u.Name != anonymous.Name {
				md.Append(authn.MetadataForwardedUser, u.Name)
				md.Append(authn.MetadataForwardedGroup, slices.DeleteFunc(slices.Clone(u.Groups), func(g string) bool {
					return g == authn.GroupAuthenticated
				})...)
			}
			return md
		}),
	}
}

// ensureBootstrapPolicy writes the built-in ClusterRoles and
// ClusterRoleBindings: missing ones are created, and ones still labelled as
// built-in are brought back to their defaults.
//
// It returns, per kind, the revision of its last write: the authorizer reads
// RBAC objects from the watch caches, so the caller waits for them to
// reach those revisions before serving, or the first callers would be
// refused by a cache that has not seen their roles yet.
func ensureBootstrapPolicy(ctx context.Context, reg *registry.Registry, log *slog.Logger) (map[*api.Kind]int64, error) {
	written := map[*api.Kind]int64{}
	wrote := func(k *api.Kind, obj api.Object) {
		if rv, err := strconv.ParseInt(obj.GetMetadata().GetResourceVersion(), 10, 64); err == nil && rv > written[k] {
			written[k] = rv
		}
	}
	for _, want := range authz.Bootstrap() {
		k, err := api.KindOf(want)
		if err != nil {
			return nil, err
		}
		res := reg.Resource(k)
		name := want.GetMetadata().GetName()
		cur, err := res.Get(ctx, "", name)
		switch {
		case apierrors.IsNotFound(err):
			out, err := res.Create(ctx, want)
			if err != nil && !apierrors.IsAlreadyExists(err) {
				return nil, fmt.Errorf("creating %s %q: %w", k.Kind, name, err)
			}
			if err == nil {
				wrote(k, out)
			}
			log.Info("created built-in RBAC object", "kind", k.Kind, "name", name)
		case err != nil:
			return nil, fmt.Errorf("reading %s %q: %w", k.Kind, name, err)
		case cur.GetMetadata().GetLabels()[authz.BootstrapLabel] != "" && !sameContent(cur, want):
			next := proto.Clone(want).(api.Object)
			api.Meta(next).ResourceVersion = cur.GetMetadata().GetResourceVersion()
			out, err := res.Update(ctx, next)
			if err != nil {
				return nil, fmt.Errorf("updating %s %q: %w", k.Kind, name, err)
			}
			wrote(k, out)
			log.Info("reset built-in RBAC object to its defaults", "kind", k.Kind, "name", name)
		}
	}
	return written, nil
}

// sameContent compares everything but metadata.
func sameContent(a, b api.Object) bool {
	ca, cb := proto.Clone(a), proto.Clone(b)
	for _, m := range []protoreflect.Message{ca.ProtoReflect(), cb.ProtoReflect()} {
		m.Clear(m.Descriptor().Fields().ByName("metadata"))
	}
	return proto.Equal(ca, cb)
}
