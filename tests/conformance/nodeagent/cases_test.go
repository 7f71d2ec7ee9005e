package nodeagent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
)

// leaseNamespace holds the node Leases the health-checker watches.
const leaseNamespace = "bosun-node-lease"

// registersNode: the agent registers its Node with capacity, allocatable,
// an InternalIP, the hostname label and Ready=True, and renews the Lease
// bosun-node-lease/NAME it holds.
func (s *suite) registersNode(t *testing.T) {
	start := time.Now()
	var n *corev1.Node
	s.eventually(t, "node "+s.node.Name+" registered and Ready", func() error {
		var err error
		if n, err = s.nodes.Get(s.ctx, "", s.node.Name); err != nil {
			return err
		}
		for _, c := range n.GetStatus().GetConditions() {
			if c.GetType() == "Ready" && c.GetStatus() == "True" {
				return nil
			}
		}
		return fmt.Errorf("conditions %v", n.GetStatus().GetConditions())
	})
	t.Logf("node Ready %s after the agent served", since(start))
	if got := n.GetMetadata().GetLabels()["kubernetes.io/hostname"]; got != s.node.Name {
		t.Errorf("label kubernetes.io/hostname=%q, want %q", got, s.node.Name)
	}
	capacity, allocatable := n.GetStatus().GetCapacity(), n.GetStatus().GetAllocatable()
	for _, r := range []string{"cpu", "memory", "pods"} {
		c, err := resource.ParseQuantity(capacity[r])
		if err != nil || c.Sign() <= 0 {
			t.Errorf("capacity %s=%q: want a positive quantity", r, capacity[r])
			continue
		}
		a, err := resource.ParseQuantity(allocatable[r])
		if err != nil || a.Sign() <= 0 || a.Cmp(c) > 0 {
			t.Errorf("allocatable %s=%q: want a positive quantity at most the capacity %s", r, allocatable[r], capacity[r])
		}
	}
	if ip := internalIP(n); net.ParseIP(ip) == nil {
		t.Errorf("addresses %v: want an InternalIP", n.GetStatus().GetAddresses())
	}
	t.Logf("capacity %v, allocatable %v, addresses %v, podCIDR %q", capacity, allocatable,
		n.GetStatus().GetAddresses(), n.GetSpec().GetPodCidr())

	leases := client.For[*coordinationv1.Lease](s.cluster.Admin)
	var first *coordinationv1.Lease
	s.eventually(t, "Lease "+leaseNamespace+"/"+s.node.Name, func() error {
		var err error
		first, err = leases.Get(s.ctx, leaseNamespace, s.node.Name)
		return err
	})
	if got := first.GetSpec().GetHolderIdentity(); got != s.node.Name {
		t.Errorf("Lease holderIdentity=%q, want %q", got, s.node.Name)
	}
	if first.GetSpec().GetLeaseDurationSeconds() <= 0 || first.GetSpec().GetRenewTime() == nil {
		t.Errorf("Lease spec %v: want a positive leaseDurationSeconds and a renewTime", first.GetSpec())
	}
	var renewed *coordinationv1.Lease
	s.eventually(t, "Lease renewed", func() error {
		var err error
		if renewed, err = leases.Get(s.ctx, leaseNamespace, s.node.Name); err != nil {
			return err
		}
		if !renewed.GetSpec().GetRenewTime().AsTime().After(first.GetSpec().GetRenewTime().AsTime()) {
			return errors.New("renewTime unchanged")
		}
		return nil
	})
	t.Logf("Lease duration %ds, renewed %s after the previous renewal", renewed.GetSpec().GetLeaseDurationSeconds(),
		renewed.GetSpec().GetRenewTime().AsTime().Sub(first.GetSpec().GetRenewTime().AsTime()).Round(time.Millisecond))
}

func internalIP(n *corev1.Node) string {
	for _, a := range n.GetStatus().GetAddresses() {
		if a.GetType() == "InternalIP" {
			return a.GetAddress()
		}
	}
	return ""
}

// runsPod: a pod bound to the node becomes Running with a pod IP on which
// it answers (as itself: its hostname is the pod's name), its host IP is
// the node's InternalIP, and its container is reported running, started,
// ready, never restarted.
func (s *suite) runsPod(t *testing.T) {
	start := time.Now()
	s.pod(t, "web")
	p := s.waitPod(t, "web", "Running and Ready", runningAndReady)
	running := since(start)
	h := s.hello(t, p.GetStatus().GetPodIp())
	t.Logf("pod Running and Ready %s after creation, answering on %s after %s", running, p.GetStatus().GetPodIp(), since(start))
	if h.Hostname != "web" {
		t.Errorf("the pod at %s answers with hostname %q, want the pod's name", p.GetStatus().GetPodIp(), h.Hostname)
	}
	n, err := s.nodes.Get(s.ctx, "", s.node.Name)
	if err != nil {
		t.Fatal(err)
	}
	checkAddresses(t, p, n)
	st := p.GetStatus()
	if st.GetStartTime() == nil {
		t.Error("status.startTime unset")
	}
	for _, typ := range []string{"Initialized", "ContainersReady", "Ready"} {
		if got := condition(p, typ); got != "True" {
			t.Errorf("condition %s=%q, want True", typ, got)
		}
	}
	if len(st.GetContainerStatuses()) != 1 {
		t.Fatalf("%d container statuses, want 1: %v", len(st.GetContainerStatuses()), st.GetContainerStatuses())
	}
	c := container(p)
	switch {
	case c.Started == nil || !c.GetStarted():
		t.Errorf("container started=%v, want true", c.Started)
	case c.GetRestartCount() != 0:
		t.Errorf("restartCount=%d, want 0", c.GetRestartCount())
	case c.GetState().GetRunning().GetStartedAt() == nil:
		t.Errorf("state %v: want running with startedAt", c.GetState())
	case c.GetState().GetWaiting() != nil || c.GetState().GetTerminated() != nil:
		t.Errorf("state %v: want only running", c.GetState())
	case c.GetImage() == "" || c.GetImageId() == "" || c.GetContainerId() == "":
		t.Errorf("image=%q imageID=%q containerID=%q: want all set", c.GetImage(), c.GetImageId(), c.GetContainerId())
	}
	// The same process still answers: nothing restarted it behind the
	// status's back.
	if again := s.hello(t, st.GetPodIp()); again.Instance != h.Instance {
		t.Errorf("the pod's process changed (%s, then %s) while restartCount is %d", h.Instance, again.Instance, c.GetRestartCount())
	}
}

// checkAddresses: podIP (and podIPs) is an address in the node's pod CIDR
// when it has one, and hostIP is the node's InternalIP.
func checkAddresses(t *testing.T, p *corev1.Pod, n *corev1.Node) {
	t.Helper()
	st := p.GetStatus()
	ip, err := netip.ParseAddr(st.GetPodIp())
	if err != nil {
		t.Fatalf("podIP %q: %v", st.GetPodIp(), err)
	}
	if ips := st.GetPodIps(); len(ips) > 0 && ips[0].GetIp() != st.GetPodIp() {
		t.Errorf("podIPs %v do not start with podIP %s", ips, st.GetPodIp())
	}
	if cidr := n.GetSpec().GetPodCidr(); cidr != "" {
		if prefix, err := netip.ParsePrefix(cidr); err == nil && !prefix.Contains(ip) {
			t.Errorf("podIP %s is outside the node's podCIDR %s", ip, cidr)
		}
	}
	if st.GetHostIp() != internalIP(n) {
		t.Errorf("hostIP %q, want the node's InternalIP %q", st.GetHostIp(), internalIP(n))
	}
}

// envFromConfigMapAndSecret: env values, valueFrom (ConfigMap key, Secret
// key, the pod's name and IP) and envFrom (a ConfigMap with a prefix, a
// Secret) are what the container sees.
func (s *suite) envFromConfigMapAndSecret(t *testing.T) {
	cm := &corev1.ConfigMap{Metadata: &metav1.ObjectMeta{Name: "settings", Namespace: namespace},
		Data: map[string]string{"color": "blue", "size": "large"}}
	if _, err := s.configMaps.Create(s.ctx, cm); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = s.configMaps.Delete(s.ctx, namespace, "settings", client.DeleteOptions{}) })
	sec := &corev1.Secret{Metadata: &metav1.ObjectMeta{Name: "credentials", Namespace: namespace},
		Data: map[string][]byte{"token": []byte("t0k3n")}, StringData: map[string]string{"password": "s3cret"}}
	if _, err := s.secrets.Create(s.ctx, sec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = s.secrets.Delete(s.ctx, namespace, "credentials", client.DeleteOptions{}) })
	s.pod(t, "env", env(
		&corev1.EnvVar{Name: "LITERAL", Value: "plain"},
		&corev1.EnvVar{Name: "COLOR", ValueFrom: &corev1.EnvVarSource{
			ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Name: "settings", Key: "color"}}},
		&corev1.EnvVar{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{Name: "credentials", Key: "password"}}},
		&corev1.EnvVar{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		&corev1.EnvVar{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
	), envFrom(
		&corev1.EnvFromSource{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{Name: "settings"}},
		&corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{Name: "credentials"}},
	))
	p := s.waitPod(t, "env", "Running and Ready", runningAndReady)
	ip := p.GetStatus().GetPodIp()
	s.hello(t, ip)
	var got map[string]string
	if err := s.call(http.MethodGet, ip, "/env", &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"LITERAL": "plain", "COLOR": "blue", "PASSWORD": "s3cret", "POD_NAME": "env", "POD_IP": ip,
		"CFG_color": "blue", "CFG_size": "large", "password": "s3cret", "token": "t0k3n",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("the container sees %s=%q, want %q", k, got[k], v)
		}
	}
}

// containerExits: exits are reported with their code and reason, and the
// restart policy is honoured: Never and OnFailure with code 0 leave the
// container terminated (Failed, Succeeded); OnFailure with another code and
// Always restart it, counting each restart once, and the restarted
// container serves again as a new process.
func (s *suite) containerExits(t *testing.T) {
	s.pod(t, "exit-never", restartPolicy("Never"), withArgs("exit", "3"))
	s.pod(t, "exit-zero-onfailure", restartPolicy("OnFailure"), withArgs("exit", "0"))
	s.pod(t, "exit-onfailure", restartPolicy("OnFailure"), withArgs("exit", "4"))
	s.pod(t, "exit-always", restartPolicy("Always"))

	final := func(phase string, code int32, reason string) func(*corev1.Pod) error {
		return func(p *corev1.Pod) error {
			c := container(p)
			term := c.GetState().GetTerminated()
			switch {
			case p.GetStatus().GetPhase() != phase:
				return fmt.Errorf("phase %q, want %s", p.GetStatus().GetPhase(), phase)
			case term == nil:
				return errors.New("container not terminated")
			case term.GetExitCode() != code || term.GetReason() != reason:
				return fmt.Errorf("terminated with %d (%s), want %d (%s)", term.GetExitCode(), term.GetReason(), code, reason)
			case term.GetFinishedAt() == nil:
				return errors.New("terminated without finishedAt")
			case c.GetReady() || c.GetRestartCount() != 0 || condition(p, "Ready") == "True":
				return errors.New("want not ready, never restarted")
			}
			return nil
		}
	}
	s.waitPod(t, "exit-never", "Failed with exit code 3 (restartPolicy Never)", final("Failed", 3, "Error"))
	s.waitPod(t, "exit-zero-onfailure", "Succeeded (exit code 0, restartPolicy OnFailure)", final("Succeeded", 0, "Completed"))
	s.waitPod(t, "exit-onfailure", "restarted after exit code 4 (restartPolicy OnFailure)", func(p *corev1.Pod) error {
		c := container(p)
		last := c.GetLastState().GetTerminated()
		switch {
		case c.GetRestartCount() < 1:
			return errors.New("not restarted")
		case last.GetExitCode() != 4 || last.GetReason() != "Error":
			return fmt.Errorf("lastState %v, want terminated with 4 (Error)", c.GetLastState())
		}
		return nil
	})

	p := s.waitPod(t, "exit-always", "Running and Ready", runningAndReady)
	ip := p.GetStatus().GetPodIp()
	before := s.hello(t, ip)
	s.post(t, ip, "/exit?code=7")
	exited := time.Now()
	p = s.waitPod(t, "exit-always", "restarted after exit code 7 (restartPolicy Always)", func(p *corev1.Pod) error {
		c := container(p)
		if c.GetRestartCount() < 1 {
			return errors.New("not restarted")
		}
		return runningAndReady(p)
	})
	restarted := since(exited)
	after := s.hello(t, p.GetStatus().GetPodIp())
	t.Logf("exit-always: Running and Ready again %s after its exit, answering after %s", restarted, since(exited))
	c := container(p)
	if last := c.GetLastState().GetTerminated(); last.GetExitCode() != 7 || last.GetReason() != "Error" {
		t.Errorf("exit-always: lastState %v, want terminated with 7 (Error)", c.GetLastState())
	}
	if after.Instance == before.Instance {
		t.Errorf("exit-always: the same process (%s) answers after the exit it was told to make", after.Instance)
	}
	if after.Hostname != "exit-always" || p.GetStatus().GetPodIp() != ip {
		t.Errorf("exit-always: after the restart hostname %q at %s, want %q at %s (the pod's sandbox outlives its containers)",
			after.Hostname, p.GetStatus().GetPodIp(), "exit-always", ip)
	}
	// The app exited once: one restart, one new process.
	if c.GetRestartCount() != 1 {
		t.Errorf("exit-always: restartCount=%d after one exit, want 1", c.GetRestartCount())
	}
	if again := s.hello(t, ip); again.Instance != after.Instance {
		t.Errorf("exit-always: the process changed again (%s, then %s) without an exit", after.Instance, again.Instance)
	}
	// The containers that terminated for good did so before exit-always
	// restarted, and a restart comes after the same back-off: had they
	// been restarted, it would show by now.
	s.waitPod(t, "exit-never", "still Failed, never restarted", final("Failed", 3, "Error"))
	s.waitPod(t, "exit-zero-onfailure", "still Succeeded, never restarted", final("Succeeded", 0, "Completed"))
}

// readinessProbe: in a pod of two containers, one probed for readiness,
// a failing probe makes that container not ready, and the pod Ready=False
// and ContainersReady=False, while the other stays ready and both keep
// running (not restarted); passing again makes the pod Ready.
func (s *suite) readinessProbe(t *testing.T) {
	s.pod(t, "probed", sidecar("side", sidePort))
	p := s.waitPod(t, "probed", "Running and Ready", func(p *corev1.Pod) error {
		if !containerNamed(p, "side").GetReady() {
			return errors.New("container side not ready")
		}
		return runningAndReady(p)
	})
	ip := p.GetStatus().GetPodIp()
	side := net.JoinHostPort(ip, fmt.Sprint(sidePort))
	before := s.hello(t, side)
	s.post(t, side, "/ready?value=false")
	failed := time.Now()
	p = s.waitPod(t, "probed", "not Ready while the readiness probe of container side fails", func(p *corev1.Pod) error {
		switch {
		case containerNamed(p, "side").GetReady():
			return errors.New("container side still ready")
		case condition(p, "Ready") != "False" || condition(p, "ContainersReady") != "False":
			return errors.New("want Ready=False and ContainersReady=False")
		}
		return nil
	})
	t.Logf("Ready=False %s after the probe began to fail", since(failed))
	for _, c := range p.GetStatus().GetContainerStatuses() {
		if c.GetState().GetRunning() == nil || c.GetRestartCount() != 0 || !c.GetStarted() {
			t.Errorf("container %s must keep running, started, unrestarted: %s", c.GetName(), brief(p))
		}
	}
	if p.GetStatus().GetPhase() != "Running" {
		t.Errorf("phase %q with both containers running, want Running", p.GetStatus().GetPhase())
	}
	if !container(p).GetReady() {
		t.Errorf("container app, which has no probe, reported not ready: %s", brief(p))
	}
	if now := s.hello(t, side); now.Instance != before.Instance {
		t.Errorf("the process of container side changed (%s, then %s): a readiness probe must not restart it", before.Instance, now.Instance)
	}
	s.post(t, side, "/ready?value=true")
	passed := time.Now()
	s.waitPod(t, "probed", "Ready again once the probe passes", func(p *corev1.Pod) error {
		if !containerNamed(p, "side").GetReady() {
			return errors.New("container side not ready")
		}
		return runningAndReady(p)
	})
	t.Logf("Ready=True %s after the probe passed again", since(passed))
}

// deletesPod: deleting a pod stops its container (the pod stops answering)
// and the agent removes the pod object.
func (s *suite) deletesPod(t *testing.T) {
	s.pod(t, "doomed")
	p := s.waitPod(t, "doomed", "Running and Ready", runningAndReady)
	ip := p.GetStatus().GetPodIp()
	s.hello(t, ip)
	if _, err := s.pods.Delete(s.ctx, namespace, "doomed", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	var silent, gone time.Duration
	s.eventually(t, "pod doomed stops answering and its object goes away", func() error {
		if silent == 0 && s.call(http.MethodGet, ip, "/", nil) != nil {
			silent = time.Since(deleted)
		}
		if gone == 0 {
			_, err := s.pods.Get(s.ctx, namespace, "doomed")
			if err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			if err != nil {
				gone = time.Since(deleted)
			}
		}
		if silent == 0 || gone == 0 {
			return fmt.Errorf("answering: %v, object there: %v", silent == 0, gone == 0)
		}
		return nil
	})
	t.Logf("deleted pod silent after %s, object gone after %s", silent.Round(time.Millisecond), gone.Round(time.Millisecond))
	if err := s.call(http.MethodGet, ip, "/", nil); err == nil {
		t.Errorf("%s answers again after pod doomed was removed", ip)
	}
}

// ignoresOtherNodesPods: pods bound to another node, or to none, get no
// status from the agent, while a pod bound to its node created after them
// runs; and no address of the node's pod CIDR answers as one of them (the
// agent might run a pod it may not report on: the Node authorizer refuses
// it the status).
func (s *suite) ignoresOtherNodesPods(t *testing.T) {
	other := &corev1.Node{Metadata: &metav1.ObjectMeta{Name: "elsewhere",
		Labels: map[string]string{"kubernetes.io/hostname": "elsewhere"}}, Spec: &corev1.NodeSpec{}}
	if _, err := s.nodes.Create(s.ctx, other); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = s.nodes.Delete(s.ctx, "", "elsewhere", client.DeleteOptions{}) })
	s.pod(t, "foreign", onNode("elsewhere"))
	s.pod(t, "unbound", onNode(""))
	// Created after the others: once it runs, the agent has seen them.
	s.pod(t, "witness")
	w := s.waitPod(t, "witness", "Running and Ready", runningAndReady)
	s.hello(t, w.GetStatus().GetPodIp())
	n, err := s.nodes.Get(s.ctx, "", s.node.Name)
	if err != nil {
		t.Fatal(err)
	}
	if cidr := n.GetSpec().GetPodCidr(); cidr != "" {
		start := time.Now()
		answers := s.scan(t, cidr)
		t.Logf("%d addresses of the pod CIDR %s answer (scanned in %s): %v", len(answers), cidr, since(start), answers)
		if answers[w.GetStatus().GetPodIp()] != "witness" {
			t.Errorf("the scan of %s did not find pod witness at %s", cidr, w.GetStatus().GetPodIp())
		}
		for ip, host := range answers {
			if host == "foreign" || host == "unbound" {
				t.Errorf("pod %s, not bound to node %s, answers at %s in its pod CIDR", host, s.node.Name, ip)
			}
		}
	}
	for _, name := range []string{"foreign", "unbound"} {
		p := s.get(t, name)
		st := p.GetStatus()
		if ph := st.GetPhase(); (ph != "" && ph != "Pending") || st.GetPodIp() != "" || st.GetHostIp() != "" ||
			len(st.GetContainerStatuses()) > 0 || st.GetStartTime() != nil {
			t.Errorf("pod %s (node %q) got a status from the agent of %s: %s", name, p.GetSpec().GetNodeName(), s.node.Name, brief(p))
		}
		for _, c := range st.GetConditions() {
			if c.GetType() != "PodScheduled" {
				t.Errorf("pod %s (node %q) got condition %s=%s", name, p.GetSpec().GetNodeName(), c.GetType(), c.GetStatus())
			}
		}
		if p.GetMetadata().GetDeletionTimestamp() != nil {
			t.Errorf("pod %s (node %q) is being deleted", name, p.GetSpec().GetNodeName())
		}
	}
}

// reportsBadSpecs: an image that does not exist and a reference to a
// ConfigMap that does not exist are reported in the container's waiting
// state with the Kubernetes reason and a message, the pod stays Pending,
// the agent and its node stay up, and once the ConfigMap appears the pod
// runs with it.
func (s *suite) reportsBadSpecs(t *testing.T) {
	missing := s.runtime.Registry() + "/conformance/missing:v1"
	s.pod(t, "missing-image", image(missing))
	s.pod(t, "missing-config", env(&corev1.EnvVar{Name: "LATE", ValueFrom: &corev1.EnvVarSource{
		ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Name: "late", Key: "value"}}}))
	waiting := func(reasons ...string) func(*corev1.Pod) error {
		return func(p *corev1.Pod) error {
			c := container(p)
			w := c.GetState().GetWaiting()
			switch {
			case w == nil || !slices.Contains(reasons, w.GetReason()):
				return fmt.Errorf("want the container waiting with reason %v", reasons)
			case w.GetMessage() == "":
				return errors.New("waiting without a message")
			case p.GetStatus().GetPhase() != "Pending":
				return errors.New("want phase Pending")
			case c.GetReady() || c.GetStarted() || condition(p, "Ready") == "True":
				return errors.New("want not ready, not started")
			}
			return nil
		}
	}
	p := s.waitPod(t, "missing-image", "reported waiting for its image "+missing, waiting("ErrImagePull", "ImagePullBackOff"))
	t.Logf("missing image: %s: %s", container(p).GetState().GetWaiting().GetReason(), container(p).GetState().GetWaiting().GetMessage())
	p = s.waitPod(t, "missing-config", "reported waiting for ConfigMap late", waiting("CreateContainerConfigError"))
	t.Logf("missing ConfigMap: %s: %s", container(p).GetState().GetWaiting().GetReason(), container(p).GetState().GetWaiting().GetMessage())

	n, err := s.nodes.Get(s.ctx, "", s.node.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range n.GetStatus().GetConditions() {
		if c.GetType() == "Ready" && c.GetStatus() != "True" {
			t.Errorf("node Ready=%s with pods it cannot run", c.GetStatus())
		}
	}
	cm := &corev1.ConfigMap{Metadata: &metav1.ObjectMeta{Name: "late", Namespace: namespace}, Data: map[string]string{"value": "arrived"}}
	if _, err := s.configMaps.Create(s.ctx, cm); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = s.configMaps.Delete(s.ctx, namespace, "late", client.DeleteOptions{}) })
	created := time.Now()
	p = s.waitPod(t, "missing-config", "Running once ConfigMap late exists", runningAndReady)
	var got map[string]string
	s.eventually(t, "the environment of missing-config", func() error {
		return s.call(http.MethodGet, p.GetStatus().GetPodIp(), "/env", &got)
	})
	t.Logf("missing-config Running %s after its ConfigMap appeared", since(created))
	if got["LATE"] != "arrived" {
		t.Errorf("the container sees LATE=%q, want %q", got["LATE"], "arrived")
	}
	if p := s.get(t, "missing-image"); container(p).GetState().GetRunning() != nil || p.GetStatus().GetPhase() != "Pending" {
		t.Errorf("pod missing-image runs without its image: %s", brief(p))
	}
}

// scan asks every address of cidr (at most a /22) for the app's hello and
// returns the hostnames that answered by address.
func (s *suite) scan(t *testing.T, cidr string) map[string]string {
	t.Helper()
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil || !prefix.Addr().Is4() || prefix.Bits() < 22 {
		t.Fatalf("node podCIDR %q: want an IPv4 prefix of at most 1024 addresses (%v)", cidr, err)
	}
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	answers := map[string]string{}
	limit := make(chan struct{}, 128)
	for ip := prefix.Masked().Addr().Next(); prefix.Contains(ip); ip = ip.Next() {
		wg.Add(1)
		limit <- struct{}{}
		go func() {
			defer func() { <-limit; wg.Done() }()
			resp, err := hc.Get("http://" + net.JoinHostPort(ip.String(), fmt.Sprint(appPort)) + "/")
			if err != nil {
				return
			}
			defer resp.Body.Close()
			var h hello
			if json.NewDecoder(resp.Body).Decode(&h) == nil && h.Hostname != "" {
				mu.Lock()
				answers[ip.String()] = h.Hostname
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return answers
}
