package nodeapi_test

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/pki"
	"bosun.dev/pkg/server"
	"bosun.dev/services/node-agent/internal/nodeapi"
)

// serve starts a NodeAgentService with no backend yet: a caller that passes
// authorization gets UNAVAILABLE ("starting"), one that does not gets its
// refusal, which tells the two apart without a runtime.
func serve(t *testing.T, opts []grpc.ServerOption, callers ...string) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(opts...)
	nodeapi.Register(g).Callers = callers
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	return lis.Addr().String()
}

func call(t *testing.T, addr string, creds credentials.TransportCredentials) (logsErr, loadErr error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := corev1.NewNodeAgentServiceClient(conn)
	if s, err := c.ContainerLogs(ctx, &corev1.ContainerLogsRequest{Namespace: "default", Pod: "web"}); err != nil {
		logsErr = err
	} else {
		_, logsErr = s.Recv()
	}
	if s, err := c.LoadImages(ctx); err != nil {
		loadErr = err
	} else {
		_ = s.Send(&corev1.LoadImagesRequest{Node: "n1"})
		_, loadErr = s.CloseAndRecv()
	}
	return logsErr, loadErr
}

func TestOnlyTheAPIServerMayCallTheNodeAgent(t *testing.T) {
	dir := t.TempDir()
	issue := func(name, cn string, hosts ...string) pki.Issued {
		i, err := pki.Issue(dir, pki.Certificate{Name: name, CommonName: cn, Client: true, Hosts: hosts})
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	serving := issue("node", "system:node:n1", "n1")
	apiserver := issue("apiserver", "bosun-apiserver")
	viewer := issue("viewer", "jane")
	ca := filepath.Join(dir, pki.CAFile)
	tc, err := server.TLSFlags{CertFile: serving.CertFile, KeyFile: serving.KeyFile, ClientCAFile: ca}.Config()
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, []grpc.ServerOption{grpc.Creds(credentials.NewTLS(tc))}, "bosun-apiserver")
	as := func(c pki.Issued) credentials.TransportCredentials {
		ctc, err := pki.ReloadingClientConfig(ca, c.CertFile, c.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		ctc.ServerName = "n1"
		return credentials.NewTLS(ctc)
	}

	logsErr, loadErr := call(t, addr, as(apiserver))
	for what, err := range map[string]error{"logs": logsErr, "load": loadErr} {
		if status.Code(err) != codes.Unavailable {
			t.Errorf("the apiserver's %s: %v, want to pass authorization (UNAVAILABLE while starting)", what, err)
		}
	}
	logsErr, loadErr = call(t, addr, as(viewer))
	for what, err := range map[string]error{"logs": logsErr, "load": loadErr} {
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), `user "jane"`) {
			t.Errorf("a viewer's %s: %v, want PERMISSION_DENIED naming the user", what, err)
		}
	}

	// Plaintext (--insecure) has no identity to check.
	plain := serve(t, nil, "bosun-apiserver")
	logsErr, _ = call(t, plain, insecure.NewCredentials())
	if status.Code(logsErr) != codes.Unavailable {
		t.Errorf("plaintext logs: %v, want UNAVAILABLE while starting", logsErr)
	}
}
