package multinode

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	grpcxds "google.golang.org/grpc/xds"
	"google.golang.org/protobuf/proto"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/tests/conformance/harness"
)

const (
	// grpcPort is where the pods of the rollout serve.
	grpcPort = 8080
	// drainSeconds is how long a pod keeps serving after SIGTERM: time
	// for the Endpoints, the service-proxy and the clients to drop it.
	drainSeconds = "1"
	// rolloutBroken bounds every wait of the rollout scenario: a step not
	// done after this long is broken, not slow.
	rolloutBroken = 120 * time.Second
	// revisionAnnotation is the revision the Deployment controller puts on
	// Deployments and their ReplicaSets.
	revisionAnnotation = "deployment.kubernetes.io/revision"
)

// serviceProxy is a running service-proxy: its binary and xDS address.
type serviceProxy struct{ bin, addr string }

// startServiceProxy runs the service-proxy against the cluster and returns
// it once it serves its first configuration.
func startServiceProxy(t *testing.T, c *Cluster) serviceProxy {
	t.Helper()
	bin := harness.Build(t, "bosun.dev/services/service-proxy/cmd/service-proxy")
	addr, metrics := harness.FreePort(t), harness.FreePort(t)
	p := StartProcess(t, "service-proxy", exec.Command(bin, "--apiserver", c.Addr, "--insecure",
		"--listen", addr, "--metrics-listen", metrics, "--log-level", "warn"))
	t.Cleanup(func() { p.Stop() })
	harness.Eventually(t, 30*time.Second, "service-proxy ready", func() error {
		if p.Exited() {
			t.Fatalf("service-proxy exited:\n%s", p.Output())
		}
		resp, err := http.Get("http://" + metrics + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s", resp.Status)
		}
		return nil
	})
	return serviceProxy{bin: bin, addr: addr}
}

// dialXDS dials xds:///target through grpc-go's xDS resolver, with the
// bootstrap `service-proxy bootstrap --format grpc` writes for node nodeID
// (plaintext, as the cluster is insecure).
func (sp serviceProxy) dialXDS(t *testing.T, nodeID, target string) *grpc.ClientConn {
	t.Helper()
	bootstrap, err := exec.Command(sp.bin, "bootstrap", "--node-id", nodeID, "--xds-address", sp.addr, "--format", "grpc", "--insecure").Output()
	if err != nil {
		t.Fatalf("service-proxy bootstrap: %v", err)
	}
	rb, err := grpcxds.NewXDSResolverWithConfigForTesting(bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("xds:///"+target, grpc.WithResolvers(rb), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// reply is one answered request: when, which pod and which version.
type reply struct {
	at            time.Time
	host, version string
}

// load sends UnaryCalls without pause from a few goroutines until stopped,
// and keeps every answer and every failure.
type load struct {
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	mu       sync.Mutex
	replies  []reply
	failures []string
}

func startLoad(conn *grpc.ClientConn, workers int) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel}
	cl := testgrpc.NewTestServiceClient(conn)
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
				resp, err := cl.UnaryCall(rctx, &testpb.SimpleRequest{})
				rcancel()
				now := time.Now()
				l.mu.Lock()
				if err != nil {
					l.failures = append(l.failures, fmt.Sprintf("%s: %v", now.Format("15:04:05.000"), err))
				} else {
					l.replies = append(l.replies, reply{at: now, host: resp.GetHostname(), version: resp.GetServerId()})
				}
				l.mu.Unlock()
				// A short pause leaves the shared machine's cores to the
				// cluster.
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	return l
}

func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

// since lists the answers received after t0.
func (l *load) since(t0 time.Time) []reply {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := sort.Search(len(l.replies), func(i int) bool { return l.replies[i].at.After(t0) })
	return slices.Clone(l.replies[i:])
}

// firstFrom is when host first answered (zero if never).
func (l *load) firstFrom(host string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.replies {
		if r.host == host {
			return r.at
		}
	}
	return time.Time{}
}

func (l *load) counts() (sent, failed int, failures []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.replies) + len(l.failures), len(l.failures), slices.Clone(l.failures)
}

// grpcDeployment is a Deployment of podapp's gRPC mode at version, with a
// gRPC readiness probe, a drain on SIGTERM and a rolling update that never
// removes a ready pod before its replacement is available.
func grpcDeployment(c *Cluster, name string, replicas int32, version string) *appsv1.Deployment {
	grace := int64(10)
	zero := &metav1.IntOrString{IntVal: 0}
	one := &metav1.IntOrString{IntVal: 1}
	return &appsv1.Deployment{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: &appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Strategy: &appsv1.DeploymentStrategy{Type: "RollingUpdate",
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: zero, MaxSurge: one}},
			Template: podTemplate(c, name, version, grace, drainSeconds),
		},
	}
}

// podTemplate runs podapp's gRPC mode at version (label and $VERSION)
// with a gRPC readiness probe; on SIGTERM the pod keeps serving for drain
// seconds.
func podTemplate(c *Cluster, name, version string, grace int64, drain string) *corev1.PodTemplateSpec {
	return &corev1.PodTemplateSpec{
		Metadata: &metav1.ObjectMeta{Labels: map[string]string{"app": name, "version": version}},
		Spec: &corev1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			Containers: []*corev1.Container{{
				Name: "app", Image: c.Image, Args: []string{"grpc", strconv.Itoa(grpcPort)},
				Ports: []*corev1.ContainerPort{{Name: "grpc", ContainerPort: grpcPort}},
				Env:   []*corev1.EnvVar{{Name: "VERSION", Value: version}, {Name: "DRAIN_SECONDS", Value: drain}},
				ReadinessProbe: &corev1.Probe{
					Grpc:          &corev1.GRPCAction{Port: grpcPort},
					PeriodSeconds: 1, FailureThreshold: 3, SuccessThreshold: 1, TimeoutSeconds: 1,
				},
			}},
		},
	}
}

// podReadySince is when the pod's Ready condition turned True (zero if not
// ready).
func podReadySince(p *corev1.Pod) time.Time {
	for _, cond := range p.GetStatus().GetConditions() {
		if cond.GetType() == "Ready" && cond.GetStatus() == "True" {
			return cond.GetLastTransitionTime().AsTime()
		}
	}
	return time.Time{}
}

func podsOf(ctx context.Context, c *Cluster, app string) ([]*corev1.Pod, error) {
	pods, _, err := client.For[*corev1.Pod](c.Conn).ListAll(ctx, client.ListOptions{Namespace: "default", LabelSelector: "app=" + app})
	return pods, err
}

// waitSettled waits until the Deployment has exactly replicas pods, all of
// version, Running and Ready, no other pod (a terminating one included)
// remains, and the Service's Endpoints list exactly their addresses.
func waitSettled(t *testing.T, c *Cluster, name string, replicas int, version string) []*corev1.Pod {
	t.Helper()
	ctx := context.Background()
	var out []*corev1.Pod
	harness.Eventually(t, rolloutBroken, fmt.Sprintf("Deployment %s settled at %d pods of %s", name, replicas, version), func() error {
		d, err := client.For[*appsv1.Deployment](c.Conn).Get(ctx, "default", name)
		if err != nil {
			return err
		}
		st := d.GetStatus()
		if st.GetObservedGeneration() < d.GetMetadata().GetGeneration() {
			return fmt.Errorf("generation %d observed %d", d.GetMetadata().GetGeneration(), st.GetObservedGeneration())
		}
		if n := int32(replicas); st.GetReplicas() != n || st.GetUpdatedReplicas() != n || st.GetReadyReplicas() != n || st.GetAvailableReplicas() != n {
			return fmt.Errorf("status %v", st)
		}
		pods, err := podsOf(ctx, c, name)
		if err != nil {
			return err
		}
		ips := map[string]bool{}
		for _, p := range pods {
			if p.GetMetadata().GetDeletionTimestamp() != nil || p.GetStatus().GetPhase() != "Running" ||
				podReadySince(p).IsZero() || p.GetMetadata().GetLabels()["version"] != version {
				return fmt.Errorf("pods %s", describePods(pods))
			}
			ips[p.GetStatus().GetPodIp()] = true
		}
		if len(pods) != replicas {
			return fmt.Errorf("%d pods: %s", len(pods), describePods(pods))
		}
		ep, err := client.For[*corev1.Endpoints](c.Conn).Get(ctx, "default", name)
		if err != nil {
			return err
		}
		listed := map[string]bool{}
		for _, ss := range ep.GetSubsets() {
			if len(ss.GetNotReadyAddresses()) > 0 {
				return fmt.Errorf("endpoints list not-ready addresses %v", ss.GetNotReadyAddresses())
			}
			for _, a := range ss.GetAddresses() {
				listed[a.GetIp()] = true
			}
		}
		if !maps.Equal(listed, ips) {
			return fmt.Errorf("endpoints %v, pods %v", slices.Sorted(maps.Keys(listed)), slices.Sorted(maps.Keys(ips)))
		}
		out = pods
		return nil
	})
	return out
}

// checkServed waits until every pod has answered after t0 and fails the
// test if any answer since t0 came from another pod or another version.
func checkServed(t *testing.T, l *load, pods []*corev1.Pod, version string, t0 time.Time) {
	t.Helper()
	want := map[string]bool{}
	for _, p := range pods {
		want[p.GetMetadata().GetName()] = true
	}
	harness.Eventually(t, 30*time.Second, fmt.Sprintf("every one of %d ready pods answering", len(want)), func() error {
		got := map[string]int{}
		for _, r := range l.since(t0) {
			if !want[r.host] || r.version != version {
				t.Fatalf("answer from pod %q version %q at %s; the pods are %v at %s", r.host, r.version,
					r.at.Format("15:04:05.000"), slices.Sorted(maps.Keys(want)), version)
			}
			got[r.host]++
		}
		if len(got) != len(want) {
			return fmt.Errorf("answers by pod %v", got)
		}
		return nil
	})
}

// setDeployment changes the Deployment with fn, retrying on conflicts.
func setDeployment(t *testing.T, c *Cluster, name string, fn func(d *appsv1.Deployment)) {
	t.Helper()
	ctx := context.Background()
	res := client.For[*appsv1.Deployment](c.Conn)
	err := client.RetryOnConflict(ctx, client.DefaultRetry, func() error {
		d, err := res.Get(ctx, "default", name)
		if err != nil {
			return err
		}
		fn(d)
		_, err = res.Update(ctx, d)
		return err
	})
	if err != nil {
		t.Fatalf("updating Deployment %s: %v", name, err)
	}
}

// rollBack does what `bosun rollout undo deployment/NAME` does: it puts
// the template of the newest other revision back into the Deployment.
// It returns the revision rolled back to and its ReplicaSet's UID.
func rollBack(t *testing.T, c *Cluster, name string) (int64, string) {
	t.Helper()
	ctx := context.Background()
	var target int64
	var uid string
	setDeployment(t, c, name, func(d *appsv1.Deployment) {
		sets, _, err := client.For[*appsv1.ReplicaSet](c.Conn).ListAll(ctx, client.ListOptions{Namespace: "default"})
		if err != nil {
			t.Fatal(err)
		}
		current, _ := strconv.ParseInt(d.GetMetadata().GetAnnotations()[revisionAnnotation], 10, 64)
		var from *appsv1.ReplicaSet
		target = 0
		for _, rs := range sets {
			if !slices.ContainsFunc(rs.GetMetadata().GetOwnerReferences(), func(r *metav1.OwnerReference) bool {
				return r.GetController() && r.GetUid() == d.GetMetadata().GetUid()
			}) {
				continue
			}
			rev, err := strconv.ParseInt(rs.GetMetadata().GetAnnotations()[revisionAnnotation], 10, 64)
			if err == nil && rev != current && rev > target {
				target, from = rev, rs
			}
		}
		if from == nil {
			t.Fatalf("Deployment %s (revision %d) has no previous revision to roll back to", name, current)
		}
		uid = from.GetMetadata().GetUid()
		tmpl := proto.Clone(from.GetSpec().GetTemplate()).(*corev1.PodTemplateSpec)
		delete(tmpl.GetMetadata().GetLabels(), "pod-template-hash")
		d.Spec.Template = tmpl
	})
	return target, uid
}

// ownerUIDs lists the UIDs of the ReplicaSets owning pods.
func ownerUIDs(pods []*corev1.Pod) map[string]bool {
	out := map[string]bool{}
	for _, p := range pods {
		for _, r := range p.GetMetadata().GetOwnerReferences() {
			if r.GetController() {
				out[r.GetUid()] = true
			}
		}
	}
	return out
}

// A gRPC Deployment behind a Service, reached by a proxyless gRPC client
// through the service-proxy (xds:///NAME.default) that sends requests the
// whole time: scaled 3 -> 10 -> 2, rolled from v1 to v2 and rolled back.
// No request fails; after each step every ready pod answers and only
// pods of the expected version do.
func TestRolloutGRPCThroughXDS(t *testing.T) {
	c := Start(t, 3)
	rec := c.RecordWatches(t, KindPod, KindDeployment, KindReplicaSet, KindEndpoints)
	ctx := context.Background()
	name := "grpc-" + randomHex(3)
	sp := startServiceProxy(t, c)

	if _, err := client.For[*corev1.Service](c.Conn).Create(ctx, &corev1.Service{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: &corev1.ServiceSpec{Selector: map[string]string{"app": name},
			Ports: []*corev1.ServicePort{{Name: "grpc", Port: grpcPort, TargetPort: &metav1.IntOrString{IntVal: grpcPort}}}},
	}); err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	if _, err := client.For[*appsv1.Deployment](c.Conn).Create(ctx, grpcDeployment(c, name, 3, "v1")); err != nil {
		t.Fatal(err)
	}
	// Runs before the cluster's cleanups: the pods go while the
	// node-agents still run.
	t.Cleanup(func() { removeWorkload(t, c, name) })

	pods := waitSettled(t, c, name, 3, "v1")
	t.Logf("rollout: 3 pods of v1 Ready and listed in the Endpoints %.2f s after the Deployment was created", time.Since(created).Seconds())

	conn := sp.dialXDS(t, "rollout-client-"+randomHex(3), name+".default")
	first := time.Now()
	// The first call waits for the xDS configuration; the load starts once
	// the path works.
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	if _, err := testgrpc.NewTestServiceClient(conn).UnaryCall(rctx, &testpb.SimpleRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("first call through xds:///%s.default: %v", name, err)
	}
	cancel()
	t.Logf("rollout: first answer through xDS %.3f s after dialing", time.Since(first).Seconds())
	l := startLoad(conn, 2)
	defer l.stop()
	checkServed(t, l, pods, "v1", first)

	// Scale up: the new pods receive traffic once Ready.
	before := map[string]bool{}
	for _, p := range pods {
		before[p.GetMetadata().GetName()] = true
	}
	t0 := time.Now()
	setDeployment(t, c, name, func(d *appsv1.Deployment) { n := int32(10); d.Spec.Replicas = &n })
	pods = waitSettled(t, c, name, 10, "v1")
	scaledUp := time.Since(t0)
	checkServed(t, l, pods, "v1", t0)
	var toTraffic, readyToTraffic []float64
	for _, p := range pods {
		if before[p.GetMetadata().GetName()] {
			continue
		}
		at := l.firstFrom(p.GetMetadata().GetName())
		toTraffic = append(toTraffic, at.Sub(t0).Seconds())
		readyToTraffic = append(readyToTraffic, at.Sub(podReadySince(p)).Seconds())
	}
	t.Logf("rollout: scale 3 -> 10 settled in %.2f s; a new pod's first answer after the scale request: %s; after the pod turned Ready: %s",
		scaledUp.Seconds(), spread(toTraffic), spread(readyToTraffic))

	t0 = time.Now()
	setDeployment(t, c, name, func(d *appsv1.Deployment) { n := int32(2); d.Spec.Replicas = &n })
	pods = waitSettled(t, c, name, 2, "v1")
	t.Logf("rollout: scale 10 -> 2 settled (removed pods drained and gone) in %.2f s", time.Since(t0).Seconds())
	t1 := time.Now()
	checkServed(t, l, pods, "v1", t1)
	v1Sets := ownerUIDs(pods)

	// Rolling update to v2.
	t0 = time.Now()
	setDeployment(t, c, name, func(d *appsv1.Deployment) {
		d.Spec.Template = podTemplate(c, name, "v2", d.GetSpec().GetTemplate().GetSpec().GetTerminationGracePeriodSeconds(), drainSeconds)
	})
	pods = waitSettled(t, c, name, 2, "v2")
	t.Logf("rollout: rolling update v1 -> v2 of 2 pods settled in %.2f s", time.Since(t0).Seconds())
	t1 = time.Now()
	checkServed(t, l, pods, "v2", t1)

	// Roll back to v1: the v1 ReplicaSet is used again.
	t0 = time.Now()
	rev, rsUID := rollBack(t, c, name)
	pods = waitSettled(t, c, name, 2, "v1")
	t.Logf("rollout: rollback v2 -> v1 (back to the template of revision %d) settled in %.2f s", rev, time.Since(t0).Seconds())
	t1 = time.Now()
	checkServed(t, l, pods, "v1", t1)
	if got := ownerUIDs(pods); !v1Sets[rsUID] || !maps.Equal(got, map[string]bool{rsUID: true}) {
		t.Errorf("after the rollback the pods belong to ReplicaSets %v, want the first v1 ReplicaSet %s (v1 pods had %v)", got, rsUID, v1Sets)
	}
	d, err := client.For[*appsv1.Deployment](c.Conn).Get(ctx, "default", name)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.GetMetadata().GetAnnotations()[revisionAnnotation]; got != "3" {
		t.Errorf("Deployment at revision %q after v1, v2 and the rollback, want 3", got)
	}

	l.stop()
	sent, failed, failures := l.counts()
	t.Logf("rollout: %d requests sent through xDS over %.1f s, %d failed", sent, time.Since(first).Seconds(), failed)
	if failed > 0 {
		t.Errorf("%d of %d requests failed; the first ones: %v", failed, sent, failures[:min(len(failures), 10)])
	}
	c.CheckFinalState(t)
	rec.Check(t)
}

// spread describes measured durations in seconds: count, median and max.
func spread(s []float64) string {
	if len(s) == 0 {
		return "none"
	}
	s = slices.Clone(s)
	slices.Sort(s)
	return fmt.Sprintf("median %.2f s, max %.2f s (%d pods)", s[len(s)/2], s[len(s)-1], len(s))
}
