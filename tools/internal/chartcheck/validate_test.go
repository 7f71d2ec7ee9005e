package chartcheck_test

import (
	"strings"
	"testing"

	"bosun.dev/tools/internal/chartcheck"
)

// valid is a small render that passes every check; each case below breaks
// it in one place.
const valid = `---
# Source: demo/templates/serviceaccount.yaml
apiVersion: v1
kind: ServiceAccount
metadata:
  name: web
  namespace: demo
---
# Source: demo/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: demo
spec:
  selector:
    app: web
  ports:
    - name: http
      port: 80
      targetPort: http
    - name: metrics
      port: 9090
      targetPort: 9090
---
# Source: demo/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      serviceAccountName: web
      containers:
        - name: web
          image: bosun/web:v1
          ports:
            - name: http
              containerPort: 8080
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
          resources:
            requests:
              memory: 64Mi
            limits:
              memory: 128Mi
          volumeMounts:
            - name: data
              mountPath: /data
      volumes:
        - name: data
          emptyDir: {}
---
# Source: demo/templates/pdb.yaml
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
  namespace: demo
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      app: web
`

func check(rendered string) error {
	objs, err := chartcheck.Decode(chartcheck.Scheme(), []byte(rendered))
	if err != nil {
		return err
	}
	return chartcheck.Validate(objs)
}

func TestValidRender(t *testing.T) {
	objs, err := chartcheck.Decode(chartcheck.Scheme(), []byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 4 {
		t.Fatalf("decoded %d objects, want 4", len(objs))
	}
	if objs[2].GVK.Kind != "Deployment" || objs[2].Source != "demo/templates/deployment.yaml" || objs[2].Index != 3 {
		t.Errorf("third object: %+v", objs[2])
	}
	if err := chartcheck.Validate(objs); err != nil {
		t.Errorf("valid render refused: %v", err)
	}
}

func TestBadRenders(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
		want     []string
	}{
		{"unknown field", "  replicas: 2\n", "  replica: 2\n",
			[]string{"document 3 (demo/templates/deployment.yaml)", `unknown field "spec.replica"`}},
		{"unknown nested field", "          image: bosun/web:v1\n", "          image: bosun/web:v1\n          imagePolicy: Always\n",
			[]string{`unknown field "spec.template.spec.containers[0].imagePolicy"`}},
		{"duplicate key", "  replicas: 2\n", "  replicas: 2\n  replicas: 3\n",
			[]string{"document 3", `key "replicas" already set`}},
		{"wrong type", "  replicas: 2\n", "  replicas: two\n",
			[]string{"document 3", "Deployment", "cannot unmarshal"}},
		{"unknown kind", "kind: PodDisruptionBudget", "kind: PodDisruptionBudgets",
			[]string{"document 4 (demo/templates/pdb.yaml)", "no Kubernetes kind PodDisruptionBudgets in apiVersion policy/v1"}},
		{"Bosun-only group", "apiVersion: policy/v1", "apiVersion: bosun.dev/v1",
			[]string{"no Kubernetes kind PodDisruptionBudget in apiVersion bosun.dev/v1"}},
		{"no kind", "kind: ServiceAccount\n", "",
			[]string{"document 1", "apiVersion and kind are required"}},
		{"invalid name", "  name: web\n  namespace: demo\n  labels:", "  name: Web_1\n  namespace: demo\n  labels:",
			[]string{`Deployment "Web_1"`, "metadata.name", "Web_1"}},
		{"no namespace", "kind: ServiceAccount\nmetadata:\n  name: web\n  namespace: demo\n", "kind: ServiceAccount\nmetadata:\n  name: web\n",
			[]string{`ServiceAccount "web"`, "metadata.namespace: Required value"}},
		{"invalid label", "  labels:\n    app: web\nspec:\n  replicas", "  labels:\n    app: web/x\nspec:\n  replicas",
			[]string{"metadata.labels", "web/x"}},
		{"selector does not match template", "      labels:\n        app: web\n    spec:", "      labels:\n        app: api\n    spec:",
			[]string{"spec.template.metadata.labels", `do not match the selector "app=web"`, "spec.selector: Invalid value", "selects no pod template"}},
		{"mount of a missing volume", "            - name: data\n              mountPath", "            - name: cache\n              mountPath",
			[]string{"spec.template.spec.containers[0].volumeMounts[0].name: Not found", "cache"}},
		{"relative mount path", "mountPath: /data", "mountPath: data",
			[]string{"volumeMounts[0].mountPath", "must be an absolute path"}},
		{"probe on a missing port", "              port: http\n          resources", "              port: web\n          resources",
			[]string{"readinessProbe.httpGet.port: Not found", `"web"`}},
		{"service target port missing", "      targetPort: http\n", "      targetPort: https\n",
			[]string{`Service "web"`, "spec.ports[0].targetPort: Not found", "https"}},
		{"service selects nothing", "  selector:\n    app: web\n  ports:", "  selector:\n    app: db\n  ports:",
			[]string{`Service "web"`, "spec.selector", "selects no pod template"}},
		{"unnamed port of a multi-port service", "    - name: metrics\n      port: 9090", "    - port: 9090",
			[]string{"spec.ports[1].name: Required value"}},
		{"service account not rendered", "      serviceAccountName: web\n", "      serviceAccountName: api\n",
			[]string{"serviceAccountName", `"api" is no ServiceAccount`}},
		{"requests above limits", "              memory: 64Mi\n", "              memory: 256Mi\n",
			[]string{"resources.requests[memory]", "must not exceed the limit 128Mi"}},
		{"rendered twice", "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: web\n  namespace: demo\nspec:\n  maxUnavailable: 1\n  selector:\n    matchLabels:\n      app: web\n",
			"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web\n  namespace: demo\n",
			[]string{"rendered twice (first as document 1)"}},
		{"PDB with both bounds", "  maxUnavailable: 1\n", "  maxUnavailable: 1\n  minAvailable: 1\n",
			[]string{"PodDisruptionBudget", "set exactly one of minAvailable and maxUnavailable"}},
		{"bidirectional mount unprivileged", "              mountPath: /data\n", "              mountPath: /data\n              mountPropagation: Bidirectional\n",
			[]string{"mountPropagation: Forbidden", "privileged"}},
		{"no image", "          image: bosun/web:v1\n", "",
			[]string{"containers[0].image: Required value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(valid, tt.old) {
				t.Fatalf("the valid render has no %q", tt.old)
			}
			err := check(strings.Replace(valid, tt.old, tt.new, 1))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

// Every problem of a render is reported, not only the first.
func TestAllProblemsReported(t *testing.T) {
	bad := strings.Replace(valid, "  replicas: 2\n", "  replica: 2\n", 1)
	bad = strings.Replace(bad, "kind: PodDisruptionBudget", "kind: Nothing", 1)
	_, err := chartcheck.Decode(chartcheck.Scheme(), []byte(bad))
	if err == nil || !strings.Contains(err.Error(), "document 3") || !strings.Contains(err.Error(), "document 4") {
		t.Errorf("want errors for documents 3 and 4, got %v", err)
	}
}

func TestStatefulSetNeedsItsService(t *testing.T) {
	sts := valid + `---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
  namespace: demo
spec:
  serviceName: db
  selector:
    matchLabels:
      app: db
  template:
    metadata:
      labels:
        app: db
    spec:
      containers:
        - name: db
          image: bosun/db:v1
          volumeMounts:
            - name: data
              mountPath: /var/lib/db
  volumeClaimTemplates:
    - metadata:
        name: data
      spec:
        accessModes: [ReadWriteOnce]
        resources:
          requests:
            storage: 1Gi
`
	err := check(sts)
	if err == nil || !strings.Contains(err.Error(), `StatefulSet "db": spec.serviceName: Not found: "db"`) {
		t.Fatalf("want the missing governing Service reported, got %v", err)
	}
	// The claim template counts as a volume: only the Service is missing.
	if strings.Contains(err.Error(), "volumeMounts") {
		t.Errorf("a mount of a claim template was refused: %v", err)
	}
}
