package cli

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
)

type fakeNodes struct {
	corev1.UnimplementedNodeServiceServer
	s *fakeStore
}

func (f *fakeNodes) GetNode(_ context.Context, r *corev1.GetNodeRequest) (*corev1.GetNodeResponse, error) {
	obj, err := f.s.get("Node", "", r.GetName())
	if err != nil {
		return nil, err
	}
	return &corev1.GetNodeResponse{Node: obj.(*corev1.Node)}, nil
}

func (f *fakeNodes) UpdateNode(_ context.Context, r *corev1.UpdateNodeRequest) (*corev1.UpdateNodeResponse, error) {
	obj, err := f.s.update("Node", r.GetNode())
	if err != nil {
		return nil, err
	}
	return &corev1.UpdateNodeResponse{Node: obj.(*corev1.Node)}, nil
}

// startNodeCluster serves Nodes and Pods from one store, with nodes n1 and
// n2 and pods on them.
func startNodeCluster(t *testing.T) *testCluster {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	store := newFakeStore(testNow)
	srv := grpc.NewServer()
	pods := &fakePods{s: store}
	corev1.RegisterPodServiceServer(srv, pods)
	corev1.RegisterNodeServiceServer(srv, &fakeNodes{s: store})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	for _, n := range []string{"n1", "n2"} {
		if _, err := store.create("Node", &corev1.Node{Metadata: &metav1.ObjectMeta{Name: n}}); err != nil {
			t.Fatal(err)
		}
	}
	pod := func(node, name, owner string) {
		p := &corev1.Pod{Metadata: &metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: &corev1.PodSpec{NodeName: node, Containers: []*corev1.Container{{Name: "c", Image: "img"}}}}
		if owner != "" {
			p.Metadata.OwnerReferences = []*metav1.OwnerReference{{Kind: owner, Name: "o", Controller: proto.Bool(true)}}
		}
		if _, err := store.create("Pod", p); err != nil {
			t.Fatal(err)
		}
	}
	pod("n1", "web-1", "ReplicaSet")
	pod("n1", "db-0", "StatefulSet")
	pod("n1", "agent-x", "DaemonSet")
	pod("n1", "loose", "")
	pod("n2", "web-2", "ReplicaSet")
	return &testCluster{addr: lis.Addr().String(), store: store, pods: pods}
}

func (c *testCluster) nodeSpec(t *testing.T, name string) *corev1.NodeSpec {
	t.Helper()
	obj, err := c.store.get("Node", "", name)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*corev1.Node).GetSpec()
}

func (c *testCluster) hasPod(name string) bool {
	_, err := c.store.get("Pod", "default", name)
	return err == nil
}

func TestCordonUncordon(t *testing.T) {
	c := startNodeCluster(t)
	steps := []struct {
		args       []string
		wantOut    string
		wantUnsch  bool
		wantCode   int
		wantErrSub string
	}{
		{[]string{"cordon", "n1"}, "node/n1 cordoned\n", true, 0, ""},
		{[]string{"cordon", "n1"}, "node/n1 already cordoned\n", true, 0, ""},
		{[]string{"uncordon", "n1"}, "node/n1 uncordoned\n", false, 0, ""},
		{[]string{"uncordon", "n1"}, "node/n1 already uncordoned\n", false, 0, ""},
		{[]string{"cordon", "nope"}, "", false, 1, `Node "nope" not found`},
		{[]string{"cordon"}, "", false, 1, "cordon needs exactly one node name, got 0 arguments"},
		{[]string{"uncordon", "n1", "n2"}, "", false, 1, "uncordon needs exactly one node name, got 2 arguments"},
	}
	for _, s := range steps {
		r := c.run(t, testNow, "", s.args...)
		if r.code != s.wantCode || r.stdout != s.wantOut || !strings.Contains(r.stderr, s.wantErrSub) {
			t.Fatalf("%v: got %+v, want code %d stdout %q stderr containing %q", s.args, r, s.wantCode, s.wantOut, s.wantErrSub)
		}
		if s.wantCode == 0 && c.nodeSpec(t, "n1").GetUnschedulable() != s.wantUnsch {
			t.Fatalf("%v: unschedulable = %v, want %v", s.args, !s.wantUnsch, s.wantUnsch)
		}
	}
}

func TestDrain(t *testing.T) {
	c := startNodeCluster(t)
	r := c.run(t, testNow, "", "drain", "n1")
	if r.code != 1 || !strings.Contains(r.stderr, "pods not managed by a controller would be lost: default/loose (use --force") {
		t.Fatalf("drain with an unmanaged pod: %+v", r)
	}
	if !c.nodeSpec(t, "n1").GetUnschedulable() {
		t.Errorf("drain did not cordon n1 before refusing")
	}
	if !c.hasPod("web-1") || !c.hasPod("loose") {
		t.Errorf("drain deleted pods although it refused")
	}

	for _, bad := range [][]string{{"drain", "n1", "--grace-period", "-2"}, {"drain", "n1", "--timeout", "-1s"}} {
		if r := c.run(t, testNow, "", bad...); r.code != 1 || !strings.Contains(r.stderr, "invalid --") {
			t.Errorf("%v: %+v, want an error naming the flag", bad, r)
		}
	}

	r = c.run(t, testNow, "", "drain", "n1", "--force", "--grace-period", "7")
	if r.code != 0 {
		t.Fatalf("drain --force: %+v", r)
	}
	want := "node/n1 already cordoned\nignoring DaemonSet pod default/agent-x\n" +
		"evicting pod default/db-0\nevicting pod default/web-1\nevicting pod default/loose\nnode/n1 drained\n"
	if r.stdout != want {
		t.Errorf("drain output:\n%s\nwant:\n%s", r.stdout, want)
	}
	for pod, want := range map[string]bool{"web-1": false, "db-0": false, "loose": false, "agent-x": true, "web-2": true} {
		if c.hasPod(pod) != want {
			t.Errorf("after drain pod %s present = %v, want %v", pod, !want, want)
		}
	}
	c.pods.deleteMutex.Lock()
	last := c.pods.lastDelete
	c.pods.deleteMutex.Unlock()
	if last.GracePeriodSeconds == nil || *last.GracePeriodSeconds != 7 || last.GetPreconditions().GetUid() == "" {
		t.Errorf("last delete = %v, want grace period 7 and a uid precondition", last)
	}
}

func TestNodeOutOfService(t *testing.T) {
	c := startNodeCluster(t)
	taint := func() *corev1.Taint {
		for _, tn := range c.nodeSpec(t, "n1").GetTaints() {
			if tn.GetKey() == outOfServiceTaintKey {
				return tn
			}
		}
		return nil
	}
	if r := c.run(t, testNow, "", "node", "out-of-service", "n1"); r.code != 0 || r.stdout != "node/n1 out of service\n" {
		t.Fatalf("out-of-service: %+v", r)
	}
	if tn := taint(); tn == nil || tn.GetEffect() != "NoExecute" || tn.GetValue() != "nodeshutdown" {
		t.Fatalf("taint = %v, want %s=nodeshutdown:NoExecute", tn, outOfServiceTaintKey)
	}
	if r := c.run(t, testNow, "", "node", "out-of-service", "n1"); r.stdout != "node/n1 already out of service\n" || len(c.nodeSpec(t, "n1").GetTaints()) != 1 {
		t.Fatalf("second out-of-service: %+v, taints %v", r, c.nodeSpec(t, "n1").GetTaints())
	}
	if r := c.run(t, testNow, "", "node", "out-of-service", "n1", "--clear"); r.code != 0 || r.stdout != "node/n1 back in service\n" || taint() != nil {
		t.Fatalf("--clear: %+v, taint %v", r, taint())
	}
	if r := c.run(t, testNow, "", "node", "out-of-service", "ghost"); r.code != 1 || !strings.Contains(r.stderr, `Node "ghost" not found`) {
		t.Fatalf("unknown node: %+v", r)
	}
}

func TestDescribeNodeShowsTaintsAndConditionTimes(t *testing.T) {
	c := startNodeCluster(t)
	n := &corev1.Node{
		Metadata: &metav1.ObjectMeta{Name: "n3"},
		Spec:     &corev1.NodeSpec{Unschedulable: true, Taints: []*corev1.Taint{{Key: "node.kubernetes.io/unreachable", Effect: "NoExecute"}}},
		Status: &corev1.NodeStatus{Conditions: []*corev1.NodeCondition{{
			Type: "Ready", Status: "Unknown", Reason: "NodeStatusUnknown", Message: "node-agent stopped renewing its Lease",
			LastHeartbeatTime: timestamppb.New(testNow.Add(-time.Minute)), LastTransitionTime: timestamppb.New(testNow.Add(-50 * time.Second)),
		}}},
	}
	if _, err := c.store.create("Node", n); err != nil {
		t.Fatal(err)
	}
	r := c.run(t, testNow, "", "describe", "node", "n3")
	if r.code != 0 {
		t.Fatalf("describe: %+v", r)
	}
	for _, want := range []string{
		"Status:            Unknown,SchedulingDisabled\n",
		"Taints:            node.kubernetes.io/unreachable:NoExecute\n",
		"Unschedulable:     true\n",
		"LastHeartbeatTime",
		"Ready  Unknown  2024-05-01T09:59:00Z  2024-05-01T09:59:10Z  NodeStatusUnknown  node-agent stopped renewing its Lease\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("describe output lacks %q:\n%s", want, r.stdout)
		}
	}
}
