package probes_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/services/node-agent/internal/probes"
	"bosun.dev/services/node-agent/internal/runtime"
)

type execer struct{ code atomic.Int32 }

func (e *execer) Exec(context.Context, string, []string, time.Duration) (runtime.ExecResult, error) {
	return runtime.ExecResult{ExitCode: e.code.Load(), Output: []byte("out")}, nil
}

func hostPort(t *testing.T, url string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

func TestCheck(t *testing.T) {
	var status atomic.Int32
	status.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || r.Header.Get("X-Probe") != "yes" {
			http.Error(w, "wrong request", http.StatusBadRequest)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	host, port := hostPort(t, srv.URL)
	target := probes.Target{ContainerID: "c", PodIP: host, Ports: []*corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}
	httpProbe := &corev1.Probe{HttpGet: &corev1.HTTPGetAction{Path: "healthz", Port: &metav1.IntOrString{StrVal: "http"},
		HttpHeaders: []*corev1.HTTPHeader{{Name: "X-Probe", Value: "yes"}}}, TimeoutSeconds: 1}
	ex := &execer{}
	ctx := context.Background()
	if ok, msg := probes.Check(ctx, ex, httpProbe, target); !ok {
		t.Errorf("http 200: %s", msg)
	}
	status.Store(503)
	if ok, msg := probes.Check(ctx, ex, httpProbe, target); ok || !strings.Contains(msg, "answered 503") {
		t.Errorf("http 503: %v %q", ok, msg)
	}
	bad := &corev1.Probe{HttpGet: &corev1.HTTPGetAction{Port: &metav1.IntOrString{StrVal: "metrics"}}}
	if ok, msg := probes.Check(ctx, ex, bad, target); ok || !strings.Contains(msg, `"metrics" is not a named port`) {
		t.Errorf("unknown named port: %v %q", ok, msg)
	}
	tcp := &corev1.Probe{TcpSocket: &corev1.TCPSocketAction{Port: &metav1.IntOrString{IntVal: int32(port)}}}
	if ok, msg := probes.Check(ctx, ex, tcp, target); !ok {
		t.Errorf("tcp open: %s", msg)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	tcp.TcpSocket.Port = &metav1.IntOrString{IntVal: int32(closedPort)}
	if ok, _ := probes.Check(ctx, ex, tcp, target); ok {
		t.Error("tcp probe of a closed port succeeded")
	}
	execProbe := &corev1.Probe{Exec: &corev1.ExecAction{Command: []string{"check"}}}
	if ok, _ := probes.Check(ctx, ex, execProbe, target); !ok {
		t.Error("exec exit 0 failed")
	}
	ex.code.Store(2)
	if ok, msg := probes.Check(ctx, ex, execProbe, target); ok || !strings.Contains(msg, "exited with 2") {
		t.Errorf("exec exit 2: %v %q", ok, msg)
	}
}

func TestManagerThresholds(t *testing.T) {
	ex := &execer{}
	changes := make(chan string, 10)
	m := probes.NewManager(ex, nil, func(uid string) { changes <- uid })
	p := &corev1.Probe{Exec: &corev1.ExecAction{Command: []string{"x"}}, PeriodSeconds: 1, FailureThreshold: 2, SuccessThreshold: 1}
	m.Ensure("pod", probes.Readiness, p, probes.Target{ContainerID: "c1"}, false)
	defer m.Remove("c1")
	if st, _ := m.Get("c1", probes.Readiness); st.Result != probes.Failure {
		t.Errorf("readiness starts %v, want Failure", st.Result)
	}
	waitFor := func(want probes.Result) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if st, _ := m.Get("c1", probes.Readiness); st.Result == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("result never became %v", want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor(probes.Success)
	if uid := <-changes; uid != "pod" {
		t.Errorf("change reported for %q", uid)
	}
	ex.code.Store(1)
	start := time.Now()
	waitFor(probes.Failure)
	// Two failures are needed, a period apart.
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("failed after %s, before the second failing probe", d)
	}
	m.Remove("c1")
	if _, ok := m.Get("c1", probes.Readiness); ok {
		t.Error("probe still registered after Remove")
	}
}

func TestGRPCHealthProbe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	go func() { _ = s.Serve(l) }()
	defer s.Stop()
	port := int32(l.Addr().(*net.TCPAddr).Port)
	target := probes.Target{PodIP: "127.0.0.1"}
	p := &corev1.Probe{Grpc: &corev1.GRPCAction{Port: port}, TimeoutSeconds: 2}
	if ok, msg := probes.Check(context.Background(), nil, p, target); !ok {
		t.Errorf("serving: %s", msg)
	}
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	if ok, msg := probes.Check(context.Background(), nil, p, target); ok || !strings.Contains(msg, "NOT_SERVING") {
		t.Errorf("not serving: %v %q", ok, msg)
	}
	svc := "app"
	p.Grpc.Service = &svc
	hs.SetServingStatus("app", healthpb.HealthCheckResponse_SERVING)
	if ok, msg := probes.Check(context.Background(), nil, p, target); !ok {
		t.Errorf("named service serving: %s", msg)
	}
}

// Liveness and readiness wait for the startup probe.
func TestStartupProbeGatesTheOthers(t *testing.T) {
	ex := &execer{}
	ex.code.Store(1) // nothing succeeds yet
	m := probes.NewManager(ex, nil, nil)
	p := &corev1.Probe{Exec: &corev1.ExecAction{Command: []string{"x"}}, PeriodSeconds: 1, FailureThreshold: 1}
	tg := probes.Target{ContainerID: "c1"}
	m.Ensure("pod", probes.Startup, p, tg, false)
	m.Ensure("pod", probes.Liveness, p, tg, true)
	defer m.Remove("c1")
	time.Sleep(1500 * time.Millisecond) // two startup probes, both failing
	if st, _ := m.Get("c1", probes.Liveness); st.Result != probes.Success {
		t.Errorf("liveness ran before startup succeeded: %v", st)
	}
	ex.code.Store(0)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if st, _ := m.Get("c1", probes.Startup); st.Result == probes.Success {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("startup probe never succeeded")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
