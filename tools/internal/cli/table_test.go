package cli

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"bosun.dev/pkg/api"
	"bosun.dev/pkg/manifest"
)

// printTable decodes a manifest and prints its objects as get would.
func printTable(t *testing.T, kind, manifestText string, opts tableOptions) string {
	t.Helper()
	objs, err := manifest.Decode([]byte(manifestText))
	if err != nil {
		t.Fatal(err)
	}
	k, err := api.Lookup(kind)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	p := newTablePrinter(&out, k, opts, func() time.Time { return testNow })
	p.header()
	for _, o := range objs {
		if o.GetMetadata().GetCreationTimestamp() == nil {
			api.Meta(o).CreationTimestamp = timestamppb.New(testNow.Add(-3 * time.Minute))
		}
		p.row(o)
	}
	if err := p.flush(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestTables(t *testing.T) {
	tests := []struct {
		name, kind, manifest string
		opts                 tableOptions
		want                 string
	}{
		{"pods", "pods", `
apiVersion: v1
kind: Pod
metadata: {name: web-1}
spec:
  nodeName: node-1
  containers: [{name: a, image: x}, {name: b, image: why}]
status:
  phase: Running
  podIP: 10.0.0.5
  containerStatuses:
  - {name: a, ready: true, restartCount: 2, state: {running: {}}}
  - {name: b, ready: true, restartCount: 1, state: {running: {}}}
---
apiVersion: v1
kind: Pod
metadata: {name: crashy}
spec:
  containers: [{name: a, image: x}]
status:
  phase: Running
  containerStatuses:
  - {name: a, restartCount: 7, state: {waiting: {reason: CrashLoopBackOff}}}
---
apiVersion: v1
kind: Pod
metadata: {name: done}
spec:
  containers: [{name: a, image: x}]
status:
  phase: Succeeded
  containerStatuses:
  - {name: a, state: {terminated: {exitCode: 0, reason: Completed}}}
---
apiVersion: v1
kind: Pod
metadata: {name: going, deletionTimestamp: "2024-05-01T09:59:00Z"}
spec:
  containers: [{name: a, image: x}]
status: {phase: Running}
`, tableOptions{wide: true}, `NAME     READY   STATUS             RESTARTS   AGE   IP         NODE
web-1    2/2     Running            3          3m    10.0.0.5   node-1
crashy   0/1     CrashLoopBackOff   7          3m    <none>     <none>
done     0/1     Completed          0          3m    <none>     <none>
going    0/1     Terminating        0          3m    <none>     <none>
`},
		{"deployments", "deploy", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec: {replicas: 3}
status: {readyReplicas: 2, updatedReplicas: 3, availableReplicas: 2}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: default-replicas, namespace: other}
`, tableOptions{withNamespace: true}, `NAMESPACE   NAME               READY   UP-TO-DATE   AVAILABLE   AGE
shop        web                2/3     3            2           3m
other       default-replicas   0/1     0            0           3m
`},
		{"replicasets", "rs", `
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web-5d4f}
spec: {replicas: 3}
status: {replicas: 3, readyReplicas: 1}
`, tableOptions{}, `NAME       DESIRED   CURRENT   READY   AGE
web-5d4f   3         3         1       3m
`},
		{"services", "svc", `
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.0.10
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: dns, port: 53, protocol: UDP, targetPort: 5353}
---
apiVersion: v1
kind: Service
metadata: {name: edge}
spec:
  type: NodePort
  clusterIP: 10.96.0.11
  ports: [{port: 443, nodePort: 30443, targetPort: 8443}]
---
apiVersion: v1
kind: Service
metadata: {name: headless}
spec: {clusterIP: None}
`, tableOptions{}, `NAME       TYPE        CLUSTER-IP   PORT(S)         AGE
web        ClusterIP   10.96.0.10   80/TCP,53/UDP   3m
edge       NodePort    10.96.0.11   443:30443/TCP   3m
headless   ClusterIP   None         <none>          3m
`},
		{"nodes", "no", `
apiVersion: v1
kind: Node
metadata: {name: cp-1, labels: {node-role.kubernetes.io/control-plane: ""}}
status:
  conditions: [{type: Ready, status: "True"}]
  nodeInfo: {kubeletVersion: v0.1.0}
---
apiVersion: v1
kind: Node
metadata: {name: worker-1}
spec: {unschedulable: true}
status:
  conditions: [{type: Ready, status: "False"}]
---
apiVersion: v1
kind: Node
metadata: {name: worker-2}
status:
  conditions: [{type: Ready, status: Unknown}]
---
apiVersion: v1
kind: Node
metadata: {name: new}
`, tableOptions{}, `NAME       STATUS                        ROLES           AGE   VERSION
cp-1       Ready                         control-plane   3m    v0.1.0
worker-1   NotReady,SchedulingDisabled   <none>          3m    <none>
worker-2   Unknown                       <none>          3m    <none>
new        Unknown                       <none>          3m    <none>
`},
		{"namespaces", "ns", `
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Namespace
metadata: {name: old}
status: {phase: Terminating}
`, tableOptions{}, `NAME   STATUS        AGE
shop   Active        3m
old    Terminating   3m
`},
		{"jobs", "jobs", `
apiVersion: batch/v1
kind: Job
metadata: {name: pi}
spec: {completions: 5}
status: {succeeded: 2}
`, tableOptions{}, "NAME   COMPLETIONS   AGE\npi     2/5           3m\n"},
		{"statefulsets", "sts", `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec: {replicas: 3}
status: {readyReplicas: 3}
`, tableOptions{}, "NAME   READY   AGE\ndb     3/3     3m\n"},
		{"daemonsets", "ds", `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
status: {desiredNumberScheduled: 4, currentNumberScheduled: 4, numberReady: 3}
`, tableOptions{}, "NAME    DESIRED   CURRENT   READY   AGE\nagent   4         4         3       3m\n"},
		{"endpoints", "ep", `
apiVersion: v1
kind: Endpoints
metadata: {name: web}
subsets:
- addresses: [{ip: 10.0.0.1}, {ip: 10.0.0.2}, {ip: 10.0.0.3}, {ip: 10.0.0.4}]
  ports: [{port: 8080}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: none}
`, tableOptions{}, `NAME   ENDPOINTS                                               AGE
web    10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080 + 1 more...   3m
none   <none>                                                  3m
`},
		{"events", "ev", `
apiVersion: v1
kind: Event
metadata: {name: web-1.1}
involvedObject: {kind: Pod, name: web-1}
reason: Scheduled
type: Normal
message: Successfully assigned default/web-1 to node-1
lastTimestamp: "2024-05-01T09:59:50Z"
`, tableOptions{}, "LAST SEEN   TYPE     REASON      OBJECT      MESSAGE\n10s         Normal   Scheduled   pod/web-1   Successfully assigned default/web-1 to node-1\n"},
		{"configmaps", "cm", `
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {a: "1", b: "2"}
binaryData: {c: AA==}
`, tableOptions{}, "NAME   DATA   AGE\ncfg    3      3m\n"},
		{"secrets", "secrets", `
apiVersion: v1
kind: Secret
metadata: {name: db}
data: {password: czNjcjN0}
stringData: {user: admin}
`, tableOptions{}, "NAME   TYPE     DATA   AGE\ndb     Opaque   2      3m\n"},
		{"leases", "leases", `
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: scheduler}
spec: {holderIdentity: node-1_abc}
`, tableOptions{}, "NAME        HOLDER       AGE\nscheduler   node-1_abc   3m\n"},
		{"several kinds name with type", "po", `
apiVersion: v1
kind: Pod
metadata: {name: web}
`, tableOptions{withKind: true}, "NAME      READY   STATUS    RESTARTS   AGE\npod/web   0/0     Pending   0          3m\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := printTable(t, tt.kind, tt.manifest, tt.opts); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestGenericColumns(t *testing.T) {
	cols := columnsFor(&api.Kind{Kind: "Widget"})
	if strings.Join(cols.header, ",") != "AGE" {
		t.Errorf("generic header = %v, want AGE", cols.header)
	}
}
