package validation_test

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/manifest"
	"bosun.dev/services/apiserver/internal/defaults"
	"bosun.dev/services/apiserver/internal/validation"
)

// manifestTestdata holds the manifests the manifest package decodes in its
// own tests: every kind, written as users write them.
const manifestTestdata = "../../../../pkg/manifest/testdata"

// fuzzSeeds are manifests beyond the testdata that reach the corners of
// defaulting and validation: probes and hooks, affinity, rolling updates with
// percentages, typed Secrets, Services of every type, and half-empty objects.
var fuzzSeeds = []string{
	`apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default, labels: {app: web}, ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-1, uid: u1, controller: true}]}
spec:
  initContainers:
  - {name: init, image: busybox, command: [sh, -c, "true"]}
  containers:
  - name: app
    image: registry.local/hello:v1
    ports: [{name: http, containerPort: 8080}, {containerPort: 9090, protocol: UDP, hostPort: 9090}]
    env:
    - {name: A, value: b}
    - name: NODE
      valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
    - name: MEM
      valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}
    resources: {limits: {cpu: 500m, memory: 128Mi, example.com/gpu: "1"}, requests: {cpu: 250m}}
    volumeMounts: [{name: data, mountPath: /data, subPath: x}]
    livenessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 5, terminationGracePeriodSeconds: 3}
    readinessProbe: {tcpSocket: {port: 8080}, successThreshold: 2}
    startupProbe: {grpc: {port: 9090}}
    lifecycle: {preStop: {exec: {command: [sleep, "5"]}}, postStart: {httpGet: {port: 80}}}
    securityContext: {runAsUser: 1000, privileged: false}
  volumes:
  - {name: data, emptyDir: {sizeLimit: 1Gi}}
  - {name: cfg, configMap: {name: cfg, items: [{key: a, path: a.conf, mode: 0644}]}}
  - {name: host, hostPath: {path: /var/log, type: Directory}}
  - {name: sec, secret: {secretName: s, defaultMode: 0400}}
  tolerations: [{key: k, operator: Exists, effect: NoExecute, tolerationSeconds: 30}, {operator: Exists}]
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms: [{matchExpressions: [{key: zone, operator: In, values: [a]}], matchFields: [{key: metadata.name, operator: In, values: [n1]}]}]
      preferredDuringSchedulingIgnoredDuringExecution: [{weight: 10, preference: {matchExpressions: [{key: disk, operator: Gt, values: ["3"]}]}}]
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution: [{labelSelector: {matchLabels: {app: web}}, topologyKey: kubernetes.io/hostname}]
  topologySpreadConstraints: [{maxSkew: 1, topologyKey: zone, whenUnsatisfiable: DoNotSchedule, minDomains: 2, labelSelector: {matchExpressions: [{key: app, operator: Exists}]}}]
  activeDeadlineSeconds: 60
  securityContext: {fsGroup: 2000, supplementalGroups: [1, 2]}
status:
  phase: Running
  podIP: 10.0.0.1
  podIPs: [{ip: 10.0.0.1}]
  conditions: [{type: Ready, status: "True"}]
  containerStatuses: [{name: app, restartCount: 1}]
`,
	`apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: bosun-system}
spec:
  selector: {matchLabels: {app: agent}}
  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 10%, maxSurge: 0}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: a, image: agent}], hostNetwork: true}
`,
	`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  progressDeadlineSeconds: 5
  minReadySeconds: 10
  selector: {matchLabels: {app: web}, matchExpressions: [{key: tier, operator: NotIn, values: [db]}]}
  strategy: {rollingUpdate: {maxSurge: 0%, maxUnavailable: 150%}}
  template: {metadata: {labels: {app: web}}, spec: {containers: [{name: a, image: x}]}}
`,
	`apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web-1, namespace: default}
spec: {selector: {}, template: {}}
`,
	`apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: default}
spec:
  serviceName: db
  podManagementPolicy: Parallel
  updateStrategy: {rollingUpdate: {partition: 1, maxUnavailable: 0}}
  ordinals: {start: 1}
  selector: {matchLabels: {app: db}}
  template: {metadata: {labels: {app: db}}, spec: {containers: [{name: db, image: pg}]}}
`,
	`apiVersion: batch/v1
kind: Job
metadata: {name: indexed, namespace: default, uid: 0b7f9a2e-1111-2222-3333-444455556666}
spec:
  completionMode: Indexed
  parallelism: 3
  template: {spec: {restartPolicy: OnFailure, containers: [{name: w, image: worker}]}}
`,
	`apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  externalTrafficPolicy: Local
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 100}}
  ports: [{name: http, port: 80, targetPort: http, nodePort: 30080}, {name: dns, port: 53, protocol: UDP}]
  selector: {app: web}
`,
	`apiVersion: v1
kind: Service
metadata: {name: ext, namespace: default}
spec: {type: ExternalName, clusterIP: None}
`,
	`apiVersion: v1
kind: Secret
metadata: {name: tls, namespace: default}
type: kubernetes.io/tls
data: {tls.crt: AAEC}
stringData: {tls.key: k}
`,
	`apiVersion: v1
kind: Endpoints
metadata: {name: web, namespace: default}
subsets: [{addresses: [{ip: 10.0.0.1, nodeName: n1, hostname: h}], notReadyAddresses: [{ip: "::1"}], ports: [{name: a, port: 80}, {port: 81}]}]
`,
	`apiVersion: v1
kind: Event
metadata: {name: web.1, namespace: default}
involvedObject: {kind: Pod, name: web}
type: Warning
count: -1
`,
	`apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: leader, namespace: default}
spec: {holderIdentity: a, leaseDurationSeconds: 0, leaseTransitions: -1}
`,
	`apiVersion: v1
kind: Node
metadata: {name: n1}
spec: {podCIDR: 10.0.0.0/24, podCIDRs: [10.0.1.0/24], taints: [{key: k, effect: NoSchedule}, {key: k, effect: NoSchedule}]}
status: {capacity: {cpu: "4", pods: "110"}, addresses: [{type: InternalIP, address: 10.0.0.2}], conditions: [{type: Ready, status: Maybe}]}
`,
	`{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}},{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"a"},"immutable":true,"data":{"k":"v"},"binaryData":{"k":"AA=="}}]}`,
	"apiVersion: v1\nkind: Pod\n",
	"apiVersion: apps/v1\nkind: Deployment\nmetadata: {}\nspec: {}\n",
}

// FuzzDecodeAndValidate decodes arbitrary manifests and runs what the
// apiserver runs on each object: defaulting, then validation for create,
// update and status. Nothing may panic, defaulting must be idempotent and
// every reported error must name a field.
func FuzzDecodeAndValidate(f *testing.F) {
	entries, err := os.ReadDir(manifestTestdata)
	if err != nil {
		f.Fatalf("reading seed manifests: %v", err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(manifestTestdata, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := manifest.Decode(data)
		if err != nil {
			return
		}
		for _, obj := range objs {
			checkDefaultAndValidate(t, obj)
			// The apiserver sets these before defaulting; a Job's selector
			// is generated from the uid.
			withServerFields := proto.Clone(obj).(api.Object)
			m := api.Meta(withServerFields)
			if m.Uid == "" {
				m.Uid = "4a1c2f3e-5b6d-4e7f-8091-a2b3c4d5e6f7"
			}
			m.CreationTimestamp = timestamppb.New(timestamppb.Now().AsTime().Truncate(1e9))
			m.Generation = 1
			checkDefaultAndValidate(t, withServerFields)
		}
	})
}

// checkDefaultAndValidate runs defaulting and every validation on a copy of
// obj.
func checkDefaultAndValidate(t *testing.T, in api.Object) {
	t.Helper()
	written := proto.Clone(in).(api.Object)
	obj := proto.Clone(in).(api.Object)
	defaults.Apply(obj)
	once := proto.Clone(obj).(api.Object)
	defaults.Apply(obj)
	if !proto.Equal(once, obj) {
		t.Fatalf("defaults.Apply is not idempotent:\nonce:  %v\ntwice: %v", once, obj)
	}
	checkPaths(t, "Validate of the object as written", validation.Validate(written))
	checkPaths(t, "Validate", validation.Validate(obj))
	checkPaths(t, "ValidateUpdate against itself", validation.ValidateUpdate(obj, proto.Clone(obj).(api.Object)))
	checkPaths(t, "ValidateUpdate against the object as written", validation.ValidateUpdate(obj, written))
	checkPaths(t, "ValidateStatus", validation.ValidateStatus(obj))
}

// checkPaths requires every error to name a field, and formats the errors as
// the apiserver does.
func checkPaths(t *testing.T, what string, errs field.ErrorList) {
	t.Helper()
	for _, e := range errs {
		if e == nil {
			t.Fatalf("%s returned a nil error in %v", what, errs)
		}
		if e.Field == "" || e.Field == "<nil>" {
			t.Fatalf("%s returned an error without a field path: %v", what, e)
		}
	}
	if len(errs) > 0 {
		_ = apierrors.Invalid("Object", "fuzz", errs).Error()
	}
}

// The inline seeds must decode, or they seed nothing but the decoder.
func TestFuzzSeedsDecode(t *testing.T) {
	for i, s := range fuzzSeeds {
		if _, err := manifest.Decode([]byte(s)); err != nil {
			t.Errorf("seed %d: %v", i, err)
		}
	}
}
