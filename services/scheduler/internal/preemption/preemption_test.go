package preemption_test

import (
	"context"
	"slices"
	"sort"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/scheduler/internal/cache"
	"bosun.dev/services/scheduler/internal/framework"
	"bosun.dev/services/scheduler/internal/plugins"
	"bosun.dev/services/scheduler/internal/preemption"
	st "bosun.dev/services/scheduler/internal/schedtest"
)

// run filters pod on every node with the default plugins and, since none
// fits, preempts; it returns the nominated node and the victims deleted.
func run(t *testing.T, pod *framework.PodInfo, infos ...*framework.NodeInfo) (string, []string, *framework.Status) {
	t.Helper()
	snap := cache.NewSnapshotFrom(infos...)
	fw, err := framework.New(framework.Profile{SchedulerName: framework.DefaultSchedulerName}, plugins.NewRegistry(), plugins.Defaults(),
		framework.Options{Snapshot: snap, Parallelism: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	state := framework.NewCycleState()
	if s := fw.RunPreFilterPlugins(ctx, state, pod); !s.IsSuccess() {
		t.Fatalf("PreFilter: %v", s)
	}
	m := framework.NodeToStatus{}
	for _, ni := range snap.List() {
		s := fw.RunFilterPlugins(ctx, state, pod, ni)
		if s.IsSuccess() {
			t.Fatalf("pod fits %s without preemption", ni.Name())
		}
		m[ni.Name()] = s
	}
	var deleted []string
	ev := &preemption.Evaluator{Handle: fw, Delete: func(_ context.Context, p *corev1.Pod) error {
		deleted = append(deleted, p.GetMetadata().GetName())
		return nil
	}}
	res, s := ev.Preempt(ctx, state, pod, m)
	sort.Strings(deleted)
	if res == nil {
		return "", deleted, s
	}
	return res.NominatedNodeName, deleted, s
}

func TestPreemption(t *testing.T) {
	small := func() *st.NodeWrapper { return st.Node("x").Capacity("2", "4Gi", "110") }
	tests := []struct {
		name        string
		pod         *st.PodWrapper
		nodes       []*framework.NodeInfo
		wantNode    string
		wantVictims []string
	}{
		{
			name: "evicts the lower-priority pod",
			pod:  st.Pod("p").Priority(100).Req("2", "1Gi"),
			nodes: []*framework.NodeInfo{
				st.NodeInfo(st.Node("n1").Capacity("2", "4Gi", "110").Obj(), st.Pod("low").Priority(10).Req("1", "1Gi").Obj()),
			},
			wantNode: "n1", wantVictims: []string{"low"},
		},
		{
			name: "keeps pods it does not need to evict",
			pod:  st.Pod("p").Priority(100).Req("1", "1Gi"),
			nodes: []*framework.NodeInfo{
				st.NodeInfo(st.Node("n1").Capacity("2", "4Gi", "110").Obj(),
					st.Pod("low1").Priority(10).Req("1", "1Gi").Obj(), st.Pod("low2").Priority(20).Req("1", "1Gi").Obj()),
			},
			wantNode: "n1", wantVictims: []string{"low1"},
		},
		{
			name: "chooses the node whose victims have the lowest priority",
			pod:  st.Pod("p").Priority(100).Req("2", "1Gi"),
			nodes: []*framework.NodeInfo{
				st.NodeInfo(st.Node("n1").Capacity("2", "4Gi", "110").Obj(), st.Pod("mid").Priority(50).Req("2", "1Gi").Obj()),
				st.NodeInfo(st.Node("n2").Capacity("2", "4Gi", "110").Obj(), st.Pod("low").Priority(5).Req("2", "1Gi").Obj()),
			},
			wantNode: "n2", wantVictims: []string{"low"},
		},
		{
			name: "then the fewest victims",
			pod:  st.Pod("p").Priority(100).Req("2", "1Gi"),
			nodes: []*framework.NodeInfo{
				st.NodeInfo(st.Node("n1").Capacity("2", "4Gi", "110").Obj(),
					st.Pod("a").Priority(5).Req("1", "1Gi").Obj(), st.Pod("b").Priority(0).Req("1", "1Gi").Obj()),
				st.NodeInfo(st.Node("n2").Capacity("2", "4Gi", "110").Obj(), st.Pod("c").Priority(5).Req("2", "1Gi").Obj()),
			},
			wantNode: "n2", wantVictims: []string{"c"},
		},
		{
			name: "never evicts equal or higher priority",
			pod:  st.Pod("p").Priority(100).Req("2", "1Gi"),
			nodes: []*framework.NodeInfo{
				st.NodeInfo(st.Node("n1").Capacity("2", "4Gi", "110").Obj(), st.Pod("peer").Priority(100).Req("1", "1Gi").Obj()),
			},
		},
		{
			name: "does not try nodes rejected for unresolvable reasons",
			pod:  st.Pod("p").Priority(100).Req("2", "1Gi"),
			nodes: []*framework.NodeInfo{
				st.NodeInfo(st.Node("n1").Capacity("2", "4Gi", "110").Taint("dedicated", "gpu", "NoSchedule").Obj(),
					st.Pod("low").Priority(1).Req("2", "1Gi").Obj()),
			},
		},
		{
			name: "preemptionPolicy Never",
			pod:  st.Pod("p").Priority(100).Req("2", "1Gi"),
			nodes: []*framework.NodeInfo{
				st.NodeInfo(small().Obj(), st.Pod("low").Priority(1).Req("2", "1Gi").Obj()),
			},
		},
		{
			name: "evicting makes room for anti-affinity",
			pod:  st.Pod("p").Priority(100).PodAntiAffinity("kubernetes.io/hostname", "app", "db"),
			nodes: []*framework.NodeInfo{
				st.NodeInfo(st.Node("n1").Obj(), st.Pod("db").Label("app", "db").Priority(1).Obj()),
			},
			wantNode: "n1", wantVictims: []string{"db"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "preemptionPolicy Never" {
				tc.pod.Obj().Spec.PreemptionPolicy = "Never"
			}
			node, victims, s := run(t, tc.pod.Info(), tc.nodes...)
			if node != tc.wantNode || !slices.Equal(victims, tc.wantVictims) {
				t.Fatalf("nominated %q victims %v (%v), want %q %v", node, victims, s, tc.wantNode, tc.wantVictims)
			}
			if tc.wantNode == "" && s.Code() != framework.Unschedulable {
				t.Fatalf("status %v, want Unschedulable", s)
			}
		})
	}
}

func TestWaitsForTerminatingVictims(t *testing.T) {
	victim := st.Pod("low").Priority(1).Req("2", "1Gi").Obj()
	victim.Metadata.DeletionTimestamp = timestamppb.Now()
	pod := st.Pod("p").Priority(100).Req("2", "1Gi")
	pod.Obj().Status.NominatedNodeName = "n1"
	_, victims, s := run(t, pod.Info(), st.NodeInfo(st.Node("n1").Capacity("2", "4Gi", "110").Obj(), victim))
	if len(victims) != 0 || s.Code() != framework.Unschedulable {
		t.Fatalf("victims %v status %v; want none while the nominated node's victim terminates", victims, s)
	}
}
