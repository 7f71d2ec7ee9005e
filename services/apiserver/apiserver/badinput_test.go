package apiserver_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	batchv1 "bosun.dev/gen/bosun/batch/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/manifest"
)

// badInput is one request the apiserver must refuse without writing anything.
type badInput struct {
	name string
	// setup creates what the case acts on; it runs before the etcd revision
	// is read.
	setup func(t *testing.T, ctx context.Context)
	// call sends the bad request and returns its error.
	call   func(ctx context.Context) error
	code   codes.Code
	reason string
	// fields are the exact field paths of the BadRequest violations, in
	// order (INVALID errors only).
	fields []string
	// msg is a prefix of the error message; exact makes it the whole message.
	msg   string
	exact bool
	// skip, when set, is the description of a known apiserver bug that
	// makes the case fail; the case is skipped with it.
	skip string
}

// etcdState is the revision and key count under /bosun/.
type etcdState struct{ rev, count int64 }

func readEtcdState(t *testing.T, ctx context.Context, ts *testServer) etcdState {
	t.Helper()
	resp, err := ts.Etcd().Get(ctx, "/bosun/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatalf("reading etcd revision: %v", err)
	}
	return etcdState{rev: resp.Header.Revision, count: resp.Count}
}

// decodeOne decodes a manifest that holds exactly one object.
func decodeOne(t *testing.T, y string) api.Object {
	t.Helper()
	objs, err := manifest.Decode([]byte(y))
	if err != nil {
		t.Fatalf("test manifest does not decode: %v\n%s", err, y)
	}
	if len(objs) != 1 {
		t.Fatalf("test manifest holds %d objects, want 1", len(objs))
	}
	return objs[0]
}

func indent(s, prefix string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// podManifest is a valid Pod "web" in default whose container "app" gets the
// container lines and whose spec gets the spec lines (both unindented YAML).
func podManifest(container, spec string) string {
	return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: default\nspec:\n" +
		"  containers:\n  - name: app\n    image: registry.local/hello:v1\n" +
		indent(container, "    ") + indent(spec, "  ")
}

// deploymentManifest is a Deployment "web" in default selecting app=web with
// the given spec lines added (unindented YAML) and the given template labels.
func deploymentManifest(name, templateLabels, spec string) string {
	return "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: " + name + "\n  namespace: default\nspec:\n" +
		"  selector:\n    matchLabels:\n      app: web\n" +
		"  template:\n    metadata:\n      labels:\n" + indent(templateLabels, "        ") +
		"    spec:\n      containers:\n      - name: app\n        image: registry.local/hello:v1\n" +
		indent(spec, "  ")
}

func createObj(conn *testServer, obj api.Object) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		k, err := api.KindOf(obj)
		if err != nil {
			return err
		}
		_, err = client.ForKind(conn.conn, k).Create(ctx, proto.Clone(obj).(api.Object))
		return err
	}
}

func withMeta(obj api.Object, f func(m *metav1.ObjectMeta)) api.Object {
	f(api.Meta(obj))
	return obj
}

func errorReasonOf(err error) string {
	if err == nil {
		return "<nil>"
	}
	return fmt.Sprintf("code %s, reason %q: %v", apierrors.Code(err), apierrors.Reason(err), err)
}

// checkBadInput asserts that err is the error c describes.
func checkBadInput(t *testing.T, c badInput, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("request succeeded, want code %s reason %q", c.code, c.reason)
	}
	if got := apierrors.Code(err); got != c.code {
		t.Errorf("code = %s, want %s (%s)", got, c.code, errorReasonOf(err))
	}
	if got := apierrors.Reason(err); got != c.reason {
		t.Errorf("reason = %q, want %q (%s)", got, c.reason, errorReasonOf(err))
	}
	msg := status.Convert(err).Message()
	if c.exact && msg != c.msg {
		t.Errorf("message = %q, want exactly %q", msg, c.msg)
	} else if !strings.HasPrefix(msg, c.msg) {
		t.Errorf("message = %q, want it to start with %q", msg, c.msg)
	}
	var got []string
	for _, v := range apierrors.FieldViolations(err) {
		if v.GetField() == "" {
			t.Errorf("field violation without a field: %v", v)
		}
		got = append(got, v.GetField())
	}
	if c.reason != apierrors.ReasonInvalid {
		if len(got) > 0 {
			t.Errorf("field violations %q on a %s error", got, c.reason)
		}
		return
	}
	if !slices.Equal(got, c.fields) {
		t.Errorf("field violations = %q, want %q (%v)", got, c.fields, err)
	}
	for _, f := range c.fields {
		if !strings.Contains(msg, f+": ") {
			t.Errorf("message %q does not name field %s", msg, f)
		}
	}
}

// TestBadInput sends one apiserver a long list of bad requests. Each must be
// refused with the documented code and reason, name the wrong fields, and
// leave etcd exactly as it was.
func TestBadInput(t *testing.T) {
	ts := startServer(t, "")
	ctx := ctxT(t)
	pods := client.For[*corev1.Pod](ts.conn)
	deployments := client.For[*appsv1.Deployment](ts.conn)
	cms := client.For[*corev1.ConfigMap](ts.conn)
	nodes := client.For[*corev1.Node](ts.conn)
	namespaces := client.For[*corev1.Namespace](ts.conn)
	podService := corev1.NewPodServiceClient(ts.conn)

	create := func(y string) func(context.Context) error { return createObj(ts, decodeOne(t, y)) }
	mustCreate := func(t *testing.T, ctx context.Context, y string) {
		t.Helper()
		if err := createObj(ts, decodeOne(t, y))(ctx); err != nil {
			t.Fatalf("setup: %v", err)
		}
	}
	webPod := func(name string) string {
		return strings.Replace(podManifest("", ""), "name: web\n", "name: "+name+"\n", 1)
	}
	bind := func(name, node string) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := podService.BindPod(ctx, &corev1.BindPodRequest{Namespace: "default", Name: name, NodeName: node})
			return err
		}
	}
	const invalid = apierrors.ReasonInvalid

	longName := strings.Repeat("a", 254)
	bigAnnotations := map[string]string{"example.com/blob": strings.Repeat("x", 256*1024)}
	bigConfigMap := configMap("default", "big", map[string]string{"blob": strings.Repeat("x", 1600*1024)})
	bigPod := decodeOne(t, podManifest("env:\n- name: BLOB\n  value: placeholder\n", "")).(*corev1.Pod)
	bigPod.Spec.Containers[0].Env[0].Value = strings.Repeat("x", 1600*1024)

	cases := []badInput{
		// Names.
		{name: "name with uppercase", call: create(strings.Replace(podManifest("", ""), "name: web\n", "name: Web\n", 1)),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"metadata.name"},
			msg: `Pod "Web" is invalid: metadata.name: Invalid value: "Web": a lowercase RFC 1123 subdomain`},
		{name: "name too long", call: create(strings.Replace(podManifest("", ""), "name: web\n", "name: "+longName+"\n", 1)),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"metadata.name"},
			msg: fmt.Sprintf(`Pod %q is invalid: metadata.name: Invalid value: %q: must be no more than 253 characters`, longName, longName)},
		{name: "name with underscore", call: create(webPod("web_1")),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"metadata.name"},
			msg: `Pod "web_1" is invalid: metadata.name: Invalid value: "web_1"`},
		{name: "service name with a dot is not a DNS label",
			call: create("apiVersion: v1\nkind: Service\nmetadata:\n  name: web.v1\n  namespace: default\nspec:\n  ports:\n  - port: 80\n"),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"metadata.name"},
			msg: `Service "web.v1" is invalid: metadata.name: Invalid value: "web.v1": must not contain dots`},
		{name: "empty name without generateName", call: create(strings.Replace(podManifest("", ""), "  name: web\n", "", 1)),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"metadata.name"},
			msg: `Pod "" is invalid: metadata.name: Required value: name or generateName is required`, exact: true},
		{name: "invalid generateName", call: create(strings.Replace(podManifest("", ""), "  name: web\n", "  generateName: Web_\n", 1)),
			// The server appends a random suffix before validating, so the
			// generated name is reported too, as in Kubernetes.
			code: codes.InvalidArgument, reason: invalid, fields: []string{"metadata.generateName", "metadata.name"},
			msg: `Pod "Web_`},

		// Labels and annotations.
		{name: "label with bad key", call: createObj(ts, withMeta(decodeOne(t, podManifest("", "")), func(m *metav1.ObjectMeta) {
			m.Labels = map[string]string{"-app": "web"}
		})),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"metadata.labels"},
			msg: `Pod "web" is invalid: metadata.labels: Invalid value: "-app"`},
		{name: "label with bad value", call: createObj(ts, withMeta(decodeOne(t, podManifest("", "")), func(m *metav1.ObjectMeta) {
			m.Labels = map[string]string{"app": "web server"}
		})),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"metadata.labels"},
			msg: `Pod "web" is invalid: metadata.labels: Invalid value: "web server"`},
		{name: "label value too long", call: createObj(ts, withMeta(decodeOne(t, podManifest("", "")), func(m *metav1.ObjectMeta) {
			m.Labels = map[string]string{"app": strings.Repeat("w", 64)}
		})),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"metadata.labels"},
			msg: `Pod "web" is invalid: metadata.labels: Invalid value: "` + strings.Repeat("w", 64) + `": must be no more than 63 bytes`},
		{name: "annotations over 256 KiB", call: createObj(ts, withMeta(decodeOne(t, podManifest("", "")), func(m *metav1.ObjectMeta) {
			m.Annotations = bigAnnotations
		})),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"metadata.annotations"},
			msg: `Pod "web" is invalid: metadata.annotations: Too long: may not be more than 262144 bytes`},

		// Sizes.
		{name: "configmap over 1.5 MiB", call: createObj(ts, bigConfigMap),
			// Over the 1 MiB data limit and the 1.5 MiB object limit: both
			// are reported on data, which takes the room.
			code: codes.InvalidArgument, reason: invalid, fields: []string{"data", "data"},
			msg: `ConfigMap "big" is invalid: [data: Too long: may not be more than 1048576 bytes, data: Too long: may not be more than 1572864 bytes]`, exact: true},
		{name: "pod over 1.5 MiB", call: createObj(ts, bigPod),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec"},
			msg: `Pod "web" is invalid: spec: Too long: may not be more than 1572864 bytes`, exact: true},

		// Missing required fields.
		{name: "container without image", call: create(strings.Replace(podManifest("", ""), "    image: registry.local/hello:v1\n", "", 1)),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.containers[0].image"},
			msg: `Pod "web" is invalid: spec.containers[0].image: Required value`, exact: true},
		{name: "container without name", call: create(strings.Replace(podManifest("", ""), "  - name: app\n    image:", "  - image:", 1)),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.containers[0].name"},
			msg: `Pod "web" is invalid: spec.containers[0].name: Required value`, exact: true},
		{name: "no containers", call: create("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: default\nspec:\n  containers: []\n"),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.containers"},
			msg: `Pod "web" is invalid: spec.containers: Required value: must have at least one container`, exact: true},
		{name: "service without ports", call: create("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: default\nspec:\n  selector:\n    app: web\n"),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.ports"},
			msg: `Service "web" is invalid: spec.ports: Required value`, exact: true},
		{name: "event without involvedObject", call: create("apiVersion: v1\nkind: Event\nmetadata:\n  name: web.1\n  namespace: default\nreason: Started\nmessage: started\n"),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"involvedObject.kind", "involvedObject.name"},
			msg: `Event "web.1" is invalid: [involvedObject.kind: Required value, involvedObject.name: Required value]`, exact: true},
		{name: "job template without containers", call: create("apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: pi\n  namespace: default\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n"),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.template.spec.containers"},
			msg: `Job "pi" is invalid: spec.template.spec.containers: Required value`},

		// Quantities and resources.
		{name: "invalid cpu quantity", call: create(podManifest("resources:\n  requests:\n    cpu: 1x\n", "")),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.containers[0].resources.requests[cpu]"},
			msg: `Pod "web" is invalid: spec.containers[0].resources.requests[cpu]: Invalid value: "1x": must be a valid quantity`},
		{name: "invalid cpu limit defaulted into requests", call: create(podManifest("resources:\n  limits:\n    cpu: 1x\n", "")),
			// Unset requests default to the limits, as in Kubernetes, so the
			// bad quantity is reported at both places.
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.containers[0].resources.limits[cpu]", "spec.containers[0].resources.requests[cpu]"},
			msg: `Pod "web" is invalid: [spec.containers[0].resources.limits[cpu]: Invalid value: "1x": must be a valid quantity`},
		{name: "requests above limits", call: create(podManifest("resources:\n  limits:\n    memory: 64Mi\n  requests:\n    memory: 128Mi\n", "")),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.containers[0].resources.requests[memory]"},
			msg: `Pod "web" is invalid: spec.containers[0].resources.requests[memory]: Invalid value: "128Mi": must be less than or equal to memory limit of 64Mi`, exact: true},
		{name: "unknown resource name", call: create(podManifest("resources:\n  requests:\n    kubernetes.io/gpu: \"1\"\n", "")),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.containers[0].resources.requests[kubernetes.io/gpu]"},
			msg: `Pod "web" is invalid: spec.containers[0].resources.requests[kubernetes.io/gpu]: Invalid value: "kubernetes.io/gpu": must be one of`},

		// Enums.
		{name: "invalid restartPolicy", call: create(podManifest("", "restartPolicy: Sometimes\n")),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.restartPolicy"},
			msg: `Pod "web" is invalid: spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"`, exact: true},
		{name: "invalid imagePullPolicy", call: create(podManifest("imagePullPolicy: Sometimes\n", "")),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.containers[0].imagePullPolicy"},
			msg: `Pod "web" is invalid: spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes"`},
		{name: "invalid service type", call: create("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: default\nspec:\n  type: Magic\n  ports:\n  - port: 80\n"),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.type"},
			msg: `Service "web" is invalid: spec.type: Unsupported value: "Magic"`},
		{name: "invalid toleration operator", call: create(podManifest("", "tolerations:\n- key: dedicated\n  operator: Maybe\n  value: gpu\n")),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.tolerations[0].operator"},
			msg: `Pod "web" is invalid: spec.tolerations[0].operator: Unsupported value: "Maybe": supported values: "Equal", "Exists"`, exact: true},

		// Ports.
		{name: "container port 0", call: create(podManifest("ports:\n- containerPort: 0\n", "")),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.containers[0].ports[0].containerPort"},
			msg: `Pod "web" is invalid: spec.containers[0].ports[0].containerPort: Required value`, exact: true},
		{name: "container port 70000", call: create(podManifest("ports:\n- containerPort: 70000\n", "")),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.containers[0].ports[0].containerPort"},
			msg: `Pod "web" is invalid: spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive`, exact: true},
		{name: "duplicate container port names", call: create(podManifest("ports:\n- name: http\n  containerPort: 80\n- name: http\n  containerPort: 81\n", "")),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.containers[0].ports[1].name"},
			msg: `Pod "web" is invalid: spec.containers[0].ports[1].name: Duplicate value: "http"`, exact: true},
		{name: "service port 0", call: create("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: default\nspec:\n  ports:\n  - port: 0\n"),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.ports[0].port"},
			msg: `Service "web" is invalid: spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive`, exact: true},
		{name: "nodePort on a ClusterIP service", call: create("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: default\nspec:\n  ports:\n  - port: 80\n    nodePort: 30080\n"),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.ports[0].nodePort"},
			msg: `Service "web" is invalid: spec.ports[0].nodePort: Forbidden: may not be used when ` + "`type`" + ` is 'ClusterIP'`, exact: true},

		// Volumes and probes.
		{name: "volume mount of a missing volume", call: create(podManifest("volumeMounts:\n- name: data\n  mountPath: /data\n", "")),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.containers[0].volumeMounts[0].name"},
			msg: `Pod "web" is invalid: spec.containers[0].volumeMounts[0].name: Not found: "data"`, exact: true},
		{name: "probe without a handler", call: create(podManifest("livenessProbe:\n  periodSeconds: 5\n", "")),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.containers[0].livenessProbe"},
			msg: `Pod "web" is invalid: spec.containers[0].livenessProbe: Required value: must specify a handler type`, exact: true},

		// Workloads.
		{name: "deployment selector does not match template", call: create(deploymentManifest("web", "app: api\n", "")),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.template.metadata.labels"},
			msg: `Deployment "web" is invalid: spec.template.metadata.labels: Invalid value: {"app":"api"}: selector does not match template labels`, exact: true},
		{name: "negative replicas", call: create(deploymentManifest("web", "app: web\n", "replicas: -1\n")),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.replicas"},
			msg: `Deployment "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0`, exact: true},
		{name: "maxSurge and maxUnavailable both 0", call: create(deploymentManifest("web", "app: web\n", "strategy:\n  type: RollingUpdate\n  rollingUpdate:\n    maxSurge: 0\n    maxUnavailable: 0\n")),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.strategy.rollingUpdate.maxUnavailable"},
			msg: `Deployment "web" is invalid: spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when maxSurge is 0`, exact: true},
		{name: "job with restartPolicy Always", call: create("apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: pi\n  namespace: default\nspec:\n  template:\n    spec:\n      restartPolicy: Always\n      containers:\n      - name: pi\n        image: perl:5.34.0\n"),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.template.spec.restartPolicy"},
			msg: `Job "pi" is invalid: spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"`, exact: true},

		// Scope and namespaces.
		{name: "namespaced object without namespace", call: create(strings.Replace(podManifest("", ""), "  namespace: default\n", "", 1)),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"metadata.namespace"},
			msg: `Pod "web" is invalid: metadata.namespace: Required value`, exact: true},
		{name: "namespace that does not exist", call: create(strings.Replace(podManifest("", ""), "namespace: default\n", "namespace: nowhere\n", 1)),
			code: codes.NotFound, reason: apierrors.ReasonNotFound,
			msg: `Namespace "nowhere" not found`, exact: true},
		{name: "cluster-scoped node with a namespace", call: create("apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n  namespace: default\n"),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"metadata.namespace"},
			msg: `Node "n1" is invalid: metadata.namespace: Forbidden: not allowed on this type`, exact: true},
		{name: "namespace name not a DNS label", call: create("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: Team-A\n"),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"metadata.name"},
			msg: `Namespace "Team-A" is invalid: metadata.name: Invalid value: "Team-A"`},

		{name: "create in a terminating namespace", setup: terminatingNamespace(ts, "closing"),
			call: create(strings.Replace(podManifest("", ""), "namespace: default\n", "namespace: closing\n", 1)),
			code: codes.FailedPrecondition, reason: apierrors.ReasonNamespaceTerminating,
			msg: `namespace "closing" is being terminated; no new objects may be created in it`, exact: true},

		// Other kinds.
		{name: "node taint with an invalid effect", call: create("apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\nspec:\n  taints:\n  - key: dedicated\n    value: gpu\n    effect: NoWay\n"),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.taints[0].effect"},
			msg: `Node "n1" is invalid: spec.taints[0].effect: Unsupported value: "NoWay"`},
		{name: "tls secret without its keys", call: create("apiVersion: v1\nkind: Secret\nmetadata:\n  name: cert\n  namespace: default\ntype: kubernetes.io/tls\nstringData:\n  ca.crt: x\n"),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"data[tls.crt]", "data[tls.key]"},
			msg: `Secret "cert" is invalid: [data[tls.crt]: Required value, data[tls.key]: Required value]`, exact: true},
		{name: "endpoints with an invalid address", call: create("apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: web\n  namespace: default\nsubsets:\n- addresses:\n  - ip: 10.0.0.300\n  ports:\n  - port: 80\n"),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"subsets[0].addresses[0].ip"},
			msg: `Endpoints "web" is invalid: subsets[0].addresses[0].ip: Invalid value: "10.0.0.300"`},
		{name: "owner reference without uid", call: create(strings.Replace(podManifest("", ""), "  namespace: default\n", "  namespace: default\n  ownerReferences:\n  - apiVersion: apps/v1\n    kind: ReplicaSet\n    name: web-1\n", 1)),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"metadata.ownerReferences[0].uid"},
			msg: `Pod "web" is invalid: metadata.ownerReferences[0].uid: Required value: uid must not be empty`, exact: true},

		// Create rules.
		{name: "create with resource_version", call: createObj(ts, withMeta(decodeOne(t, podManifest("", "")), func(m *metav1.ObjectMeta) {
			m.ResourceVersion = "5"
		})),
			code: codes.InvalidArgument, reason: invalid, fields: []string{"metadata.resourceVersion"},
			msg: `Pod "web" is invalid: metadata.resourceVersion: Invalid value: "5": must be empty on create`, exact: true},
		{name: "duplicate create",
			setup: func(t *testing.T, ctx context.Context) { mustCreate(t, ctx, webPod("dup")) },
			call:  create(webPod("dup")),
			code:  codes.AlreadyExists, reason: apierrors.ReasonAlreadyExists,
			msg: `Pod "dup" in namespace "default" already exists`, exact: true},

		// Updates.
		staleUpdateCase(cms),
		{name: "update with unparsable resource_version",
			setup: func(t *testing.T, ctx context.Context) {
				if _, err := cms.Create(ctx, configMap("default", "badrv", map[string]string{"k": "1"})); err != nil {
					t.Fatal(err)
				}
			},
			call: func(ctx context.Context) error {
				cm := configMap("default", "badrv", map[string]string{"k": "2"})
				cm.Metadata.ResourceVersion = "abc"
				_, err := cms.Update(ctx, cm)
				return err
			},
			code: codes.InvalidArgument, reason: invalid, fields: []string{"metadata.resourceVersion"},
			msg: `ConfigMap "badrv" is invalid: metadata.resourceVersion: Invalid value: "abc"`},
		{name: "update of deployment selector",
			setup: func(t *testing.T, ctx context.Context) {
				mustCreate(t, ctx, deploymentManifest("sel", "app: web\n", ""))
			},
			call: func(ctx context.Context) error {
				d, err := deployments.Get(ctx, "default", "sel")
				if err != nil {
					return err
				}
				d.Spec.Selector.MatchLabels["tier"] = "front"
				d.Spec.Template.Metadata.Labels["tier"] = "front"
				_, err = deployments.Update(ctx, d)
				return err
			},
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.selector"},
			msg: `Deployment "sel" is invalid: spec.selector: Invalid value:`},
		{name: "update of pod container name",
			setup: func(t *testing.T, ctx context.Context) { mustCreate(t, ctx, webPod("rename")) },
			call: func(ctx context.Context) error {
				p, err := pods.Get(ctx, "default", "rename")
				if err != nil {
					return err
				}
				p.Spec.Containers[0].Name = "renamed"
				_, err = pods.Update(ctx, p)
				return err
			},
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec"},
			msg: `Pod "rename" is invalid: spec: Forbidden: pod updates may not change fields other than`},
		{name: "update setting nodeName instead of binding",
			setup: func(t *testing.T, ctx context.Context) { mustCreate(t, ctx, webPod("sneaky")) },
			call: func(ctx context.Context) error {
				p, err := pods.Get(ctx, "default", "sneaky")
				if err != nil {
					return err
				}
				p.Spec.NodeName = "n1"
				_, err = pods.Update(ctx, p)
				return err
			},
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.nodeName"},
			msg: `Pod "sneaky" is invalid: spec.nodeName: Forbidden: may not be set by an update; use BindPod`},
		{name: "update of an immutable configmap's data",
			setup: func(t *testing.T, ctx context.Context) {
				cm := configMap("default", "frozen", map[string]string{"k": "1"})
				cm.Immutable = proto.Bool(true)
				if _, err := cms.Create(ctx, cm); err != nil {
					t.Fatal(err)
				}
			},
			call: func(ctx context.Context) error {
				cm, err := cms.Get(ctx, "default", "frozen")
				if err != nil {
					return err
				}
				cm.Data["k"] = "2"
				_, err = cms.Update(ctx, cm)
				return err
			},
			code: codes.InvalidArgument, reason: invalid, fields: []string{"data"},
			msg: `ConfigMap "frozen" is invalid: data: Forbidden: field is immutable when ` + "`immutable`" + ` is set`, exact: true},
		{name: "update of a job template",
			setup: func(t *testing.T, ctx context.Context) {
				mustCreate(t, ctx, "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: once\n  namespace: default\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: pi\n        image: perl:5.34.0\n")
			},
			call: func(ctx context.Context) error {
				j, err := client.For[*batchv1.Job](ts.conn).Get(ctx, "default", "once")
				if err != nil {
					return err
				}
				j.Spec.Template.Spec.Containers[0].Image = "perl:5.36.0"
				_, err = client.For[*batchv1.Job](ts.conn).Update(ctx, j)
				return err
			},
			code: codes.InvalidArgument, reason: invalid, fields: []string{"spec.template"},
			msg: `Job "once" is invalid: spec.template: Invalid value: "<template>": field is immutable`, exact: true},
		{name: "update status with a stale resource_version",
			setup: func(t *testing.T, ctx context.Context) { mustCreate(t, ctx, webPod("stale-status")) },
			call: func(ctx context.Context) error {
				p, err := pods.Get(ctx, "default", "stale-status")
				if err != nil {
					return err
				}
				p.Metadata.ResourceVersion = "1"
				p.Status = &corev1.PodStatus{Phase: "Running"}
				_, err = pods.UpdateStatus(ctx, p)
				return err
			},
			code: codes.Aborted, reason: apierrors.ReasonConflict,
			msg: `operation cannot be fulfilled on Pod "stale-status" in namespace "default": the object has been modified`},
		{name: "update without a name", call: func(ctx context.Context) error {
			_, err := cms.Update(ctx, configMap("default", "", map[string]string{"k": "v"}))
			return err
		},
			code: codes.InvalidArgument, reason: invalid, fields: []string{"metadata.name"},
			msg: `ConfigMap "" is invalid: metadata.name: Required value: name is required`, exact: true},
		{name: "update of a missing object", call: func(ctx context.Context) error {
			_, err := cms.Update(ctx, configMap("default", "ghost", map[string]string{"k": "v"}))
			return err
		},
			code: codes.NotFound, reason: apierrors.ReasonNotFound,
			msg: `ConfigMap "ghost" in namespace "default" not found`, exact: true},
		{name: "update status with an invalid phase",
			setup: func(t *testing.T, ctx context.Context) { mustCreate(t, ctx, webPod("phase")) },
			call: func(ctx context.Context) error {
				p, err := pods.Get(ctx, "default", "phase")
				if err != nil {
					return err
				}
				if p.Status == nil {
					p.Status = &corev1.PodStatus{}
				}
				p.Status.Phase = "Exploded"
				_, err = pods.UpdateStatus(ctx, p)
				return err
			},
			code: codes.InvalidArgument, reason: invalid, fields: []string{"status.phase"},
			msg: `Pod "phase" is invalid: status.phase: Unsupported value: "Exploded"`},

		// Binding.
		{name: "double bind",
			setup: func(t *testing.T, ctx context.Context) {
				mustCreate(t, ctx, webPod("bound"))
				if err := bind("bound", "n1")(ctx); err != nil {
					t.Fatal(err)
				}
			},
			call: bind("bound", "n2"),
			code: codes.FailedPrecondition, reason: apierrors.ReasonAlreadyBound,
			msg: `pod "bound" in namespace "default" is already bound to node "n1"`, exact: true},
		{name: "bind to an invalid node name",
			setup: func(t *testing.T, ctx context.Context) { mustCreate(t, ctx, webPod("unbound")) },
			call:  bind("unbound", "Node_1"),
			code:  codes.InvalidArgument, reason: invalid, fields: []string{"nodeName"},
			msg: `Binding "unbound" is invalid: nodeName: Invalid value: "Node_1"`},
		{name: "bind of a missing pod", call: bind("nobody", "n1"),
			code: codes.NotFound, reason: apierrors.ReasonNotFound,
			msg: `Pod "nobody" in namespace "default" not found`, exact: true},
		{name: "bind with a wrong uid",
			setup: func(t *testing.T, ctx context.Context) { mustCreate(t, ctx, webPod("uid")) },
			call: func(ctx context.Context) error {
				_, err := podService.BindPod(ctx, &corev1.BindPodRequest{Namespace: "default", Name: "uid", NodeName: "n1", Uid: "00000000-0000-0000-0000-000000000000"})
				return err
			},
			code: codes.Aborted, reason: apierrors.ReasonConflict,
			msg: `operation cannot be fulfilled on Pod "uid" in namespace "default": precondition failed: uid 00000000-0000-0000-0000-000000000000 does not match the pod's`, exact: true},
		{name: "bind without a node name",
			setup: func(t *testing.T, ctx context.Context) { mustCreate(t, ctx, webPod("nowhere")) },
			call:  bind("nowhere", ""),
			code:  codes.InvalidArgument, reason: invalid, fields: []string{"nodeName"},
			msg: `Binding "nowhere" is invalid: nodeName: Required value`, exact: true},
		{name: "bind of a pod being deleted",
			setup: func(t *testing.T, ctx context.Context) {
				// A finalizer keeps the deleted, unbound pod in place.
				mustCreate(t, ctx, strings.Replace(webPod("doomed"), "  namespace: default\n", "  namespace: default\n  finalizers:\n  - example.com/hold\n", 1))
				if _, err := pods.Delete(ctx, "default", "doomed", client.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
				p, err := pods.Get(ctx, "default", "doomed")
				if err != nil || p.Metadata.DeletionTimestamp == nil {
					t.Fatalf("setup: pod not marked for deletion: %v %v", p, err)
				}
			},
			call: bind("doomed", "n1"),
			code: codes.FailedPrecondition, reason: apierrors.ReasonObjectTerminating,
			msg: `Pod "doomed" in namespace "default" is being deleted and cannot be bound`, exact: true},

		// Deletes.
		{name: "delete with a wrong uid precondition",
			setup: func(t *testing.T, ctx context.Context) { mustCreate(t, ctx, webPod("precond")) },
			call: func(ctx context.Context) error {
				_, err := pods.Delete(ctx, "default", "precond", client.DeleteOptions{Preconditions: &metav1.Preconditions{Uid: "00000000-0000-0000-0000-000000000000"}})
				return err
			},
			code: codes.Aborted, reason: apierrors.ReasonConflict,
			msg: `operation cannot be fulfilled on Pod "precond" in namespace "default": precondition failed: uid in precondition: 00000000-0000-0000-0000-000000000000`},
		{name: "delete with a stale resource_version precondition",
			setup: func(t *testing.T, ctx context.Context) { mustCreate(t, ctx, webPod("precond-rv")) },
			call: func(ctx context.Context) error {
				_, err := pods.Delete(ctx, "default", "precond-rv", client.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: "1"}})
				return err
			},
			code: codes.Aborted, reason: apierrors.ReasonConflict,
			msg: `operation cannot be fulfilled on Pod "precond-rv" in namespace "default": precondition failed: resource version in precondition: 1`},
		{name: "delete of reserved namespace default", call: func(ctx context.Context) error {
			_, err := namespaces.Delete(ctx, "", "default", client.DeleteOptions{})
			return err
		},
			code: codes.FailedPrecondition, reason: apierrors.ReasonReserved,
			msg: `Namespace "default" is reserved and cannot be deleted`, exact: true},
		{name: "delete with a negative grace period",
			setup: func(t *testing.T, ctx context.Context) { mustCreate(t, ctx, webPod("grace")) },
			call: func(ctx context.Context) error {
				g := int64(-1)
				_, err := pods.Delete(ctx, "default", "grace", client.DeleteOptions{GracePeriodSeconds: &g})
				return err
			},
			code: codes.InvalidArgument, reason: invalid, fields: []string{"gracePeriodSeconds"},
			msg: `Pod "grace" is invalid: gracePeriodSeconds: Invalid value: -1: must be >= 0`, exact: true},
		{name: "delete with an unknown propagation policy",
			setup: func(t *testing.T, ctx context.Context) { mustCreate(t, ctx, webPod("propagate")) },
			call: func(ctx context.Context) error {
				_, err := pods.Delete(ctx, "default", "propagate", client.DeleteOptions{PropagationPolicy: metav1.DeletePropagation(99)})
				return err
			},
			code: codes.InvalidArgument, reason: invalid, fields: []string{"propagationPolicy"},
			msg: `Pod "propagate" is invalid: propagationPolicy: Unsupported value`},
		{name: "delete without a namespace", call: func(ctx context.Context) error {
			_, err := pods.Delete(ctx, "", "web", client.DeleteOptions{})
			return err
		},
			code: codes.InvalidArgument, reason: invalid, fields: []string{"metadata.namespace"},
			msg: `Pod "web" is invalid: metadata.namespace: Required value`, exact: true},
		{name: "get without a name", call: func(ctx context.Context) error {
			_, err := pods.Get(ctx, "default", "")
			return err
		},
			code: codes.InvalidArgument, reason: invalid, fields: []string{"metadata.name"},
			msg: `Pod "" is invalid: metadata.name: Required value: name is required`, exact: true},
		{name: "delete of a missing node", call: func(ctx context.Context) error {
			_, err := nodes.Delete(ctx, "", "ghost", client.DeleteOptions{})
			return err
		},
			code: codes.NotFound, reason: apierrors.ReasonNotFound,
			msg: `Node "ghost" not found`, exact: true},

		// Lists and watches.
		{name: "bad label selector", call: func(ctx context.Context) error {
			_, err := pods.List(ctx, client.ListOptions{Namespace: "default", LabelSelector: "app in (web"})
			return err
		},
			code: codes.InvalidArgument, reason: apierrors.ReasonBadRequest, msg: `label_selector "app in (web": `},
		{name: "bad field selector", call: func(ctx context.Context) error {
			_, err := pods.List(ctx, client.ListOptions{Namespace: "default", FieldSelector: "spec.nosuchfield=x"})
			return err
		},
			code: codes.InvalidArgument, reason: apierrors.ReasonBadRequest, msg: `field_selector: field label "spec.nosuchfield" is not supported for Pod`, exact: true},
		{name: "field selector on a list field", call: func(ctx context.Context) error {
			_, err := pods.List(ctx, client.ListOptions{Namespace: "default", FieldSelector: "spec.containers=x"})
			return err
		},
			code: codes.InvalidArgument, reason: apierrors.ReasonBadRequest, msg: `field_selector: field label "spec.containers" is not supported for Pod`, exact: true},
		{name: "malformed page token", call: func(ctx context.Context) error {
			_, err := pods.List(ctx, client.ListOptions{Namespace: "default", PageSize: 1, PageToken: "!!not-a-token!!"})
			return err
		},
			code: codes.InvalidArgument, reason: apierrors.ReasonBadRequest, msg: `page_token "!!not-a-token!!" is malformed`, exact: true},
		{name: "page token of another namespace",
			setup: func(t *testing.T, ctx context.Context) {
				for _, n := range []string{"tok-a", "tok-b"} {
					if _, err := cms.Create(ctx, configMap("default", n, nil)); err != nil {
						t.Fatal(err)
					}
				}
			},
			call: func(ctx context.Context) error {
				l, err := cms.List(ctx, client.ListOptions{Namespace: "default", PageSize: 1})
				if err != nil {
					return fmt.Errorf("first page: %w", err)
				}
				if l.NextPageToken == "" {
					return fmt.Errorf("first page has no next page token")
				}
				_, err = cms.List(ctx, client.ListOptions{Namespace: "bosun-system", PageSize: 1, PageToken: l.NextPageToken})
				return err
			},
			code: codes.InvalidArgument, reason: apierrors.ReasonBadRequest, msg: `page_token does not belong to this list`, exact: true},
		{name: "page token from the future", call: func(ctx context.Context) error {
			tok := base64.RawURLEncoding.EncodeToString([]byte(`{"rev":999999999,"start":"default/a"}`))
			_, err := pods.List(ctx, client.ListOptions{Namespace: "default", PageSize: 1, PageToken: tok})
			return err
		},
			code: codes.InvalidArgument, reason: apierrors.ReasonBadRequest, msg: `page_token`},
		{name: "negative page size", call: func(ctx context.Context) error {
			_, err := pods.List(ctx, client.ListOptions{Namespace: "default", PageSize: -1})
			return err
		},
			code: codes.InvalidArgument, reason: apierrors.ReasonBadRequest, msg: `page_size must not be negative`, exact: true},
		{name: "watch from resource_version abc", call: func(ctx context.Context) error {
			return watchErr(ctx, pods, client.WatchOptions{Namespace: "default", ResourceVersion: "abc"})
		},
			code: codes.InvalidArgument, reason: apierrors.ReasonBadRequest,
			msg: `resource_version "abc" is not a resource version returned by the server`, exact: true},
		{name: "watch from a negative resource_version", call: func(ctx context.Context) error {
			return watchErr(ctx, pods, client.WatchOptions{Namespace: "default", ResourceVersion: "-5"})
		},
			code: codes.InvalidArgument, reason: apierrors.ReasonBadRequest,
			msg: `resource_version "-5" is not a resource version returned by the server`, exact: true},
		{name: "field selector on an object field", call: func(ctx context.Context) error {
			_, err := pods.List(ctx, client.ListOptions{Namespace: "default", FieldSelector: "spec=x"})
			return err
		},
			code: codes.InvalidArgument, reason: apierrors.ReasonBadRequest, msg: `field_selector: field label "spec" is not a scalar field of Pod`, exact: true},
		{name: "request over the gRPC message limit", call: createObj(ts, configMap("default", "huge", map[string]string{"blob": strings.Repeat("x", 5<<20)})),
			// Refused by gRPC itself before the apiserver sees it.
			code: codes.ResourceExhausted, reason: "", msg: "grpc: received message larger than max"},
		{name: "watch with a bad label selector", call: func(ctx context.Context) error {
			return watchErr(ctx, pods, client.WatchOptions{Namespace: "default", LabelSelector: "=web"})
		},
			code: codes.InvalidArgument, reason: apierrors.ReasonBadRequest, msg: `label_selector "=web": `},
	}

	if len(cases) < 40 {
		t.Fatalf("only %d cases", len(cases))
	}
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.name] {
			t.Fatalf("two cases named %q", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			if c.skip != "" {
				t.Skip(c.skip)
			}
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			if c.setup != nil {
				c.setup(t, ctx)
			}
			before := readEtcdState(t, ctx, ts)
			err := c.call(ctx)
			after := readEtcdState(t, ctx, ts)
			if after != before {
				t.Errorf("etcd changed: revision %d -> %d, keys %d -> %d", before.rev, after.rev, before.count, after.count)
			}
			checkBadInput(t, c, err)
		})
	}
}

// staleUpdateCase updates a ConfigMap from a copy read before another update:
// the stale write is refused with CONFLICT. The copy and the newer write are
// made in setup so that the call is the stale write alone.
func staleUpdateCase(cms *client.Resource[*corev1.ConfigMap]) badInput {
	var stale *corev1.ConfigMap
	return badInput{
		name: "update with stale resource_version",
		setup: func(t *testing.T, ctx context.Context) {
			v1, err := cms.Create(ctx, configMap("default", "stale", map[string]string{"k": "1"}))
			if err != nil {
				t.Fatal(err)
			}
			v2 := proto.Clone(v1).(*corev1.ConfigMap)
			v2.Data["k"] = "2"
			if _, err := cms.Update(ctx, v2); err != nil {
				t.Fatal(err)
			}
			stale = proto.Clone(v1).(*corev1.ConfigMap)
			stale.Data["k"] = "stale"
		},
		call: func(ctx context.Context) error {
			_, err := cms.Update(ctx, stale)
			return err
		},
		code: codes.Aborted, reason: apierrors.ReasonConflict,
		msg: `operation cannot be fulfilled on ConfigMap "stale" in namespace "default": the object has been modified`,
	}
}

// terminatingNamespace creates a namespace holding a ConfigMap and deletes
// it: the namespace stays, terminating, until its contents are gone. It
// returns once the apiserver's caches have seen both writes.
func terminatingNamespace(ts *testServer, name string) func(t *testing.T, ctx context.Context) {
	return func(t *testing.T, ctx context.Context) {
		t.Helper()
		namespaces := client.For[*corev1.Namespace](ts.conn)
		cms := client.For[*corev1.ConfigMap](ts.conn)
		if _, err := namespaces.Create(ctx, &corev1.Namespace{Metadata: &metav1.ObjectMeta{Name: name}}); err != nil {
			t.Fatal(err)
		}
		cm, err := cms.Create(ctx, configMap(name, "content", map[string]string{"k": "v"}))
		if err != nil {
			t.Fatal(err)
		}
		waitCached(t, ctx, cms, name, cm.Metadata.ResourceVersion)
		ns, err := namespaces.Delete(ctx, "", name, client.DeleteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ns.Metadata.DeletionTimestamp == nil {
			t.Fatalf("namespace %s was deleted at once, want it terminating", name)
		}
		waitCached(t, ctx, namespaces, "", ns.Metadata.ResourceVersion)
	}
}

// waitCached waits until a watch, served from the apiserver's cache, has
// delivered the event at revision rv.
func waitCached[T api.Object](t *testing.T, ctx context.Context, res *client.Resource[T], namespace, rv string) {
	t.Helper()
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	w, err := res.Watch(ctx, client.WatchOptions{Namespace: namespace, ResourceVersion: strconv.FormatInt(n-1, 10)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for {
		ev, err := w.Next()
		if err != nil {
			t.Fatalf("waiting for revision %s in the watch cache: %v", rv, err)
		}
		if ev.ResourceVersion == rv {
			return
		}
	}
}

// watchErr opens a watch and returns the error it ends with; a watch that
// delivers an event instead is an error of its own.
func watchErr(ctx context.Context, pods *client.Resource[*corev1.Pod], opts client.WatchOptions) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	w, err := pods.Watch(ctx, opts)
	if err != nil {
		return err
	}
	defer w.Stop()
	ev, err := w.Next()
	switch {
	case err == nil:
		return fmt.Errorf("watch delivered a %v event instead of failing", ev.Type)
	case errors.Is(err, io.EOF):
		return fmt.Errorf("watch ended cleanly instead of failing")
	}
	return err
}

// manifestError is one manifest that Decode must refuse, naming the field.
type manifestError struct {
	name, in string
	// want must appear in the error text: the field's full path and what is
	// wrong with it.
	want string
}

// TestBadInputManifests checks that strict decoding names the full path of
// what is wrong. These manifests never reach a server.
func TestBadInputManifests(t *testing.T) {
	const pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n"
	const deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: app\n        image: nginx\n"
	cases := []manifestError{
		{"unknown field in a template container", deploy + "        imagePullPolicyy: Always\n",
			`spec.template.spec.containers[0].imagePullPolicyy: unknown field`},
		{"unknown field in a probe handler", deploy + "        livenessProbe:\n          httpGet:\n            port: 80\n            pathh: /healthz\n",
			`spec.template.spec.containers[0].livenessProbe.httpGet.pathh: unknown field`},
		{"unknown field in a volume source", pod + "spec:\n  containers:\n  - {name: c, image: x}\n  volumes:\n  - name: v\n    configMap:\n      nam: cfg\n",
			`spec.volumes[0].configMap.nam: unknown field`},
		{"unknown field in affinity", pod + "spec:\n  containers:\n  - {name: c, image: x}\n  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n        nodeSelectorTerms:\n        - matchExpressions:\n          - key: zone\n            operator: In\n            value: [a]\n",
			`spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].value: unknown field`},
		{"string for replicas", strings.Replace(deploy, "spec:\n  selector", "spec:\n  replicas: three\n  selector", 1),
			`spec.replicas: expected an integer, got string "three"`},
		{"string for a container port", deploy + "        ports:\n        - containerPort: http\n",
			`spec.template.spec.containers[0].ports[0].containerPort: expected an integer, got string "http"`},
		{"number for an env value", deploy + "        env:\n        - name: PORT\n          value: 8080\n",
			`spec.template.spec.containers[0].env[0].value: expected a string, got number 8080`},
		{"object for a list", pod + "spec:\n  containers:\n    name: c\n",
			`spec.containers: expected an array, got object`},
		{"bool for a quantity", deploy + "        resources:\n          limits:\n            memory: true\n",
			`spec.template.spec.containers[0].resources.limits[memory]: expected a quantity (a string or a number), got bool true`},
		{"unsupported kind", "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\n",
			`no kind "PersistentVolumeClaim" in apiVersion "v1" is supported`},
		{"kind at the wrong apiVersion", "apiVersion: v1\nkind: Deployment\nmetadata:\n  name: web\n",
			`kind "Deployment" is served as apiVersion "apps/v1", not "v1"`},
		{"missing apiVersion", "kind: Pod\nmetadata:\n  name: web\n",
			`document 1 (Pod "web"): missing apiVersion`},
		{"unknown field in the second document", pod + "---\n" + strings.Replace(deploy, "  name: web\n", "  name: api\n  nmespace: x\n", 1),
			`document 2 (Deployment "api"): metadata.nmespace: unknown field`},
		{"unknown field in a List item", `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"ports":[{"port":80,"targetPrt":8080}]}}]}`,
			`items[0] (Service "a"): spec.ports[0].targetPrt: unknown field`},
	}
	if len(cases) < 8 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			objs, err := manifest.Decode([]byte(c.in))
			if err == nil {
				t.Fatalf("Decode accepted the manifest: %v", objs)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
		})
	}
}
