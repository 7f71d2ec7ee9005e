package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	batchv1 "bosun.dev/gen/bosun/batch/v1"
	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeManifests(t *testing.T) {
	tests := []struct {
		file  string
		kinds []string
		check func(t *testing.T, objs []api.Object)
	}{
		{"deployment.yaml", []string{"Deployment"}, func(t *testing.T, objs []api.Object) {
			d := objs[0].(*appsv1.Deployment)
			spec := d.GetSpec()
			pod := spec.GetTemplate().GetSpec()
			c := pod.GetContainers()[0]
			checks := []struct {
				name      string
				got, want any
			}{
				{"namespace", d.GetMetadata().GetNamespace(), "shop"},
				{"annotation", d.GetMetadata().GetAnnotations()["deployment.kubernetes.io/revision"], "3"},
				{"replicas", spec.GetReplicas(), int32(3)},
				{"maxSurge", spec.GetStrategy().GetRollingUpdate().GetMaxSurge().GetStrVal(), "25%"},
				{"maxUnavailable", spec.GetStrategy().GetRollingUpdate().GetMaxUnavailable().GetIntVal(), int32(1)},
				{"grace", pod.GetTerminationGracePeriodSeconds(), int64(30)},
				{"pullPolicy", c.GetImagePullPolicy(), "IfNotPresent"},
				{"cpu limit (bare integer)", c.GetResources().GetLimits()["cpu"], "1"},
				{"memory limit (bare integer)", c.GetResources().GetLimits()["memory"], "1000000"},
				{"storage limit (bare decimal)", c.GetResources().GetLimits()["ephemeral-storage"], "0.5"},
				{"cpu request", c.GetResources().GetRequests()["cpu"], "250m"},
				{"liveness port (named)", c.GetLivenessProbe().GetHttpGet().GetPort().GetStrVal(), "http"},
				{"readiness port (number)", c.GetReadinessProbe().GetTcpSocket().GetPort().GetIntVal(), int32(8080)},
				{"secretKeyRef", c.GetEnv()[1].GetValueFrom().GetSecretKeyRef().GetKey(), "password"},
				{"fieldRef", c.GetEnv()[2].GetValueFrom().GetFieldRef().GetFieldPath(), "status.podIP"},
				{"runAsUser", c.GetSecurityContext().GetRunAsUser(), int64(101)},
				{"allowPrivilegeEscalation set to false", c.GetSecurityContext().AllowPrivilegeEscalation != nil, true},
				{"configMap defaultMode (octal)", pod.GetVolumes()[0].GetConfigMap().GetDefaultMode(), int32(0o644)},
				{"emptyDir sizeLimit", pod.GetVolumes()[1].GetEmptyDir().GetSizeLimit(), "1Gi"},
				{"node affinity", pod.GetAffinity().GetNodeAffinity().GetRequiredDuringSchedulingIgnoredDuringExecution().GetNodeSelectorTerms()[0].GetMatchExpressions()[0].GetValues()[1], "eu-west-1b"},
				{"anti-affinity weight", pod.GetAffinity().GetPodAntiAffinity().GetPreferredDuringSchedulingIgnoredDuringExecution()[0].GetWeight(), int32(100)},
				{"tolerationSeconds", pod.GetTolerations()[0].GetTolerationSeconds(), int64(300)},
				{"spread", pod.GetTopologySpreadConstraints()[0].GetWhenUnsatisfiable(), "ScheduleAnyway"},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
				}
			}
		}},
		{"service.yaml", []string{"Service"}, func(t *testing.T, objs []api.Object) {
			s := objs[0].(*corev1.Service)
			ports := s.GetSpec().GetPorts()
			if got := ports[0].GetTargetPort(); !proto.Equal(got, &metav1.IntOrString{StrVal: "http"}) {
				t.Errorf("targetPort = %v, want http", got)
			}
			if got := ports[1].GetTargetPort(); !proto.Equal(got, &metav1.IntOrString{IntVal: 9090}) {
				t.Errorf("targetPort = %v, want 9090", got)
			}
		}},
		{"job.yaml", []string{"Job"}, func(t *testing.T, objs []api.Object) {
			j := objs[0].(*batchv1.Job)
			if j.GetSpec().GetBackoffLimit() != 4 || j.GetSpec().GetTtlSecondsAfterFinished() != 100 {
				t.Errorf("spec = %v", j.GetSpec())
			}
			if got := j.GetSpec().GetTemplate().GetSpec().GetContainers()[0].GetCommand(); len(got) != 4 || got[3] != "print bpi(2000)" {
				t.Errorf("command = %q", got)
			}
		}},
		{"statefulset.yaml", []string{"StatefulSet"}, func(t *testing.T, objs []api.Object) {
			s := objs[0].(*appsv1.StatefulSet)
			if s.GetSpec().GetServiceName() != "db" || s.GetSpec().GetUpdateStrategy().GetRollingUpdate().Partition == nil {
				t.Errorf("spec = %v (partition: 0 must be kept)", s.GetSpec())
			}
		}},
		{"configmap-secret-namespace.yaml", []string{"Namespace", "ConfigMap", "Secret"}, func(t *testing.T, objs []api.Object) {
			cm := objs[1].(*corev1.ConfigMap)
			if got := cm.GetData()["nginx.conf"]; got != "server {\n  listen 8080;\n}\n" {
				t.Errorf("nginx.conf = %q", got)
			}
			s := objs[2].(*corev1.Secret)
			if got := string(s.GetData()["password"]); got != "s3cr3t" {
				t.Errorf("password = %q, want s3cr3t", got)
			}
			if got := s.GetStringData()["extra"]; got != "plain text" {
				t.Errorf("stringData.extra = %q", got)
			}
		}},
		{"list.json", []string{"Pod", "Lease"}, func(t *testing.T, objs []api.Object) {
			p := objs[0].(*corev1.Pod)
			if p.GetStatus().GetPodIp() != "10.0.0.5" || p.GetStatus().GetHostIp() != "192.168.1.2" {
				t.Errorf("status = %v", p.GetStatus())
			}
			if got := p.GetStatus().GetStartTime().AsTime().Format("15:04:05.000"); got != "10:00:01.500" {
				t.Errorf("startTime = %s", got)
			}
			if got := p.GetSpec().GetContainers()[0].GetResources().GetLimits()["cpu"]; got != "0.5" {
				t.Errorf("cpu = %q", got)
			}
			l := objs[1].(*coordinationv1.Lease)
			if l.GetSpec().GetHolderIdentity() != "node-1" || l.GetSpec().GetRenewTime().GetNanos() != 123456000 {
				t.Errorf("lease spec = %v", l.GetSpec())
			}
		}},
		{"node-etc.yaml", []string{"Node", "DaemonSet", "ReplicaSet", "Endpoints", "Event"}, func(t *testing.T, objs []api.Object) {
			n := objs[0].(*corev1.Node)
			if n.GetSpec().GetPodCidr() != "10.244.1.0/24" || n.GetStatus().GetCapacity()["cpu"] != "4" || n.GetStatus().GetCapacity()["pods"] != "110" {
				t.Errorf("node = %v", n)
			}
			if n.GetStatus().GetDaemonEndpoints().GetKubeletEndpoint().GetPort() != 10250 {
				t.Errorf("kubelet port = %v", n.GetStatus().GetDaemonEndpoints())
			}
			ds := objs[1].(*appsv1.DaemonSet)
			if !ds.GetSpec().GetTemplate().GetSpec().GetHostPid() || ds.GetSpec().GetTemplate().GetSpec().GetVolumes()[0].GetHostPath().GetType() != "Directory" {
				t.Errorf("daemonset = %v", ds)
			}
			rs := objs[2].(*appsv1.ReplicaSet)
			if rs.GetSpec().Replicas == nil || rs.GetSpec().GetReplicas() != 0 {
				t.Errorf("replicas: 0 must be kept, got %v", rs.GetSpec().Replicas)
			}
			if !rs.GetMetadata().GetOwnerReferences()[0].GetController() {
				t.Errorf("owner = %v", rs.GetMetadata().GetOwnerReferences())
			}
			ep := objs[3].(*corev1.Endpoints)
			if ep.GetSubsets()[0].GetAddresses()[0].GetTargetRef().GetName() != "web-1" {
				t.Errorf("endpoints = %v", ep)
			}
			ev := objs[4].(*corev1.Event)
			if ev.GetInvolvedObject().GetName() != "web-1" || ev.GetCount() != 1 || ev.GetSource().GetComponent() != "scheduler" {
				t.Errorf("event = %v", ev)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			objs, err := Decode(readTestdata(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, o := range objs {
				k, err := api.KindOf(o)
				if err != nil {
					t.Fatal(err)
				}
				kinds = append(kinds, k.Kind)
			}
			if strings.Join(kinds, ",") != strings.Join(tt.kinds, ",") {
				t.Fatalf("kinds = %v, want %v", kinds, tt.kinds)
			}
			tt.check(t, objs)
			// What was decoded encodes and decodes back to the same objects.
			for _, marshal := range []func(...api.Object) ([]byte, error){MarshalYAML, MarshalJSON} {
				out, err := marshal(objs...)
				if err != nil {
					t.Fatal(err)
				}
				back, err := Decode(out)
				if err != nil {
					t.Fatalf("decoding our own output: %v\n%s", err, out)
				}
				if len(back) != len(objs) {
					t.Fatalf("got %d objects back, want %d", len(back), len(objs))
				}
				for i := range objs {
					if !proto.Equal(objs[i], back[i]) {
						t.Errorf("object %d changed in a round trip:\n%v\n%v", i, objs[i], back[i])
					}
				}
			}
		})
	}
}

func TestDecodeEmpty(t *testing.T) {
	for _, in := range []string{"", "\n", "---\n---\n", "# only a comment\n", "---\n# c\n...\n"} {
		objs, err := Decode([]byte(in))
		if err != nil || len(objs) != 0 {
			t.Errorf("Decode(%q) = %v, %v; want nothing", in, objs, err)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	const pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n"
	const deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n"
	const container = pod + "spec:\n  containers:\n  - name: c\n"
	tests := []struct {
		name, in, want string
	}{
		{"unknown top-level field", pod + "sepc: {}\n",
			`document 1 (Pod "web"): sepc: unknown field`},
		{"unknown metadata field", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  label: {a: b}\n",
			`document 1 (Pod "web"): metadata.label: unknown field`},
		{"unknown deep field in second document", pod + "---\n" + deploy + "  template:\n    spec:\n      containers:\n      - name: c\n        imagePullPolicyy: Always\n",
			`document 2 (Deployment "web"): spec.template.spec.containers[0].imagePullPolicyy: unknown field`},
		{"proto name instead of JSON name", container + "    image_pull_policy: Always\n",
			`document 1 (Pod "web"): spec.containers[0].image_pull_policy: unknown field`},
		{"wrong capitalisation of podIP", pod + "status:\n  podIp: 10.0.0.1\n",
			`document 1 (Pod "web"): status.podIp: unknown field`},
		{"several unknown fields", pod + "spec:\n  b: 1\n  a: 2\n",
			`document 1 (Pod "web"): spec.a: unknown field; spec.b: unknown field`},
		{"string for integer", deploy + "  replicas: three\n",
			`document 1 (Deployment "web"): spec.replicas: expected an integer, got string "three"`},
		{"fraction for integer", deploy + "  replicas: 2.5\n",
			`document 1 (Deployment "web"): spec.replicas: expected an integer, got number 2.5`},
		{"integer out of range", deploy + "  replicas: 3000000000\n",
			`document 1 (Deployment "web"): spec.replicas: expected an integer, got number 3000000000 (out of range for int32)`},
		{"number for string", container + "    env:\n    - name: PORT\n      value: 8080\n",
			`document 1 (Pod "web"): spec.containers[0].env[0].value: expected a string, got number 8080`},
		{"string for bool", container + "    stdin: \"yes\"\n",
			`document 1 (Pod "web"): spec.containers[0].stdin: expected a boolean, got string "yes"`},
		{"scalar for object", pod + "spec: nothing\n",
			`document 1 (Pod "web"): spec: expected an object, got string "nothing"`},
		{"object for array", pod + "spec:\n  containers:\n    name: c\n",
			`document 1 (Pod "web"): spec.containers: expected an array, got object`},
		{"null array element", pod + "spec:\n  containers:\n  - null\n",
			`document 1 (Pod "web"): spec.containers[0]: expected an object, got null`},
		{"number for label", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels:\n    version: 1.0\n",
			`document 1 (Pod "web"): metadata.labels[version]: expected a string, got number 1`},
		{"bool for quantity", container + "    resources:\n      limits:\n        cpu: true\n",
			`document 1 (Pod "web"): spec.containers[0].resources.limits[cpu]: expected a quantity (a string or a number), got bool true`},
		{"object for IntOrString", deploy + "  strategy:\n    rollingUpdate:\n      maxSurge: {intVal: 1}\n",
			`document 1 (Deployment "web"): spec.strategy.rollingUpdate.maxSurge: expected an integer or a string, got object`},
		{"missing apiVersion", "kind: Pod\nmetadata:\n  name: web\n",
			`document 1 (Pod "web"): missing apiVersion`},
		{"missing kind", "apiVersion: v1\nmetadata:\n  name: web\n",
			`document 1: missing kind`},
		{"missing kind in third document", pod + "---\n" + pod + "---\napiVersion: v1\n",
			`document 3: missing kind`},
		{"kind not a string", "apiVersion: v1\nkind: [Pod]\n",
			`document 1: kind: expected a string, got array`},
		{"unsupported kind", "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\n",
			`document 1 (PersistentVolumeClaim "data"): no kind "PersistentVolumeClaim" in apiVersion "v1" is supported`},
		{"unsupported apiVersion", "apiVersion: apps/v1beta1\nkind: Deployment\nmetadata:\n  name: web\n",
			`document 1 (Deployment "web"): kind "Deployment" is served as apiVersion "apps/v1", not "apps/v1beta1"`},
		{"bad base64", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  password: not*base64\n",
			`document 1 (Secret "db"): data[password]: expected base64 data, got string "not*base64": illegal base64 data at input byte 3`},
		{"bad timestamp", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  creationTimestamp: yesterday\n",
			`document 1 (Pod "web"): metadata.creationTimestamp: expected an RFC 3339 timestamp, got string "yesterday"`},
		{"timestamp without zone", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  creationTimestamp: \"2024-05-01T10:00:00\"\n",
			`document 1 (Pod "web"): metadata.creationTimestamp: expected an RFC 3339 timestamp, got string "2024-05-01T10:00:00"`},
		{"two volume sources", pod + "spec:\n  volumes:\n  - name: v\n    emptyDir: {}\n    hostPath:\n      path: /tmp\n",
			`document 1 (Pod "web"): spec.volumes[0]: emptyDir and hostPath are both set, but only one source may be given`},
		{"invalid YAML", pod + "spec:\n  containers:\n  - name: c\n   image: x\n",
			`document 1: invalid YAML: line 7: did not find expected key`},
		{"invalid YAML in second document", pod + "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: [web\n",
			`document 2: invalid YAML: line 9: did not find expected ',' or ']'`},
		{"duplicate key", pod + "spec: {}\nspec: {}\n",
			`document 1: invalid YAML: line 6: key "spec" already set in map`},
		{"document not an object", "- a\n- b\n",
			`document 1: expected an object, got array`},
		{"unknown field in List item", `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}},{"apiVersion":"v1","kind":"Pod","metadata":{"name":"b","nam":"x"}}]}`,
			`document 1, items[1] (Pod "b"): metadata.nam: unknown field`},
		{"unknown field in List", `{"apiVersion":"v1","kind":"List","itemz":[]}`,
			`document 1 (List): itemz: unknown field`},
		{"wrong type in JSON", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"x"},"spec":{"finalizers":"kubernetes"}}`,
			`document 1 (Namespace "x"): spec.finalizers: expected an array, got string "kubernetes"`},
		{"int64 string that is not a number", container + "    securityContext:\n      runAsUser: root\n",
			`document 1 (Pod "web"): spec.containers[0].securityContext.runAsUser: expected an integer, got string "root"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode succeeded with %v, want error %q", objs, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got: %s\nwant: %s", err, tt.want)
			}
		})
	}
}

func TestDecodeIntegerStrings(t *testing.T) {
	objs, err := Decode([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: \"4\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := objs[0].(*appsv1.Deployment).GetSpec().GetReplicas(); got != 4 {
		t.Errorf("replicas = %d, want 4", got)
	}
}

func TestDecodeInto(t *testing.T) {
	var pod corev1.Pod
	if err := DecodeInto([]byte("metadata:\n  name: web\nspec:\n  nodeName: n1\n"), &pod); err != nil {
		t.Fatal(err)
	}
	if pod.GetMetadata().GetName() != "web" || pod.GetSpec().GetNodeName() != "n1" {
		t.Errorf("pod = %v", &pod)
	}
	err := DecodeInto([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"), &pod)
	if want := `document 1 (Pod "web"): expected apiVersion "v1" and kind "Pod", got string "apps/v1" and string "Deployment"`; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
	err = DecodeInto([]byte("metadata: {name: a}\n---\nmetadata: {name: b}\n"), &pod)
	if want := `expected one Pod document, found 2`; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}
