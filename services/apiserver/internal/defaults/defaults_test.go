package defaults

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	batchv1 "bosun.dev/gen/bosun/batch/v1"
	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
)

const uid = "6f1c2a9e-0000-4000-8000-000000000001"

func meta(name string) *metav1.ObjectMeta {
	return &metav1.ObjectMeta{Name: name, Namespace: "default", Uid: uid}
}

// defaultedSpec is what defaulting makes of a pod spec with one bare
// container and nothing else.
func defaultedSpec(image, pull string) *corev1.PodSpec {
	return &corev1.PodSpec{
		Containers: []*corev1.Container{{
			Name: "app", Image: image, ImagePullPolicy: pull,
			TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: "File",
		}},
		RestartPolicy:                 "Always",
		TerminationGracePeriodSeconds: ptr[int64](30),
		DnsPolicy:                     "ClusterFirst",
		SchedulerName:                 "default-scheduler",
		Priority:                      ptr[int32](0),
		EnableServiceLinks:            ptr(true),
	}
}

func bareSpec(image string) *corev1.PodSpec {
	return &corev1.PodSpec{Containers: []*corev1.Container{{Name: "app", Image: image}}}
}

func bareTemplate() *corev1.PodTemplateSpec {
	return &corev1.PodTemplateSpec{Metadata: &metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: bareSpec("web:1")}
}

func defaultedTemplate() *corev1.PodTemplateSpec {
	return &corev1.PodTemplateSpec{Metadata: &metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: defaultedSpec("web:1", "IfNotPresent")}
}

func intOrString(i int32) *metav1.IntOrString { return &metav1.IntOrString{IntVal: i} }

func TestApply(t *testing.T) {
	tests := []struct {
		name     string
		in, want api.Object
	}{
		{"pod", &corev1.Pod{Metadata: meta("p"), Spec: bareSpec("nginx")},
			&corev1.Pod{Metadata: meta("p"), Spec: defaultedSpec("nginx", "Always"), Status: &corev1.PodStatus{Phase: "Pending", QosClass: "BestEffort"}}},
		{"pod keeps what is set", &corev1.Pod{Metadata: meta("p"), Spec: &corev1.PodSpec{
			Containers:    []*corev1.Container{{Name: "app", Image: "nginx", ImagePullPolicy: "Never", TerminationMessagePolicy: "FallbackToLogsOnError"}},
			RestartPolicy: "OnFailure", TerminationGracePeriodSeconds: ptr[int64](0), DnsPolicy: "Default", SchedulerName: "mine",
			Priority: ptr[int32](1000), EnableServiceLinks: ptr(false),
		}, Status: &corev1.PodStatus{Phase: "Running"}}, &corev1.Pod{Metadata: meta("p"), Spec: &corev1.PodSpec{
			Containers: []*corev1.Container{{Name: "app", Image: "nginx", ImagePullPolicy: "Never",
				TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: "FallbackToLogsOnError"}},
			RestartPolicy: "OnFailure", TerminationGracePeriodSeconds: ptr[int64](0), DnsPolicy: "Default", SchedulerName: "mine",
			Priority: ptr[int32](1000), EnableServiceLinks: ptr(false),
		}, Status: &corev1.PodStatus{Phase: "Running", QosClass: "BestEffort"}}},
		{"deployment", &appsv1.Deployment{Metadata: meta("d"), Spec: &appsv1.DeploymentSpec{Template: bareTemplate()}},
			&appsv1.Deployment{Metadata: meta("d"), Spec: &appsv1.DeploymentSpec{
				Replicas: ptr[int32](1), Template: defaultedTemplate(),
				Strategy: &appsv1.DeploymentStrategy{Type: "RollingUpdate", RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: &metav1.IntOrString{StrVal: "25%"}, MaxSurge: &metav1.IntOrString{StrVal: "25%"},
				}},
				RevisionHistoryLimit: ptr[int32](10), ProgressDeadlineSeconds: ptr[int32](600),
			}}},
		{"deployment Recreate gets no rollingUpdate", &appsv1.Deployment{Metadata: meta("d"), Spec: &appsv1.DeploymentSpec{
			Replicas: ptr[int32](0), Template: bareTemplate(), Strategy: &appsv1.DeploymentStrategy{Type: "Recreate"},
		}}, &appsv1.Deployment{Metadata: meta("d"), Spec: &appsv1.DeploymentSpec{
			Replicas: ptr[int32](0), Template: defaultedTemplate(), Strategy: &appsv1.DeploymentStrategy{Type: "Recreate"},
			RevisionHistoryLimit: ptr[int32](10), ProgressDeadlineSeconds: ptr[int32](600),
		}}},
		{"replicaset", &appsv1.ReplicaSet{Metadata: meta("r"), Spec: &appsv1.ReplicaSetSpec{Template: bareTemplate()}},
			&appsv1.ReplicaSet{Metadata: meta("r"), Spec: &appsv1.ReplicaSetSpec{Replicas: ptr[int32](1), Template: defaultedTemplate()}}},
		{"daemonset", &appsv1.DaemonSet{Metadata: meta("ds"), Spec: &appsv1.DaemonSetSpec{Template: bareTemplate()}},
			&appsv1.DaemonSet{Metadata: meta("ds"), Spec: &appsv1.DaemonSetSpec{
				Template: defaultedTemplate(), RevisionHistoryLimit: ptr[int32](10),
				UpdateStrategy: &appsv1.DaemonSetUpdateStrategy{Type: "RollingUpdate", RollingUpdate: &appsv1.RollingUpdateDaemonSet{
					MaxUnavailable: intOrString(1), MaxSurge: intOrString(0),
				}},
			}}},
		{"statefulset", &appsv1.StatefulSet{Metadata: meta("s"), Spec: &appsv1.StatefulSetSpec{Template: bareTemplate(), ServiceName: "s"}},
			&appsv1.StatefulSet{Metadata: meta("s"), Spec: &appsv1.StatefulSetSpec{
				Replicas: ptr[int32](1), Template: defaultedTemplate(), ServiceName: "s", PodManagementPolicy: "OrderedReady",
				UpdateStrategy:       &appsv1.StatefulSetUpdateStrategy{Type: "RollingUpdate", RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr[int32](0)}},
				RevisionHistoryLimit: ptr[int32](10),
			}}},
		{"statefulset OnDelete", &appsv1.StatefulSet{Metadata: meta("s"), Spec: &appsv1.StatefulSetSpec{
			Template: bareTemplate(), PodManagementPolicy: "Parallel", UpdateStrategy: &appsv1.StatefulSetUpdateStrategy{Type: "OnDelete"},
		}}, &appsv1.StatefulSet{Metadata: meta("s"), Spec: &appsv1.StatefulSetSpec{
			Replicas: ptr[int32](1), Template: defaultedTemplate(), PodManagementPolicy: "Parallel",
			UpdateStrategy: &appsv1.StatefulSetUpdateStrategy{Type: "OnDelete"}, RevisionHistoryLimit: ptr[int32](10),
		}}},
		{"job generates its selector", &batchv1.Job{Metadata: meta("migrate"), Spec: &batchv1.JobSpec{Template: bareTemplate()}},
			&batchv1.Job{Metadata: meta("migrate"), Spec: &batchv1.JobSpec{
				Parallelism: ptr[int32](1), Completions: ptr[int32](1), BackoffLimit: ptr[int32](6), CompletionMode: "NonIndexed", Suspend: ptr(false),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{JobControllerUIDLabel: uid}},
				Template: &corev1.PodTemplateSpec{
					Metadata: &metav1.ObjectMeta{Labels: map[string]string{"app": "web", JobControllerUIDLabel: uid, JobNameLabel: "migrate"}},
					Spec:     defaultedSpec("web:1", "IfNotPresent"),
				},
			}}},
		{"job with manual selector", &batchv1.Job{Metadata: meta("m"), Spec: &batchv1.JobSpec{
			ManualSelector: ptr(true), Parallelism: ptr[int32](4), Template: bareTemplate(),
		}}, &batchv1.Job{Metadata: meta("m"), Spec: &batchv1.JobSpec{
			ManualSelector: ptr(true), Parallelism: ptr[int32](4), BackoffLimit: ptr[int32](6), CompletionMode: "NonIndexed", Suspend: ptr(false),
			Template: defaultedTemplate(),
		}}},
		{"job with selector", &batchv1.Job{Metadata: meta("m"), Spec: &batchv1.JobSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, Completions: ptr[int32](3), Template: bareTemplate(),
		}}, &batchv1.Job{Metadata: meta("m"), Spec: &batchv1.JobSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, Completions: ptr[int32](3),
			Parallelism: ptr[int32](1), BackoffLimit: ptr[int32](6), CompletionMode: "NonIndexed", Suspend: ptr(false), Template: defaultedTemplate(),
		}}},
		{"service", &corev1.Service{Metadata: meta("web"), Spec: &corev1.ServiceSpec{Ports: []*corev1.ServicePort{{Port: 80}, {Name: "m", Port: 90, TargetPort: &metav1.IntOrString{StrVal: "metrics"}}}}},
			&corev1.Service{Metadata: meta("web"), Spec: &corev1.ServiceSpec{
				Type: "ClusterIP", SessionAffinity: "None", InternalTrafficPolicy: "Cluster",
				Ports: []*corev1.ServicePort{
					{Port: 80, Protocol: "TCP", TargetPort: intOrString(80)},
					{Name: "m", Port: 90, Protocol: "TCP", TargetPort: &metav1.IntOrString{StrVal: "metrics"}},
				},
			}}},
		{"nodeport service with sticky sessions", &corev1.Service{Metadata: meta("web"), Spec: &corev1.ServiceSpec{
			Type: "NodePort", SessionAffinity: "ClientIP", Ports: []*corev1.ServicePort{{Port: 80, Protocol: "UDP", TargetPort: intOrString(8080)}},
		}}, &corev1.Service{Metadata: meta("web"), Spec: &corev1.ServiceSpec{
			Type: "NodePort", SessionAffinity: "ClientIP", InternalTrafficPolicy: "Cluster", ExternalTrafficPolicy: "Cluster",
			SessionAffinityConfig: &corev1.SessionAffinityConfig{ClientIp: &corev1.ClientIPConfig{TimeoutSeconds: ptr[int32](10800)}},
			Ports:                 []*corev1.ServicePort{{Port: 80, Protocol: "UDP", TargetPort: intOrString(8080)}},
		}}},
		{"secret", &corev1.Secret{Metadata: meta("s"), Data: map[string][]byte{"a": []byte("1"), "b": []byte("old")}, StringData: map[string]string{"b": "new", "c": "3"}},
			&corev1.Secret{Metadata: meta("s"), Type: "Opaque", Data: map[string][]byte{"a": []byte("1"), "b": []byte("new"), "c": []byte("3")}}},
		{"secret keeps its type", &corev1.Secret{Metadata: meta("s"), Type: "kubernetes.io/tls", StringData: map[string]string{"tls.crt": "c"}},
			&corev1.Secret{Metadata: meta("s"), Type: "kubernetes.io/tls", Data: map[string][]byte{"tls.crt": []byte("c")}}},
		{"namespace", &corev1.Namespace{Metadata: &metav1.ObjectMeta{Name: "shop"}},
			&corev1.Namespace{Metadata: &metav1.ObjectMeta{Name: "shop"}, Status: &corev1.NamespaceStatus{Phase: "Active"}}},
		{"terminating namespace", &corev1.Namespace{Metadata: &metav1.ObjectMeta{Name: "shop"}, Status: &corev1.NamespaceStatus{Phase: "Terminating"}},
			&corev1.Namespace{Metadata: &metav1.ObjectMeta{Name: "shop"}, Status: &corev1.NamespaceStatus{Phase: "Terminating"}}},
		{"event", &corev1.Event{Metadata: meta("e"), InvolvedObject: &metav1.ObjectReference{Kind: "Pod", Name: "p"}},
			&corev1.Event{Metadata: meta("e"), InvolvedObject: &metav1.ObjectReference{Kind: "Pod", Name: "p"}, Type: "Normal", Count: 1}},
		{"warning event", &corev1.Event{Metadata: meta("e"), Type: "Warning", Count: 7}, &corev1.Event{Metadata: meta("e"), Type: "Warning", Count: 7}},
		{"endpoints", &corev1.Endpoints{Metadata: meta("web"), Subsets: []*corev1.EndpointSubset{{Ports: []*corev1.EndpointPort{{Port: 80}}}}},
			&corev1.Endpoints{Metadata: meta("web"), Subsets: []*corev1.EndpointSubset{{Ports: []*corev1.EndpointPort{{Port: 80, Protocol: "TCP"}}}}}},
		{"node is left alone", &corev1.Node{Metadata: &metav1.ObjectMeta{Name: "n"}}, &corev1.Node{Metadata: &metav1.ObjectMeta{Name: "n"}}},
		{"configmap is left alone", &corev1.ConfigMap{Metadata: meta("c"), Data: map[string]string{"k": "v"}}, &corev1.ConfigMap{Metadata: meta("c"), Data: map[string]string{"k": "v"}}},
		{"lease is left alone", &coordinationv1.Lease{Metadata: meta("l"), Spec: &coordinationv1.LeaseSpec{}}, &coordinationv1.Lease{Metadata: meta("l"), Spec: &coordinationv1.LeaseSpec{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := proto.Clone(tc.in).(api.Object)
			Apply(got)
			if d := cmp.Diff(tc.want, got, protocmp.Transform()); d != "" {
				t.Errorf("Apply (-want +got):\n%s", d)
			}
			again := proto.Clone(got).(api.Object)
			Apply(again)
			if d := cmp.Diff(got, again, protocmp.Transform()); d != "" {
				t.Errorf("Apply is not idempotent (-once +twice):\n%s", d)
			}
		})
	}
}

// defaultContainer runs pod defaulting on a pod with one container c and
// returns the defaulted container.
func defaultContainer(t *testing.T, c *corev1.Container, volumes ...*corev1.Volume) (*corev1.Container, *corev1.Pod) {
	t.Helper()
	p := &corev1.Pod{Metadata: meta("p"), Spec: &corev1.PodSpec{Containers: []*corev1.Container{c}, Volumes: volumes}}
	Apply(p)
	once := proto.Clone(p)
	Apply(p)
	if !proto.Equal(once, p) {
		t.Fatalf("Apply is not idempotent on %v", once)
	}
	return p.Spec.Containers[0], p
}

func TestImagePullPolicy(t *testing.T) {
	for image, want := range map[string]string{
		"nginx":                             "Always",
		"nginx:latest":                      "Always",
		"nginx:1.25":                        "IfNotPresent",
		"registry.local:5000/nginx":         "Always",
		"registry.local:5000/nginx:latest":  "Always",
		"registry.local:5000/team/nginx:v2": "IfNotPresent",
		"nginx@sha256:0123456789abcdef":     "IfNotPresent",
		"nginx:latest@sha256:0123456789ab":  "IfNotPresent",
	} {
		c, _ := defaultContainer(t, &corev1.Container{Name: "c", Image: image})
		if c.ImagePullPolicy != want {
			t.Errorf("%s: imagePullPolicy %q, want %q", image, c.ImagePullPolicy, want)
		}
	}
}

func TestContainerDefaults(t *testing.T) {
	probe := func() *corev1.Probe {
		return &corev1.Probe{HttpGet: &corev1.HTTPGetAction{Port: intOrString(8080)}}
	}
	c, _ := defaultContainer(t, &corev1.Container{
		Name: "c", Image: "x:1",
		Ports:          []*corev1.ContainerPort{{ContainerPort: 80}, {ContainerPort: 53, Protocol: "UDP"}},
		LivenessProbe:  probe(),
		ReadinessProbe: &corev1.Probe{TcpSocket: &corev1.TCPSocketAction{Port: intOrString(80)}, PeriodSeconds: 5, FailureThreshold: 1},
		StartupProbe:   probe(),
		Env:            []*corev1.EnvVar{{Name: "N", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
		Lifecycle:      &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HttpGet: &corev1.HTTPGetAction{Port: intOrString(80)}}},
	})
	want := &corev1.Probe{
		HttpGet:        &corev1.HTTPGetAction{Path: "/", Scheme: "HTTP", Port: intOrString(8080)},
		TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3,
	}
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"ports[0].protocol", c.Ports[0].Protocol, "TCP"},
		{"ports[1].protocol", c.Ports[1].Protocol, "UDP"},
		{"ports[0].hostPort", c.Ports[0].HostPort, int32(0)},
		{"livenessProbe", c.LivenessProbe, want},
		{"startupProbe", c.StartupProbe, want},
		{"readinessProbe", c.ReadinessProbe, &corev1.Probe{
			TcpSocket: &corev1.TCPSocketAction{Port: intOrString(80)}, TimeoutSeconds: 1, PeriodSeconds: 5, SuccessThreshold: 1, FailureThreshold: 1,
		}},
		{"fieldRef.apiVersion", c.Env[0].ValueFrom.FieldRef.ApiVersion, "v1"},
		{"preStop.httpGet", c.Lifecycle.PreStop.HttpGet, &corev1.HTTPGetAction{Path: "/", Scheme: "HTTP", Port: intOrString(80)}},
		{"terminationMessagePath", c.TerminationMessagePath, "/dev/termination-log"},
		{"terminationMessagePolicy", c.TerminationMessagePolicy, "File"},
	} {
		if d := cmp.Diff(tc.want, tc.got, protocmp.Transform()); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
	}
}

func TestHostNetworkHostPort(t *testing.T) {
	p := &corev1.Pod{Metadata: meta("p"), Spec: &corev1.PodSpec{HostNetwork: true, Containers: []*corev1.Container{{
		Name: "c", Image: "x", Ports: []*corev1.ContainerPort{{ContainerPort: 9100}, {ContainerPort: 80, HostPort: 8080}},
	}}}}
	Apply(p)
	if got := []int32{p.Spec.Containers[0].Ports[0].HostPort, p.Spec.Containers[0].Ports[1].HostPort}; got[0] != 9100 || got[1] != 8080 {
		t.Errorf("hostPorts %v, want [9100 8080]", got)
	}
}

func TestVolumeAndTolerationDefaults(t *testing.T) {
	_, p := defaultContainer(t, &corev1.Container{Name: "c", Image: "x"},
		&corev1.Volume{Name: "cm", Source: &corev1.Volume_ConfigMap{ConfigMap: &corev1.ConfigMapVolumeSource{Name: "cm"}}},
		&corev1.Volume{Name: "s", Source: &corev1.Volume_Secret{Secret: &corev1.SecretVolumeSource{SecretName: "s", DefaultMode: ptr[int32](0o400)}}},
		&corev1.Volume{Name: "h", Source: &corev1.Volume_HostPath{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log"}}},
	)
	if got := p.Spec.Volumes[0].GetConfigMap().GetDefaultMode(); got != 0o644 {
		t.Errorf("configMap defaultMode %o, want 644", got)
	}
	if got := p.Spec.Volumes[1].GetSecret().GetDefaultMode(); got != 0o400 {
		t.Errorf("secret defaultMode %o, want the 400 it was given", got)
	}
	if got := p.Spec.Volumes[2].GetHostPath().GetType(); got != "" {
		t.Errorf("hostPath type %q, want \"\"", got)
	}
	s := &corev1.Volume_Secret{Secret: &corev1.SecretVolumeSource{SecretName: "s"}}
	_, p = defaultContainer(t, &corev1.Container{Name: "c", Image: "x"}, &corev1.Volume{Name: "s", Source: s})
	if got := s.Secret.GetDefaultMode(); got != 0o644 {
		t.Errorf("secret defaultMode %o, want 644", got)
	}

	pod := &corev1.Pod{Metadata: meta("p"), Spec: &corev1.PodSpec{
		Containers:  []*corev1.Container{{Name: "c", Image: "x"}},
		Tolerations: []*corev1.Toleration{{Key: "k", Value: "v"}, {Operator: "Exists"}},
	}}
	Apply(pod)
	if got := []string{pod.Spec.Tolerations[0].Operator, pod.Spec.Tolerations[1].Operator}; got[0] != "Equal" || got[1] != "Exists" {
		t.Errorf("toleration operators %v, want [Equal Exists]", got)
	}
}

func TestQOSClass(t *testing.T) {
	res := func(limits, requests map[string]string) *corev1.ResourceRequirements {
		return &corev1.ResourceRequirements{Limits: limits, Requests: requests}
	}
	for _, tc := range []struct {
		name      string
		resources []*corev1.ResourceRequirements
		want      string
	}{
		{"nothing", []*corev1.ResourceRequirements{nil}, "BestEffort"},
		{"only other resources", []*corev1.ResourceRequirements{res(map[string]string{"example.com/gpu": "1"}, nil)}, "BestEffort"},
		{"limits equal requests", []*corev1.ResourceRequirements{res(map[string]string{"cpu": "1", "memory": "1Gi"}, map[string]string{"cpu": "1000m", "memory": "1Gi"})}, "Guaranteed"},
		{"limits only (requests copied)", []*corev1.ResourceRequirements{res(map[string]string{"cpu": "1", "memory": "1Gi"}, nil)}, "Guaranteed"},
		{"requests below limits", []*corev1.ResourceRequirements{res(map[string]string{"cpu": "1", "memory": "1Gi"}, map[string]string{"cpu": "500m"})}, "Burstable"},
		{"memory limit missing", []*corev1.ResourceRequirements{res(map[string]string{"cpu": "1"}, nil)}, "Burstable"},
		{"requests only", []*corev1.ResourceRequirements{res(nil, map[string]string{"memory": "64Mi"})}, "Burstable"},
		{"one container without limits", []*corev1.ResourceRequirements{res(map[string]string{"cpu": "1", "memory": "1Gi"}, nil), nil}, "Burstable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &corev1.Pod{Metadata: meta("p"), Spec: &corev1.PodSpec{}}
			for i, r := range tc.resources {
				p.Spec.Containers = append(p.Spec.Containers, &corev1.Container{Name: string(rune('a' + i)), Image: "x", Resources: r})
			}
			Apply(p)
			if p.Status.QosClass != tc.want {
				t.Errorf("qosClass %q, want %q", p.Status.QosClass, tc.want)
			}
		})
	}
}

func TestTemplatesDoNotCopyLimitsToRequests(t *testing.T) {
	tmpl := bareTemplate()
	tmpl.Spec.Containers[0].Resources = &corev1.ResourceRequirements{Limits: map[string]string{"cpu": "1"}}
	d := &appsv1.Deployment{Metadata: meta("d"), Spec: &appsv1.DeploymentSpec{Template: tmpl}}
	Apply(d)
	if r := d.Spec.Template.Spec.Containers[0].Resources.Requests; r != nil {
		t.Errorf("template requests %v, want none (as in Kubernetes)", r)
	}
}

func TestJobSelectorNeedsUID(t *testing.T) {
	j := &batchv1.Job{Metadata: &metav1.ObjectMeta{Name: "j", Namespace: "default"}, Spec: &batchv1.JobSpec{Template: bareTemplate()}}
	Apply(j)
	if j.Spec.Selector != nil {
		t.Errorf("selector %v generated without a uid", j.Spec.Selector)
	}
}

func TestJobNameTooLongForLabel(t *testing.T) {
	name := "a-job-whose-name-is-far-longer-than-the-sixty-three-characters-a-label-value-allows"
	j := &batchv1.Job{Metadata: &metav1.ObjectMeta{Name: name, Uid: uid}, Spec: &batchv1.JobSpec{Template: &corev1.PodTemplateSpec{Spec: bareSpec("x")}}}
	Apply(j)
	want := map[string]string{JobControllerUIDLabel: uid}
	if d := cmp.Diff(want, j.Spec.Template.Metadata.Labels); d != "" {
		t.Errorf("template labels (-want +got):\n%s", d)
	}
}

func TestApplyToleratesNil(t *testing.T) {
	Apply(nil)
	for _, obj := range []api.Object{(*corev1.Pod)(nil), &corev1.Pod{}, &appsv1.Deployment{}, &batchv1.Job{}, &corev1.Service{}, &corev1.Secret{}, &appsv1.StatefulSet{}, &appsv1.DaemonSet{}, &appsv1.ReplicaSet{}} {
		Apply(obj)
	}
}
