package volumes_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/services/node-agent/internal/agenttest"
	"bosun.dev/services/node-agent/internal/volumes"
)

func hostPathPod(path string) *corev1.Pod {
	p := agenttest.Pod("u", "p", "n", &corev1.Container{Name: "c", Image: "i"})
	p.Spec.Volumes = []*corev1.Volume{{Name: "hp", Source: &corev1.Volume_HostPath{HostPath: &corev1.HostPathVolumeSource{Path: path}}}}
	return p
}

func TestHostPathPrefixes(t *testing.T) {
	dir := t.TempDir()
	allowed := filepath.Join(dir, "allowed")
	if err := os.MkdirAll(allowed, 0o755); err != nil {
		t.Fatal(err)
	}
	// A link inside the allowed directory that leads out of it.
	if err := os.Symlink("/etc", filepath.Join(allowed, "escape")); err != nil {
		t.Fatal(err)
	}
	m := volumes.New(agenttest.NewAPI(), []string{allowed}, agenttest.IsNotFound)
	for _, tc := range []struct {
		path, wantErr string
	}{
		{allowed + "/data", ""},
		{allowed, ""},
		{"/etc", `volume "hp": hostPath "/etc" is not under an allowed prefix (` + allowed + `)`},
		{allowed + "x", "is not under an allowed prefix"},
		{allowed + "/../secret", "is not under an allowed prefix"},
		{allowed + "/escape", `resolves to "/etc", outside the allowed prefixes`},
		{"relative/path", "is not an absolute path"},
	} {
		err := m.CheckHostPaths(hostPathPod(tc.path).GetSpec())
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.path, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: err %v, want %q", tc.path, err, tc.wantErr)
		}
		var ve *volumes.Error
		if err != nil && (!errors.As(err, &ve) || ve.Reason != "HostPathForbidden") {
			t.Errorf("%s: %v is not a HostPathForbidden volume error", tc.path, err)
		}
	}
	if err := volumes.New(agenttest.NewAPI(), nil, agenttest.IsNotFound).CheckHostPaths(hostPathPod("/var/lib/bosun/hostpath/x").GetSpec()); err != nil {
		t.Errorf("the default prefix refused its own directory: %v", err)
	}
}

func TestProjectionsAndEmptyDir(t *testing.T) {
	api := agenttest.NewAPI()
	api.PutConfigMap(&corev1.ConfigMap{Metadata: &metav1.ObjectMeta{Name: "cfg", Namespace: "default"}, Data: map[string]string{"a.conf": "A", "b.conf": "B"}})
	api.PutSecret(&corev1.Secret{Metadata: &metav1.ObjectMeta{Name: "s", Namespace: "default"}, Data: map[string][]byte{"key": []byte("K")}})
	mode := int32(0o400)
	p := agenttest.Pod("u", "p", "n", &corev1.Container{Name: "c", Image: "i"})
	p.Spec.Volumes = []*corev1.Volume{
		{Name: "cfg", Source: &corev1.Volume_ConfigMap{ConfigMap: &corev1.ConfigMapVolumeSource{Name: "cfg", Items: []*corev1.KeyToPath{{Key: "a.conf", Path: "sub/a"}}}}},
		{Name: "sec", Source: &corev1.Volume_Secret{Secret: &corev1.SecretVolumeSource{SecretName: "s", DefaultMode: &mode}}},
		{Name: "tmp", Source: &corev1.Volume_EmptyDir{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "opt", Source: &corev1.Volume_ConfigMap{ConfigMap: &corev1.ConfigMapVolumeSource{Name: "missing", Optional: ptr(true)}}},
	}
	podDir := t.TempDir()
	vols, err := volumes.New(api, nil, agenttest.IsNotFound).Setup(context.Background(), p, podDir)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(vols["cfg"].HostPath, "sub/a")); string(b) != "A" || !vols["cfg"].ReadOnly {
		t.Errorf("configMap item: %q %+v", b, vols["cfg"])
	}
	if _, err := os.Stat(filepath.Join(vols["cfg"].HostPath, "b.conf")); err == nil {
		t.Error("a key not listed in items was projected")
	}
	st, err := os.Stat(filepath.Join(vols["sec"].HostPath, "key"))
	if err != nil || st.Mode().Perm() != 0o400 {
		t.Errorf("secret file mode: %v %v", st, err)
	}
	if st, err := os.Stat(vols["tmp"].HostPath); err != nil || !st.IsDir() || vols["tmp"].ReadOnly {
		t.Errorf("emptyDir: %v %+v", err, vols["tmp"])
	}
	if err := volumes.Teardown(podDir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(vols["tmp"].HostPath); !os.IsNotExist(err) {
		t.Errorf("emptyDir survived teardown: %v", err)
	}

	// A missing key or object is an error naming it.
	p.Spec.Volumes = []*corev1.Volume{{Name: "cfg", Source: &corev1.Volume_ConfigMap{ConfigMap: &corev1.ConfigMapVolumeSource{Name: "cfg", Items: []*corev1.KeyToPath{{Key: "nope", Path: "x"}}}}}}
	if _, err := volumes.New(api, nil, agenttest.IsNotFound).Setup(context.Background(), p, podDir); err == nil || !strings.Contains(err.Error(), `volume "cfg": configMap cfg has no key "nope"`) {
		t.Errorf("missing key: %v", err)
	}
	p.Spec.Volumes = []*corev1.Volume{{Name: "sec", Source: &corev1.Volume_Secret{Secret: &corev1.SecretVolumeSource{SecretName: "absent"}}}}
	if _, err := volumes.New(api, nil, agenttest.IsNotFound).Setup(context.Background(), p, podDir); err == nil || !strings.Contains(err.Error(), `volume "sec": secret "absent"`) {
		t.Errorf("missing secret: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }
