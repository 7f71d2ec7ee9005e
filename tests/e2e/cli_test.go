package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	"bosun.dev/pkg/manifest"
)

// cluster is a running apiserver process and a CLI configured for it.
type cluster struct {
	t       *testing.T
	dataDir string
	grpc    string
	http    string
	config  string
	cmd     *exec.Cmd
	logs    *bytes.Buffer
}

func startCluster(t *testing.T, dataDir string) *cluster {
	t.Helper()
	c := &cluster{t: t, dataDir: dataDir, grpc: freePort(t), http: freePort(t), logs: &bytes.Buffer{}}
	c.cmd = exec.Command(filepath.Join(bin, "apiserver"), "--data-dir", dataDir,
		"--listen", c.grpc, "--http-listen", c.http, "--log-level", "warn")
	c.cmd.Stdout, c.cmd.Stderr = c.logs, c.logs
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
	})
	c.config = filepath.Join(t.TempDir(), "config")
	config := "server: " + c.grpc + "\nca: " + c.ca() + "\ncert: " + c.pki("admin.crt") + "\nkey: " + c.pki("admin.key") + "\n"
	if err := os.WriteFile(c.config, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, _, err := c.bosun("get", "ns"); err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("apiserver not ready; its log:\n%s", c.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *cluster) ca() string { return c.pki("ca.crt") }

// pki names a file the apiserver generated in its data dir: the CA, and the
// admin client certificate (group system:masters) it makes with
// authentication on.
func (c *cluster) pki(name string) string { return filepath.Join(c.dataDir, "pki", name) }

// tlsConfig trusts the cluster CA and presents the admin certificate.
func (c *cluster) tlsConfig(t *testing.T) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(c.ca())
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(pem)
	admin, err := tls.LoadX509KeyPair(c.pki("admin.crt"), c.pki("admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{admin}}
}

// stop sends SIGTERM and requires a clean exit.
func (c *cluster) stop() {
	c.t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			c.t.Fatalf("apiserver exited with %v after SIGTERM; log:\n%s", err, c.logs)
		}
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		c.t.Fatal("apiserver did not stop within 30s of SIGTERM")
	}
}

// bosun runs the CLI with the cluster's config and returns stdout, stderr and
// the error from a non-zero exit.
func (c *cluster) bosun(args ...string) (string, string, error) {
	return c.bosunIn("", args...)
}

func (c *cluster) bosunIn(stdin string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "bosun"), args...)
	cmd.Env = append(os.Environ(), "BOSUN_CONFIG="+c.config, "HOME="+c.t.TempDir())
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

const demo = `apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
  namespace: demo
spec:
  replicas: 3
  selector:
    matchLabels: {app: hello}
  strategy:
    rollingUpdate: {maxSurge: 25%, maxUnavailable: 0}
  template:
    metadata:
      labels: {app: hello}
    spec:
      containers:
      - name: hello
        image: registry.local/hello:v1
        ports: [{name: http, containerPort: 5000}]
        resources:
          requests: {cpu: 100m, memory: 64Mi}
          limits: {cpu: 1, memory: 128Mi}
        readinessProbe:
          httpGet: {path: /healthz, port: http}
---
apiVersion: v1
kind: Service
metadata:
  name: hello
  namespace: demo
spec:
  selector: {app: hello}
  ports: [{name: http, port: 5000, targetPort: http}]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: greeting
  namespace: demo
data:
  message: hello
`

// The walk-through: the apiserver alone on a data dir serves over
// TLS; apply of a multi-document manifest, get -o yaml with the server's
// fields, output that applies back unchanged, field-level errors, gRPC
// reflection and the REST gateway; and the state survives a restart.
func TestApplyGetReflectionGatewayAndRestart(t *testing.T) {
	c := startCluster(t, t.TempDir())

	out, stderr, err := c.bosunIn(demo, "apply", "-f", "-")
	if err != nil {
		t.Fatalf("apply: %v\n%s%s", err, out, stderr)
	}
	for _, want := range []string{"namespace/demo created", "deployment.apps/hello created", "service/hello created", "configmap/greeting created"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}

	yamlOut, stderr, err := c.bosun("get", "deploy", "hello", "-n", "demo", "-o", "yaml")
	if err != nil {
		t.Fatalf("get -o yaml: %v %s", err, stderr)
	}
	objs, err := manifest.Decode([]byte(yamlOut))
	if err != nil || len(objs) != 1 {
		t.Fatalf("get -o yaml is not a manifest: %v\n%s", err, yamlOut)
	}
	d := objs[0].(*appsv1.Deployment)
	m := d.GetMetadata()
	if m.GetUid() == "" || m.GetResourceVersion() == "" || m.GetCreationTimestamp() == nil {
		t.Fatalf("server fields missing from get -o yaml:\n%s", yamlOut)
	}
	if d.GetSpec().GetStrategy().GetRollingUpdate().GetMaxSurge().GetStrVal() != "25%" {
		t.Fatalf("maxSurge did not survive the round trip:\n%s", yamlOut)
	}
	out, stderr, err = c.bosunIn(yamlOut, "apply", "-f", "-")
	if err != nil || !strings.Contains(out, "deployment.apps/hello unchanged") {
		t.Fatalf("get -o yaml output should apply back unchanged: %v %s %s", err, out, stderr)
	}

	table, _, err := c.bosun("get", "deploy,svc,cm", "-n", "demo")
	if err != nil || !strings.Contains(table, "hello") || !strings.Contains(table, "greeting") {
		t.Fatalf("get table: %v\n%s", err, table)
	}

	bad := strings.Replace(demo[strings.Index(demo, "apiVersion: apps/v1"):strings.Index(demo, "---\napiVersion: v1\nkind: Service")],
		"        image: registry.local/hello:v1\n", "", 1)
	bad = strings.Replace(bad, "name: hello\n  namespace", "name: bad\n  namespace", 1)
	_, stderr, err = c.bosunIn(bad, "apply", "-f", "-")
	if err == nil {
		t.Fatal("apply of a deployment without an image succeeded")
	}
	if want := `Deployment "bad" is invalid: spec.template.spec.containers[0].image: Required value`; !strings.Contains(stderr, want) {
		t.Fatalf("error should name the field: want %q in\n%s", want, stderr)
	}
	if _, _, err := c.bosun("get", "deploy", "bad", "-n", "demo"); err == nil {
		t.Fatal("the refused deployment was stored")
	}
	_, stderr, err = c.bosunIn(strings.Replace(demo, "replicas: 3", "replicas: 3\n  replica: 4", 1), "apply", "-f", "-")
	if err == nil || !strings.Contains(stderr, "spec.replica: unknown field") {
		t.Fatalf("unknown field: want an error naming spec.replica, got %v\n%s", err, stderr)
	}

	// gRPC reflection lists the API services.
	services := reflectServices(t, c)
	for _, want := range []string{"bosun.core.v1.PodService", "bosun.apps.v1.DeploymentService", "grpc.health.v1.Health"} {
		if !strings.Contains(services, want) {
			t.Errorf("reflection does not list %s: %s", want, services)
		}
	}

	// The REST gateway answers a GET, over the same TLS.
	body := httpsGet(t, c, "/apis/apps/v1/namespaces/demo/deployments/hello")
	var got struct {
		Deployment struct {
			Metadata struct{ Name, UID string } `json:"metadata"`
		} `json:"deployment"`
	}
	if err := json.Unmarshal(body, &got); err != nil || got.Deployment.Metadata.Name != "hello" || got.Deployment.Metadata.UID != m.GetUid() {
		t.Fatalf("REST GET: %v\n%s", err, body)
	}

	// A restart on the same data directory keeps everything.
	c.stop()
	c2 := startCluster(t, c.dataDir)
	again, _, err := c2.bosun("get", "deploy", "hello", "-n", "demo", "-o", "yaml")
	if err != nil || again != yamlOut {
		t.Fatalf("after restart get -o yaml differs (%v):\n%s\nwant\n%s", err, again, yamlOut)
	}
	c2.stop()
}

func reflectServices(t *testing.T, c *cluster) string {
	t.Helper()
	conn, err := grpc.NewClient(c.grpc, grpc.WithTransportCredentials(credentials.NewTLS(c.tlsConfig(t))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := rpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{ListServices: ""}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	return strings.Join(names, " ")
}

func httpsGet(t *testing.T, c *cluster, path string) []byte {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: c.tlsConfig(t)}}
	resp, err := hc.Get("https://" + c.http + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", path, resp.Status, body)
	}
	return body
}
