package minimalscheduler

import (
	"strings"
	"testing"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
)

func node(name string, mutate ...func(*corev1.Node)) *corev1.Node {
	n := &corev1.Node{
		Metadata: &metav1.ObjectMeta{Name: name, Labels: map[string]string{"zone": "a", "gen": "5"}},
		Spec:     &corev1.NodeSpec{},
		Status:   &corev1.NodeStatus{Allocatable: map[string]string{"cpu": "2", "memory": "1Gi", "pods": "3"}},
	}
	for _, m := range mutate {
		m(n)
	}
	return n
}

func pod(mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		Metadata: &metav1.ObjectMeta{Name: "p", Namespace: "default"},
		Spec:     &corev1.PodSpec{Containers: []*corev1.Container{{Name: "c", Image: "i"}}},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func cpu(q string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources = &corev1.ResourceRequirements{Requests: map[string]string{"cpu": q}}
	}
}

func port(n int32, protocol, ip string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Ports = []*corev1.ContainerPort{{HostPort: n, ContainerPort: n, Protocol: protocol, HostIp: ip}}
	}
}

func tolerate(key, op, value, effect string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Tolerations = append(p.Spec.Tolerations, &corev1.Toleration{Key: key, Operator: op, Value: value, Effect: effect})
	}
}

func taint(key, value, effect string) func(*corev1.Node) {
	return func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, &corev1.Taint{Key: key, Value: value, Effect: effect})
	}
}

func affinity(op string, values ...string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []*corev1.NodeSelectorTerm{{
				MatchExpressions: []*corev1.NodeSelectorRequirement{{Key: "gen", Operator: op, Values: values}},
			}}},
		}}
	}
}

func TestFits(t *testing.T) {
	cordon := func(n *corev1.Node) { n.Spec.Unschedulable = true }
	for _, tc := range []struct {
		name   string
		pod    *corev1.Pod
		node   *corev1.Node
		onNode []*corev1.Pod
		want   string // "" fits; else a part of the reason
	}{
		{"plain", pod(), node("n"), nil, ""},
		{"cordoned", pod(), node("n", cordon), nil, "cordoned"},
		{"cordon tolerated", pod(tolerate(UnschedulableTaintKey, "Exists", "", "NoSchedule")), node("n", cordon), nil, ""},
		{"NoSchedule untolerated", pod(), node("n", taint("k", "v", "NoSchedule")), nil, "untolerated taint k=v:NoSchedule"},
		{"NoExecute untolerated", pod(), node("n", taint("k", "v", "NoExecute")), nil, "untolerated taint"},
		{"PreferNoSchedule ignored", pod(), node("n", taint("k", "v", "PreferNoSchedule")), nil, ""},
		{"Equal toleration", pod(tolerate("k", "Equal", "v", "NoSchedule")), node("n", taint("k", "v", "NoSchedule")), nil, ""},
		{"default operator is Equal", pod(tolerate("k", "", "v", "")), node("n", taint("k", "v", "NoExecute")), nil, ""},
		{"wrong value", pod(tolerate("k", "Equal", "w", "NoSchedule")), node("n", taint("k", "v", "NoSchedule")), nil, "untolerated"},
		{"wrong effect", pod(tolerate("k", "Exists", "", "NoExecute")), node("n", taint("k", "v", "NoSchedule")), nil, "untolerated"},
		{"Exists without key tolerates all", pod(tolerate("", "Exists", "", "")), node("n", taint("k", "v", "NoExecute")), nil, ""},
		{"node selector matches", pod(func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"zone": "a"} }), node("n"), nil, ""},
		{"node selector differs", pod(func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"zone": "b"} }), node("n"), nil, "node selector zone=b"},
		{"affinity In", pod(affinity("In", "4", "5")), node("n"), nil, ""},
		{"affinity NotIn", pod(affinity("NotIn", "5")), node("n"), nil, "affinity"},
		{"affinity Gt", pod(affinity("Gt", "4")), node("n"), nil, ""},
		{"affinity Gt equal", pod(affinity("Gt", "5")), node("n"), nil, "affinity"},
		{"affinity Lt", pod(affinity("Lt", "6")), node("n"), nil, ""},
		{"affinity Gt not a number", pod(affinity("Gt", "x")), node("n"), nil, "affinity"},
		{"affinity DoesNotExist", pod(affinity("DoesNotExist")), node("n"), nil, "affinity"},
		{"affinity by name", pod(func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []*corev1.NodeSelectorTerm{
					{}, // matches nothing
					{MatchFields: []*corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: "In", Values: []string{"n"}}}},
				}},
			}}
		}), node("n"), nil, ""},
		{"cpu fits exactly", pod(cpu("1")), node("n"), []*corev1.Pod{pod(cpu("500m")), pod(cpu("500m"))}, ""},
		{"cpu exceeded", pod(cpu("1")), node("n"), []*corev1.Pod{pod(cpu("1500m"))}, "insufficient cpu"},
		{"init container counts", pod(func(p *corev1.Pod) {
			p.Spec.InitContainers = []*corev1.Container{{Name: "i", Resources: &corev1.ResourceRequirements{Requests: map[string]string{"memory": "2Gi"}}}}
		}), node("n"), nil, "insufficient memory"},
		{"resource the node lacks", pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = &corev1.ResourceRequirements{Requests: map[string]string{"ephemeral-storage": "1Gi"}}
		}), node("n"), nil, "insufficient ephemeral-storage"},
		{"pod count", pod(), node("n"), []*corev1.Pod{pod(), pod(), pod()}, "too many pods"},
		{"host port taken", pod(port(80, "", "")), node("n"), []*corev1.Pod{pod(port(80, "TCP", "10.0.0.1"))}, "host port 80/TCP"},
		{"host port other protocol", pod(port(80, "UDP", "")), node("n"), []*corev1.Pod{pod(port(80, "TCP", ""))}, ""},
		{"host port other IP", pod(port(80, "TCP", "10.0.0.2")), node("n"), []*corev1.Pod{pod(port(80, "TCP", "10.0.0.1"))}, ""},
		{"host port 0.0.0.0 is every IP", pod(port(80, "TCP", "0.0.0.0")), node("n"), []*corev1.Pod{pod(port(80, "TCP", "10.0.0.1"))}, "taken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Fits(tc.pod, tc.node, tc.onNode)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("does not fit: %v", err)
			case tc.want != "" && err == nil:
				t.Errorf("fits; want refused with %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("refused with %q; want %q", err, tc.want)
			}
		})
	}
}
