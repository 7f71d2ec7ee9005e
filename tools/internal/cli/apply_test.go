package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
)

const webDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        resources:
          limits: {cpu: 1, memory: 128Mi}
`

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestApplyCreateOrUpdate walks apply through its three outcomes.
func TestApplyCreateOrUpdate(t *testing.T) {
	c := startCluster(t)
	dir := t.TempDir()
	f := writeFile(t, dir, "web.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n---\n"+webDeployment)

	steps := []struct {
		name     string
		manifest string
		want     string
		check    func(t *testing.T)
	}{
		{"first apply creates", "", "namespace/shop created\ndeployment.apps/web created\n", func(t *testing.T) {
			d, err := c.store.get("Deployment", "default", "web")
			if err != nil {
				t.Fatal(err)
			}
			if got := d.(*appsv1.Deployment).GetSpec().GetReplicas(); got != 2 {
				t.Errorf("replicas = %d, want 2", got)
			}
		}},
		{"same manifest is unchanged", "", "namespace/shop unchanged\ndeployment.apps/web unchanged\n", func(t *testing.T) {
			d, _ := c.store.get("Deployment", "default", "web")
			if rv := d.GetMetadata().GetResourceVersion(); rv != "2" {
				t.Errorf("resource version = %s: an unchanged apply must not write", rv)
			}
		}},
		{"changed manifest is configured", strings.Replace(webDeployment, "replicas: 2", "replicas: 5", 1),
			"deployment.apps/web configured\n", func(t *testing.T) {
				d, _ := c.store.get("Deployment", "default", "web")
				dep := d.(*appsv1.Deployment)
				if dep.GetSpec().GetReplicas() != 5 || dep.GetMetadata().GetGeneration() != 2 || dep.GetMetadata().GetUid() != "uid-2" {
					t.Errorf("after update: %v", dep)
				}
			}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			file := f
			if st.manifest != "" {
				file = writeFile(t, dir, "changed.yaml", st.manifest)
			}
			r := c.run(t, testNow, "", "apply", "-f", file)
			if r.code != 0 || r.stdout != st.want {
				t.Fatalf("apply: code %d\nstdout:\n%s\nstderr:\n%s\nwant:\n%s", r.code, r.stdout, r.stderr, st.want)
			}
			st.check(t)
		})
	}
}

func TestApplyKeepsStatusAndOtherAnnotations(t *testing.T) {
	c := startCluster(t)
	if r := c.run(t, testNow, webDeployment, "apply", "-f", "-"); r.code != 0 {
		t.Fatalf("apply: %+v", r)
	}
	// A controller writes a status and an annotation.
	obj, _ := c.store.get("Deployment", "default", "web")
	d := obj.(*appsv1.Deployment)
	c.store.mu.Lock()
	stored := c.store.objects[storeKey("Deployment", "default", "web")].(*appsv1.Deployment)
	stored.Status = &appsv1.DeploymentStatus{ReadyReplicas: 2}
	stored.Metadata.Annotations = map[string]string{"deployment.kubernetes.io/revision": "1"}
	c.store.mu.Unlock()
	_ = d

	changed := strings.Replace(webDeployment, "image: nginx:1.27", "image: nginx:1.28", 1)
	r := c.run(t, testNow, changed, "apply", "-f", "-")
	if r.code != 0 || r.stdout != "deployment.apps/web configured\n" {
		t.Fatalf("apply: %+v", r)
	}
	obj, _ = c.store.get("Deployment", "default", "web")
	d = obj.(*appsv1.Deployment)
	if d.GetStatus().GetReadyReplicas() != 2 {
		t.Errorf("status was lost: %v", d.GetStatus())
	}
	if d.GetMetadata().GetAnnotations()["deployment.kubernetes.io/revision"] != "1" {
		t.Errorf("controller's annotation was lost: %v", d.GetMetadata().GetAnnotations())
	}
	if got := d.GetSpec().GetTemplate().GetSpec().GetContainers()[0].GetImage(); got != "nginx:1.28" {
		t.Errorf("image = %s", got)
	}
}

func TestApplyDirectoryAndNamespace(t *testing.T) {
	c := startCluster(t)
	dir := t.TempDir()
	writeFile(t, dir, "b-pod.yml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: busybox\n")
	writeFile(t, dir, "a-ns.json", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team"}}`)
	writeFile(t, dir, "notes.txt", "not a manifest")
	r := c.run(t, testNow, "", "-n", "team", "apply", "-f", dir)
	if want := "namespace/team created\npod/p created\n"; r.code != 0 || r.stdout != want {
		t.Fatalf("apply: %+v, want stdout %q", r, want)
	}
	if _, err := c.store.get("Pod", "team", "p"); err != nil {
		t.Errorf("the pod did not take -n: %v", err)
	}
}

func TestApplyErrors(t *testing.T) {
	c := startCluster(t)
	tests := []struct {
		name, stdin, wantErr string
	}{
		{"server refuses an invalid object", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n",
			"Error from server (Invalid): Pod \"web\" is invalid: spec.containers[0].image: Required value\n"},
		{"strict decoding", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containerz: []\n",
			"error: stdin: document 1 (Pod \"web\"): spec.containerz: unknown field\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.run(t, testNow, tt.stdin, "apply", "-f", "-")
			if r.code == 0 || r.stderr != tt.wantErr {
				t.Errorf("code %d, stderr %q, want %q", r.code, r.stderr, tt.wantErr)
			}
		})
	}
}

func TestApplyConflictRetries(t *testing.T) {
	c := startCluster(t)
	if r := c.run(t, testNow, webDeployment, "apply", "-f", "-"); r.code != 0 {
		t.Fatalf("apply: %+v", r)
	}
	// mergeForUpdate keeps the fetched resource version, so a write in
	// between is a conflict the retry loop absorbs; here we only check that
	// the merged object carries the stored version.
	cur, _ := c.store.get("Deployment", "default", "web")
	user := &appsv1.Deployment{Metadata: cur.GetMetadata(), Spec: cur.(*appsv1.Deployment).GetSpec()}
	merged := mergeForUpdate(cur, user)
	if merged.GetMetadata().GetResourceVersion() != cur.GetMetadata().GetResourceVersion() {
		t.Errorf("merged resource version %q, want %q", merged.GetMetadata().GetResourceVersion(), cur.GetMetadata().GetResourceVersion())
	}
}

func TestMergeForUpdateKeepsAssignedFields(t *testing.T) {
	cur := &corev1.Service{Spec: &corev1.ServiceSpec{ClusterIp: "10.96.0.10", Ports: []*corev1.ServicePort{{Port: 80, NodePort: 30080}}}}
	user := &corev1.Service{Spec: &corev1.ServiceSpec{Ports: []*corev1.ServicePort{{Port: 80}}}}
	merged := mergeForUpdate(cur, user).(*corev1.Service)
	if merged.GetSpec().GetClusterIp() != "10.96.0.10" || merged.GetSpec().GetPorts()[0].GetNodePort() != 30080 {
		t.Errorf("assigned fields lost: %v", merged.GetSpec())
	}
	if user.GetSpec().GetClusterIp() != "" {
		t.Errorf("the user's object was modified")
	}
}
