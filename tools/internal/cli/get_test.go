package cli

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/manifest"
)

const twoPods = `apiVersion: v1
kind: Pod
metadata: {name: a, labels: {app: web}}
spec:
  containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: Pod
metadata: {name: b, labels: {app: db}}
spec:
  containers: [{name: c, image: postgres}]
`

func TestGet(t *testing.T) {
	c := startCluster(t)
	if r := c.run(t, testNow, twoPods, "apply", "-f", "-"); r.code != 0 {
		t.Fatalf("apply: %+v", r)
	}
	later := testNow.Add(5 * time.Minute)
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"table", []string{"get", "pods"}, 0,
			"NAME   READY   STATUS    RESTARTS   AGE\na      0/1     Pending   0          5m\nb      0/1     Pending   0          5m\n", ""},
		{"short name and label selector", []string{"get", "po", "-l", "app=db"}, 0,
			"NAME   READY   STATUS    RESTARTS   AGE\nb      0/1     Pending   0          5m\n", ""},
		{"wide", []string{"get", "pod", "a", "-o", "wide"}, 0,
			"NAME   READY   STATUS    RESTARTS   AGE   IP       NODE\na      0/1     Pending   0          5m    <none>   <none>\n", ""},
		{"all namespaces", []string{"get", "pods", "-A", "-l", "app=web"}, 0,
			"NAMESPACE   NAME   READY   STATUS    RESTARTS   AGE\ndefault     a      0/1     Pending   0          5m\n", ""},
		{"name output", []string{"get", "pods", "-o", "name"}, 0, "pod/a\npod/b\n", ""},
		{"type/name form", []string{"get", "pod/b", "-o", "name"}, 0, "pod/b\n", ""},
		{"empty namespace", []string{"get", "pods", "-n", "other"}, 0, "", "No resources found in other namespace.\n"},
		{"not found", []string{"get", "pod", "x"}, 1, "",
			"Error from server (NotFound): Pod \"x\" in namespace \"default\" not found\n"},
		{"unknown type", []string{"get", "widgets"}, 1, "", ""},
		{"bad output format", []string{"get", "pods", "-o", "xml"}, 1, "",
			"error: unknown output format \"xml\": use wide, yaml, json or name\n"},
		{"unimplemented kind", []string{"get", "svc"}, 1, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.run(t, later, "", tt.args...)
			if r.code != tt.wantCode {
				t.Errorf("code = %d, want %d (stderr %q)", r.code, tt.wantCode, r.stderr)
			}
			if r.stdout != tt.wantStdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, tt.wantStdout)
			}
			if tt.wantStderr != "" && r.stderr != tt.wantStderr {
				t.Errorf("stderr = %q, want %q", r.stderr, tt.wantStderr)
			}
			if tt.wantCode != 0 && r.stderr == "" {
				t.Errorf("a failure printed nothing")
			}
		})
	}
}

// TestGetOutputAppliesBack checks that -o yaml and -o json print manifests
// that decode to the stored objects and that apply reports unchanged.
func TestGetOutputAppliesBack(t *testing.T) {
	c := startCluster(t)
	if r := c.run(t, testNow, twoPods+"---\n"+webDeployment, "apply", "-f", "-"); r.code != 0 {
		t.Fatalf("apply: %+v", r)
	}
	for _, args := range [][]string{
		{"get", "pod", "a", "-o", "yaml"},
		{"get", "pods", "-o", "yaml"},
		{"get", "pods", "-o", "json"},
		{"get", "deploy", "web", "-o", "json"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := c.run(t, testNow, "", args...)
			if r.code != 0 {
				t.Fatalf("get: %+v", r)
			}
			objs, err := manifest.Decode([]byte(r.stdout))
			if err != nil {
				t.Fatalf("output does not decode: %v\n%s", err, r.stdout)
			}
			if strings.Contains(args[1], "pod") && len(objs) == 1 {
				stored, _ := c.store.get("Pod", "default", "a")
				if !proto.Equal(stored, objs[0]) {
					t.Errorf("printed object differs from the stored one:\n%v\n%v", stored, objs[0])
				}
			}
			back := c.run(t, testNow, r.stdout, "apply", "-f", "-")
			if back.code != 0 || strings.Count(back.stdout, "unchanged") != len(objs) {
				t.Errorf("applying the output back: %+v", back)
			}
		})
	}
}

func TestGetWatch(t *testing.T) {
	c := startCluster(t)
	if r := c.run(t, testNow, twoPods, "apply", "-f", "-"); r.code != 0 {
		t.Fatalf("apply: %+v", r)
	}
	// A pod created between the list and the watch arrives as a watch
	// event: the watch resumed from the list's revision.
	c.pods.beforeWatch = func() {
		c.store.create("Pod", &corev1.Pod{Metadata: &metav1.ObjectMeta{Name: "c", Namespace: "default"}})
	}
	r := c.run(t, testNow, "", "get", "pods", "-w")
	want := "NAME   READY   STATUS    RESTARTS   AGE\na      0/1     Pending   0          0s\nb      0/1     Pending   0          0s\n" +
		"c      0/0     Pending   0          0s\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("get -w: %+v\nwant:\n%s", r, want)
	}
}

func TestDeleteAndDescribe(t *testing.T) {
	c := startCluster(t)
	if r := c.run(t, testNow, twoPods, "apply", "-f", "-"); r.code != 0 {
		t.Fatalf("apply: %+v", r)
	}
	r := c.run(t, testNow, "", "describe", "pod", "a")
	for _, want := range []string{"Name:", "a\n", "Namespace:", "Labels:", "app=web", "Status:", "Pending", "Spec:\n  containers:\n  - image: busybox\n    name: c\n", "Events:", "<none>"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("describe output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = c.run(t, testNow, "", "delete", "pod", "a", "b", "--grace-period=0", "--cascade=foreground")
	if r.code != 0 || r.stdout != "pod \"a\" deleted\npod \"b\" deleted\n" {
		t.Fatalf("delete: %+v", r)
	}
	c.pods.deleteMutex.Lock()
	last := c.pods.lastDelete
	c.pods.deleteMutex.Unlock()
	if last.GracePeriodSeconds == nil || last.GetGracePeriodSeconds() != 0 || last.GetPropagationPolicy().String() != "DELETE_PROPAGATION_FOREGROUND" {
		t.Errorf("delete request = %v", last)
	}
	r = c.run(t, testNow, "", "delete", "pod", "a")
	if r.code != 1 || r.stderr != "Error from server (NotFound): Pod \"a\" in namespace \"default\" not found\n" {
		t.Errorf("second delete: %+v", r)
	}
	if r := c.run(t, testNow, "", "delete", "pod", "a", "--cascade=sideways"); r.code != 1 {
		t.Errorf("bad --cascade accepted: %+v", r)
	}
}

func TestDeleteFromFile(t *testing.T) {
	c := startCluster(t)
	if r := c.run(t, testNow, twoPods, "apply", "-f", "-"); r.code != 0 {
		t.Fatalf("apply: %+v", r)
	}
	r := c.run(t, testNow, twoPods, "delete", "-f", "-")
	if r.code != 0 || r.stdout != "pod \"a\" deleted\npod \"b\" deleted\n" {
		t.Fatalf("delete -f: %+v", r)
	}
}

func TestCreateNamespace(t *testing.T) {
	c := startCluster(t)
	r := c.run(t, testNow, "", "create", "namespace", "shop")
	if r.code != 0 || r.stdout != "namespace/shop created\n" {
		t.Fatalf("create: %+v", r)
	}
	r = c.run(t, testNow, "", "create", "namespace", "shop")
	if r.code != 1 || r.stderr != "Error from server (AlreadyExists): Namespace \"shop\" already exists\n" {
		t.Errorf("second create: %+v", r)
	}
	r = c.run(t, testNow.Add(50*time.Hour), "", "get", "ns")
	if r.stdout != "NAME   STATUS   AGE\nshop   Active   2d2h\n" {
		t.Errorf("get ns:\n%s", r.stdout)
	}
}

func TestCompletionAndVersion(t *testing.T) {
	c := startCluster(t)
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		r := c.run(t, testNow, "", "completion", shell)
		if r.code != 0 || !strings.Contains(r.stdout, "bosun") {
			t.Errorf("completion %s: code %d, %d bytes", shell, r.code, len(r.stdout))
		}
	}
	r := c.run(t, testNow, "", "version", "--client")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Client Version: ") {
		t.Errorf("version: %+v", r)
	}
}
