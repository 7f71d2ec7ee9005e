package pods_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/types/known/timestamppb"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/services/node-agent/internal/agenttest"
	"bosun.dev/services/node-agent/internal/images"
	"bosun.dev/services/node-agent/internal/network"
	"bosun.dev/services/node-agent/internal/pods"
	"bosun.dev/services/node-agent/internal/runtime"
	"bosun.dev/services/node-agent/internal/runtime/fake"
	"bosun.dev/services/node-agent/internal/volumes"
)

const node = "n1"

type harness struct {
	t       *testing.T
	rt      *fake.Runtime
	net     *network.Fake
	api     *agenttest.API
	dir     string
	m       *pods.Manager
	metrics *pods.Metrics
	cancel  context.CancelFunc
	done    chan struct{}
}

func newHarness(t *testing.T, rt *fake.Runtime, net *network.Fake, api *agenttest.API, dir string) *harness {
	t.Helper()
	h := &harness{t: t, rt: rt, net: net, api: api, dir: dir}
	h.start()
	t.Cleanup(h.stop)
	return h
}

func setup(t *testing.T) *harness {
	t.Helper()
	net, err := network.NewFake("10.244.1.0/24")
	if err != nil {
		t.Fatal(err)
	}
	return newHarness(t, fake.New(), net, agenttest.NewAPI(), t.TempDir())
}

func (h *harness) start() {
	h.m = pods.New(pods.Options{
		NodeName: node, HostIP: "192.0.2.1",
		Runtime: h.rt, Network: h.net,
		Images:     images.New(h.rt, images.Options{}),
		Volumes:    volumes.New(h.api, []string{filepath.Join(h.dir, "hostpath")}, agenttest.IsNotFound),
		Objects:    h.api,
		IsNotFound: agenttest.IsNotFound,
		API:        h.api,
		PodsDir:    filepath.Join(h.dir, "pods"),
		LogDir:     filepath.Join(h.dir, "logs"),
		// Short delays keep the test quick; the back-off still doubles.
		ResyncInterval: 20 * time.Millisecond,
		BackoffBase:    100 * time.Millisecond,
		BackoffMax:     400 * time.Millisecond,
	})
	h.rt.SetNotify(h.m.Wake)
	h.metrics = h.m.NewMetrics(prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() { defer close(h.done); _ = h.m.Run(ctx) }()
}

func (h *harness) stop() {
	if h.cancel != nil {
		h.cancel()
		<-h.done
		h.cancel = nil
	}
}

// run stores pod and hands it to the manager.
func (h *harness) run(p *corev1.Pod) {
	h.api.AddPod(p)
	h.m.Update(h.api.Pod(p.GetMetadata().GetUid()))
}

func (h *harness) waitPhase(uid, phase string) *corev1.Pod {
	h.t.Helper()
	var p *corev1.Pod
	agenttest.Eventually(h.t, 10*time.Second, func() error {
		p = h.api.Pod(uid)
		if got := p.GetStatus().GetPhase(); got != phase {
			return fmt.Errorf("phase %q, want %q; status %v", got, phase, p.GetStatus())
		}
		return nil
	})
	return p
}

// deleteAndWait marks the pod deleted with grace seconds, as the apiserver
// does, and waits until the agent has stopped it and deleted the object.
func (h *harness) deleteAndWait(uid string, grace int64) {
	h.t.Helper()
	marked := h.api.Pod(uid)
	marked.Metadata.DeletionTimestamp = timestamppb.Now()
	marked.Metadata.DeletionGracePeriodSeconds = &grace
	h.m.Update(marked)
	agenttest.Eventually(h.t, 10*time.Second, func() error {
		if !slices.Contains(h.api.Deleted(), uid) {
			return errors.New("pod object not deleted yet")
		}
		return nil
	})
}

func (h *harness) containerStatus(uid, name string, ok func(*corev1.ContainerStatus) error) *corev1.ContainerStatus {
	h.t.Helper()
	var cs *corev1.ContainerStatus
	agenttest.Eventually(h.t, 10*time.Second, func() error {
		var err error
		cs, err = agenttest.ContainerStatus(h.api.Pod(uid), name)
		if err != nil {
			return err
		}
		return ok(cs)
	})
	return cs
}

func ctr(name, image string) *corev1.Container {
	return &corev1.Container{Name: name, Image: image}
}

func TestPodRunsAndReportsStatus(t *testing.T) {
	h := setup(t)
	h.run(agenttest.Pod("u1", "web", node, ctr("a", "reg.local/app:v1"), ctr("b", "reg.local/app:v1")))
	p := h.waitPhase("u1", "Running")
	if p.GetStatus().GetPodIp() == "" || !strings.HasPrefix(p.GetStatus().GetPodIp(), "10.244.1.") {
		t.Errorf("podIP = %q, want an address in 10.244.1.0/24", p.GetStatus().GetPodIp())
	}
	if p.GetStatus().GetHostIp() != "192.0.2.1" {
		t.Errorf("hostIP = %q", p.GetStatus().GetHostIp())
	}
	agenttest.Eventually(t, 5*time.Second, func() error {
		p := h.api.Pod("u1")
		if agenttest.Condition(p, "Ready") != "True" {
			return fmt.Errorf("Ready = %q", agenttest.Condition(p, "Ready"))
		}
		for _, cs := range p.GetStatus().GetContainerStatuses() {
			if cs.GetState().GetRunning() == nil || !cs.GetReady() || cs.GetImageId() == "" {
				return fmt.Errorf("container %s: %v", cs.GetName(), cs)
			}
		}
		return nil
	})
	// The two containers share the pod's network namespace and files.
	cs, _ := h.rt.ListContainers(context.Background())
	if len(cs) != 2 {
		t.Fatalf("%d containers, want 2", len(cs))
	}
	a, _ := h.rt.Spec(cs[0].ID)
	b, _ := h.rt.Spec(cs[1].ID)
	if a.NetNSPath != b.NetNSPath || a.Hostname != "web" || b.Hostname != "web" {
		t.Errorf("specs do not share the sandbox: %+v / %+v", a, b)
	}
	// Status is written only when something changed.
	writes := h.api.StatusWrites()
	time.Sleep(200 * time.Millisecond) // ten resyncs
	if got := h.api.StatusWrites(); got != writes {
		t.Errorf("status written %d more times with nothing changed", got-writes)
	}
}

func TestCrashingContainerRestartsWithGrowingBackoff(t *testing.T) {
	h := setup(t)
	h.run(agenttest.Pod("u1", "crash", node, ctr("c", "reg.local/app:v1")))
	h.waitPhase("u1", "Running")
	var delays []string
	for i := 1; i <= 3; i++ {
		id := runtime.ContainerID("u1", "c", i-1)
		agenttest.Eventually(t, 5*time.Second, func() error { return h.rt.Exit(id, 1, false) })
		cs := h.containerStatus("u1", "c", func(cs *corev1.ContainerStatus) error {
			if w := cs.GetState().GetWaiting(); w.GetReason() == "CrashLoopBackOff" && int(cs.GetRestartCount()) == i {
				return nil
			}
			return fmt.Errorf("want CrashLoopBackOff with %d restarts, got %v", i, cs)
		})
		delays = append(delays, strings.Fields(cs.GetState().GetWaiting().GetMessage())[1])
		if lt := cs.GetLastState().GetTerminated(); lt.GetExitCode() != 1 || lt.GetReason() != "Error" {
			t.Errorf("last state = %v, want exit 1 Error", lt)
		}
		h.containerStatus("u1", "c", func(cs *corev1.ContainerStatus) error {
			if cs.GetState().GetRunning() == nil {
				return errors.New("not running again yet")
			}
			return nil
		})
		if _, err := h.rt.ContainerStatus(context.Background(), runtime.ContainerID("u1", "c", i)); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if want := []string{"100ms", "200ms", "400ms"}; !slices.Equal(delays, want) {
		t.Errorf("back-off delays %v, want %v", delays, want)
	}
	mt := h.metrics
	if got := testutil.ToFloat64(mt.ContainerRestarts); got != 3 {
		t.Errorf("restarts metric %v, want 3", got)
	}
	if got := testutil.ToFloat64(mt.ContainerStarts.WithLabelValues("ok")); got != 4 {
		t.Errorf("starts metric %v, want 4", got)
	}
	if got := testutil.CollectAndCount(mt.PodStartSeconds); got != 1 {
		t.Errorf("pod start observations %d, want 1", got)
	}
}

func TestRestartPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy    string
		exit      int32
		oom       bool
		wantPhase string
		reason    string
	}{
		{"Never", 0, false, "Succeeded", "Completed"},
		{"Never", 3, false, "Failed", "Error"},
		{"OnFailure", 0, false, "Succeeded", "Completed"},
		{"Never", 137, true, "Failed", "OOMKilled"},
	} {
		t.Run(fmt.Sprintf("%s-%d", tc.policy, tc.exit), func(t *testing.T) {
			h := setup(t)
			p := agenttest.Pod("u1", "job", node, ctr("c", "reg.local/app:v1"))
			p.Spec.RestartPolicy = tc.policy
			h.run(p)
			h.waitPhase("u1", "Running")
			if err := h.rt.Exit(runtime.ContainerID("u1", "c", 0), tc.exit, tc.oom); err != nil {
				t.Fatal(err)
			}
			got := h.waitPhase("u1", tc.wantPhase)
			cs, _ := agenttest.ContainerStatus(got, "c")
			if term := cs.GetState().GetTerminated(); term.GetReason() != tc.reason || term.GetExitCode() != tc.exit {
				t.Errorf("terminated = %v, want %s exit %d", term, tc.reason, tc.exit)
			}
			agenttest.Eventually(t, 5*time.Second, func() error {
				if n := h.net.InUse(); n != 0 {
					return fmt.Errorf("a finished pod still holds %d addresses", n)
				}
				return nil
			})
			if got.GetStatus().GetPodIp() == "" {
				t.Error("a finished pod lost its IP in status")
			}
			time.Sleep(300 * time.Millisecond) // past the back-off
			if _, err := h.rt.ContainerStatus(context.Background(), runtime.ContainerID("u1", "c", 1)); err == nil {
				t.Error("a container that finished for good was restarted")
			}
		})
	}
}

func TestImagePullFailureIsReportedNotFatal(t *testing.T) {
	h := setup(t)
	h.rt.FailPull("reg.local/missing:v1", errors.New("reg.local/missing:v1: manifest unknown"))
	h.run(agenttest.Pod("u1", "p", node, ctr("c", "reg.local/missing:v1")))
	seen := map[string]bool{}
	h.containerStatus("u1", "c", func(cs *corev1.ContainerStatus) error {
		w := cs.GetState().GetWaiting()
		if strings.Contains(w.GetMessage(), "manifest unknown") {
			seen[w.GetReason()] = true
		}
		if !seen["ErrImagePull"] || !seen["ImagePullBackOff"] {
			return fmt.Errorf("seen %v so far", seen)
		}
		return nil
	})
	if p := h.api.Pod("u1"); p.GetStatus().GetPhase() != "Pending" {
		t.Errorf("phase %q, want Pending", p.GetStatus().GetPhase())
	}
	// The image appears: the pod starts.
	h.rt.FailPull("reg.local/missing:v1", nil)
	h.waitPhase("u1", "Running")
}

func TestPullPolicyNever(t *testing.T) {
	h := setup(t)
	c := ctr("c", "reg.local/app:v1")
	c.ImagePullPolicy = "Never"
	h.run(agenttest.Pod("u1", "p", node, c))
	h.containerStatus("u1", "c", func(cs *corev1.ContainerStatus) error {
		if cs.GetState().GetWaiting().GetReason() != "ErrImageNeverPull" {
			return fmt.Errorf("state %v", cs.GetState())
		}
		return nil
	})
	if h.rt.Pulls() != 0 {
		t.Errorf("%d pulls with policy Never", h.rt.Pulls())
	}
}

func TestForbiddenHostPathIsRefused(t *testing.T) {
	h := setup(t)
	p := agenttest.Pod("u1", "p", node, ctr("c", "reg.local/app:v1"))
	p.Spec.Volumes = []*corev1.Volume{{Name: "etc", Source: &corev1.Volume_HostPath{HostPath: &corev1.HostPathVolumeSource{Path: "/etc"}}}}
	h.run(p)
	cs := h.containerStatus("u1", "c", func(cs *corev1.ContainerStatus) error {
		if cs.GetState().GetWaiting().GetReason() != "CreateContainerConfigError" {
			return fmt.Errorf("state %v", cs.GetState())
		}
		return nil
	})
	msg := cs.GetState().GetWaiting().GetMessage()
	if !strings.Contains(msg, `volume "etc"`) || !strings.Contains(msg, `hostPath "/etc" is not under an allowed prefix`) {
		t.Errorf("message %q does not name the volume and the cause", msg)
	}
	if got := h.api.Pod("u1").GetStatus().GetReason(); got != "HostPathForbidden" {
		t.Errorf("pod reason %q", got)
	}
	if n := h.net.InUse(); n != 0 {
		t.Errorf("%d addresses allocated for a refused pod", n)
	}
}

func TestEnvFromConfigMapAndSecret(t *testing.T) {
	h := setup(t)
	h.api.PutConfigMap(&corev1.ConfigMap{Metadata: meta("cfg"), Data: map[string]string{"MODE": "fast", "LEVEL": "3"}})
	h.api.PutSecret(&corev1.Secret{Metadata: meta("creds"), Data: map[string][]byte{"password": []byte("s3cret")}})
	c := ctr("c", "reg.local/app:v1")
	c.EnvFrom = []*corev1.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{Name: "cfg"}}}
	c.Env = []*corev1.EnvVar{
		{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Name: "creds", Key: "password"}}},
		{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "GREETING", Value: "mode=$(CFG_MODE)"},
	}
	h.run(agenttest.Pod("u1", "envpod", node, c))
	h.waitPhase("u1", "Running")
	spec, ok := h.rt.Spec(runtime.ContainerID("u1", "c", 0))
	if !ok {
		t.Fatal("no container")
	}
	for _, want := range []string{"CFG_MODE=fast", "CFG_LEVEL=3", "PASSWORD=s3cret", "POD=envpod", "GREETING=mode=fast"} {
		if !slices.Contains(spec.Env, want) {
			t.Errorf("env %v lacks %s", spec.Env, want)
		}
	}
}

func TestMissingConfigMapKeyIsAConfigError(t *testing.T) {
	h := setup(t)
	h.api.PutConfigMap(&corev1.ConfigMap{Metadata: meta("cfg"), Data: map[string]string{}})
	c := ctr("c", "reg.local/app:v1")
	c.Env = []*corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Name: "cfg", Key: "nope"}}}}
	h.run(agenttest.Pod("u1", "p", node, c))
	cs := h.containerStatus("u1", "c", func(cs *corev1.ContainerStatus) error {
		if cs.GetState().GetWaiting().GetReason() != "CreateContainerConfigError" {
			return fmt.Errorf("state %v", cs.GetState())
		}
		return nil
	})
	if msg := cs.GetState().GetWaiting().GetMessage(); !strings.Contains(msg, `spec.containers[0].env[0].valueFrom.configMapKeyRef: configmap "cfg" has no key "nope"`) {
		t.Errorf("message %q", msg)
	}
}

func TestReadinessProbeDrivesReady(t *testing.T) {
	h := setup(t)
	h.rt.SetExecResult("c", runtime.ExecResult{ExitCode: 1, Output: []byte("not yet")})
	c := ctr("c", "reg.local/app:v1")
	c.ReadinessProbe = &corev1.Probe{Exec: &corev1.ExecAction{Command: []string{"check"}}, PeriodSeconds: 1}
	h.run(agenttest.Pod("u1", "p", node, c))
	h.waitPhase("u1", "Running")
	if got := agenttest.Condition(h.api.Pod("u1"), "Ready"); got != "False" {
		t.Fatalf("Ready = %q before the probe succeeded", got)
	}
	h.rt.SetExecResult("c", runtime.ExecResult{ExitCode: 0})
	agenttest.Eventually(t, 5*time.Second, func() error {
		if got := agenttest.Condition(h.api.Pod("u1"), "Ready"); got != "True" {
			return fmt.Errorf("Ready = %q", got)
		}
		return nil
	})
	h.rt.SetExecResult("c", runtime.ExecResult{ExitCode: 1})
	agenttest.Eventually(t, 5*time.Second, func() error {
		if got := agenttest.Condition(h.api.Pod("u1"), "Ready"); got != "False" {
			return fmt.Errorf("Ready = %q", got)
		}
		return nil
	})
}

func TestFailingLivenessProbeRestartsContainer(t *testing.T) {
	h := setup(t)
	h.rt.SetExecResult("c", runtime.ExecResult{ExitCode: 1, Output: []byte("unhealthy")})
	c := ctr("c", "reg.local/app:v1")
	c.LivenessProbe = &corev1.Probe{Exec: &corev1.ExecAction{Command: []string{"check"}}, PeriodSeconds: 1, FailureThreshold: 1}
	h.run(agenttest.Pod("u1", "p", node, c))
	cs := h.containerStatus("u1", "c", func(cs *corev1.ContainerStatus) error {
		if cs.GetRestartCount() < 1 {
			return fmt.Errorf("restarts %d", cs.GetRestartCount())
		}
		return nil
	})
	if lt := cs.GetLastState().GetTerminated(); lt == nil {
		t.Errorf("no last state after a liveness restart: %v", cs)
	}
}

func TestDeletionRemovesEverything(t *testing.T) {
	h := setup(t)
	h.api.PutConfigMap(&corev1.ConfigMap{Metadata: meta("cfg"), Data: map[string]string{"k": "v"}})
	p := agenttest.Pod("u1", "p", node, ctr("c", "reg.local/app:v1"))
	p.Spec.Volumes = []*corev1.Volume{
		{Name: "scratch", Source: &corev1.Volume_EmptyDir{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "cfg", Source: &corev1.Volume_ConfigMap{ConfigMap: &corev1.ConfigMapVolumeSource{Name: "cfg"}}},
	}
	p.Spec.Containers[0].VolumeMounts = []*corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}, {Name: "cfg", MountPath: "/cfg"}}
	h.run(p)
	h.waitPhase("u1", "Running")
	podDir := h.m.Sandboxes().PodDir("u1")
	if b, err := os.ReadFile(filepath.Join(podDir, "volumes", "configmap", "cfg", "k")); err != nil || string(b) != "v" {
		t.Fatalf("configMap not projected: %q %v", b, err)
	}
	// The apiserver marks the pod; the agent stops it and deletes it.
	h.deleteAndWait("u1", 1)
	if cs, _ := h.rt.ListContainers(context.Background()); len(cs) != 0 {
		t.Errorf("containers left: %v", cs)
	}
	if h.net.InUse() != 0 {
		t.Errorf("%d addresses still allocated", h.net.InUse())
	}
	if _, err := os.Stat(podDir); !os.IsNotExist(err) {
		t.Errorf("pod directory left behind: %v", err)
	}
	agenttest.Eventually(t, 5*time.Second, func() error {
		if h.m.Known("u1") {
			return errors.New("worker still running")
		}
		return nil
	})
}

func TestRestartedAgentAdoptsRunningContainers(t *testing.T) {
	h := setup(t)
	h.run(agenttest.Pod("u1", "p", node, ctr("c", "reg.local/app:v1")))
	h.waitPhase("u1", "Running")
	// One crash, so that there is a restart count to keep.
	if err := h.rt.Exit(runtime.ContainerID("u1", "c", 0), 1, false); err != nil {
		t.Fatal(err)
	}
	h.containerStatus("u1", "c", func(cs *corev1.ContainerStatus) error {
		if cs.GetState().GetRunning() == nil || cs.GetRestartCount() != 1 {
			return fmt.Errorf("%v", cs)
		}
		return nil
	})
	before, _ := h.rt.ContainerStatus(context.Background(), runtime.ContainerID("u1", "c", 1))

	h.stop() // the agent dies; containers keep running
	// An orphan from a pod deleted while the agent was down.
	orphan := runtime.ContainerSpec{ID: runtime.ContainerID("gone", "c", 0), PodUID: "gone", Name: "c", Image: "docker.io/library/x:latest"}
	h.rt.AddImage(orphan.Image, 1)
	if err := h.rt.CreateContainer(context.Background(), orphan); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.m.Update(h.api.Pod("u1"))
	if _, err := h.m.Cleanup(context.Background(), func(uid string) bool { return uid == "u1" }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // ten resyncs of the adopted pod
	after, err := h.rt.ContainerStatus(context.Background(), runtime.ContainerID("u1", "c", 1))
	if err != nil || after.State != runtime.StateRunning || !after.StartedAt.Equal(before.StartedAt) {
		t.Errorf("container not adopted as it was: before %+v after %+v (%v)", before, after, err)
	}
	cs, _ := h.rt.ListContainers(context.Background())
	if len(cs) != 1 {
		t.Errorf("containers after adoption: %v", cs)
	}
	st, _ := agenttest.ContainerStatus(h.api.Pod("u1"), "c")
	if st.GetRestartCount() != 1 || st.GetLastState().GetTerminated().GetExitCode() != 1 {
		t.Errorf("restart count or last state lost: %v", st)
	}
}

func meta(name string) *metav1.ObjectMeta {
	return &metav1.ObjectMeta{Name: name, Namespace: "default"}
}

// A pod that finished before the agent started is left finished: no
// sandbox, no new container.
func TestFinishedPodIsNotStartedAgain(t *testing.T) {
	h := setup(t)
	p := agenttest.Pod("u1", "done", node, ctr("c", "reg.local/app:v1"))
	p.Spec.RestartPolicy = "Never"
	p.Status = &corev1.PodStatus{Phase: "Succeeded", PodIp: "10.244.1.9", ContainerStatuses: []*corev1.ContainerStatus{{
		Name: "c", State: &corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}}}}
	h.run(p)
	time.Sleep(200 * time.Millisecond) // ten resyncs
	if cs, _ := h.rt.ListContainers(context.Background()); len(cs) != 0 {
		t.Errorf("containers started for a finished pod: %v", cs)
	}
	if n := h.net.InUse(); n != 0 {
		t.Errorf("a finished pod got %d addresses", n)
	}
	if st := h.api.Pod("u1").GetStatus(); st.GetPhase() != "Succeeded" || st.GetPodIp() != "10.244.1.9" {
		t.Errorf("status %v", st)
	}
}

// A hostNetwork pod gets no namespace or address of its own: its IP is the
// node's.
func TestHostNetworkPod(t *testing.T) {
	h := setup(t)
	p := agenttest.Pod("u1", "hostnet", node, ctr("c", "reg.local/app:v1"))
	p.Spec.HostNetwork = true
	h.run(p)
	got := h.waitPhase("u1", "Running")
	if got.GetStatus().GetPodIp() != "192.0.2.1" || h.net.InUse() != 0 {
		t.Errorf("podIP %q, %d addresses allocated", got.GetStatus().GetPodIp(), h.net.InUse())
	}
	spec, _ := h.rt.Spec(runtime.ContainerID("u1", "c", 0))
	if spec.NetNSPath != "" {
		t.Errorf("hostNetwork container joins %q", spec.NetNSPath)
	}
	for _, m := range spec.Mounts {
		if m.ContainerPath == "/etc/hosts" {
			t.Errorf("hostNetwork container got a generated /etc/hosts: %+v", m)
		}
	}
}
