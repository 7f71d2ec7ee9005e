package validation

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/util/validation/field"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	batchv1 "bosun.dev/gen/bosun/batch/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
)

// changed returns a copy of old with f applied.
func changed[T api.Object](old T, f func(T)) T {
	obj := proto.Clone(old).(T)
	f(obj)
	return obj
}

func TestValidateUpdate(t *testing.T) {
	pod := validPod()
	bound := changed(pod, func(p *corev1.Pod) { p.Spec.NodeName = "node-1" })
	deadline := changed(pod, func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr[int64](100) })
	svc := validService()
	unallocated := changed(svc, func(s *corev1.Service) { s.Spec.ClusterIp, s.Spec.ClusterIps = "", nil })
	immutableCM := changed(validConfigMap(), func(c *corev1.ConfigMap) { c.Immutable = ptr(true) })
	immutableSecret := changed(validSecret(), func(s *corev1.Secret) { s.Immutable = ptr(true) })
	newSelector := func(sel *metav1.LabelSelector, tmpl *corev1.PodTemplateSpec) {
		sel.MatchLabels["track"] = "canary"
		tmpl.Metadata.Labels["track"] = "canary"
	}

	tests := []struct {
		name     string
		obj, old api.Object
		wants    []want
	}{
		{"pod image may change", changed(pod, func(p *corev1.Pod) {
			p.Spec.Containers[0].Image = "web:1.26"
			p.Spec.InitContainers[0].Image = "busybox:1.36"
		}), pod, nil},
		{"pod toleration may be added", changed(pod, func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, &corev1.Toleration{Key: "gpu", Operator: "Exists"})
		}), pod, nil},
		{"pod labels may change", changed(pod, func(p *corev1.Pod) { p.Metadata.Labels["canary"] = "true" }), pod, nil},
		{"pod activeDeadlineSeconds may be set", deadline, pod, nil},
		{"pod activeDeadlineSeconds may shrink", changed(deadline, func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr[int64](50) }), deadline, nil},
		{"pod activeDeadlineSeconds may not grow", changed(deadline, func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr[int64](500) }), deadline,
			[]want{inv("spec.activeDeadlineSeconds")}},
		{"pod activeDeadlineSeconds may not be unset", pod, deadline, []want{inv("spec.activeDeadlineSeconds")}},
		{"pod command is immutable", changed(pod, func(p *corev1.Pod) { p.Spec.Containers[0].Command = []string{"serve"} }), pod, []want{forbid("spec")}},
		{"pod containers may not be added", changed(pod, func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, &corev1.Container{Name: "sidecar", Image: "envoy"})
		}), pod, []want{forbid("spec")}},
		{"pod toleration may not be removed", changed(pod, func(p *corev1.Pod) { p.Spec.Tolerations = p.Spec.Tolerations[1:] }), pod, []want{forbid("spec.tolerations")}},
		{"pod nodeName may not be set by update", bound, pod, []want{forbid("spec.nodeName")}},
		{"pod nodeName may not change", changed(bound, func(p *corev1.Pod) { p.Spec.NodeName = "node-2" }), bound, []want{inv("spec.nodeName")}},
		{"pod still validated", changed(pod, func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" }), pod, []want{req("spec.containers[0].image")}},
		{"name is immutable", changed(pod, func(p *corev1.Pod) { p.Metadata.Name = "web2" }), pod, []want{inv("metadata.name")}},
		{"namespace is immutable", changed(pod, func(p *corev1.Pod) { p.Metadata.Namespace = "prod" }), pod, []want{inv("metadata.namespace")}},
		{"uid is immutable", changed(pod, func(p *corev1.Pod) { p.Metadata.Uid = "other" }), pod, []want{inv("metadata.uid")}},

		{"deployment template may change", changed(validDeployment(), func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "web:2" }), validDeployment(), nil},
		{"deployment selector is immutable", changed(validDeployment(), func(d *appsv1.Deployment) { newSelector(d.Spec.Selector, d.Spec.Template) }), validDeployment(),
			[]want{inv("spec.selector")}},
		{"replicaset selector is immutable", changed(validReplicaSet(), func(r *appsv1.ReplicaSet) { newSelector(r.Spec.Selector, r.Spec.Template) }), validReplicaSet(),
			[]want{inv("spec.selector")}},
		{"daemonset selector is immutable", changed(validDaemonSet(), func(d *appsv1.DaemonSet) { newSelector(d.Spec.Selector, d.Spec.Template) }), validDaemonSet(),
			[]want{inv("spec.selector")}},
		{"statefulset selector is immutable", changed(validStatefulSet(), func(s *appsv1.StatefulSet) { newSelector(s.Spec.Selector, s.Spec.Template) }), validStatefulSet(),
			[]want{inv("spec.selector")}},
		{"statefulset replicas may change", changed(validStatefulSet(), func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr[int32](5) }), validStatefulSet(), nil},
		{"statefulset serviceName is immutable", changed(validStatefulSet(), func(s *appsv1.StatefulSet) { s.Spec.ServiceName = "db2" }), validStatefulSet(),
			[]want{inv("spec.serviceName")}},
		{"statefulset podManagementPolicy is immutable", changed(validStatefulSet(), func(s *appsv1.StatefulSet) { s.Spec.PodManagementPolicy = "Parallel" }), validStatefulSet(),
			[]want{inv("spec.podManagementPolicy")}},
		{"job parallelism may change", changed(validJob(), func(j *batchv1.Job) { j.Spec.Parallelism = ptr[int32](3) }), validJob(), nil},
		{"job template is immutable", changed(validJob(), func(j *batchv1.Job) { j.Spec.Template.Spec.Containers[0].Image = "migrate:2" }), validJob(),
			[]want{inv("spec.template")}},
		{"job selector is immutable", changed(validJob(), func(j *batchv1.Job) { newSelector(j.Spec.Selector, j.Spec.Template) }), validJob(),
			[]want{inv("spec.selector"), inv("spec.template")}},
		{"job completions are immutable", changed(validJob(), func(j *batchv1.Job) { j.Spec.Completions = ptr[int32](4) }), validJob(),
			[]want{inv("spec.completions")}},

		{"service clusterIP may be allocated", svc, unallocated, nil},
		{"service clusterIP is immutable", changed(svc, func(s *corev1.Service) { s.Spec.ClusterIp, s.Spec.ClusterIps = "10.96.0.11", nil }), svc,
			[]want{inv("spec.clusterIP")}},
		{"service ports may change", changed(svc, func(s *corev1.Service) { s.Spec.Ports[0].Port = 8080 }), svc, nil},

		{"configMap data may change", changed(validConfigMap(), func(c *corev1.ConfigMap) { c.Data["app.yaml"] = "a: 2" }), validConfigMap(), nil},
		{"configMap may become immutable", immutableCM, validConfigMap(), nil},
		{"immutable configMap data", changed(immutableCM, func(c *corev1.ConfigMap) { c.Data["app.yaml"] = "a: 2" }), immutableCM, []want{forbid("data")}},
		{"immutable configMap binaryData", changed(immutableCM, func(c *corev1.ConfigMap) { c.BinaryData["logo.png"] = nil }), immutableCM, []want{forbid("data")}},
		{"immutable configMap stays immutable", changed(immutableCM, func(c *corev1.ConfigMap) { c.Immutable = ptr(false) }), immutableCM, []want{forbid("immutable")}},
		{"immutable secret data", changed(immutableSecret, func(s *corev1.Secret) { s.Data["tls.key"] = []byte("k2") }), immutableSecret, []want{forbid("data")}},
		{"immutable secret stays immutable", changed(immutableSecret, func(s *corev1.Secret) { s.Immutable = nil }), immutableSecret, []want{forbid("immutable")}},
		{"secret type is immutable", changed(validSecret(), func(s *corev1.Secret) { s.Type = "Opaque" }), validSecret(), []want{inv("type")}},

		{"node taints may change", changed(validNode(), func(n *corev1.Node) { n.Spec.Taints = nil }), validNode(), nil},
		{"node podCIDR is immutable", changed(validNode(), func(n *corev1.Node) { n.Spec.PodCidr, n.Spec.PodCidrs[0] = "10.244.2.0/24", "10.244.2.0/24" }), validNode(),
			[]want{inv("spec.podCIDR"), forbid("spec.podCIDRs")}},
		{"node podCIDR may be allocated", validNode(), changed(validNode(), func(n *corev1.Node) { n.Spec.PodCidr, n.Spec.PodCidrs = "", nil }), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, tc.obj, ValidateUpdate(tc.obj, tc.old), tc.wants...)
		})
	}
}

func TestValidateUpdateKindMismatch(t *testing.T) {
	errs := ValidateUpdate(validPod(), validService())
	if len(errs) != 1 || errs[0].Type != field.ErrorTypeInternal {
		t.Fatalf("got %v, want one internal error", errs)
	}
}

func TestValidateStatus(t *testing.T) {
	running := &corev1.Pod{Metadata: om("web"), Status: &corev1.PodStatus{
		Phase: "Running", PodIp: "10.244.1.5", HostIp: "192.168.1.10", PodIps: []*corev1.PodIP{{Ip: "10.244.1.5"}, {Ip: "fd00::5"}},
		Conditions:        []*corev1.PodCondition{{Type: "Ready", Status: "True"}},
		ContainerStatuses: []*corev1.ContainerStatus{{Name: "app", Ready: true, RestartCount: 2}},
		QosClass:          "Burstable",
	}}
	tests := []struct {
		name  string
		obj   api.Object
		wants []want
	}{
		{"running pod (spec is not looked at)", running, nil},
		{"pod phase", changed(running, func(p *corev1.Pod) { p.Status.Phase = "Done" }), []want{unsup("status.phase")}},
		{"pod condition status", changed(running, func(p *corev1.Pod) { p.Status.Conditions[0].Status = "Yes" }), []want{unsup("status.conditions[0].status")}},
		{"pod condition type", changed(running, func(p *corev1.Pod) { p.Status.Conditions[0].Type = "" }), []want{req("status.conditions[0].type")}},
		{"podIP", changed(running, func(p *corev1.Pod) { p.Status.PodIp = "10.244.1.300" }), []want{inv("status.podIP"), inv("status.podIPs[0].ip")}},
		{"hostIP", changed(running, func(p *corev1.Pod) { p.Status.HostIp = "node-1" }), []want{inv("status.hostIP")}},
		{"podIPs duplicate", changed(running, func(p *corev1.Pod) { p.Status.PodIps[1].Ip = "10.244.1.5" }), []want{dup("status.podIPs[1].ip")}},
		{"restartCount", changed(running, func(p *corev1.Pod) { p.Status.ContainerStatuses[0].RestartCount = -1 }), []want{inv("status.containerStatuses[0].restartCount")}},
		{"qosClass", changed(running, func(p *corev1.Pod) { p.Status.QosClass = "Gold" }), []want{unsup("status.qosClass")}},
		{"deployment status", &appsv1.Deployment{Metadata: om("d"), Status: &appsv1.DeploymentStatus{Replicas: 3, AvailableReplicas: -1}}, []want{inv("status.availableReplicas")}},
		{"deployment condition", &appsv1.Deployment{Metadata: om("d"), Status: &appsv1.DeploymentStatus{Conditions: []*appsv1.DeploymentCondition{{Type: "Available", Status: "true"}}}},
			[]want{unsup("status.conditions[0].status")}},
		{"replicaset status", &appsv1.ReplicaSet{Metadata: om("r"), Status: &appsv1.ReplicaSetStatus{ReadyReplicas: -1}}, []want{inv("status.readyReplicas")}},
		{"daemonset status", &appsv1.DaemonSet{Metadata: om("d"), Status: &appsv1.DaemonSetStatus{NumberReady: -1, CollisionCount: ptr[int32](-1)}},
			[]want{inv("status.numberReady"), inv("status.collisionCount")}},
		{"statefulset status", &appsv1.StatefulSet{Metadata: om("s"), Status: &appsv1.StatefulSetStatus{CurrentReplicas: -2}}, []want{inv("status.currentReplicas")}},
		{"job status", &batchv1.Job{Metadata: om("j"), Status: &batchv1.JobStatus{Failed: -1, Ready: ptr[int32](-1)}}, []want{inv("status.failed"), inv("status.ready")}},
		{"node status", changed(validNode(), func(n *corev1.Node) { n.Status.Conditions[0].Status = "Ready" }), []want{unsup("status.conditions[0].status")}},
		{"node address type", changed(validNode(), func(n *corev1.Node) { n.Status.Addresses[0].Type = "IP" }), []want{unsup("status.addresses[0].type")}},
		{"namespace phase", changed(validNamespace(), func(n *corev1.Namespace) { n.Status.Phase = "Deleting" }), []want{unsup("status.phase")}},
		{"service load balancer ip", &corev1.Service{Metadata: om("s"), Status: &corev1.ServiceStatus{LoadBalancer: &corev1.LoadBalancerStatus{
			Ingress: []*corev1.LoadBalancerIngress{{Ip: "1.2.3.4.5"}}}}}, []want{inv("status.loadBalancer.ingress[0].ip")}},
		{"kinds without status", validConfigMap(), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, tc.obj, ValidateStatus(tc.obj), tc.wants...)
		})
	}
}

func TestValidateObjectSizeNamesLargestField(t *testing.T) {
	n := validNode()
	for i := 0; i < 2000; i++ {
		n.Status.Images = append(n.Status.Images, &corev1.ContainerImage{Names: []string{string(make([]byte, 1024))}})
	}
	checkErrors(t, n, ValidateStatus(n), tooLong("status"))
}

func TestSelectorMatches(t *testing.T) {
	sel := &metav1.LabelSelector{MatchExpressions: []*metav1.LabelSelectorRequirement{
		{Key: "env", Operator: "NotIn", Values: []string{"prod"}},
		{Key: "app", Operator: "Exists"},
		{Key: "legacy", Operator: "DoesNotExist"},
	}}
	for _, tc := range []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{"app": "x"}, true},
		{map[string]string{"app": "x", "env": "dev"}, true},
		{map[string]string{"app": "x", "env": "prod"}, false},
		{map[string]string{"env": "dev"}, false},
		{map[string]string{"app": "x", "legacy": ""}, false},
	} {
		if got := selectorMatches(sel, tc.labels); got != tc.want {
			t.Errorf("selectorMatches(%v) = %v, want %v", tc.labels, got, tc.want)
		}
	}
}
