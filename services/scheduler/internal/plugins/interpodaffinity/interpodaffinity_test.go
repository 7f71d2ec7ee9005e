package interpodaffinity_test

import (
	"testing"

	"k8s.io/apimachinery/pkg/labels"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/services/scheduler/internal/framework"
	"bosun.dev/services/scheduler/internal/plugins/interpodaffinity"
	st "bosun.dev/services/scheduler/internal/schedtest"
)

const zone = "topology.kubernetes.io/zone"
const host = "kubernetes.io/hostname"

// Nodes a1, a2 in zone a; b1 in zone b; c1 without a zone label.
func cluster(pods map[string][]*corev1.Pod) *st.Handle {
	return st.NewHandle(
		st.NodeInfo(st.Node("a1").Label(zone, "a").Obj(), pods["a1"]...),
		st.NodeInfo(st.Node("a2").Label(zone, "a").Obj(), pods["a2"]...),
		st.NodeInfo(st.Node("b1").Label(zone, "b").Obj(), pods["b1"]...),
		st.NodeInfo(st.Node("c1").Obj(), pods["c1"]...),
	)
}

func TestFilter(t *testing.T) {
	db := st.Pod("db").Label("app", "db").Obj()
	lonely := st.Pod("lonely").Label("app", "lonely").PodAntiAffinity(zone, "app", "web").Obj()
	tests := []struct {
		name   string
		pods   map[string][]*corev1.Pod
		pod    *st.PodWrapper
		fits   []string
		reason string
	}{
		{name: "no terms and no existing anti-affinity", pods: map[string][]*corev1.Pod{"a1": {db}}, pod: st.Pod("p"),
			fits: []string{"a1", "a2", "b1", "c1"}},
		{name: "affinity to db's zone", pods: map[string][]*corev1.Pod{"a1": {db}}, pod: st.Pod("p").PodAffinity(zone, "app", "db"),
			fits: []string{"a1", "a2"}, reason: interpodaffinity.ErrReasonAffinity},
		{name: "affinity to db's host", pods: map[string][]*corev1.Pod{"a1": {db}}, pod: st.Pod("p").PodAffinity(host, "app", "db"),
			fits: []string{"a1"}, reason: interpodaffinity.ErrReasonAffinity},
		{name: "anti-affinity to db's zone", pods: map[string][]*corev1.Pod{"a1": {db}}, pod: st.Pod("p").PodAntiAffinity(zone, "app", "db"),
			fits: []string{"b1", "c1"}, reason: interpodaffinity.ErrReasonAntiAffinity},
		{name: "existing pod's anti-affinity keeps web out of its zone", pods: map[string][]*corev1.Pod{"b1": {lonely}},
			pod: st.Pod("web").Label("app", "web"), fits: []string{"a1", "a2", "c1"}, reason: interpodaffinity.ErrReasonExistingAntiAffinity},
		{name: "first pod of a self-affine group goes where the key exists", pod: st.Pod("p").Label("app", "g").PodAffinity(zone, "app", "g"),
			fits: []string{"a1", "a2", "b1"}, reason: interpodaffinity.ErrReasonAffinity},
		{name: "affinity with no matching pod anywhere", pod: st.Pod("p").PodAffinity(zone, "app", "db"), reason: interpodaffinity.ErrReasonAffinity},
		{name: "pods in other namespaces do not match", pods: map[string][]*corev1.Pod{"a1": {st.Pod("db2").Namespace("other").Label("app", "db").Obj()}},
			pod: st.Pod("p").PodAntiAffinity(zone, "app", "db"), fits: []string{"a1", "a2", "b1", "c1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := cluster(tc.pods)
			pl, err := interpodaffinity.New(nil, h)
			if err != nil {
				t.Fatal(err)
			}
			got := st.FilterAll(t, pl, h, tc.pod.Info())
			want := map[string]bool{}
			for _, n := range tc.fits {
				want[n] = true
			}
			for node, s := range got {
				if s.IsSuccess() != want[node] {
					t.Errorf("node %s: got %v, want fits=%v", node, s, want[node])
				}
				if !s.IsSuccess() && s.Message() != tc.reason {
					t.Errorf("node %s: reason %q, want %q", node, s.Message(), tc.reason)
				}
			}
		})
	}
}

func TestNamespaceSelector(t *testing.T) {
	h := cluster(map[string][]*corev1.Pod{"a1": {st.Pod("db").Namespace("prod").Label("app", "db").Obj()}})
	h.Namespaces = map[string]labels.Set{"prod": {"env": "prod"}}
	pl, _ := interpodaffinity.New(nil, h)
	pod := st.Pod("p").PodAntiAffinity(zone, "app", "db")
	pod.Obj().Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0].NamespaceSelector =
		&metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}
	got := st.FilterAll(t, pl, h, pod.Info())
	if got["a1"].IsSuccess() || got["a2"].IsSuccess() || !got["b1"].IsSuccess() {
		t.Fatalf("namespace selector not honoured: %v", got)
	}
}

func TestScore(t *testing.T) {
	pods := map[string][]*corev1.Pod{
		"a1": {st.Pod("cache").Label("app", "cache").Obj()},
		"b1": {st.Pod("batch").Label("app", "batch").Obj()},
	}
	h := cluster(pods)
	pl, _ := interpodaffinity.New(nil, h)
	pod := st.Pod("p").PreferredPodAffinity(10, zone, "app", "cache").PreferredPodAntiAffinity(5, zone, "app", "batch")
	got := st.ScoreAll(t, pl.(framework.ScorePlugin), h, pod.Info())
	// Raw: zone a +10, zone b -5, c1 0 -> min-max normalized.
	want := map[string]int64{"a1": 100, "a2": 100, "b1": 0, "c1": 33}
	for n, w := range want {
		if got[n] != w {
			t.Errorf("node %s: score %d, want %d", n, got[n], w)
		}
	}
	if got := st.ScoreAll(t, pl.(framework.ScorePlugin), h, st.Pod("plain").Info()); got != nil {
		t.Errorf("plain pod with no affinity pods around was scored: %v", got)
	}
}
