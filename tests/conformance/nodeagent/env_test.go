package nodeagent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/pki"
	"bosun.dev/tests/conformance/harness"
	"bosun.dev/tests/multinode"
)

const (
	// namespace holds every pod a case creates.
	namespace = "default"
	// appPort is where the pod image's app serves HTTP; sidePort is where
	// a second container of the same pod serves it.
	appPort  = 8080
	sidePort = 8081
	// waitFor bounds every wait for the implementation to act: an image
	// pull, a start, a restart after back-off, a probe period.
	waitFor = 60 * time.Second
)

// suite is the cluster, the runtime, the node and the agent under test.
type suite struct {
	ctx        context.Context
	cluster    *harness.Cluster
	runtime    *multinode.Cluster
	node       *multinode.Node
	agent      *multinode.Process
	nodes      *client.Resource[*corev1.Node]
	pods       *client.Resource[*corev1.Pod]
	configMaps *client.Resource[*corev1.ConfigMap]
	secrets    *client.Resource[*corev1.Secret]
	http       *http.Client
}

func newSuite(t *testing.T, c *harness.Cluster, rt *multinode.Cluster, node *multinode.Node) *suite {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &suite{
		ctx: ctx, cluster: c, runtime: rt, node: node,
		nodes: client.For[*corev1.Node](c.Admin), pods: client.For[*corev1.Pod](c.Admin),
		configMaps: client.For[*corev1.ConfigMap](c.Admin), secrets: client.For[*corev1.Secret](c.Admin),
		// A fresh connection per request: a pod that stopped answering
		// must not hide behind a kept-alive one.
		http: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
}

// credentials are the connection flags for the node's user
// system:node:NAME in the group system:nodes, or --insecure.
func (s *suite) credentials(t *testing.T) []string {
	t.Helper()
	args := []string{"--apiserver", s.cluster.Addr}
	if !s.cluster.Secure {
		return append(args, "--insecure")
	}
	// The node's certificate also serves its listener, under the node's
	// name, as `bosun certs init` and the apiserver issue them.
	issued, err := pki.Issue(s.cluster.PKI, pki.Certificate{
		Name: "node-" + s.node.Name, CommonName: "system:node:" + s.node.Name,
		Organizations: []string{"system:nodes"}, Client: true, Hosts: []string{s.node.Name},
	})
	if err != nil {
		t.Fatalf("issuing the node's certificate: %v", err)
	}
	ca := filepath.Join(s.cluster.PKI, pki.CAFile)
	return append(args, "--apiserver-ca-file", ca,
		"--client-cert-file", issued.CertFile, "--client-key-file", issued.KeyFile,
		"--tls-cert-file", issued.CertFile, "--tls-private-key-file", issued.KeyFile, "--client-ca-file", ca)
}

// dialAgent connects to the agent's listener as the health-checker does:
// mutual TLS verifying the node's name, or plaintext when insecure.
func (s *suite) dialAgent(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	creds := insecure.NewCredentials()
	if s.cluster.Secure {
		tc, err := pki.ReloadingClientConfig(s.cluster.AdminFiles())
		if err != nil {
			t.Fatal(err)
		}
		tc.ServerName = s.node.Name
		creds = credentials.NewTLS(tc)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// startAgent runs the implementation with the connection flags, --listen
// on a free loopback port and args, and waits until it reports SERVING on
// gRPC health there. When the test ends, after the pods are removed, it is
// stopped with SIGTERM; the test fails if it exited on its own before.
func (s *suite) startAgent(t *testing.T, binary string, args []string) {
	t.Helper()
	listen := harness.FreePort(t)
	all := append(append(s.credentials(t), "--listen", listen), args...)
	s.agent = multinode.StartProcess(t, "node-agent", exec.Command(binary, all...))
	t.Cleanup(func() {
		if s.agent.Exited() {
			t.Errorf("the node-agent exited during the test")
		}
		s.agent.Stop()
	})
	conn := s.dialAgent(t, listen)
	defer conn.Close()
	start := time.Now()
	harness.WaitServing(t, conn, "node-agent serving gRPC health on --listen "+listen, func() {
		if s.agent.Exited() {
			t.Fatalf("the node-agent exited before serving:\n%s", s.agent.Tail(32<<10))
		}
	})
	t.Logf("node-agent SERVING %s after start", since(start))
	t.Cleanup(func() { s.removePods(t) })
}

// removePods deletes every pod left in the namespace and waits until the
// agent has removed those bound to its node, so that their containers and
// network are gone before it stops.
func (s *suite) removePods(t *testing.T) {
	all, _, err := s.pods.ListAll(s.ctx, client.ListOptions{Namespace: namespace})
	if err != nil {
		t.Errorf("listing the pods left: %v", err)
		return
	}
	for _, p := range all {
		_, err := s.pods.Delete(s.ctx, namespace, p.GetMetadata().GetName(), client.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting pod %s: %v", p.GetMetadata().GetName(), err)
		}
	}
	deadline := time.Now().Add(waitFor)
	for {
		left, _, err := s.pods.ListAll(s.ctx, client.ListOptions{Namespace: namespace, FieldSelector: "spec.nodeName=" + s.node.Name})
		if err == nil && len(left) == 0 {
			return
		}
		if time.Now().After(deadline) || s.agent.Exited() {
			t.Errorf("pods of node %s not removed by its agent after deletion: %d left (%v)", s.node.Name, len(left), err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// eventually polls f until it returns nil, failing the test after waitFor
// or as soon as the agent exits.
func (s *suite) eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	harness.Eventually(t, waitFor, what, func() error {
		if s.agent.Exited() {
			t.Fatalf("the node-agent exited (while waiting for %s)", what)
		}
		return f()
	})
}

// podOpt shapes a pod a case creates.
type podOpt func(*corev1.Pod)

func withArgs(a ...string) podOpt { return func(p *corev1.Pod) { p.Spec.Containers[0].Args = a } }

func restartPolicy(policy string) podOpt {
	return func(p *corev1.Pod) { p.Spec.RestartPolicy = policy }
}

func image(ref string) podOpt { return func(p *corev1.Pod) { p.Spec.Containers[0].Image = ref } }

func onNode(node string) podOpt { return func(p *corev1.Pod) { p.Spec.NodeName = node } }

func env(vars ...*corev1.EnvVar) podOpt {
	return func(p *corev1.Pod) { p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, vars...) }
}

func envFrom(sources ...*corev1.EnvFromSource) podOpt {
	return func(p *corev1.Pod) { p.Spec.Containers[0].EnvFrom = append(p.Spec.Containers[0].EnvFrom, sources...) }
}

// sidecar adds a second container, name, running the app on port with a
// readiness probe on its /ready, every second.
func sidecar(name string, port int32) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, &corev1.Container{
			Name: name, Image: p.Spec.Containers[0].Image, Args: []string{"serve", fmt.Sprint(port)},
			Ports: []*corev1.ContainerPort{{ContainerPort: port, Protocol: "TCP"}},
			ReadinessProbe: &corev1.Probe{
				HttpGet:       &corev1.HTTPGetAction{Path: "/ready", Port: &metav1.IntOrString{IntVal: port}},
				PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 1,
			},
		})
	}
}

// pod creates a pod bound to the node under test, as the scheduler would
// leave it: one container "app" running the suite's image (the app serving
// HTTP on appPort unless args say otherwise). It is deleted when the case
// ends.
func (s *suite) pod(t *testing.T, name string, opts ...podOpt) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: &corev1.PodSpec{
			NodeName: s.node.Name,
			Containers: []*corev1.Container{{
				Name: "app", Image: s.runtime.Image,
				Ports: []*corev1.ContainerPort{{ContainerPort: appPort, Protocol: "TCP"}},
			}},
			TerminationGracePeriodSeconds: proto.Int64(5),
		},
	}
	for _, o := range opts {
		o(p)
	}
	created, err := s.pods.Create(s.ctx, p)
	if err != nil {
		t.Fatalf("creating pod %s: %v", name, err)
	}
	t.Cleanup(func() {
		var grace *int64
		if created.GetSpec().GetNodeName() != s.node.Name {
			grace = proto.Int64(0) // no agent will finish it
		}
		_, err := s.pods.Delete(s.ctx, namespace, name, client.DeleteOptions{GracePeriodSeconds: grace})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting pod %s: %v", name, err)
		}
	})
	return created
}

func (s *suite) get(t *testing.T, name string) *corev1.Pod {
	t.Helper()
	p, err := s.pods.Get(s.ctx, namespace, name)
	if err != nil {
		t.Fatalf("reading pod %s: %v", name, err)
	}
	return p
}

// waitPod polls pod name until check passes and returns it.
func (s *suite) waitPod(t *testing.T, name, what string, check func(*corev1.Pod) error) *corev1.Pod {
	t.Helper()
	var p *corev1.Pod
	s.eventually(t, "pod "+name+" "+what, func() error {
		var err error
		if p, err = s.pods.Get(s.ctx, namespace, name); err != nil {
			return err
		}
		if err := check(p); err != nil {
			return fmt.Errorf("%w; status %s", err, brief(p))
		}
		return nil
	})
	return p
}

// brief renders a pod's status for error messages.
func brief(p *corev1.Pod) string {
	st := p.GetStatus()
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%q reason=%q podIP=%q", st.GetPhase(), st.GetReason(), st.GetPodIp())
	for _, c := range st.GetConditions() {
		fmt.Fprintf(&b, " %s=%s", c.GetType(), c.GetStatus())
	}
	for _, c := range st.GetContainerStatuses() {
		fmt.Fprintf(&b, " [%s ready=%v started=%v restarts=%d state=%s last=%s]", c.GetName(), c.GetReady(),
			c.GetStarted(), c.GetRestartCount(), state(c.GetState()), state(c.GetLastState()))
	}
	return b.String()
}

func state(s *corev1.ContainerState) string {
	switch {
	case s.GetRunning() != nil:
		return "running"
	case s.GetTerminated() != nil:
		return fmt.Sprintf("terminated(%d,%s)", s.GetTerminated().GetExitCode(), s.GetTerminated().GetReason())
	case s.GetWaiting() != nil:
		return fmt.Sprintf("waiting(%s)", s.GetWaiting().GetReason())
	}
	return "none"
}

func condition(p *corev1.Pod, typ string) string {
	for _, c := range p.GetStatus().GetConditions() {
		if c.GetType() == typ {
			return c.GetStatus()
		}
	}
	return ""
}

// container is the status of the pod's container "app", nil without one.
func container(p *corev1.Pod) *corev1.ContainerStatus { return containerNamed(p, "app") }

func containerNamed(p *corev1.Pod, name string) *corev1.ContainerStatus {
	for _, c := range p.GetStatus().GetContainerStatuses() {
		if c.GetName() == name {
			return c
		}
	}
	return nil
}

// runningAndReady is a pod whose container runs and is ready.
func runningAndReady(p *corev1.Pod) error {
	c := container(p)
	switch {
	case p.GetStatus().GetPhase() != "Running":
		return fmt.Errorf("not Running")
	case c.GetState().GetRunning() == nil || !c.GetReady():
		return fmt.Errorf("container not running and ready")
	case condition(p, "Ready") != "True":
		return fmt.Errorf("not Ready")
	}
	return nil
}

// hello is what the app answers on /.
type hello struct {
	Hostname string `json:"hostname"`
	Instance string `json:"instance"`
}

// call sends an HTTP request to the app at target (an IP, for appPort, or
// IP:PORT) and decodes its JSON answer into out (when not nil).
func (s *suite) call(method, target, path string, out any) error {
	if _, _, err := net.SplitHostPort(target); err != nil {
		target = net.JoinHostPort(target, fmt.Sprint(appPort))
	}
	req, err := http.NewRequestWithContext(s.ctx, method, "http://"+target+path, nil)
	if err != nil {
		return err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(body)))
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}

// hello waits until the app at target answers on / and returns the answer.
func (s *suite) hello(t *testing.T, target string) hello {
	t.Helper()
	var h hello
	s.eventually(t, "an answer from "+target, func() error { return s.call(http.MethodGet, target, "/", &h) })
	return h
}

// post sends a command to the app at target, failing the test if it is
// refused.
func (s *suite) post(t *testing.T, target, path string) {
	t.Helper()
	if err := s.call(http.MethodPost, target, path, nil); err != nil {
		t.Fatalf("POST %s to %s: %v", path, target, err)
	}
}
