package nodeproxy_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	rbacv1 "bosun.dev/gen/bosun/rbac/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/pki"
	"bosun.dev/services/apiserver/apiserver"
	"bosun.dev/services/apiserver/internal/nodeproxy"
)

// fakeAgent is a NodeAgentService on loopback that records what it is asked.
type fakeAgent struct {
	corev1.UnimplementedNodeAgentServiceServer
	addr string

	mu       sync.Mutex
	logReqs  []*corev1.ContainerLogsRequest
	uploads  [][][]byte // chunks of each upload, in arrival order
	nodes    []string   // node named by each upload's first message
	followed chan struct{}
	ended    chan struct{} // closed when a followed stream's context ends
}

// startAgent serves a fakeAgent on 127.0.0.1, over TLS when tc is set.
func startAgent(t *testing.T, tc *credentials.TransportCredentials) *fakeAgent {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var opts []grpc.ServerOption
	if tc != nil {
		opts = append(opts, grpc.Creds(*tc))
	}
	s := grpc.NewServer(opts...)
	a := &fakeAgent{addr: lis.Addr().String(), followed: make(chan struct{}, 1), ended: make(chan struct{})}
	corev1.RegisterNodeAgentServiceServer(s, a)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return a
}

func (a *fakeAgent) ContainerLogs(req *corev1.ContainerLogsRequest, stream grpc.ServerStreamingServer[corev1.ContainerLogsResponse]) error {
	a.mu.Lock()
	a.logReqs = append(a.logReqs, req)
	a.mu.Unlock()
	if req.GetContainer() == "missing" {
		return status.Errorf(codes.NotFound, "container %q not found in pod %q", req.GetContainer(), req.GetPod())
	}
	for _, l := range []string{"line 1\n", "line 2\n"} {
		if err := stream.Send(&corev1.ContainerLogsResponse{Data: []byte(l)}); err != nil {
			return err
		}
	}
	if !req.GetFollow() {
		return nil
	}
	a.followed <- struct{}{}
	defer close(a.ended)
	for i := 0; ; i++ {
		if err := stream.Send(&corev1.ContainerLogsResponse{Data: fmt.Appendf(nil, "tick %d\n", i)}); err != nil {
			return err
		}
		select {
		case <-stream.Context().Done():
			return stream.Context().Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (a *fakeAgent) LoadImages(stream grpc.ClientStreamingServer[corev1.LoadImagesRequest, corev1.LoadImagesResponse]) error {
	var chunks [][]byte
	node := ""
	for i := 0; ; i++ {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if i == 0 {
			node = m.GetNode()
			if bytes.HasPrefix(m.GetData(), []byte("junk")) {
				return status.Error(codes.InvalidArgument, "loading images: not an OCI image-layout tarball")
			}
		}
		chunks = append(chunks, m.GetData())
	}
	a.mu.Lock()
	a.uploads = append(a.uploads, chunks)
	a.nodes = append(a.nodes, node)
	a.mu.Unlock()
	return stream.SendAndClose(&corev1.LoadImagesResponse{Images: []*corev1.ContainerImage{{Names: []string{"registry.local/hello:v1"}, SizeBytes: 42}}})
}

func (a *fakeAgent) logCalls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.logReqs)
}

// cluster is a secure in-process apiserver with a node whose node-agent is a fakeAgent.
type cluster struct {
	t     *testing.T
	s     *apiserver.APIServer
	pki   string
	admin *grpc.ClientConn
	agent *fakeAgent
	audit *syncBuffer
}

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

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startCluster starts an apiserver with authentication, Node and RBAC
// authorization and an audit log, and registers the node "node-a" whose
// node-agent is agent (nil: a new plaintext fakeAgent).
// startTLSAgent starts a fake node-agent serving as node-a with a
// certificate of the CA in pkiDir, and requiring client certificates of
// that CA, as node-agents do.
func startTLSAgent(t *testing.T, pkiDir string) *fakeAgent {
	t.Helper()
	serving, err := pki.Issue(pkiDir, pki.Certificate{Name: "node-a", CommonName: "system:node:node-a", Hosts: []string{"node-a"}, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := pki.ReloadingServerConfig(serving.CertFile, serving.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pki.NewCAPool(filepath.Join(pkiDir, pki.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	tc.ClientCAs = pool.Pool()
	tc.ClientAuth = tls.RequireAndVerifyClientCert
	creds := credentials.NewTLS(tc)
	return startAgent(t, &creds)
}

func startCluster(t *testing.T, agent *fakeAgent, opts ...func(*apiserver.Config)) *cluster {
	t.Helper()
	dir := t.TempDir()
	if agent == nil {
		// The apiserver keeps a CA it finds in its certificate folder, and
		// by default dials node-agents over mutual TLS with it.
		if _, err := pki.EnsureCA(filepath.Join(dir, "pki")); err != nil {
			t.Fatal(err)
		}
		agent = startTLSAgent(t, filepath.Join(dir, "pki"))
	}
	c := &cluster{t: t, pki: filepath.Join(dir, "pki"), agent: agent, audit: &syncBuffer{}}
	cfg := apiserver.Config{
		Listen: "127.0.0.1:0", DataDir: dir, CompactionInterval: -1, Authenticate: true,
		AuthorizationModes: []string{apiserver.AuthorizationNode, apiserver.AuthorizationRBAC},
		AuditWriter:        c.audit, AuditPolicy: "default=Request",
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
	c.s = s
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	c.admin = c.dial("admin", "admin", "system:masters")
	deadline := time.Now().Add(30 * time.Second)
	for {
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		_, err := client.For[*rbacv1.ClusterRole](c.admin).Get(rctx, "", "view")
		rcancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("apiserver not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.createNode("node-a", agent.addr)
	ctx = ctxT(t)
	if _, err := client.For[*corev1.Namespace](c.admin).Create(ctx, &corev1.Namespace{Metadata: &metav1.ObjectMeta{Name: "team-a"}}); err != nil {
		t.Fatal(err)
	}
	c.createPod("web", "node-a")
	return c
}

// dial connects as user in groups with a client certificate.
func (c *cluster) dial(name, user string, groups ...string) *grpc.ClientConn {
	c.t.Helper()
	crt, err := pki.Issue(c.pki, pki.Certificate{Name: name, CommonName: user, Organizations: groups, Client: true})
	if err != nil {
		c.t.Fatal(err)
	}
	conn, err := client.Dial(client.Config{Server: c.s.Addr(), CAFile: filepath.Join(c.pki, "ca.crt"), CertFile: crt.CertFile, KeyFile: crt.KeyFile})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { conn.Close() })
	return conn
}

// createNode registers a Node whose node-agent is at endpoint (the annotation).
func (c *cluster) createNode(name, endpoint string) {
	c.t.Helper()
	n := &corev1.Node{Metadata: &metav1.ObjectMeta{Name: name, Annotations: map[string]string{nodeproxy.EndpointAnnotation: endpoint}}}
	if _, err := client.For[*corev1.Node](c.admin).Create(ctxT(c.t), n); err != nil {
		c.t.Fatal(err)
	}
}

// createPod creates a pod in team-a bound to node ("" leaves it pending).
func (c *cluster) createPod(name, node string) {
	c.t.Helper()
	p := &corev1.Pod{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: "team-a"},
		Spec:     &corev1.PodSpec{NodeName: node, Containers: []*corev1.Container{{Name: "app", Image: "registry.local/hello:v1"}}},
	}
	if _, err := client.For[*corev1.Pod](c.admin).Create(ctxT(c.t), p); err != nil {
		c.t.Fatal(err)
	}
}

// bindView grants user the ClusterRole view in team-a.
func (c *cluster) bindView(user string) {
	c.t.Helper()
	rb := &rbacv1.RoleBinding{
		Metadata: &metav1.ObjectMeta{Name: user + "-view", Namespace: "team-a"},
		Subjects: []*rbacv1.Subject{{Kind: "User", ApiGroup: "rbac.authorization.k8s.io", Name: user}},
		RoleRef:  &rbacv1.RoleRef{ApiGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "view"},
	}
	if _, err := client.For[*rbacv1.RoleBinding](c.admin).Create(ctxT(c.t), rb); err != nil {
		c.t.Fatal(err)
	}
}

// readLogs calls ContainerLogs and returns everything it streamed.
func readLogs(ctx context.Context, conn grpc.ClientConnInterface, req *corev1.ContainerLogsRequest) (string, error) {
	st, err := corev1.NewNodeAgentServiceClient(conn).ContainerLogs(ctx, req)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return out.String(), nil
		}
		if err != nil {
			return out.String(), err
		}
		out.Write(m.GetData())
	}
}

// eventually retries fn while it fails with PermissionDenied: RBAC reads
// bindings from the watch cache, which follows a write closely but not at once.
func eventually(t *testing.T, fn func() error) error {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := fn()
		if status.Code(err) != codes.PermissionDenied || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func wantCode(t *testing.T, what string, err error, code codes.Code, contains ...string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("%s: got %v, want %s", what, err, code)
	}
	for _, s := range contains {
		if !strings.Contains(status.Convert(err).Message(), s) {
			t.Errorf("%s: message %q does not mention %q", what, status.Convert(err).Message(), s)
		}
	}
}

func TestContainerLogsStreamThroughTheAPIServer(t *testing.T) {
	c := startCluster(t, nil)
	c.bindView("vera")
	vera := c.dial("vera", "vera")
	ctx := ctxT(t)
	tail := int64(5)
	req := &corev1.ContainerLogsRequest{Namespace: "team-a", Pod: "web", Container: "app", TailLines: &tail, Previous: true, LimitBytes: 100}
	var out string
	err := eventually(t, func() error {
		var err error
		out, err = readLogs(ctx, vera, req)
		return err
	})
	if err != nil {
		t.Fatalf("logs as a user with the role view: %v", err)
	}
	if out != "line 1\nline 2\n" {
		t.Errorf("logs = %q, want the node-agent's two lines", out)
	}
	c.agent.mu.Lock()
	got := c.agent.logReqs[len(c.agent.logReqs)-1]
	c.agent.mu.Unlock()
	if got.GetNamespace() != "team-a" || got.GetPod() != "web" || got.GetContainer() != "app" || got.GetTailLines() != 5 || !got.GetPrevious() || got.GetLimitBytes() != 100 {
		t.Errorf("node-agent got %v, want every field of %v", got, req)
	}
	// The node-agent's own errors pass through unchanged.
	_, err = readLogs(ctx, vera, &corev1.ContainerLogsRequest{Namespace: "team-a", Pod: "web", Container: "missing"})
	wantCode(t, "unknown container", err, codes.NotFound, `container "missing" not found`)
	// The call is audited as get pods/log.
	if a := c.audit.String(); !strings.Contains(a, `"user":"vera"`) || !strings.Contains(a, `"subresource":"log"`) {
		t.Errorf("no audit line for vera's get pods/log:\n%s", a)
	}
}

func TestContainerLogsFollowAndCancel(t *testing.T) {
	c := startCluster(t, nil)
	ctx, cancel := context.WithCancel(ctxT(t))
	st, err := corev1.NewNodeAgentServiceClient(c.admin).ContainerLogs(ctx, &corev1.ContainerLogsRequest{Namespace: "team-a", Pod: "web", Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for !strings.Contains(out.String(), "tick 3\n") {
		m, err := st.Recv()
		if err != nil {
			t.Fatalf("follow ended after %q: %v", out.String(), err)
		}
		out.Write(m.GetData())
	}
	if !strings.HasPrefix(out.String(), "line 1\nline 2\ntick 0\ntick 1\ntick 2\n") {
		t.Errorf("followed output %q is not in the node-agent's order", out.String())
	}
	cancel()
	select {
	case <-c.agent.ended:
	case <-time.After(30 * time.Second):
		t.Fatal("cancelling the caller's stream did not end the node-agent's stream")
	}
}

func TestContainerLogsRefusedWithoutPodsLog(t *testing.T) {
	c := startCluster(t, nil)
	// reader may get and list pods in team-a, but not their logs.
	ctx := ctxT(t)
	role := &rbacv1.Role{Metadata: &metav1.ObjectMeta{Name: "pod-reader", Namespace: "team-a"},
		Rules: []*rbacv1.PolicyRule{{Verbs: []string{"get", "list"}, ApiGroups: []string{""}, Resources: []string{"pods"}}}}
	if _, err := client.For[*rbacv1.Role](c.admin).Create(ctx, role); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{Metadata: &metav1.ObjectMeta{Name: "reader", Namespace: "team-a"},
		Subjects: []*rbacv1.Subject{{Kind: "User", ApiGroup: "rbac.authorization.k8s.io", Name: "reader"}},
		RoleRef:  &rbacv1.RoleRef{ApiGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "pod-reader"}}
	if _, err := client.For[*rbacv1.RoleBinding](c.admin).Create(ctx, rb); err != nil {
		t.Fatal(err)
	}
	reader := c.dial("reader", "reader")
	if err := eventually(t, func() error { _, err := client.For[*corev1.Pod](reader).Get(ctx, "team-a", "web"); return err }); err != nil {
		t.Fatalf("reader cannot get the pod: %v", err)
	}
	_, err := readLogs(ctx, reader, &corev1.ContainerLogsRequest{Namespace: "team-a", Pod: "web"})
	wantCode(t, "logs without pods/log", err, codes.PermissionDenied, `user "reader" cannot get Pod log "web"`, `"pods/log"`)
	if n := c.agent.logCalls(); n != 0 {
		t.Errorf("a refused call reached the node-agent (%d calls)", n)
	}
	// Loading images needs create on nodes/images: cluster-admin only.
	up, err := corev1.NewNodeAgentServiceClient(reader).LoadImages(ctx)
	if err == nil {
		_ = up.Send(&corev1.LoadImagesRequest{Node: "node-a", Data: []byte("x")})
		_, err = up.CloseAndRecv()
	}
	wantCode(t, "image load as reader", err, codes.PermissionDenied, `"nodes/images"`)
}

func TestContainerLogsErrors(t *testing.T) {
	c := startCluster(t, nil)
	ctx := ctxT(t)
	// A node whose node-agent is not listening: a port just closed.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := lis.Addr().String()
	lis.Close()
	c.createNode("node-gone", deadAddr)
	c.createPod("lost", "node-gone")
	c.createPod("pending", "")

	_, err = readLogs(ctx, c.admin, &corev1.ContainerLogsRequest{Namespace: "team-a", Pod: "nope"})
	wantCode(t, "unknown pod", err, codes.NotFound, `"nope"`)
	_, err = readLogs(ctx, c.admin, &corev1.ContainerLogsRequest{Namespace: "team-a", Pod: "pending"})
	wantCode(t, "pending pod", err, codes.FailedPrecondition, `pod "pending"`, "not bound to a node")
	_, err = readLogs(ctx, c.admin, &corev1.ContainerLogsRequest{Namespace: "team-a", Pod: "lost"})
	wantCode(t, "unreachable node", err, codes.Unavailable, `node "node-gone"`, deadAddr)
	_, err = readLogs(ctx, c.admin, &corev1.ContainerLogsRequest{Namespace: "team-a"})
	wantCode(t, "no pod named", err, codes.InvalidArgument, "pod: Required value")
}

// upload sends chunks to LoadImages, the node named in the first.
func upload(ctx context.Context, conn grpc.ClientConnInterface, node string, chunks [][]byte) (*corev1.LoadImagesResponse, error) {
	up, err := corev1.NewNodeAgentServiceClient(conn).LoadImages(ctx)
	if err != nil {
		return nil, err
	}
	for i, ch := range chunks {
		m := &corev1.LoadImagesRequest{Data: ch}
		if i == 0 {
			m.Node = node
		}
		if err := up.Send(m); err != nil {
			break
		}
	}
	return up.CloseAndRecv()
}

func TestLoadImagesChunksArriveInOrder(t *testing.T) {
	c := startCluster(t, nil)
	ctx := ctxT(t)
	var chunks [][]byte
	for i := range 20 {
		chunks = append(chunks, bytes.Repeat([]byte{byte('a' + i)}, 64<<10+i))
	}
	resp, err := upload(ctx, c.admin, "node-a", chunks)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetImages()) != 1 || resp.GetImages()[0].GetNames()[0] != "registry.local/hello:v1" || resp.GetImages()[0].GetSizeBytes() != 42 {
		t.Errorf("response %v is not the node-agent's", resp)
	}
	c.agent.mu.Lock()
	got, node := c.agent.uploads[0], c.agent.nodes[0]
	c.agent.mu.Unlock()
	if node != "node-a" {
		t.Errorf("node-agent saw node %q in the first message, want node-a", node)
	}
	if !bytes.Equal(bytes.Join(got, nil), bytes.Join(chunks, nil)) {
		t.Fatalf("node-agent got %d chunks whose bytes differ from the %d sent", len(got), len(chunks))
	}
	if len(got) != len(chunks) {
		t.Errorf("node-agent got %d chunks, want %d", len(got), len(chunks))
	}

	// The upload is audited without its data.
	if a := c.audit.String(); !strings.Contains(a, `"subresource":"images"`) || strings.Contains(a, base64.StdEncoding.EncodeToString(chunks[0][:48])) {
		t.Errorf("want an audit line for create nodes/images without the data:\n%.2000s", a)
	}
	// The node-agent's refusal, even before the upload ends, passes through.
	_, err = upload(ctx, c.admin, "node-a", [][]byte{[]byte("junk"), bytes.Repeat([]byte("x"), 1<<20), []byte("y")})
	wantCode(t, "not a tarball", err, codes.InvalidArgument, "not an OCI image-layout tarball")

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := lis.Addr().String()
	lis.Close()
	c.createNode("node-gone", deadAddr)
	_, err = upload(ctx, c.admin, "node-gone", [][]byte{[]byte("x")})
	wantCode(t, "unreachable node", err, codes.Unavailable, `node "node-gone"`, deadAddr)
	_, err = upload(ctx, c.admin, "no-such-node", [][]byte{[]byte("x")})
	wantCode(t, "unknown node", err, codes.NotFound, `"no-such-node"`)
	_, err = upload(ctx, c.admin, "", [][]byte{[]byte("x")})
	wantCode(t, "no node named", err, codes.InvalidArgument, "node: Required value")
}

func TestNodeAgentTLS(t *testing.T) {
	dir := t.TempDir()
	serving, err := pki.Issue(dir, pki.Certificate{Name: "agent", CommonName: "system:node:node-a", Hosts: []string{"node-a"}, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	// Another node's certificate, valid for the address the Node names.
	impostor, err := pki.Issue(dir, pki.Certificate{Name: "impostor", CommonName: "system:node:node-b", Hosts: []string{"node-b", "127.0.0.1"}, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	apiClient, err := pki.Issue(dir, pki.Certificate{Name: "apiserver-client", CommonName: "bosun-apiserver", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := pki.ReloadingServerConfig(serving.CertFile, serving.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pki.NewCAPool(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	tc.ClientCAs = pool.Pool()
	tc.ClientAuth = tls.RequireAndVerifyClientCert
	creds := credentials.NewTLS(tc)
	agent := startAgent(t, &creds)
	itc, err := pki.ReloadingServerConfig(impostor.CertFile, impostor.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	impostorCreds := credentials.NewTLS(itc)
	impostorAgent := startAgent(t, &impostorCreds)
	withTLS := func(cfg *apiserver.Config) {
		cfg.NodeAgentCAFile, cfg.NodeAgentCertFile, cfg.NodeAgentKeyFile = filepath.Join(dir, "ca.crt"), apiClient.CertFile, apiClient.KeyFile
	}

	t.Run("mutual TLS", func(t *testing.T) {
		c := startCluster(t, agent, withTLS)
		out, err := readLogs(ctxT(t), c.admin, &corev1.ContainerLogsRequest{Namespace: "team-a", Pod: "web"})
		if err != nil || out != "line 1\nline 2\n" {
			t.Fatalf("logs over mutual TLS: %q, %v", out, err)
		}
	})
	t.Run("signed by the cluster signing CA by default", func(t *testing.T) {
		c := startCluster(t, agent, func(cfg *apiserver.Config) {
			cfg.ClusterSigningCertFile, cfg.ClusterSigningKeyFile = filepath.Join(dir, pki.CAFile), filepath.Join(dir, pki.CAKey)
		})
		out, err := readLogs(ctxT(t), c.admin, &corev1.ContainerLogsRequest{Namespace: "team-a", Pod: "web"})
		if err != nil || out != "line 1\nline 2\n" {
			t.Fatalf("logs over mutual TLS with the apiserver's own certificate: %q, %v", out, err)
		}
	})
	t.Run("another node's certificate", func(t *testing.T) {
		c := startCluster(t, impostorAgent, withTLS)
		_, err := readLogs(ctxT(t), c.admin, &corev1.ContainerLogsRequest{Namespace: "team-a", Pod: "web"})
		wantCode(t, "impostor", err, codes.Unavailable, `node "node-a"`)
		impostorAgent.mu.Lock()
		n := len(impostorAgent.logReqs)
		impostorAgent.mu.Unlock()
		if n != 0 {
			t.Errorf("the impostor received %d log requests", n)
		}
	})
	t.Run("a node-agent of another CA", func(t *testing.T) {
		c := startCluster(t, agent)
		_, err := readLogs(ctxT(t), c.admin, &corev1.ContainerLogsRequest{Namespace: "team-a", Pod: "web"})
		wantCode(t, "plaintext", err, codes.Unavailable, `node "node-a"`, agent.addr)
	})
}

func TestNodeAgentTLSBadFlags(t *testing.T) {
	for _, tt := range []struct {
		ca, cert, key string
		want          string
	}{
		{"", "c.crt", "c.key", "need --node-agent-ca-file"},
		{"ca.crt", "c.crt", "", "go together"},
		{filepath.Join(t.TempDir(), "missing.crt"), "", "", "--node-agent-ca-file"},
	} {
		_, err := apiserver.New(ctxT(t), apiserver.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Insecure: true,
			NodeAgentCAFile: tt.ca, NodeAgentCertFile: tt.cert, NodeAgentKeyFile: tt.key})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ca %q cert %q key %q: err %v, want %q", tt.ca, tt.cert, tt.key, err, tt.want)
		}
	}
}

func TestEndpoint(t *testing.T) {
	withStatus := func(ann string, port int32, addrs ...*corev1.NodeAddress) *corev1.Node {
		n := &corev1.Node{Metadata: &metav1.ObjectMeta{Name: "n"}, Status: &corev1.NodeStatus{Addresses: addrs,
			DaemonEndpoints: &corev1.NodeDaemonEndpoints{KubeletEndpoint: &corev1.DaemonEndpoint{Port: port}}}}
		if ann != "" {
			n.Metadata.Annotations = map[string]string{nodeproxy.EndpointAnnotation: ann}
		}
		return n
	}
	internal := &corev1.NodeAddress{Type: "InternalIP", Address: "10.0.0.7"}
	hostname := &corev1.NodeAddress{Type: "Hostname", Address: "worker-1"}
	for _, tt := range []struct {
		name string
		node *corev1.Node
		want string
	}{
		{"annotation wins", withStatus("127.0.0.1:10250", 10250, internal), "127.0.0.1:10250"},
		{"InternalIP and port", withStatus("", 10250, hostname, internal), "10.0.0.7:10250"},
		{"IPv6", withStatus("", 10250, &corev1.NodeAddress{Type: "InternalIP", Address: "fd00::7"}), "[fd00::7]:10250"},
		{"no port", withStatus("", 0, internal), ""},
		{"no InternalIP", withStatus("", 10250, hostname), ""},
	} {
		if got := nodeproxy.Endpoint(tt.node); got != tt.want {
			t.Errorf("%s: Endpoint = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestAddressChangeReachesTheNewNodeAgent(t *testing.T) {
	c := startCluster(t, nil)
	ctx := ctxT(t)
	if _, err := readLogs(ctx, c.admin, &corev1.ContainerLogsRequest{Namespace: "team-a", Pod: "web"}); err != nil {
		t.Fatal(err)
	}
	moved := startTLSAgent(t, c.pki)
	err := client.RetryOnConflict(ctx, client.DefaultRetry, func() error {
		n, err := client.For[*corev1.Node](c.admin).Get(ctx, "", "node-a")
		if err != nil {
			return err
		}
		n.Metadata.Annotations[nodeproxy.EndpointAnnotation] = moved.addr
		_, err = client.For[*corev1.Node](c.admin).Update(ctx, n)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// The watch cache follows the update closely but not at once.
	deadline := time.Now().Add(10 * time.Second)
	for moved.logCalls() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("calls still go to %s after node-a moved to %s", c.agent.addr, moved.addr)
		}
		if _, err := readLogs(ctx, c.admin, &corev1.ContainerLogsRequest{Namespace: "team-a", Pod: "web"}); err != nil {
			t.Fatal(err)
		}
	}
}

// staleObjects is a watch cache that has not seen the pod's binding yet.
type staleObjects struct{ stored map[string]api.Object }

func (staleObjects) Cached(k *api.Kind, namespace, name string) (api.Object, bool) {
	if k.Kind == "Pod" {
		return &corev1.Pod{Metadata: &metav1.ObjectMeta{Name: name, Namespace: namespace}, Spec: &corev1.PodSpec{}}, true
	}
	return nil, false
}

func (s staleObjects) Get(_ context.Context, k *api.Kind, namespace, name string) (api.Object, error) {
	if o, ok := s.stored[k.Kind+"/"+namespace+"/"+name]; ok {
		return o, nil
	}
	return nil, apierrors.NotFound(k.Kind, namespace, name)
}

func TestRoutesByStorageWhenTheCacheLags(t *testing.T) {
	agent := startAgent(t, nil)
	p := nodeproxy.New(nodeproxy.Config{Objects: staleObjects{stored: map[string]api.Object{
		"Pod/team-a/web":     &corev1.Pod{Metadata: &metav1.ObjectMeta{Name: "web", Namespace: "team-a"}, Spec: &corev1.PodSpec{NodeName: "node-a"}},
		"Pod/team-a/pending": &corev1.Pod{Metadata: &metav1.ObjectMeta{Name: "pending", Namespace: "team-a"}, Spec: &corev1.PodSpec{}},
		"Node//node-a":       &corev1.Node{Metadata: &metav1.ObjectMeta{Name: "node-a", Annotations: map[string]string{nodeproxy.EndpointAnnotation: agent.addr}}},
	}}})
	defer p.Close()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	p.Register(s)
	go func() { _ = s.Serve(lis) }()
	defer s.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	out, err := readLogs(ctxT(t), conn, &corev1.ContainerLogsRequest{Namespace: "team-a", Pod: "web"})
	if err != nil || out != "line 1\nline 2\n" {
		t.Fatalf("logs of a pod the cache shows unbound but storage shows bound: %q, %v", out, err)
	}
	_, err = readLogs(ctxT(t), conn, &corev1.ContainerLogsRequest{Namespace: "team-a", Pod: "pending"})
	wantCode(t, "pod unbound in both", err, codes.FailedPrecondition, `pod "pending"`)
	_, err = readLogs(ctxT(t), conn, &corev1.ContainerLogsRequest{Namespace: "team-a", Pod: "gone"})
	wantCode(t, "pod deleted from storage", err, codes.NotFound, `"gone"`)
}
