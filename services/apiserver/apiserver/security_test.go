package apiserver_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	rbacv1 "bosun.dev/gen/bosun/rbac/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/manifest"
	"bosun.dev/pkg/pki"
	"bosun.dev/services/apiserver/apiserver"
)

// syncBuffer is an io.Writer the audit log and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// secureServer is an apiserver with authentication, Node and RBAC
// authorization, PodSecurity admission and an audit log.
type secureServer struct {
	t         *testing.T
	s         *apiserver.APIServer
	dir, pki  string
	tokenFile string
	audit     *syncBuffer
	admin     *grpc.ClientConn
}

func startSecure(t *testing.T, opts ...serverOption) *secureServer {
	t.Helper()
	dir := t.TempDir()
	ss := &secureServer{t: t, dir: dir, pki: filepath.Join(dir, "pki"), tokenFile: filepath.Join(dir, "tokens.csv"), audit: &syncBuffer{}}
	ss.writeTokens("viewer-token,viewer,1", "editor-token,editor,2,\"team-editors,other\"")
	cfg := apiserver.Config{
		Listen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", DataDir: dir, CompactionInterval: -1,
		Authenticate: true, TokenAuthFile: ss.tokenFile,
		AuthorizationModes: []string{apiserver.AuthorizationNode, apiserver.AuthorizationRBAC},
		AdmissionPlugins:   []string{"PodSecurity"},
		AuditWriter:        ss.audit, AuditPolicy: "default=Request",
	}
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := apiserver.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ss.s = s
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	ss.admin = ss.dial(client.Config{CertFile: filepath.Join(ss.pki, "admin.crt"), KeyFile: filepath.Join(ss.pki, "admin.key")})
	deadline := time.Now().Add(30 * time.Second)
	for {
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		_, err := client.For[*rbacv1.ClusterRole](ss.admin).Get(rctx, "", "view")
		rcancel()
		if err == nil {
			return ss
		}
		if time.Now().After(deadline) {
			t.Fatalf("secure apiserver not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (ss *secureServer) writeTokens(lines ...string) {
	ss.t.Helper()
	if err := os.WriteFile(ss.tokenFile, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		ss.t.Fatal(err)
	}
}

func (ss *secureServer) ca() string { return filepath.Join(ss.pki, "ca.crt") }

// dial connects with cfg's credentials, trusting the server's CA.
func (ss *secureServer) dial(cfg client.Config, extra ...grpc.DialOption) *grpc.ClientConn {
	ss.t.Helper()
	cfg.Server, cfg.CAFile = ss.s.Addr(), ss.ca()
	conn, err := client.Dial(cfg, extra...)
	if err != nil {
		ss.t.Fatal(err)
	}
	ss.t.Cleanup(func() { conn.Close() })
	return conn
}

func (ss *secureServer) dialToken(token string) *grpc.ClientConn {
	return ss.dial(client.Config{}, grpc.WithPerRPCCredentials(bearer(token)))
}

// dialUser issues a client certificate for user in groups and connects with it.
func (ss *secureServer) dialUser(name, user string, groups ...string) *grpc.ClientConn {
	ss.t.Helper()
	c, err := pki.Issue(ss.pki, pki.Certificate{Name: name, CommonName: user, Organizations: groups, Client: true})
	if err != nil {
		ss.t.Fatal(err)
	}
	return ss.dial(client.Config{CertFile: c.CertFile, KeyFile: c.KeyFile})
}

type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearer) RequireTransportSecurity() bool { return true }

func wantCode(t *testing.T, what string, err error, code codes.Code, contains ...string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("%s: got %v, want %s", what, err, code)
	}
	for _, c := range contains {
		if !strings.Contains(status.Convert(err).Message(), c) {
			t.Errorf("%s: message %q does not name %q", what, status.Convert(err).Message(), c)
		}
	}
}

func TestAnonymousAndBadCertificatesAreRefused(t *testing.T) {
	ss := startSecure(t)
	ctx := ctxT(t)

	anon := ss.dial(client.Config{})
	_, err := client.For[*corev1.Namespace](anon).Get(ctx, "", "default")
	wantCode(t, "anonymous get", err, codes.Unauthenticated, "no credentials")
	_, err = client.For[*corev1.Pod](anon).Watch(ctx, client.WatchOptions{Namespace: "default"})
	if err == nil {
		w, _ := client.For[*corev1.Pod](anon).Watch(ctx, client.WatchOptions{Namespace: "default"})
		_, err = w.Next()
	}
	wantCode(t, "anonymous watch", err, codes.Unauthenticated)
	// Health needs no credentials: probes and services waiting for the apiserver use it.
	if resp, err := healthpb.NewHealthClient(anon).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("anonymous health check: %v %v", resp, err)
	}

	expired, err := pki.Issue(ss.pki, pki.Certificate{Name: "expired", CommonName: "late", Client: true,
		NotBefore: time.Now().Add(-48 * time.Hour), Validity: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.For[*corev1.Namespace](ss.dial(client.Config{CertFile: expired.CertFile, KeyFile: expired.KeyFile})).Get(ctx, "", "default")
	wantCode(t, "expired certificate", err, codes.Unauthenticated, "expired")

	other, err := pki.Issue(t.TempDir(), pki.Certificate{Name: "stranger", CommonName: "admin", Organizations: []string{"system:masters"}, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.For[*corev1.Namespace](ss.dial(client.Config{CertFile: other.CertFile, KeyFile: other.KeyFile})).Get(ctx, "", "default")
	wantCode(t, "certificate of another CA", err, codes.Unauthenticated, "unknown authority")

	_, err = client.For[*corev1.Namespace](ss.dialToken("no-such-token")).Get(ctx, "", "default")
	wantCode(t, "unknown token", err, codes.Unauthenticated, "invalid bearer token")
}

func viewerBinding(ns, user string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		Metadata: &metav1.ObjectMeta{Name: user + "-view", Namespace: ns},
		Subjects: []*rbacv1.Subject{{Kind: "User", Name: user}},
		RoleRef:  &rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"},
	}
}

func createNamespace(t *testing.T, ctx context.Context, conn *grpc.ClientConn, name string, labels map[string]string) {
	t.Helper()
	if _, err := client.For[*corev1.Namespace](conn).Create(ctx, &corev1.Namespace{Metadata: &metav1.ObjectMeta{Name: name, Labels: labels}}); err != nil {
		t.Fatal(err)
	}
}

func TestViewRoleReadsButDoesNotWrite(t *testing.T) {
	ss := startSecure(t)
	ctx := ctxT(t)
	createNamespace(t, ctx, ss.admin, "team-a", nil)
	// The binding as a Kubernetes manifest applies unchanged.
	objs, err := manifest.Decode([]byte(`apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: viewer-view, namespace: team-a}
subjects: [{kind: User, name: viewer, apiGroup: rbac.authorization.k8s.io}]
roleRef: {kind: ClusterRole, name: view, apiGroup: rbac.authorization.k8s.io}
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.For[*rbacv1.RoleBinding](ss.admin).Create(ctx, objs[0].(*rbacv1.RoleBinding)); err != nil {
		t.Fatal(err)
	}
	if _, err := client.For[*corev1.Pod](ss.admin).Create(ctx, pod("team-a", "web")); err != nil {
		t.Fatal(err)
	}
	viewer := client.For[*corev1.Pod](ss.dialToken("viewer-token"))
	// The binding reaches the authorizer through the watch cache: wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := viewer.Get(ctx, "team-a", "web")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("viewer get: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	list, err := viewer.List(ctx, client.ListOptions{Namespace: "team-a"})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("viewer list: %v %v", list, err)
	}
	w, err := viewer.Watch(ctx, client.WatchOptions{Namespace: "team-a", ResourceVersion: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := w.Next(); err != nil || ev.Object.GetMetadata().GetName() != "web" {
		t.Fatalf("viewer watch: %v %v", ev, err)
	}
	w.Stop()

	_, err = viewer.Create(ctx, pod("team-a", "mine"))
	wantCode(t, "viewer create", err, codes.PermissionDenied, `"viewer"`, "create", "Pod", `"team-a"`)
	if apierrors.Reason(err) != apiserver.ReasonForbidden {
		t.Errorf("reason %q, want %q", apierrors.Reason(err), apiserver.ReasonForbidden)
	}
	_, err = viewer.Delete(ctx, "team-a", "web", client.DeleteOptions{})
	wantCode(t, "viewer delete", err, codes.PermissionDenied, "delete")
	_, err = viewer.List(ctx, client.ListOptions{Namespace: "default"})
	wantCode(t, "viewer list elsewhere", err, codes.PermissionDenied, "list", `"default"`)
	_, err = client.For[*corev1.Secret](ss.dialToken("viewer-token")).Get(ctx, "team-a", "any")
	wantCode(t, "viewer get secret", err, codes.PermissionDenied, "Secret")

	// Binding a role one may not bind is refused: no escalation through RoleBindings.
	editorBinding := &rbacv1.RoleBinding{
		Metadata: &metav1.ObjectMeta{Name: "escalate", Namespace: "team-a"},
		Subjects: []*rbacv1.Subject{{Kind: "User", Name: "viewer"}},
		RoleRef:  &rbacv1.RoleRef{Kind: "ClusterRole", Name: "cluster-admin"},
	}
	_, err = client.For[*rbacv1.RoleBinding](ss.dialToken("viewer-token")).Create(ctx, editorBinding)
	wantCode(t, "viewer binds cluster-admin", err, codes.PermissionDenied)
}

func TestRevokedTokenStopsWorking(t *testing.T) {
	ss := startSecure(t)
	ctx := ctxT(t)
	if _, err := client.For[*rbacv1.ClusterRoleBinding](ss.admin).Create(ctx, &rbacv1.ClusterRoleBinding{
		Metadata: &metav1.ObjectMeta{Name: "editor-view"},
		Subjects: []*rbacv1.Subject{{Kind: "Group", Name: "team-editors"}},
		RoleRef:  &rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"},
	}); err != nil {
		t.Fatal(err)
	}
	editor := client.For[*corev1.Namespace](ss.dialToken("editor-token"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := editor.Get(ctx, "", "default")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("editor (group team-editors) get namespace: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ss.writeTokens("viewer-token,viewer,1")
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, err := editor.Get(ctx, "", "default")
		if status.Code(err) == codes.Unauthenticated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a revoked token still works: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNodeAuthorizer(t *testing.T) {
	ss := startSecure(t)
	ctx := ctxT(t)
	nodeA := ss.dialUser("node-a", "system:node:a", "system:nodes")
	nodes := client.For[*corev1.Node](nodeA)
	// A node registers itself, and only itself.
	if _, err := nodes.Create(ctx, &corev1.Node{Metadata: &metav1.ObjectMeta{Name: "a"}}); err != nil {
		t.Fatalf("node a registers: %v", err)
	}
	_, err := nodes.Create(ctx, &corev1.Node{Metadata: &metav1.ObjectMeta{Name: "b"}})
	wantCode(t, "node a registers b", err, codes.PermissionDenied, `"b"`)
	if _, err := client.For[*corev1.Node](ss.admin).Create(ctx, &corev1.Node{Metadata: &metav1.ObjectMeta{Name: "b"}}); err != nil {
		t.Fatal(err)
	}
	a, err := nodes.Get(ctx, "", "a")
	if err != nil {
		t.Fatal(err)
	}
	a.Metadata.Labels = map[string]string{"zone": "z1"}
	if _, err := nodes.Update(ctx, a); err != nil {
		t.Fatalf("node a updates itself: %v", err)
	}
	b, err := nodes.Get(ctx, "", "b")
	if err != nil {
		t.Fatal(err)
	}
	b.Metadata.Labels = map[string]string{"zone": "z1"}
	_, err = nodes.Update(ctx, b)
	wantCode(t, "node a updates node b", err, codes.PermissionDenied, "update", "Node", `"b"`)
	b.Status = &corev1.NodeStatus{}
	_, err = nodes.UpdateStatus(ctx, b)
	wantCode(t, "node a updates node b's status", err, codes.PermissionDenied)

	// Secrets: a pod on a uses s-a; a pod on b uses s-b.
	secrets := client.For[*corev1.Secret](ss.admin)
	for _, n := range []string{"s-a", "s-b", "s-unused"} {
		if _, err := secrets.Create(ctx, &corev1.Secret{Metadata: &metav1.ObjectMeta{Name: n, Namespace: "default"}, Data: map[string][]byte{"k": []byte("v")}}); err != nil {
			t.Fatal(err)
		}
	}
	pods := client.For[*corev1.Pod](ss.admin)
	for _, p := range []struct{ name, node, secret string }{{"pa", "a", "s-a"}, {"pb", "b", "s-b"}} {
		po := pod("default", p.name)
		po.Spec.Volumes = []*corev1.Volume{{Name: "s", Source: &corev1.Volume_Secret{Secret: &corev1.SecretVolumeSource{SecretName: p.secret}}}}
		if _, err := pods.Create(ctx, po); err != nil {
			t.Fatal(err)
		}
		if _, err := corev1.NewPodServiceClient(ss.admin).BindPod(ctx, &corev1.BindPodRequest{Namespace: "default", Name: p.name, NodeName: p.node}); err != nil {
			t.Fatal(err)
		}
	}
	nodeSecrets := client.For[*corev1.Secret](nodeA)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := nodeSecrets.Get(ctx, "default", "s-a")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node a reads the secret of its pod: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, err = nodeSecrets.Get(ctx, "default", "s-b")
	wantCode(t, "node a reads a secret of node b's pod", err, codes.PermissionDenied, "s-b")
	_, err = nodeSecrets.Get(ctx, "default", "s-unused")
	wantCode(t, "node a reads an unused secret", err, codes.PermissionDenied)
	_, err = nodeSecrets.List(ctx, client.ListOptions{Namespace: "default"})
	wantCode(t, "node a lists secrets", err, codes.PermissionDenied)

	nodePods := client.For[*corev1.Pod](nodeA)
	pa, err := nodePods.Get(ctx, "default", "pa")
	if err != nil {
		t.Fatal(err)
	}
	pa.Status = &corev1.PodStatus{Phase: "Running"}
	if _, err := nodePods.UpdateStatus(ctx, pa); err != nil {
		t.Fatalf("node a writes its pod's status: %v", err)
	}
	pb, err := nodePods.Get(ctx, "default", "pb")
	if err != nil {
		t.Fatal(err)
	}
	pb.Status = &corev1.PodStatus{Phase: "Failed"}
	_, err = nodePods.UpdateStatus(ctx, pb)
	wantCode(t, "node a writes node b's pod status", err, codes.PermissionDenied, "not bound to node")
	_, err = nodePods.Create(ctx, pod("default", "sneaky"))
	wantCode(t, "node a creates a pod", err, codes.PermissionDenied)
}

func TestRestrictedNamespaceRefusesPrivilegedPods(t *testing.T) {
	ss := startSecure(t)
	ctx := ctxT(t)
	createNamespace(t, ctx, ss.admin, "locked", map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	pods := client.For[*corev1.Pod](ss.admin)
	deadline := time.Now().Add(10 * time.Second)
	priv := pod("locked", "priv")
	priv.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptrTo(true)}
	var err error
	for {
		_, err = pods.Create(ctx, priv)
		if status.Code(err) == codes.PermissionDenied || time.Now().After(deadline) {
			break
		}
		if err == nil {
			// The namespace had not reached the cache yet: try again.
			_, _ = pods.Delete(ctx, "locked", "priv", client.DeleteOptions{})
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantCode(t, "privileged pod", err, codes.PermissionDenied, `PodSecurity "restricted"`, "spec.containers[0].securityContext.privileged")
	fields := map[string]bool{}
	for _, v := range apierrors.FieldViolations(err) {
		fields[v.GetField()] = true
	}
	if !fields["spec.containers[0].securityContext.privileged"] || !fields["spec.containers[0].securityContext.runAsNonRoot"] {
		t.Errorf("field violations %v lack privileged and runAsNonRoot", fields)
	}

	hp := pod("locked", "hostpath")
	hp.Spec.Volumes = []*corev1.Volume{{Name: "root", Source: &corev1.Volume_HostPath{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
	_, err = pods.Create(ctx, hp)
	wantCode(t, "hostPath pod", err, codes.PermissionDenied, "spec.volumes[0].hostPath")

	ok := pod("locked", "fine")
	ok.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptrTo(true), RunAsUser: ptrTo(int64(1000))}
	ok.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptrTo(false)}
	if _, err := pods.Create(ctx, ok); err != nil {
		t.Fatalf("a pod that meets restricted: %v", err)
	}
	// The default namespace has no level: the same privileged pod is fine there.
	priv.Metadata.Namespace = "default"
	if _, err := pods.Create(ctx, priv); err != nil {
		t.Fatalf("privileged pod in an unlabelled namespace: %v", err)
	}
}

func ptrTo[T any](v T) *T { return &v }

type auditLine struct {
	Time      time.Time       `json:"time"`
	RequestID string          `json:"requestID"`
	User      string          `json:"user"`
	Groups    []string        `json:"groups"`
	Verb      string          `json:"verb"`
	Kind      string          `json:"kind"`
	Namespace string          `json:"namespace"`
	Name      string          `json:"name"`
	Code      string          `json:"code"`
	Latency   *float64        `json:"latencyMs"`
	Via       string          `json:"via"`
	Request   json.RawMessage `json:"request"`
}

func parseAudit(t *testing.T, s string) []auditLine {
	t.Helper()
	var out []auditLine
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l auditLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

func httpsClient(t *testing.T, ss *secureServer) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(ss.ca())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func rest(t *testing.T, hc *http.Client, ss *secureServer, method, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "https://"+ss.s.HTTPAddr()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAuditAndGatewayEnforceTheSameRules(t *testing.T) {
	ss := startSecure(t)
	ctx := ctxT(t)
	if _, err := client.For[*rbacv1.RoleBinding](ss.admin).Create(ctx, viewerBinding("default", "viewer")); err != nil {
		t.Fatal(err)
	}
	const secretValue = "hunter2-do-not-log"
	if _, err := client.For[*corev1.Secret](ss.admin).Create(ctx, &corev1.Secret{
		Metadata:   &metav1.ObjectMeta{Name: "db", Namespace: "default"},
		StringData: map[string]string{"password": secretValue},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.For[*corev1.ConfigMap](ss.admin).Create(ctx, configMap("default", "settings", map[string]string{"a": "b"})); err != nil {
		t.Fatal(err)
	}

	hc := httpsClient(t, ss)
	if code, body := rest(t, hc, ss, "GET", "/api/v1/namespaces/default/pods", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("anonymous REST list: %d %s", code, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := rest(t, hc, ss, "GET", "/api/v1/namespaces/default/configmaps/settings", "viewer-token", "")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("viewer REST get: %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Watches through the gateway are authorized as well.
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	wreq, _ := http.NewRequestWithContext(wctx, "GET", "https://"+ss.s.HTTPAddr()+"/api/v1/watch/namespaces/default/configmaps?resource_version=1", nil)
	wreq.Header.Set("Authorization", "Bearer viewer-token")
	wresp, err := hc.Do(wreq)
	if err != nil {
		t.Fatal(err)
	}
	first, err := bufio.NewReader(wresp.Body).ReadString('\n')
	wresp.Body.Close()
	wcancel()
	if wresp.StatusCode != http.StatusOK || !strings.Contains(first, "settings") {
		t.Fatalf("viewer REST watch: %d %q %v", wresp.StatusCode, first, err)
	}
	wreq, _ = http.NewRequestWithContext(ctx, "GET", "https://"+ss.s.HTTPAddr()+"/api/v1/watch/namespaces/default/secrets?resource_version=1", nil)
	wreq.Header.Set("Authorization", "Bearer viewer-token")
	if wresp, err = hc.Do(wreq); err != nil {
		t.Fatal(err)
	}
	denied, _ := io.ReadAll(wresp.Body)
	wresp.Body.Close()
	if !strings.Contains(string(denied), "forbidden") || !strings.Contains(string(denied), "watch") {
		t.Fatalf("viewer REST watch of secrets: %d %s", wresp.StatusCode, denied)
	}
	code, body := rest(t, hc, ss, "POST", "/api/v1/namespaces/default/configmaps", "viewer-token",
		`{"metadata":{"name":"rest-cm","namespace":"default"},"data":{"x":"y"}}`)
	if code != http.StatusForbidden || !strings.Contains(body, "create") {
		t.Fatalf("viewer REST create: %d %s", code, body)
	}
	code, body = rest(t, hc, ss, "GET", "/api/v1/namespaces/default/secrets/db", "viewer-token", "")
	if code != http.StatusForbidden {
		t.Fatalf("viewer REST get secret: %d %s", code, body)
	}
	// A client cannot pose as someone else through forwarded metadata.
	req, _ := http.NewRequest("GET", "https://"+ss.s.HTTPAddr()+"/api/v1/namespaces/default/secrets/db", nil)
	req.Header.Set("Authorization", "Bearer viewer-token")
	req.Header.Set("Grpc-Metadata-X-Bosun-Forwarded-User", "admin")
	req.Header.Set("Grpc-Metadata-X-Bosun-Forwarded-Group", "system:masters")
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged forwarded identity: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// Every kind of mutating request, over gRPC and over REST with a client
	// certificate, is audited exactly once.
	cms := client.For[*corev1.ConfigMap](ss.admin)
	cm, err := cms.Get(ctx, "default", "settings")
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["a"] = "c"
	if _, err := cms.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if _, err := client.For[*corev1.Pod](ss.admin).Create(ctx, pod("default", "audited")); err != nil {
		t.Fatal(err)
	}
	if _, err := corev1.NewPodServiceClient(ss.admin).BindPod(ctx, &corev1.BindPodRequest{Namespace: "default", Name: "audited", NodeName: "n1"}); err != nil {
		t.Fatal(err)
	}
	p, err := client.For[*corev1.Pod](ss.admin).Get(ctx, "default", "audited")
	if err != nil {
		t.Fatal(err)
	}
	p.Status = &corev1.PodStatus{Phase: "Running"}
	if _, err := client.For[*corev1.Pod](ss.admin).UpdateStatus(ctx, p); err != nil {
		t.Fatal(err)
	}
	adminTLS := &tls.Config{RootCAs: hc.Transport.(*http.Transport).TLSClientConfig.RootCAs}
	adminPair, err := tls.LoadX509KeyPair(filepath.Join(ss.pki, "admin.crt"), filepath.Join(ss.pki, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	adminTLS.Certificates = []tls.Certificate{adminPair}
	adminHC := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: adminTLS}}
	if code, body := rest(t, adminHC, ss, "POST", "/api/v1/namespaces/default/configmaps", "",
		`{"metadata":{"name":"rest-admin","namespace":"default"},"data":{"x":"y"}}`); code != http.StatusOK {
		t.Fatalf("admin REST create with a client certificate: %d %s", code, body)
	}
	if code, body := rest(t, adminHC, ss, "DELETE", "/api/v1/namespaces/default/configmaps/rest-admin", "", ""); code != http.StatusOK {
		t.Fatalf("admin REST delete: %d %s", code, body)
	}
	if _, err := cms.Delete(ctx, "default", "settings", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	lines := parseAudit(t, ss.audit.String())
	if len(lines) == 0 {
		t.Fatal("no audit lines")
	}
	anonymousREST := 0
	for _, l := range lines {
		if l.User == "system:anonymous" && l.Code == "Unauthenticated" && l.Via == "rest" && l.Verb == "get" {
			anonymousREST++
		}
	}
	if anonymousREST != 1 {
		t.Errorf("%d audit lines for the anonymous REST request, want 1", anonymousREST)
	}
	if strings.Contains(ss.audit.String(), secretValue) || strings.Contains(ss.audit.String(), "aHVudGVyMi1kby1ub3QtbG9n") {
		t.Fatal("the audit log holds a Secret's value")
	}
	count := func(f func(auditLine) bool) int {
		n := 0
		for _, l := range lines {
			if f(l) {
				n++
			}
		}
		return n
	}
	for _, want := range []struct {
		what string
		f    func(auditLine) bool
	}{
		{"admin creates the secret", func(l auditLine) bool {
			return l.User == "admin" && l.Verb == "create" && l.Kind == "Secret" && l.Name == "db" && l.Namespace == "default" && l.Code == "OK" && len(l.Request) == 0
		}},
		{"admin creates the configmap, with its request", func(l auditLine) bool {
			return l.User == "admin" && l.Verb == "create" && l.Kind == "ConfigMap" && l.Name == "settings" && l.Code == "OK" && strings.Contains(string(l.Request), "settings")
		}},
		{"admin updates the configmap", func(l auditLine) bool {
			return l.User == "admin" && l.Verb == "update" && l.Kind == "ConfigMap" && l.Name == "settings" && l.Code == "OK"
		}},
		{"admin deletes the configmap", func(l auditLine) bool {
			return l.User == "admin" && l.Verb == "delete" && l.Kind == "ConfigMap" && l.Name == "settings" && l.Code == "OK"
		}},
		{"admin creates the pod", func(l auditLine) bool {
			return l.Verb == "create" && l.Kind == "Pod" && l.Name == "audited"
		}},
		{"admin binds the pod", func(l auditLine) bool {
			return l.Verb == "bind" && l.Kind == "Pod" && l.Name == "audited" && l.Code == "OK"
		}},
		{"admin writes the pod's status", func(l auditLine) bool {
			return l.Verb == "update" && l.Kind == "Pod" && l.Name == "audited" && l.Code == "OK"
		}},
		{"admin's REST create", func(l auditLine) bool {
			return l.User == "admin" && l.Verb == "create" && l.Name == "rest-admin" && l.Code == "OK" && l.Via == "rest"
		}},
		{"admin's REST delete", func(l auditLine) bool {
			return l.User == "admin" && l.Verb == "delete" && l.Name == "rest-admin" && l.Code == "OK" && l.Via == "rest"
		}},
		{"viewer's refused REST create", func(l auditLine) bool {
			return l.User == "viewer" && l.Verb == "create" && l.Kind == "ConfigMap" && l.Name == "rest-cm" && l.Code == "PermissionDenied" && l.Via == "rest"
		}},
	} {
		if n := count(want.f); n != 1 {
			t.Errorf("%s: %d audit lines, want exactly 1\n%s", want.what, n, ss.audit.String())
		}
	}
	ids := map[string]bool{}
	for _, l := range lines {
		// A REST request refused before routing has no kind yet.
		if l.RequestID == "" || l.User == "" || l.Verb == "" || (l.Kind == "" && l.Code != "Unauthenticated") || l.Code == "" || l.Latency == nil || l.Time.IsZero() {
			t.Errorf("audit line lacks a field: %+v", l)
		}
		if l.User == "admin" && !containsStr(l.Groups, "system:masters") {
			t.Errorf("admin's groups %v", l.Groups)
		}
		if ids[l.RequestID] {
			t.Errorf("request id %s used twice", l.RequestID)
		}
		ids[l.RequestID] = true
	}
}

func containsStr(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestServingCertificateRotationWithoutRestart(t *testing.T) {
	ss := startSecure(t)
	ctx := ctxT(t)
	served := func() string {
		pem, _ := os.ReadFile(ss.ca())
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		conn, err := tls.Dial("tcp", ss.s.Addr(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if cn := served(); cn != "bosun-apiserver" {
		t.Fatalf("serving certificate CN %q", cn)
	}
	if _, err := pki.Issue(ss.pki, pki.Certificate{Name: "serving", CommonName: "bosun-apiserver-rotated", Hosts: []string{"localhost", "127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for served() != "bosun-apiserver-rotated" {
		if time.Now().After(deadline) {
			t.Fatal("the rotated serving certificate was not picked up")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// New connections with the rotated certificate serve requests.
	conn := ss.dial(client.Config{CertFile: filepath.Join(ss.pki, "admin.crt"), KeyFile: filepath.Join(ss.pki, "admin.key")})
	if _, err := client.For[*corev1.Namespace](conn).Get(ctx, "", "default"); err != nil {
		t.Fatal(err)
	}
}
