package cli

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
)

type fakeReplicaSets struct {
	appsv1.UnimplementedReplicaSetServiceServer
	s *fakeStore
}

func (f *fakeReplicaSets) ListReplicaSets(_ context.Context, r *appsv1.ListReplicaSetsRequest) (*appsv1.ListReplicaSetsResponse, error) {
	objs, rv, err := f.s.list("ReplicaSet", r.GetNamespace(), r.GetLabelSelector())
	if err != nil {
		return nil, err
	}
	resp := &appsv1.ListReplicaSetsResponse{ResourceVersion: rv}
	for _, o := range objs {
		resp.Items = append(resp.Items, o.(*appsv1.ReplicaSet))
	}
	return resp, nil
}

type fakeServices struct {
	corev1.UnimplementedServiceServiceServer
	s *fakeStore
}

func (f *fakeServices) CreateService(_ context.Context, r *corev1.CreateServiceRequest) (*corev1.CreateServiceResponse, error) {
	obj, err := f.s.create("Service", r.GetService())
	if err != nil {
		return nil, err
	}
	return &corev1.CreateServiceResponse{Service: obj.(*corev1.Service)}, nil
}

// startWorkloadCluster serves Deployments, ReplicaSets and Services from one
// store.
func startWorkloadCluster(t *testing.T) *testCluster {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	store := newFakeStore(testNow)
	srv := grpc.NewServer()
	appsv1.RegisterDeploymentServiceServer(srv, &fakeDeployments{s: store})
	appsv1.RegisterReplicaSetServiceServer(srv, &fakeReplicaSets{s: store})
	corev1.RegisterServiceServiceServer(srv, &fakeServices{s: store})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return &testCluster{addr: lis.Addr().String(), store: store}
}

func (c *testCluster) deployment(t *testing.T, name string) *appsv1.Deployment {
	t.Helper()
	obj, err := c.store.get("Deployment", "default", name)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*appsv1.Deployment)
}

// setDeploymentStatus writes status as the Deployment controller would.
func (c *testCluster) setDeploymentStatus(name string, st *appsv1.DeploymentStatus) {
	c.store.mu.Lock()
	defer c.store.mu.Unlock()
	d := c.store.objects[storeKey("Deployment", "default", name)].(*appsv1.Deployment)
	next := proto.Clone(d).(*appsv1.Deployment)
	st.ObservedGeneration = d.Metadata.Generation
	next.Status = st
	c.store.objects[storeKey("Deployment", "default", name)] = next
}

func TestRunCreatesADeploymentAndExposeAService(t *testing.T) {
	c := startWorkloadCluster(t)
	r := c.run(t, testNow, "", "run", "web", "--image", "nginx:1.27", "--port", "80", "--replicas", "3")
	if r.code != 0 || r.stdout != "deployment.apps/web created\n" {
		t.Fatalf("run: %+v", r)
	}
	d := c.deployment(t, "web")
	ct := d.Spec.Template.Spec.Containers[0]
	if d.Spec.GetReplicas() != 3 || ct.Image != "nginx:1.27" || ct.Ports[0].ContainerPort != 80 ||
		d.Spec.Selector.MatchLabels["app"] != "web" || d.Spec.Template.Metadata.Labels["app"] != "web" {
		t.Fatalf("deployment %v", d)
	}
	r = c.run(t, testNow, "", "expose", "deployment", "web", "--port", "8080", "--target-port", "80")
	if r.code != 0 || r.stdout != "service/web exposed\n" {
		t.Fatalf("expose: %+v", r)
	}
	obj, err := c.store.get("Service", "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	svc := obj.(*corev1.Service)
	if svc.Spec.Selector["app"] != "web" || svc.Spec.Ports[0].Port != 8080 || svc.Spec.Ports[0].TargetPort.IntVal != 80 {
		t.Fatalf("service %v", svc)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "x"}, "--image is required"},
		{[]string{"run", "x", "--image", "i", "--replicas", "-2"}, "--replicas: -2"},
		{[]string{"run", "x", "--image", "i", "--port", "70000"}, "--port: 70000"},
		{[]string{"expose", "deployment", "web"}, "--port: 0"},
		{[]string{"expose", "deployment", "nope", "--port", "80"}, "NotFound"},
	} {
		r := c.run(t, testNow, "", bad.args...)
		if r.code != 1 || !strings.Contains(r.stderr, bad.want) {
			t.Errorf("%v: %+v, want exit 1 and %q", bad.args, r, bad.want)
		}
	}
}

func TestScale(t *testing.T) {
	c := startWorkloadCluster(t)
	if r := c.run(t, testNow, "", "run", "web", "--image", "i:1"); r.code != 0 {
		t.Fatal(r)
	}
	for _, args := range [][]string{{"scale", "deploy/web", "--replicas", "5"}, {"scale", "deployment", "web", "--replicas", "0"}} {
		r := c.run(t, testNow, "", args...)
		if r.code != 0 || r.stdout != "deployment.apps/web scaled\n" {
			t.Fatalf("%v: %+v", args, r)
		}
	}
	if got := c.deployment(t, "web").Spec.GetReplicas(); got != 0 {
		t.Fatalf("replicas %d after scaling to 0", got)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"scale", "deploy/web", "--replicas", "-1"}, "--replicas: -1: must be 0 or more"},
		{[]string{"scale", "deploy/web"}, "--replicas is required"},
		{[]string{"scale", "svc/web", "--replicas", "2"}, "services is not supported here"},
		{[]string{"scale", "web", "--replicas", "2"}, "TYPE/NAME"},
	} {
		r := c.run(t, testNow, "", bad.args...)
		if r.code != 1 || !strings.Contains(r.stderr, bad.want) {
			t.Errorf("%v: %+v, want exit 1 and %q", bad.args, r, bad.want)
		}
	}
}

// seedRevisions stores web at revision 2 (image v2) with the ReplicaSets of
// revisions 1 and 2.
func seedRevisions(t *testing.T, c *testCluster) {
	t.Helper()
	if r := c.run(t, testNow, "", "run", "web", "--image", "img:v2"); r.code != 0 {
		t.Fatal(r)
	}
	d := c.deployment(t, "web")
	d.Metadata.Annotations = map[string]string{revisionAnnotation: "2"}
	if _, err := c.store.update("Deployment", d); err != nil {
		t.Fatal(err)
	}
	for rev, img := range map[string]string{"1": "img:v1", "2": "img:v2"} {
		tmpl := proto.Clone(d.Spec.Template).(*corev1.PodTemplateSpec)
		tmpl.Metadata.Labels[podTemplateHashLabel] = "h" + rev
		tmpl.Spec.Containers[0].Image = img
		rs := &appsv1.ReplicaSet{
			Metadata: &metav1.ObjectMeta{Name: "web-h" + rev, Namespace: "default",
				Annotations:     map[string]string{revisionAnnotation: rev, changeCauseAnnotation: "set image " + img},
				OwnerReferences: []*metav1.OwnerReference{{Kind: "Deployment", Name: "web", Uid: d.Metadata.Uid, Controller: proto.Bool(true)}}},
			Spec: &appsv1.ReplicaSetSpec{Template: tmpl},
		}
		if _, err := c.store.create("ReplicaSet", rs); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRolloutHistoryAndUndo(t *testing.T) {
	c := startWorkloadCluster(t)
	seedRevisions(t, c)
	r := c.run(t, testNow, "", "rollout", "history", "deploy/web")
	if r.code != 0 || !strings.Contains(r.stdout, "1         set image img:v1") || !strings.Contains(r.stdout, "2         set image img:v2") {
		t.Fatalf("history: %+v", r)
	}
	r = c.run(t, testNow, "", "rollout", "undo", "deploy/web", "--to-revision", "7")
	if r.code != 1 || !strings.Contains(r.stderr, `--to-revision: revision 7 of deployment "web" not found (revisions kept: 1, 2)`) {
		t.Fatalf("undo to an unknown revision: %+v", r)
	}
	if img := c.deployment(t, "web").Spec.Template.Spec.Containers[0].Image; img != "img:v2" {
		t.Fatalf("a refused undo changed the template to %s", img)
	}
	r = c.run(t, testNow, "", "rollout", "undo", "deploy/web")
	if r.code != 0 || r.stdout != "deployment.apps/web rolled back to revision 1\n" {
		t.Fatalf("undo: %+v", r)
	}
	d := c.deployment(t, "web")
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "img:v1" {
		t.Fatalf("template runs %s after undo, want img:v1", img)
	}
	if _, ok := d.Spec.Template.Metadata.Labels[podTemplateHashLabel]; ok {
		t.Fatal("undo copied the pod-template-hash label into the deployment")
	}
}

func TestRolloutPauseResume(t *testing.T) {
	c := startWorkloadCluster(t)
	if r := c.run(t, testNow, "", "run", "web", "--image", "i:1"); r.code != 0 {
		t.Fatal(r)
	}
	if r := c.run(t, testNow, "", "rollout", "pause", "deploy/web"); r.code != 0 || r.stdout != "deployment.apps/web paused\n" || !c.deployment(t, "web").Spec.Paused {
		t.Fatalf("pause: %+v", r)
	}
	if r := c.run(t, testNow, "", "rollout", "resume", "deploy/web"); r.code != 0 || c.deployment(t, "web").Spec.Paused {
		t.Fatalf("resume: %+v", r)
	}
}

// rollout status prints each new state of the rollout and exits 0 when it
// completes, or 1 when the progress deadline is exceeded.
func TestRolloutStatus(t *testing.T) {
	defer func(d time.Duration) { rolloutPollInterval = d }(rolloutPollInterval)
	rolloutPollInterval = 10 * time.Millisecond
	c := startWorkloadCluster(t)
	if r := c.run(t, testNow, "", "run", "web", "--image", "i:1", "--replicas", "3"); r.code != 0 {
		t.Fatal(r)
	}
	c.setDeploymentStatus("web", &appsv1.DeploymentStatus{Replicas: 4, UpdatedReplicas: 1, AvailableReplicas: 3})
	go func() {
		time.Sleep(100 * time.Millisecond)
		c.setDeploymentStatus("web", &appsv1.DeploymentStatus{Replicas: 4, UpdatedReplicas: 3, AvailableReplicas: 3})
		time.Sleep(100 * time.Millisecond)
		c.setDeploymentStatus("web", &appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3})
	}()
	r := c.run(t, testNow, "", "rollout", "status", "deploy/web")
	want := `Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...
Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...
deployment "web" successfully rolled out
`
	if r.code != 0 || r.stdout != want {
		t.Fatalf("status: code %d\n%s\nwant\n%s", r.code, r.stdout, want)
	}
	c.setDeploymentStatus("web", &appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 1, Conditions: []*appsv1.DeploymentCondition{
		{Type: "Progressing", Status: "False", Reason: "ProgressDeadlineExceeded"}}})
	r = c.run(t, testNow, "", "rollout", "status", "deploy/web")
	if r.code != 1 || !strings.Contains(r.stderr, `deployment "web" exceeded its progress deadline`) {
		t.Fatalf("status past the deadline: %+v", r)
	}
}
