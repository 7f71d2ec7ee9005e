package cli

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
)

// fakeNodeAgent answers ContainerLogs with canned output and records the
// request.
type fakeNodeAgent struct {
	corev1.UnimplementedNodeAgentServiceServer
	got chan *corev1.ContainerLogsRequest
}

func (f *fakeNodeAgent) ContainerLogs(r *corev1.ContainerLogsRequest, st grpc.ServerStreamingServer[corev1.ContainerLogsResponse]) error {
	f.got <- r
	if r.GetContainer() == "missing" {
		return status.Error(codes.NotFound, `pod web has no container "missing"`)
	}
	for _, s := range []string{"line 1\n", "line 2\n"} {
		if err := st.Send(&corev1.ContainerLogsResponse{Data: []byte(s)}); err != nil {
			return err
		}
	}
	return nil
}

type logsPods struct {
	corev1.UnimplementedPodServiceServer
}

func (logsPods) GetPod(_ context.Context, r *corev1.GetPodRequest) (*corev1.GetPodResponse, error) {
	return &corev1.GetPodResponse{Pod: &corev1.Pod{Metadata: &metav1.ObjectMeta{Name: r.GetName(), Namespace: r.GetNamespace()},
		Spec: &corev1.PodSpec{NodeName: "n1"}}}, nil
}

type logsNodes struct {
	corev1.UnimplementedNodeServiceServer
	port int32
}

func (n logsNodes) GetNode(_ context.Context, r *corev1.GetNodeRequest) (*corev1.GetNodeResponse, error) {
	return &corev1.GetNodeResponse{Node: &corev1.Node{Metadata: &metav1.ObjectMeta{Name: r.GetName()}, Status: &corev1.NodeStatus{
		Addresses:       []*corev1.NodeAddress{{Type: "InternalIP", Address: "127.0.0.1"}},
		DaemonEndpoints: &corev1.NodeDaemonEndpoints{KubeletEndpoint: &corev1.DaemonEndpoint{Port: n.port}},
	}}}, nil
}

func serveGRPC(t *testing.T, register func(*grpc.Server)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	register(s)
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return l.Addr().String()
}

func runLogs(t *testing.T, server string, args ...string) runResult {
	t.Helper()
	var out, errOut strings.Builder
	deps := Deps{
		Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut,
		Dial:    func(cfg client.Config) (Conn, error) { return client.Dial(cfg) },
		Getenv:  func(string) string { return "" },
		HomeDir: func() (string, error) { return t.TempDir(), nil },
		Now:     time.Now,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := Run(ctx, append([]string{"--server", server, "--insecure", "-n", "team"}, args...), deps)
	return runResult{code, out.String(), errOut.String()}
}

// The apiserver proxies NodeAgentService: logs go through it, flags map
// onto the request.
func TestLogsThroughTheAPIServer(t *testing.T) {
	agent := &fakeNodeAgent{got: make(chan *corev1.ContainerLogsRequest, 1)}
	addr := serveGRPC(t, func(s *grpc.Server) { corev1.RegisterNodeAgentServiceServer(s, agent) })
	r := runLogs(t, addr, "logs", "-f", "--tail", "5", "-c", "app", "-p", "web")
	if r.code != 0 || r.stdout != "line 1\nline 2\n" {
		t.Fatalf("code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	req := <-agent.got
	if req.GetNamespace() != "team" || req.GetPod() != "web" || req.GetContainer() != "app" || !req.GetFollow() ||
		req.GetTailLines() != 5 || !req.GetPrevious() || req.TailLines == nil {
		t.Errorf("request %v", req)
	}
	r = runLogs(t, addr, "logs", "-c", "missing", "web")
	if r.code == 0 || !strings.Contains(r.stderr, `no container "missing"`) {
		t.Errorf("missing container: code %d stderr %q", r.code, r.stderr)
	}
	if r := runLogs(t, addr, "logs"); r.code == 0 {
		t.Error("logs without a pod succeeded")
	}
}

// An apiserver that does not proxy NodeAgentService is reported as such;
// the CLI never goes around it to the node-agent, whose address the Node
// publishes, since that would skip the apiserver's authorization.
func TestLogsAndImageLoadNeedTheProxy(t *testing.T) {
	agent := &fakeNodeAgent{got: make(chan *corev1.ContainerLogsRequest, 1)}
	agentAddr := serveGRPC(t, func(s *grpc.Server) { corev1.RegisterNodeAgentServiceServer(s, agent) })
	_, p, _ := net.SplitHostPort(agentAddr)
	port, _ := strconv.Atoi(p)
	api := serveGRPC(t, func(s *grpc.Server) {
		corev1.RegisterPodServiceServer(s, logsPods{})
		corev1.RegisterNodeServiceServer(s, logsNodes{port: int32(port)})
	})
	r := runLogs(t, api, "logs", "web")
	if r.code == 0 || !strings.Contains(r.stderr, "does not proxy bosun.core.v1.NodeAgentService") {
		t.Errorf("logs: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	tarball := t.TempDir() + "/good.tar"
	os.WriteFile(tarball, []byte("TARBALL"), 0o644)
	r = runLogs(t, api, "image", "load", "--node", "n1", tarball)
	if r.code == 0 || !strings.Contains(r.stderr, "does not proxy bosun.core.v1.NodeAgentService") {
		t.Errorf("image load: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	select {
	case req := <-agent.got:
		t.Errorf("the node-agent was called directly: %v", req)
	default:
	}
}

func (f *fakeNodeAgent) LoadImages(st grpc.ClientStreamingServer[corev1.LoadImagesRequest, corev1.LoadImagesResponse]) error {
	var node string
	var data []byte
	for {
		m, err := st.Recv()
		if err != nil {
			break
		}
		if m.GetNode() != "" {
			node = m.GetNode()
		}
		data = append(data, m.GetData()...)
	}
	if string(data) != "TARBALL" {
		return status.Errorf(codes.InvalidArgument, "loading images: not a tarball (%d bytes)", len(data))
	}
	return st.SendAndClose(&corev1.LoadImagesResponse{Images: []*corev1.ContainerImage{{Names: []string{"r.local/app:v1@" + node}, SizeBytes: 7}}})
}

func TestImageLoad(t *testing.T) {
	agent := &fakeNodeAgent{got: make(chan *corev1.ContainerLogsRequest, 1)}
	addr := serveGRPC(t, func(s *grpc.Server) { corev1.RegisterNodeAgentServiceServer(s, agent) })
	dir := t.TempDir()
	good, bad := dir+"/good.tar", dir+"/bad.tar"
	os.WriteFile(good, []byte("TARBALL"), 0o644)
	os.WriteFile(bad, []byte("junk"), 0o644)
	r := runLogs(t, addr, "image", "load", "--node", "n1", good)
	if r.code != 0 || r.stdout != "Loaded image r.local/app:v1@n1 (7 bytes) on node n1\n" {
		t.Errorf("code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := runLogs(t, addr, "image", "load", "--node", "n1", bad); r.code == 0 || !strings.Contains(r.stderr, "bad.tar") || !strings.Contains(r.stderr, "not a tarball") {
		t.Errorf("bad tarball: code %d stderr %q", r.code, r.stderr)
	}
	if r := runLogs(t, addr, "image", "load", good); r.code == 0 || !strings.Contains(r.stderr, "--node is required") {
		t.Errorf("no node: code %d stderr %q", r.code, r.stderr)
	}
	if r := runLogs(t, addr, "image", "load", "--node", "n1", dir+"/missing.tar"); r.code == 0 || !strings.Contains(r.stderr, "missing.tar") {
		t.Errorf("missing file: code %d stderr %q", r.code, r.stderr)
	}
}
