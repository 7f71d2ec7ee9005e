package validation

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"k8s.io/apimachinery/pkg/util/validation/field"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	batchv1 "bosun.dev/gen/bosun/batch/v1"
	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
)

// Valid objects of every kind, as defaulting leaves them; each test case
// breaks one thing.

func ptr[T any](v T) *T { return &v }

func om(name string) *metav1.ObjectMeta {
	return &metav1.ObjectMeta{Name: name, Namespace: "default", Uid: "0b9e7a4c-5d7e-4a8f-9b1e-000000000001"}
}

func validPodSpec() *corev1.PodSpec {
	return &corev1.PodSpec{
		Containers: []*corev1.Container{{
			Name:  "app",
			Image: "registry.example.com:5000/web:1.25",
			Ports: []*corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: "TCP"}},
			Env: []*corev1.EnvVar{
				{Name: "MODE", Value: "prod"},
				{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{ApiVersion: "v1", FieldPath: "metadata.name"}}},
				{Name: "APP_LABEL", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
				{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Name: "db", Key: "password"}}},
			},
			EnvFrom: []*corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{Name: "app-config"}}},
			Resources: &corev1.ResourceRequirements{
				Limits:   map[string]string{"cpu": "500m", "memory": "128Mi", "example.com/gpu": "1", "hugepages-2Mi": "4Mi"},
				Requests: map[string]string{"cpu": "250m", "memory": "128Mi"},
			},
			VolumeMounts: []*corev1.VolumeMount{{Name: "config", MountPath: "/etc/app"}, {Name: "cache", MountPath: "/var/cache"}},
			LivenessProbe: &corev1.Probe{
				HttpGet:        &corev1.HTTPGetAction{Path: "/healthz", Port: &metav1.IntOrString{StrVal: "http"}, Scheme: "HTTP"},
				TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3,
			},
			ReadinessProbe: &corev1.Probe{
				TcpSocket:      &corev1.TCPSocketAction{Port: &metav1.IntOrString{IntVal: 8080}},
				TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 2, FailureThreshold: 3,
			},
			ImagePullPolicy:          "IfNotPresent",
			TerminationMessagePath:   "/dev/termination-log",
			TerminationMessagePolicy: "File",
		}},
		InitContainers: []*corev1.Container{{Name: "init", Image: "busybox", Command: []string{"sh", "-c", "true"}, ImagePullPolicy: "Always"}},
		Volumes: []*corev1.Volume{
			{Name: "config", Source: &corev1.Volume_ConfigMap{ConfigMap: &corev1.ConfigMapVolumeSource{
				Name: "app-config", DefaultMode: ptr[int32](0o644),
				Items: []*corev1.KeyToPath{{Key: "app.yaml", Path: "conf/app.yaml", Mode: ptr[int32](0o600)}},
			}}},
			{Name: "cache", Source: &corev1.Volume_EmptyDir{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: "1Gi"}}},
			{Name: "tls", Source: &corev1.Volume_Secret{Secret: &corev1.SecretVolumeSource{SecretName: "web-tls"}}},
			{Name: "logs", Source: &corev1.Volume_HostPath{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log", Type: "Directory"}}},
		},
		RestartPolicy:                 "Always",
		TerminationGracePeriodSeconds: ptr[int64](30),
		DnsPolicy:                     "ClusterFirst",
		SchedulerName:                 "default-scheduler",
		Priority:                      ptr[int32](0),
		NodeSelector:                  map[string]string{"kubernetes.io/os": "linux"},
		Tolerations: []*corev1.Toleration{
			{Key: "dedicated", Operator: "Equal", Value: "web", Effect: "NoSchedule"},
			{Key: "node.kubernetes.io/unreachable", Operator: "Exists", Effect: "NoExecute", TolerationSeconds: ptr[int64](30)},
			{Operator: "Exists"},
		},
		Affinity: &corev1.Affinity{
			NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []*corev1.NodeSelectorTerm{{
					MatchExpressions: []*corev1.NodeSelectorRequirement{
						{Key: "zone", Operator: "In", Values: []string{"a", "b"}},
						{Key: "cores", Operator: "Gt", Values: []string{"2"}},
					},
				}}},
				PreferredDuringSchedulingIgnoredDuringExecution: []*corev1.PreferredSchedulingTerm{{
					Weight: 10, Preference: &corev1.NodeSelectorTerm{MatchExpressions: []*corev1.NodeSelectorRequirement{{Key: "ssd", Operator: "Exists"}}},
				}},
			},
			PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []*corev1.PodAffinityTerm{{
					LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
					TopologyKey:   "kubernetes.io/hostname",
				}},
			},
			PodAffinity: &corev1.PodAffinity{
				PreferredDuringSchedulingIgnoredDuringExecution: []*corev1.WeightedPodAffinityTerm{{
					Weight:          100,
					PodAffinityTerm: &corev1.PodAffinityTerm{TopologyKey: "zone", Namespaces: []string{"cache"}},
				}},
			},
		},
		TopologySpreadConstraints: []*corev1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: "zone", WhenUnsatisfiable: "DoNotSchedule", MinDomains: ptr[int32](2),
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		}},
		SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr[int64](1000), FsGroup: ptr[int64](2000)},
	}
}

func validPod() *corev1.Pod {
	m := om("web")
	m.Labels = map[string]string{"app": "web", "app.kubernetes.io/part-of": "shop"}
	m.Annotations = map[string]string{"example.com/owner": "team-a"}
	m.Finalizers = []string{"example.com/cleanup"}
	m.OwnerReferences = []*metav1.OwnerReference{{ApiVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-abc", Uid: "u1", Controller: ptr(true)}}
	return &corev1.Pod{Metadata: m, Spec: validPodSpec(), Status: &corev1.PodStatus{Phase: "Pending", QosClass: "Burstable"}}
}

func validTemplate() *corev1.PodTemplateSpec {
	return &corev1.PodTemplateSpec{Metadata: &metav1.ObjectMeta{Labels: map[string]string{"app": "web", "tier": "front"}}, Spec: validPodSpec()}
}

func webSelector() *metav1.LabelSelector {
	return &metav1.LabelSelector{
		MatchLabels:      map[string]string{"app": "web"},
		MatchExpressions: []*metav1.LabelSelectorRequirement{{Key: "tier", Operator: "In", Values: []string{"front", "edge"}}},
	}
}

func validDeployment() *appsv1.Deployment {
	return &appsv1.Deployment{Metadata: om("web"), Spec: &appsv1.DeploymentSpec{
		Replicas: ptr[int32](3), Selector: webSelector(), Template: validTemplate(),
		Strategy: &appsv1.DeploymentStrategy{Type: "RollingUpdate", RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxUnavailable: &metav1.IntOrString{StrVal: "25%"}, MaxSurge: &metav1.IntOrString{IntVal: 1},
		}},
		RevisionHistoryLimit: ptr[int32](10), ProgressDeadlineSeconds: ptr[int32](600),
	}}
}

func validReplicaSet() *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{Metadata: om("web-abc"), Spec: &appsv1.ReplicaSetSpec{Replicas: ptr[int32](3), Selector: webSelector(), Template: validTemplate()}}
}

func validDaemonSet() *appsv1.DaemonSet {
	return &appsv1.DaemonSet{Metadata: om("agent"), Spec: &appsv1.DaemonSetSpec{
		Selector: webSelector(), Template: validTemplate(),
		UpdateStrategy: &appsv1.DaemonSetUpdateStrategy{Type: "RollingUpdate", RollingUpdate: &appsv1.RollingUpdateDaemonSet{
			MaxUnavailable: &metav1.IntOrString{IntVal: 1}, MaxSurge: &metav1.IntOrString{IntVal: 0},
		}},
		RevisionHistoryLimit: ptr[int32](10),
	}}
}

func validStatefulSet() *appsv1.StatefulSet {
	return &appsv1.StatefulSet{Metadata: om("db"), Spec: &appsv1.StatefulSetSpec{
		Replicas: ptr[int32](3), Selector: webSelector(), Template: validTemplate(), ServiceName: "db",
		PodManagementPolicy: "OrderedReady",
		UpdateStrategy:      &appsv1.StatefulSetUpdateStrategy{Type: "RollingUpdate", RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr[int32](0)}},
	}}
}

func validJob() *batchv1.Job {
	t := validTemplate()
	t.Spec.RestartPolicy = "OnFailure"
	t.Spec.ActiveDeadlineSeconds = ptr[int64](60)
	return &batchv1.Job{Metadata: om("migrate"), Spec: &batchv1.JobSpec{
		Parallelism: ptr[int32](1), Completions: ptr[int32](1), BackoffLimit: ptr[int32](6),
		Selector: webSelector(), Template: t, CompletionMode: "NonIndexed", Suspend: ptr(false),
		ActiveDeadlineSeconds: ptr[int64](600), TtlSecondsAfterFinished: ptr[int32](0),
	}}
}

func validService() *corev1.Service {
	return &corev1.Service{Metadata: om("web"), Spec: &corev1.ServiceSpec{
		Type: "ClusterIP", ClusterIp: "10.96.0.10", ClusterIps: []string{"10.96.0.10"},
		Selector: map[string]string{"app": "web"}, SessionAffinity: "None", InternalTrafficPolicy: "Cluster",
		Ports: []*corev1.ServicePort{
			{Name: "http", Protocol: "TCP", Port: 80, TargetPort: &metav1.IntOrString{StrVal: "http"}},
			{Name: "metrics", Protocol: "TCP", Port: 9090, TargetPort: &metav1.IntOrString{IntVal: 9090}},
		},
	}}
}

func validNodePortService() *corev1.Service {
	s := validService()
	s.Spec.Type = "NodePort"
	s.Spec.ExternalTrafficPolicy = "Local"
	s.Spec.Ports[0].NodePort = 30080
	return s
}

func validEndpoints() *corev1.Endpoints {
	return &corev1.Endpoints{Metadata: om("web"), Subsets: []*corev1.EndpointSubset{{
		Addresses:         []*corev1.EndpointAddress{{Ip: "10.244.1.5", NodeName: ptr("node-1")}},
		NotReadyAddresses: []*corev1.EndpointAddress{{Ip: "fd00::5", Hostname: "web-1"}},
		Ports:             []*corev1.EndpointPort{{Name: "http", Port: 8080, Protocol: "TCP"}, {Name: "metrics", Port: 9090, Protocol: "TCP"}},
	}}}
}

func validConfigMap() *corev1.ConfigMap {
	return &corev1.ConfigMap{Metadata: om("app-config"), Data: map[string]string{"app.yaml": "a: 1", ".env": "X=1"}, BinaryData: map[string][]byte{"logo.png": {1, 2, 3}}}
}

func validSecret() *corev1.Secret {
	return &corev1.Secret{Metadata: om("web-tls"), Type: "kubernetes.io/tls", Data: map[string][]byte{"tls.crt": []byte("c"), "tls.key": []byte("k")}}
}

func validNode() *corev1.Node {
	return &corev1.Node{Metadata: &metav1.ObjectMeta{Name: "node-1.example.com", Labels: map[string]string{"kubernetes.io/hostname": "node-1"}}, Spec: &corev1.NodeSpec{
		PodCidr: "10.244.1.0/24", PodCidrs: []string{"10.244.1.0/24", "fd00:1::/64"},
		Taints: []*corev1.Taint{{Key: "dedicated", Value: "web", Effect: "NoSchedule"}, {Key: "dedicated", Value: "web", Effect: "NoExecute"}},
	}, Status: &corev1.NodeStatus{
		Capacity:    map[string]string{"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"},
		Allocatable: map[string]string{"cpu": "3800m", "memory": "15Gi", "pods": "110"},
		Conditions:  []*corev1.NodeCondition{{Type: "Ready", Status: "True"}},
		Addresses:   []*corev1.NodeAddress{{Type: "InternalIP", Address: "192.168.1.10"}},
	}}
}

func validNamespace() *corev1.Namespace {
	return &corev1.Namespace{Metadata: &metav1.ObjectMeta{Name: "shop"}, Spec: &corev1.NamespaceSpec{Finalizers: []string{"kubernetes"}}, Status: &corev1.NamespaceStatus{Phase: "Active"}}
}

func validEvent() *corev1.Event {
	return &corev1.Event{Metadata: om("web.17a3"), InvolvedObject: &metav1.ObjectReference{Kind: "Pod", Name: "web", Namespace: "default"},
		Reason: "Scheduled", Message: "assigned", Type: "Normal", Count: 1}
}

func validLease() *coordinationv1.Lease {
	return &coordinationv1.Lease{Metadata: om("scheduler"), Spec: &coordinationv1.LeaseSpec{
		HolderIdentity: ptr("scheduler-0"), LeaseDurationSeconds: ptr[int32](15), LeaseTransitions: ptr[int32](0),
	}}
}

// want is one expected error: its type and its path.
type want struct {
	typ  field.ErrorType
	path string
}

func (w want) String() string { return fmt.Sprintf("%s %s", w.path, w.typ) }

func req(path string) want      { return want{field.ErrorTypeRequired, path} }
func inv(path string) want      { return want{field.ErrorTypeInvalid, path} }
func unsup(path string) want    { return want{field.ErrorTypeNotSupported, path} }
func dup(path string) want      { return want{field.ErrorTypeDuplicate, path} }
func forbid(path string) want   { return want{field.ErrorTypeForbidden, path} }
func tooLong(path string) want  { return want{field.ErrorTypeTooLong, path} }
func notFound(path string) want { return want{field.ErrorTypeNotFound, path} }

// checkErrors asserts that errs are exactly wants (in any order), and that
// every path names real fields of obj's kind by their JSON names.
func checkErrors(t *testing.T, obj api.Object, errs field.ErrorList, wants ...want) {
	t.Helper()
	got := make([]string, 0, len(errs))
	for _, e := range errs {
		got = append(got, want{e.Type, e.Field}.String())
		if err := checkJSONPath(obj.ProtoReflect().Descriptor(), e.Field); err != nil {
			t.Errorf("error %q: path is not a JSON field path: %v", e.Error(), err)
		}
	}
	exp := make([]string, 0, len(wants))
	for _, w := range wants {
		exp = append(exp, w.String())
	}
	slices.Sort(got)
	slices.Sort(exp)
	if !slices.Equal(got, exp) {
		t.Errorf("errors:\n got  %q\n want %q\nfull: %v", got, exp, errs)
	}
}

// checkJSONPath walks a field.Path string such as
// spec.containers[0].resources.limits[memory] through the message
// descriptor, field by JSON name.
func checkJSONPath(md protoreflect.MessageDescriptor, path string) error {
	if path == "" || path == "<nil>" {
		return nil
	}
	var fd protoreflect.FieldDescriptor
	for path != "" {
		switch path[0] {
		case '.':
			path = path[1:]
		case '[':
			end := strings.IndexByte(path, ']')
			if end < 0 || fd == nil {
				return fmt.Errorf("bad subscript in %q", path)
			}
			sub := path[1:end]
			path = path[end+1:]
			switch {
			case fd.IsList():
				if _, err := strconv.Atoi(sub); err != nil {
					return fmt.Errorf("list %s indexed by %q", fd.JSONName(), sub)
				}
				md = fd.Message()
			case fd.IsMap():
				md = fd.MapValue().Message()
			default:
				return fmt.Errorf("%s is not a list or map", fd.JSONName())
			}
			fd = nil
		default:
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				end = len(path)
			}
			name := path[:end]
			path = path[end:]
			if md == nil {
				return fmt.Errorf("field %q inside a scalar", name)
			}
			fd = md.Fields().ByJSONName(name)
			if fd == nil {
				return fmt.Errorf("%s has no field with JSON name %q", md.FullName(), name)
			}
			md = nil
			if !fd.IsList() && !fd.IsMap() {
				md = fd.Message()
			}
		}
	}
	return nil
}

func kindName(obj api.Object) string {
	k, err := api.KindOf(obj)
	if err != nil {
		return "?"
	}
	return k.Kind
}
