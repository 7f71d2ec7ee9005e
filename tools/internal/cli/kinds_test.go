package cli

import (
	"strings"
	"testing"
)

func TestResolveKinds(t *testing.T) {
	tests := []struct {
		arg     string
		want    string // kinds, comma-separated
		wantErr string
	}{
		{"po", "Pod", ""},
		{"pods", "Pod", ""},
		{"Pod", "Pod", ""},
		{"deploy", "Deployment", ""},
		{"deployments.apps", "Deployment", ""},
		{"svc", "Service", ""},
		{"no", "Node", ""},
		{"ns", "Namespace", ""},
		{"rs", "ReplicaSet", ""},
		{"ds", "DaemonSet", ""},
		{"sts", "StatefulSet", ""},
		{"cm", "ConfigMap", ""},
		{"ev", "Event", ""},
		{"ep", "Endpoints", ""},
		{"jobs", "Job", ""},
		{"lease", "Lease", ""},
		{"secrets", "Secret", ""},
		{"po,svc,po", "Pod,Service", ""},
		{"all", "Pod,Service,DaemonSet,Deployment,ReplicaSet,StatefulSet,Job", ""},
		{"pvc", "", `the server doesn't have a resource type "pvc"`},
	}
	for _, tt := range tests {
		kinds, err := resolveKinds(tt.arg)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("resolveKinds(%q) err = %v, want %q", tt.arg, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("resolveKinds(%q): %v", tt.arg, err)
			continue
		}
		var names []string
		for _, k := range kinds {
			names = append(names, k.Kind)
		}
		if got := strings.Join(names, ","); got != tt.want {
			t.Errorf("resolveKinds(%q) = %s, want %s", tt.arg, got, tt.want)
		}
	}
}

func TestParseResourceArgs(t *testing.T) {
	ra, err := parseResourceArgs([]string{"deploy/web", "svc/web", "deploy/api"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ra.kinds) != 2 || len(ra.refs) != 3 || ra.refs[2].name != "api" || ra.refs[1].kind.Kind != "Service" {
		t.Errorf("got %+v", ra)
	}
	if _, err := parseResourceArgs([]string{"po,svc", "web"}); err == nil {
		t.Error("names with several types were accepted")
	}
	if _, err := parseResourceArgs(nil); err == nil {
		t.Error("no arguments were accepted")
	}
	for _, tt := range []struct{ kind, want string }{{"po", "pod"}, {"deploy", "deployment.apps"}, {"lease", "lease.coordination.k8s.io"}, {"jobs", "job.batch"}} {
		ks, _ := resolveKinds(tt.kind)
		if got := qualifiedKind(ks[0]); got != tt.want {
			t.Errorf("qualifiedKind(%s) = %s, want %s", tt.kind, got, tt.want)
		}
	}
}
