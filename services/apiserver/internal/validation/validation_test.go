package validation

import (
	"strings"
	"testing"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
)

func TestValidateAcceptsValidObjects(t *testing.T) {
	headless := validService()
	headless.Spec.ClusterIp, headless.Spec.ClusterIps, headless.Spec.Ports = "None", nil, nil
	single := validService()
	single.Spec.Ports = single.Spec.Ports[:1]
	single.Spec.Ports[0].Name = ""
	generated := validPod()
	generated.Metadata.Name, generated.Metadata.GenerateName = "", "web-"
	opaque := &corev1.Secret{Metadata: om("db"), Type: "Opaque", StringData: map[string]string{"password": "x"}}
	recreate := validDeployment()
	recreate.Spec.Strategy = &appsv1.DeploymentStrategy{Type: "Recreate"}
	indexed := validJob()
	indexed.Spec.CompletionMode, indexed.Spec.Completions = "Indexed", ptr[int32](5)
	minimalPod := &corev1.Pod{Metadata: om("p"), Spec: &corev1.PodSpec{Containers: []*corev1.Container{{Name: "c", Image: "x"}}}}
	for _, obj := range []api.Object{
		validPod(), generated, minimalPod, validNode(), validNamespace(), validService(), validNodePortService(), headless, single,
		validEndpoints(), validConfigMap(), validSecret(), opaque, validEvent(),
		validDeployment(), recreate, validReplicaSet(), validDaemonSet(), validStatefulSet(), validJob(), indexed, validLease(),
	} {
		t.Run(kindName(obj)+"/"+obj.GetMetadata().GetName(), func(t *testing.T) {
			checkErrors(t, obj, Validate(obj))
		})
	}
}

func podWith(f func(p *corev1.Pod, c *corev1.Container)) api.Object {
	p := validPod()
	f(p, p.Spec.Containers[0])
	return p
}

func deployWith(f func(d *appsv1.DeploymentSpec)) api.Object {
	d := validDeployment()
	f(d.Spec)
	return d
}

func TestValidateRejects(t *testing.T) {
	const c0 = "spec.containers[0]"
	bigArg := strings.Repeat("x", MaxObjectBytes)
	tests := []struct {
		name  string
		obj   api.Object
		wants []want
	}{
		// metadata, on several kinds
		{"name missing", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Metadata.Name = "" }), []want{req("metadata.name")}},
		{"name not a subdomain", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Metadata.Name = "Web_1" }), []want{inv("metadata.name")}},
		{"generateName bad prefix", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Metadata.Name, p.Metadata.GenerateName = "", "Web_" }), []want{inv("metadata.generateName")}},
		{"namespace missing", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Metadata.Namespace = "" }), []want{req("metadata.namespace")}},
		{"namespace not a label", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Metadata.Namespace = "a.b" }), []want{inv("metadata.namespace")}},
		{"namespace on a Node", func() api.Object { n := validNode(); n.Metadata.Namespace = "default"; return n }(), []want{forbid("metadata.namespace")}},
		{"namespace on a Namespace", func() api.Object { n := validNamespace(); n.Metadata.Namespace = "default"; return n }(), []want{forbid("metadata.namespace")}},
		{"Namespace name with a dot", func() api.Object { n := validNamespace(); n.Metadata.Name = "shop.prod"; return n }(), []want{inv("metadata.name")}},
		{"Service name with a dot", func() api.Object { s := validService(); s.Metadata.Name = "web.v2"; return s }(), []want{inv("metadata.name")}},
		{"label key", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Metadata.Labels["-app"] = "x" }), []want{inv("metadata.labels")}},
		{"label value", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Metadata.Labels["app"] = "web app" }), []want{inv("metadata.labels")}},
		{"annotation key", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Metadata.Annotations["a/b/c"] = "x" }), []want{inv("metadata.annotations")}},
		{"annotations too large", func() api.Object {
			cm := validConfigMap()
			cm.Metadata.Annotations = map[string]string{"big": strings.Repeat("x", MaxAnnotationsBytes)}
			return cm
		}(), []want{tooLong("metadata.annotations")}},
		{"finalizer", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Metadata.Finalizers = []string{"ok.io/x", "bad finalizer"} }), []want{inv("metadata.finalizers[1]")}},
		{"ownerReference uid", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Metadata.OwnerReferences[0].Uid = "" }), []want{req("metadata.ownerReferences[0].uid")}},
		{"ownerReference apiVersion and kind", podWith(func(p *corev1.Pod, _ *corev1.Container) {
			p.Metadata.OwnerReferences[0].ApiVersion, p.Metadata.OwnerReferences[0].Kind = "", ""
		}), []want{req("metadata.ownerReferences[0].apiVersion"), req("metadata.ownerReferences[0].kind")}},
		{"two controllers", podWith(func(p *corev1.Pod, _ *corev1.Container) {
			p.Metadata.OwnerReferences = append(p.Metadata.OwnerReferences, &metav1.OwnerReference{ApiVersion: "v1", Kind: "X", Name: "x", Uid: "u2", Controller: ptr(true)})
		}), []want{inv("metadata.ownerReferences[1].controller")}},
		{"object too large", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.Args = []string{bigArg} }), []want{tooLong("spec")}},

		// Pod spec
		{"no containers", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.Containers = nil }), []want{req("spec.containers")}},
		{"container name missing", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.Name = "" }), []want{req(c0 + ".name")}},
		{"container name not a label", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.Name = "App" }), []want{inv(c0 + ".name")}},
		{"container name shared with init container", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.Name = "init" }), []want{dup(c0 + ".name")}},
		{"image missing", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.Image = "" }), []want{req(c0 + ".image")}},
		{"init image missing", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.InitContainers[0].Image = " " }), []want{req("spec.initContainers[0].image")}},
		{"workingDir relative", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.WorkingDir = "app" }), []want{inv(c0 + ".workingDir")}},
		{"containerPort missing", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.Ports[0].ContainerPort = 0 }), []want{req(c0 + ".ports[0].containerPort")}},
		{"containerPort too big", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.Ports[0].ContainerPort = 70000 }), []want{inv(c0 + ".ports[0].containerPort")}},
		{"hostPort too big", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.Ports[0].HostPort = 65536 }), []want{inv(c0 + ".ports[0].hostPort")}},
		{"hostIP", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.Ports[0].HostIp = "1.2.3" }), []want{inv(c0 + ".ports[0].hostIP")}},
		{"port name not IANA", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.Ports[0].Name = "http_alt" }), []want{inv(c0 + ".ports[0].name")}},
		{"port name duplicate", podWith(func(_ *corev1.Pod, c *corev1.Container) {
			c.Ports = append(c.Ports, &corev1.ContainerPort{Name: "http", ContainerPort: 8081})
		}), []want{dup(c0 + ".ports[1].name")}},
		{"port protocol", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.Ports[0].Protocol = "ICMP" }), []want{unsup(c0 + ".ports[0].protocol")}},
		{"env name", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.Env[0].Name = "1MODE" }), []want{inv(c0 + ".env[0].name")}},
		{"env valueFrom empty", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.Env[1].ValueFrom = &corev1.EnvVarSource{} }), []want{inv(c0 + ".env[1].valueFrom")}},
		{"env valueFrom two sources", podWith(func(_ *corev1.Pod, c *corev1.Container) {
			c.Env[1].ValueFrom.ConfigMapKeyRef = &corev1.ConfigMapKeySelector{Name: "cm", Key: "k"}
		}), []want{inv(c0 + ".env[1].valueFrom")}},
		{"env value and valueFrom", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.Env[1].Value = "x" }), []want{inv(c0 + ".env[1].valueFrom")}},
		{"env secretKeyRef key", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.Env[3].ValueFrom.SecretKeyRef.Key = "pass word" }), []want{inv(c0 + ".env[3].valueFrom.secretKeyRef.key")}},
		{"env configMapKeyRef name", podWith(func(_ *corev1.Pod, c *corev1.Container) {
			c.Env[3].ValueFrom = &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Key: "k"}}
		}), []want{req(c0 + ".env[3].valueFrom.configMapKeyRef.name")}},
		{"env fieldRef path", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.Env[1].ValueFrom.FieldRef.FieldPath = "spec.containers" }), []want{unsup(c0 + ".env[1].valueFrom.fieldRef.fieldPath")}},
		{"env resourceFieldRef", podWith(func(_ *corev1.Pod, c *corev1.Container) {
			c.Env[1].ValueFrom = &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.gpu"}}
		}), []want{unsup(c0 + ".env[1].valueFrom.resourceFieldRef.resource")}},
		{"envFrom no source", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.EnvFrom[0].ConfigMapRef = nil }), []want{inv(c0 + ".envFrom[0]")}},
		{"envFrom two sources", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.EnvFrom[0].SecretRef = &corev1.SecretEnvSource{Name: "s"} }), []want{inv(c0 + ".envFrom[0]")}},
		{"limit not a quantity", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.Resources.Limits["memory"] = "lots" }), []want{inv(c0 + ".resources.limits[memory]")}},
		{"unknown resource", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.Resources.Limits["gpu"] = "1" }), []want{inv(c0 + ".resources.limits[gpu]")}},
		{"extended resource in kubernetes.io", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.Resources.Requests["kubernetes.io/gpu"] = "1" }), []want{inv(c0 + ".resources.requests[kubernetes.io/gpu]")}},
		{"hugepages size", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.Resources.Limits["hugepages-big"] = "1" }), []want{inv(c0 + ".resources.limits[hugepages-big]")}},
		{"negative request", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.Resources.Requests["cpu"] = "-1" }), []want{inv(c0 + ".resources.requests[cpu]")}},
		{"request above limit", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.Resources.Requests["memory"] = "1Gi" }), []want{inv(c0 + ".resources.requests[memory]")}},
		{"volume name duplicate", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.Volumes[3].Name = "cache" }), []want{dup("spec.volumes[3].name")}},
		{"volume name not a label", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.Volumes[3].Name = "Logs" }), []want{inv("spec.volumes[3].name")}},
		{"volume without source", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.Volumes[3].Source = nil }), []want{req("spec.volumes[3]")}},
		{"hostPath relative", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.Volumes[3].GetHostPath().Path = "var/log" }), []want{inv("spec.volumes[3].hostPath.path")}},
		{"hostPath type", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.Volumes[3].GetHostPath().Type = "Dir" }), []want{unsup("spec.volumes[3].hostPath.type")}},
		{"emptyDir medium", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.Volumes[1].GetEmptyDir().Medium = "Disk" }), []want{unsup("spec.volumes[1].emptyDir.medium")}},
		{"configMap name missing", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.Volumes[0].GetConfigMap().Name = "" }), []want{req("spec.volumes[0].configMap.name")}},
		{"secret name invalid", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.Volumes[2].GetSecret().SecretName = "Web TLS" }), []want{inv("spec.volumes[2].secret.secretName")}},
		{"item path escapes", podWith(func(p *corev1.Pod, _ *corev1.Container) {
			p.Spec.Volumes[0].GetConfigMap().Items[0].Path = "../etc/passwd"
		}), []want{inv("spec.volumes[0].configMap.items[0].path")}},
		{"item path absolute", podWith(func(p *corev1.Pod, _ *corev1.Container) {
			p.Spec.Volumes[0].GetConfigMap().Items[0].Path = "/etc/passwd"
		}), []want{inv("spec.volumes[0].configMap.items[0].path")}},
		{"item key", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.Volumes[0].GetConfigMap().Items[0].Key = "a:b" }), []want{inv("spec.volumes[0].configMap.items[0].key")}},
		{"item mode", podWith(func(p *corev1.Pod, _ *corev1.Container) {
			p.Spec.Volumes[0].GetConfigMap().Items[0].Mode = ptr[int32](-1)
		}), []want{inv("spec.volumes[0].configMap.items[0].mode")}},
		{"defaultMode", podWith(func(p *corev1.Pod, _ *corev1.Container) {
			p.Spec.Volumes[2].GetSecret().DefaultMode = ptr[int32](0o1000)
		}), []want{inv("spec.volumes[2].secret.defaultMode")}},
		{"mount of unknown volume", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.VolumeMounts[0].Name = "data" }), []want{notFound(c0 + ".volumeMounts[0].name")}},
		{"mountPath relative", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.VolumeMounts[0].MountPath = "etc/app" }), []want{inv(c0 + ".volumeMounts[0].mountPath")}},
		{"mountPath duplicate", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.VolumeMounts[1].MountPath = "/etc/app/" }), []want{dup(c0 + ".volumeMounts[1].mountPath")}},
		{"subPath escapes", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.VolumeMounts[0].SubPath = "a/../.." }), []want{inv(c0 + ".volumeMounts[0].subPath")}},
		{"probe without handler", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.LivenessProbe.HttpGet = nil }), []want{req(c0 + ".livenessProbe")}},
		{"probe with two handlers", podWith(func(_ *corev1.Pod, c *corev1.Container) {
			c.LivenessProbe.TcpSocket = &corev1.TCPSocketAction{Port: &metav1.IntOrString{IntVal: 80}}
		}), []want{forbid(c0 + ".livenessProbe.tcpSocket")}},
		{"probe port zero", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.ReadinessProbe.TcpSocket.Port = &metav1.IntOrString{} }), []want{inv(c0 + ".readinessProbe.tcpSocket.port")}},
		{"probe port name", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.LivenessProbe.HttpGet.Port.StrVal = "no_such_port" }), []want{inv(c0 + ".livenessProbe.httpGet.port")}},
		{"probe scheme", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.LivenessProbe.HttpGet.Scheme = "FTP" }), []want{unsup(c0 + ".livenessProbe.httpGet.scheme")}},
		{"exec probe without command", podWith(func(_ *corev1.Pod, c *corev1.Container) {
			c.StartupProbe = &corev1.Probe{Exec: &corev1.ExecAction{}}
		}), []want{req(c0 + ".startupProbe.exec.command")}},
		{"liveness successThreshold", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.LivenessProbe.SuccessThreshold = 2 }), []want{inv(c0 + ".livenessProbe.successThreshold")}},
		{"failureThreshold negative", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.ReadinessProbe.FailureThreshold = -1 }), []want{inv(c0 + ".readinessProbe.failureThreshold")}},
		{"periodSeconds negative", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.ReadinessProbe.PeriodSeconds = -1 }), []want{inv(c0 + ".readinessProbe.periodSeconds")}},
		{"readiness probe grace period", podWith(func(_ *corev1.Pod, c *corev1.Container) {
			c.ReadinessProbe.TerminationGracePeriodSeconds = ptr[int64](5)
		}), []want{forbid(c0 + ".readinessProbe.terminationGracePeriodSeconds")}},
		{"probe on init container", podWith(func(p *corev1.Pod, _ *corev1.Container) {
			p.Spec.InitContainers[0].LivenessProbe = &corev1.Probe{Exec: &corev1.ExecAction{Command: []string{"true"}}}
		}), []want{forbid("spec.initContainers[0].livenessProbe")}},
		{"imagePullPolicy", podWith(func(_ *corev1.Pod, c *corev1.Container) { c.ImagePullPolicy = "Sometimes" }), []want{unsup(c0 + ".imagePullPolicy")}},
		{"container runAsUser", podWith(func(_ *corev1.Pod, c *corev1.Container) {
			c.SecurityContext = &corev1.SecurityContext{RunAsUser: ptr[int64](-1)}
		}), []want{inv(c0 + ".securityContext.runAsUser")}},
		{"restartPolicy", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.RestartPolicy = "Sometimes" }), []want{unsup("spec.restartPolicy")}},
		{"dnsPolicy", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.DnsPolicy = "None" }), []want{unsup("spec.dnsPolicy")}},
		{"preemptionPolicy", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.PreemptionPolicy = "Always" }), []want{unsup("spec.preemptionPolicy")}},
		{"terminationGracePeriodSeconds", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.TerminationGracePeriodSeconds = ptr[int64](-1) }), []want{inv("spec.terminationGracePeriodSeconds")}},
		{"activeDeadlineSeconds", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.ActiveDeadlineSeconds = ptr[int64](0) }), []want{inv("spec.activeDeadlineSeconds")}},
		{"pod runAsUser", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.SecurityContext.RunAsUser = ptr[int64](-5) }), []want{inv("spec.securityContext.runAsUser")}},
		{"nodeName", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.NodeName = "Node_1" }), []want{inv("spec.nodeName")}},
		{"nodeSelector value", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.NodeSelector["disk"] = "fast ssd" }), []want{inv("spec.nodeSelector")}},
		{"toleration operator", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.Tolerations[0].Operator = "Matches" }), []want{unsup("spec.tolerations[0].operator")}},
		{"toleration Exists with value", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.Tolerations[1].Value = "x" }), []want{inv("spec.tolerations[1].value")}},
		{"toleration without key must be Exists", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.Tolerations[2].Operator = "Equal" }), []want{inv("spec.tolerations[2].operator")}},
		{"toleration effect", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.Tolerations[0].Effect = "NoRun" }), []want{unsup("spec.tolerations[0].effect")}},
		{"tolerationSeconds without NoExecute", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.Tolerations[1].Effect = "NoSchedule" }), []want{inv("spec.tolerations[1].effect")}},
		{"toleration key", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.Tolerations[0].Key = "bad key" }), []want{inv("spec.tolerations[0].key")}},
	}
	const na = "spec.affinity.nodeAffinity."
	const term = na + "requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
	expr := func(f func(r *corev1.NodeSelectorRequirement)) api.Object {
		return podWith(func(p *corev1.Pod, _ *corev1.Container) {
			f(p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions[0])
		})
	}
	tests = append(tests, []struct {
		name  string
		obj   api.Object
		wants []want
	}{
		{"node affinity In without values", expr(func(r *corev1.NodeSelectorRequirement) { r.Values = nil }), []want{req(term + ".matchExpressions[0].values")}},
		{"node affinity Exists with values", expr(func(r *corev1.NodeSelectorRequirement) { r.Operator = "Exists" }), []want{forbid(term + ".matchExpressions[0].values")}},
		{"node affinity Gt not an integer", expr(func(r *corev1.NodeSelectorRequirement) { r.Operator, r.Values = "Gt", []string{"two"} }), []want{inv(term + ".matchExpressions[0].values[0]")}},
		{"node affinity Lt two values", expr(func(r *corev1.NodeSelectorRequirement) { r.Operator = "Lt" }), []want{req(term + ".matchExpressions[0].values")}},
		{"node affinity operator", expr(func(r *corev1.NodeSelectorRequirement) { r.Operator = "Near" }), []want{unsup(term + ".matchExpressions[0].operator")}},
		{"node affinity key", expr(func(r *corev1.NodeSelectorRequirement) { r.Key = "a b" }), []want{inv(term + ".matchExpressions[0].key")}},
		{"node affinity no terms", podWith(func(p *corev1.Pod, _ *corev1.Container) {
			p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms = nil
		}), []want{req(na + "requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms")}},
		{"node affinity matchFields key", podWith(func(p *corev1.Pod, _ *corev1.Container) {
			p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchFields = []*corev1.NodeSelectorRequirement{{Key: "spec.unschedulable", Operator: "In", Values: []string{"x"}}}
		}), []want{unsup(term + ".matchFields[0].key")}},
		{"preferred weight zero", podWith(func(p *corev1.Pod, _ *corev1.Container) {
			p.Spec.Affinity.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].Weight = 0
		}), []want{inv(na + "preferredDuringSchedulingIgnoredDuringExecution[0].weight")}},
		{"pod affinity weight over 100", podWith(func(p *corev1.Pod, _ *corev1.Container) {
			p.Spec.Affinity.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].Weight = 101
		}), []want{inv("spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight")}},
		{"pod anti-affinity topologyKey", podWith(func(p *corev1.Pod, _ *corev1.Container) {
			p.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0].TopologyKey = ""
		}), []want{req("spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey")}},
		{"pod affinity label selector", podWith(func(p *corev1.Pod, _ *corev1.Container) {
			p.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0].LabelSelector.MatchExpressions = []*metav1.LabelSelectorRequirement{{Key: "app", Operator: "Gt", Values: []string{"1"}}}
		}), []want{unsup("spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector.matchExpressions[0].operator")}},
		{"pod affinity namespace", podWith(func(p *corev1.Pod, _ *corev1.Container) {
			p.Spec.Affinity.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.Namespaces[0] = "Cache"
		}), []want{inv("spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.namespaces[0]")}},
		{"spread maxSkew", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.TopologySpreadConstraints[0].MaxSkew = 0 }), []want{inv("spec.topologySpreadConstraints[0].maxSkew")}},
		{"spread topologyKey", podWith(func(p *corev1.Pod, _ *corev1.Container) { p.Spec.TopologySpreadConstraints[0].TopologyKey = "" }), []want{req("spec.topologySpreadConstraints[0].topologyKey")}},
		{"spread whenUnsatisfiable", podWith(func(p *corev1.Pod, _ *corev1.Container) {
			p.Spec.TopologySpreadConstraints[0].WhenUnsatisfiable = "Never"
		}), []want{unsup("spec.topologySpreadConstraints[0].whenUnsatisfiable"), inv("spec.topologySpreadConstraints[0].minDomains")}},
		{"spread duplicate", podWith(func(p *corev1.Pod, _ *corev1.Container) {
			p.Spec.TopologySpreadConstraints = append(p.Spec.TopologySpreadConstraints, &corev1.TopologySpreadConstraint{MaxSkew: 2, TopologyKey: "zone", WhenUnsatisfiable: "DoNotSchedule"})
		}), []want{dup("spec.topologySpreadConstraints[1]")}},

		// Node
		{"podCIDR", func() api.Object { n := validNode(); n.Spec.PodCidr = "10.244.1.0"; return n }(), []want{inv("spec.podCIDR"), inv("spec.podCIDRs[0]")}},
		{"podCIDRs", func() api.Object { n := validNode(); n.Spec.PodCidrs[1] = "fd00::/129"; return n }(), []want{inv("spec.podCIDRs[1]")}},
		{"taint key", func() api.Object { n := validNode(); n.Spec.Taints[0].Key = ""; return n }(), []want{req("spec.taints[0].key")}},
		{"taint effect missing", func() api.Object { n := validNode(); n.Spec.Taints[0].Effect = ""; return n }(), []want{req("spec.taints[0].effect")}},
		{"taint effect", func() api.Object { n := validNode(); n.Spec.Taints[0].Effect = "NoRun"; return n }(), []want{unsup("spec.taints[0].effect")}},
		{"taint value", func() api.Object { n := validNode(); n.Spec.Taints[0].Value = "a b"; return n }(), []want{inv("spec.taints[0].value")}},
		{"taint duplicate", func() api.Object { n := validNode(); n.Spec.Taints[1].Effect = "NoSchedule"; return n }(), []want{dup("spec.taints[1]")}},
		{"capacity quantity", func() api.Object { n := validNode(); n.Status.Capacity["cpu"] = "four"; return n }(), []want{inv("status.capacity[cpu]")}},
		{"allocatable resource", func() api.Object { n := validNode(); n.Status.Allocatable["disks"] = "1"; return n }(), []want{inv("status.allocatable[disks]")}},

		// Service
		{"service ports missing", func() api.Object { s := validService(); s.Spec.Ports = nil; return s }(), []want{req("spec.ports")}},
		{"service port zero", func() api.Object { s := validService(); s.Spec.Ports[0].Port = 0; return s }(), []want{inv("spec.ports[0].port")}},
		{"service port name missing", func() api.Object { s := validService(); s.Spec.Ports[1].Name = ""; return s }(), []want{req("spec.ports[1].name")}},
		{"service port name duplicate", func() api.Object { s := validService(); s.Spec.Ports[1].Name = "http"; return s }(), []want{dup("spec.ports[1].name")}},
		{"service port duplicate", func() api.Object { s := validService(); s.Spec.Ports[1].Port = 80; return s }(), []want{dup("spec.ports[1]")}},
		{"targetPort number", func() api.Object { s := validService(); s.Spec.Ports[1].TargetPort.IntVal = 70000; return s }(), []want{inv("spec.ports[1].targetPort")}},
		{"targetPort name", func() api.Object { s := validService(); s.Spec.Ports[0].TargetPort.StrVal = "-http"; return s }(), []want{inv("spec.ports[0].targetPort")}},
		{"nodePort on ClusterIP", func() api.Object { s := validService(); s.Spec.Ports[0].NodePort = 30080; return s }(), []want{forbid("spec.ports[0].nodePort")}},
		{"nodePort out of range", func() api.Object { s := validNodePortService(); s.Spec.Ports[0].NodePort = 8080; return s }(), []want{inv("spec.ports[0].nodePort")}},
		{"service type", func() api.Object { s := validService(); s.Spec.Type = "Ingress"; return s }(), []want{unsup("spec.type")}},
		{"service protocol", func() api.Object { s := validService(); s.Spec.Ports[0].Protocol = "HTTP"; return s }(), []want{unsup("spec.ports[0].protocol")}},
		{"service selector", func() api.Object { s := validService(); s.Spec.Selector["app"] = "-web"; return s }(), []want{inv("spec.selector")}},
		{"sessionAffinity", func() api.Object { s := validService(); s.Spec.SessionAffinity = "Cookie"; return s }(), []want{unsup("spec.sessionAffinity")}},
		{"clientIP timeout", func() api.Object {
			s := validService()
			s.Spec.SessionAffinity = "ClientIP"
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIp: &corev1.ClientIPConfig{TimeoutSeconds: ptr[int32](100000)}}
			return s
		}(), []want{inv("spec.sessionAffinityConfig.clientIP.timeoutSeconds")}},
		{"clusterIP", func() api.Object { s := validService(); s.Spec.ClusterIp, s.Spec.ClusterIps = "10.96.0", nil; return s }(), []want{inv("spec.clusterIP")}},
		{"clusterIPs must match", func() api.Object { s := validService(); s.Spec.ClusterIps[0] = "10.96.0.11"; return s }(), []want{inv("spec.clusterIPs[0]")}},
		{"externalTrafficPolicy on ClusterIP", func() api.Object { s := validService(); s.Spec.ExternalTrafficPolicy = "Local"; return s }(), []want{inv("spec.externalTrafficPolicy")}},
		{"internalTrafficPolicy", func() api.Object { s := validService(); s.Spec.InternalTrafficPolicy = "Node"; return s }(), []want{unsup("spec.internalTrafficPolicy")}},
		{"externalIPs", func() api.Object { s := validService(); s.Spec.ExternalIps = []string{"example.com"}; return s }(), []want{inv("spec.externalIPs[0]")}},

		// Endpoints
		{"endpoint address", func() api.Object { e := validEndpoints(); e.Subsets[0].Addresses[0].Ip = "10.244.1"; return e }(), []want{inv("subsets[0].addresses[0].ip")}},
		{"endpoint not-ready address", func() api.Object { e := validEndpoints(); e.Subsets[0].NotReadyAddresses[0].Ip = ""; return e }(), []want{req("subsets[0].notReadyAddresses[0].ip")}},
		{"endpoint port", func() api.Object { e := validEndpoints(); e.Subsets[0].Ports[0].Port = 0; return e }(), []want{inv("subsets[0].ports[0].port")}},
		{"endpoint port name duplicate", func() api.Object { e := validEndpoints(); e.Subsets[0].Ports[1].Name = "http"; return e }(), []want{dup("subsets[0].ports[1].name")}},
		{"endpoint protocol", func() api.Object { e := validEndpoints(); e.Subsets[0].Ports[0].Protocol = "tcp"; return e }(), []want{unsup("subsets[0].ports[0].protocol")}},
		{"endpoint subset without addresses", func() api.Object {
			e := validEndpoints()
			e.Subsets[0].Addresses, e.Subsets[0].NotReadyAddresses = nil, nil
			return e
		}(), []want{req("subsets[0]")}},

		// ConfigMap and Secret
		{"configMap key", func() api.Object { c := validConfigMap(); c.Data["a b"] = "x"; return c }(), []want{inv("data[a b]")}},
		{"configMap binary key", func() api.Object { c := validConfigMap(); c.BinaryData[".."] = nil; return c }(), []want{inv("binaryData[..]")}},
		{"configMap key in data and binaryData", func() api.Object { c := validConfigMap(); c.BinaryData["app.yaml"] = []byte("x"); return c }(), []want{dup("binaryData[app.yaml]")}},
		{"configMap too large", func() api.Object { c := validConfigMap(); c.Data["big"] = strings.Repeat("x", MaxDataBytes); return c }(), []want{tooLong("data")}},
		{"secret key", func() api.Object { s := validSecret(); s.Data["tls/crt"] = nil; return s }(), []want{inv("data[tls/crt]")}},
		{"secret stringData key", func() api.Object { s := validSecret(); s.StringData = map[string]string{"a=b": "x"}; return s }(), []want{inv("stringData[a=b]")}},
		{"secret type missing", func() api.Object { s := validSecret(); s.Type = ""; return s }(), []want{req("type")}},
		{"tls secret without key", func() api.Object { s := validSecret(); delete(s.Data, "tls.key"); return s }(), []want{req("data[tls.key]")}},
		{"secret too large", func() api.Object { s := validSecret(); s.Data["big"] = make([]byte, MaxDataBytes); return s }(), []want{tooLong("data")}},

		// Event, Lease, Namespace
		{"event involvedObject name", func() api.Object { e := validEvent(); e.InvolvedObject.Name = ""; return e }(), []want{req("involvedObject.name")}},
		{"event involvedObject missing", func() api.Object { e := validEvent(); e.InvolvedObject = nil; return e }(), []want{req("involvedObject.name"), req("involvedObject.kind")}},
		{"event type", func() api.Object { e := validEvent(); e.Type = "Error"; return e }(), []want{unsup("type")}},
		{"lease duration", func() api.Object { l := validLease(); l.Spec.LeaseDurationSeconds = ptr[int32](0); return l }(), []want{inv("spec.leaseDurationSeconds")}},
		{"lease transitions", func() api.Object { l := validLease(); l.Spec.LeaseTransitions = ptr[int32](-1); return l }(), []want{inv("spec.leaseTransitions")}},
		{"namespace finalizer", func() api.Object { n := validNamespace(); n.Spec.Finalizers = []string{"bad/fin/alizer"}; return n }(), []want{inv("spec.finalizers[0]")}},

		// Deployment
		{"deployment replicas", deployWith(func(s *appsv1.DeploymentSpec) { s.Replicas = ptr[int32](-1) }), []want{inv("spec.replicas")}},
		{"deployment selector missing", deployWith(func(s *appsv1.DeploymentSpec) { s.Selector = nil }), []want{req("spec.selector")}},
		{"deployment selector empty", deployWith(func(s *appsv1.DeploymentSpec) { s.Selector = &metav1.LabelSelector{} }), []want{inv("spec.selector")}},
		{"deployment selector does not match", deployWith(func(s *appsv1.DeploymentSpec) { s.Template.Metadata.Labels["app"] = "api" }), []want{inv("spec.template.metadata.labels")}},
		{"deployment selector expression does not match", deployWith(func(s *appsv1.DeploymentSpec) { s.Template.Metadata.Labels["tier"] = "back" }), []want{inv("spec.template.metadata.labels")}},
		{"deployment template without labels", deployWith(func(s *appsv1.DeploymentSpec) { s.Template.Metadata = nil }), []want{inv("spec.template.metadata.labels")}},
		{"selector operator", deployWith(func(s *appsv1.DeploymentSpec) { s.Selector.MatchExpressions[0].Operator = "Like" }), []want{unsup("spec.selector.matchExpressions[0].operator")}},
		{"selector In without values", deployWith(func(s *appsv1.DeploymentSpec) { s.Selector.MatchExpressions[0].Values = nil }), []want{req("spec.selector.matchExpressions[0].values")}},
		{"selector DoesNotExist with values", deployWith(func(s *appsv1.DeploymentSpec) { s.Selector.MatchExpressions[0].Operator = "DoesNotExist" }), []want{forbid("spec.selector.matchExpressions[0].values")}},
		{"selector matchLabels", deployWith(func(s *appsv1.DeploymentSpec) { s.Selector.MatchLabels["app/x/y"] = "web" }), []want{inv("spec.selector.matchLabels")}},
		{"template label", deployWith(func(s *appsv1.DeploymentSpec) { s.Template.Metadata.Labels["bad key"] = "x" }), []want{inv("spec.template.metadata.labels")}},
		{"template missing", deployWith(func(s *appsv1.DeploymentSpec) { s.Template = nil }), []want{req("spec.template")}},
		{"template restartPolicy", deployWith(func(s *appsv1.DeploymentSpec) { s.Template.Spec.RestartPolicy = "Never" }), []want{unsup("spec.template.spec.restartPolicy")}},
		{"template activeDeadlineSeconds", deployWith(func(s *appsv1.DeploymentSpec) { s.Template.Spec.ActiveDeadlineSeconds = ptr[int64](10) }), []want{forbid("spec.template.spec.activeDeadlineSeconds")}},
		{"template image", deployWith(func(s *appsv1.DeploymentSpec) { s.Template.Spec.Containers[0].Image = "" }), []want{req("spec.template.spec.containers[0].image")}},
		{"template memory limit", deployWith(func(s *appsv1.DeploymentSpec) { s.Template.Spec.Containers[0].Resources.Limits["memory"] = "1GB" }), []want{inv("spec.template.spec.containers[0].resources.limits[memory]")}},
		{"strategy type", deployWith(func(s *appsv1.DeploymentSpec) { s.Strategy.Type = "BlueGreen" }), []want{unsup("spec.strategy.type")}},
		{"Recreate with rollingUpdate", deployWith(func(s *appsv1.DeploymentSpec) { s.Strategy.Type = "Recreate" }), []want{forbid("spec.strategy.rollingUpdate")}},
		{"maxSurge not a percentage", deployWith(func(s *appsv1.DeploymentSpec) {
			s.Strategy.RollingUpdate.MaxSurge = &metav1.IntOrString{StrVal: "half"}
		}), []want{inv("spec.strategy.rollingUpdate.maxSurge")}},
		{"maxSurge negative", deployWith(func(s *appsv1.DeploymentSpec) { s.Strategy.RollingUpdate.MaxSurge.IntVal = -1 }), []want{inv("spec.strategy.rollingUpdate.maxSurge")}},
		{"maxUnavailable over 100%", deployWith(func(s *appsv1.DeploymentSpec) { s.Strategy.RollingUpdate.MaxUnavailable.StrVal = "150%" }), []want{inv("spec.strategy.rollingUpdate.maxUnavailable")}},
		{"maxUnavailable and maxSurge zero", deployWith(func(s *appsv1.DeploymentSpec) {
			s.Strategy.RollingUpdate.MaxUnavailable, s.Strategy.RollingUpdate.MaxSurge = &metav1.IntOrString{StrVal: "0%"}, &metav1.IntOrString{}
		}), []want{inv("spec.strategy.rollingUpdate.maxUnavailable")}},
		{"revisionHistoryLimit", deployWith(func(s *appsv1.DeploymentSpec) { s.RevisionHistoryLimit = ptr[int32](-1) }), []want{inv("spec.revisionHistoryLimit")}},
		{"minReadySeconds", deployWith(func(s *appsv1.DeploymentSpec) { s.MinReadySeconds = -1 }), []want{inv("spec.minReadySeconds")}},
		{"progressDeadlineSeconds", deployWith(func(s *appsv1.DeploymentSpec) { s.MinReadySeconds = 600 }), []want{inv("spec.progressDeadlineSeconds")}},

		// ReplicaSet, DaemonSet, StatefulSet
		{"replicaset replicas", func() api.Object { r := validReplicaSet(); r.Spec.Replicas = ptr[int32](-3); return r }(), []want{inv("spec.replicas")}},
		{"replicaset selector does not match", func() api.Object {
			r := validReplicaSet()
			r.Spec.Selector.MatchLabels["pod-template-hash"] = "abc"
			return r
		}(), []want{inv("spec.template.metadata.labels")}},
		{"daemonset selector missing", func() api.Object { d := validDaemonSet(); d.Spec.Selector = nil; return d }(), []want{req("spec.selector")}},
		{"daemonset updateStrategy", func() api.Object { d := validDaemonSet(); d.Spec.UpdateStrategy.Type = "Rolling"; return d }(), []want{unsup("spec.updateStrategy.type")}},
		{"daemonset both zero", func() api.Object {
			d := validDaemonSet()
			d.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable.IntVal = 0
			return d
		}(), []want{inv("spec.updateStrategy.rollingUpdate.maxUnavailable")}},
		{"daemonset both set", func() api.Object {
			d := validDaemonSet()
			d.Spec.UpdateStrategy.RollingUpdate.MaxSurge.IntVal = 1
			return d
		}(), []want{inv("spec.updateStrategy.rollingUpdate.maxSurge")}},
		{"daemonset OnDelete with rollingUpdate", func() api.Object { d := validDaemonSet(); d.Spec.UpdateStrategy.Type = "OnDelete"; return d }(), []want{forbid("spec.updateStrategy.rollingUpdate")}},
		{"statefulset replicas", func() api.Object { s := validStatefulSet(); s.Spec.Replicas = ptr[int32](-1); return s }(), []want{inv("spec.replicas")}},
		{"statefulset podManagementPolicy", func() api.Object { s := validStatefulSet(); s.Spec.PodManagementPolicy = "Serial"; return s }(), []want{unsup("spec.podManagementPolicy")}},
		{"statefulset updateStrategy", func() api.Object { s := validStatefulSet(); s.Spec.UpdateStrategy.Type = "Recreate"; return s }(), []want{unsup("spec.updateStrategy.type")}},
		{"statefulset partition", func() api.Object {
			s := validStatefulSet()
			s.Spec.UpdateStrategy.RollingUpdate.Partition = ptr[int32](-1)
			return s
		}(), []want{inv("spec.updateStrategy.rollingUpdate.partition")}},
		{"statefulset OnDelete with rollingUpdate", func() api.Object { s := validStatefulSet(); s.Spec.UpdateStrategy.Type = "OnDelete"; return s }(), []want{forbid("spec.updateStrategy.rollingUpdate")}},
		{"statefulset template restartPolicy", func() api.Object { s := validStatefulSet(); s.Spec.Template.Spec.RestartPolicy = "OnFailure"; return s }(), []want{unsup("spec.template.spec.restartPolicy")}},

		// Job
		{"job restartPolicy Always", func() api.Object { j := validJob(); j.Spec.Template.Spec.RestartPolicy = "Always"; return j }(), []want{unsup("spec.template.spec.restartPolicy")}},
		{"job restartPolicy missing", func() api.Object { j := validJob(); j.Spec.Template.Spec.RestartPolicy = ""; return j }(), []want{req("spec.template.spec.restartPolicy")}},
		{"job parallelism", func() api.Object { j := validJob(); j.Spec.Parallelism = ptr[int32](-1); return j }(), []want{inv("spec.parallelism")}},
		{"job completions", func() api.Object { j := validJob(); j.Spec.Completions = ptr[int32](-1); return j }(), []want{inv("spec.completions")}},
		{"job backoffLimit", func() api.Object { j := validJob(); j.Spec.BackoffLimit = ptr[int32](-1); return j }(), []want{inv("spec.backoffLimit")}},
		{"job activeDeadlineSeconds", func() api.Object { j := validJob(); j.Spec.ActiveDeadlineSeconds = ptr[int64](0); return j }(), []want{inv("spec.activeDeadlineSeconds")}},
		{"job ttlSecondsAfterFinished", func() api.Object { j := validJob(); j.Spec.TtlSecondsAfterFinished = ptr[int32](-1); return j }(), []want{inv("spec.ttlSecondsAfterFinished")}},
		{"job completionMode", func() api.Object { j := validJob(); j.Spec.CompletionMode = "Ordered"; return j }(), []want{unsup("spec.completionMode")}},
		{"job Indexed without completions", func() api.Object {
			j := validJob()
			j.Spec.CompletionMode, j.Spec.Completions = "Indexed", nil
			return j
		}(), []want{req("spec.completions")}},
		{"job selector missing", func() api.Object { j := validJob(); j.Spec.Selector = nil; return j }(), []want{req("spec.selector")}},
	}...)

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, tc.obj, Validate(tc.obj), tc.wants...)
		})
	}
	if len(tests) < 80 {
		t.Errorf("only %d bad inputs", len(tests))
	}
}
