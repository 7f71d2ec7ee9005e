// Package volumes prepares a pod's volumes on the node: emptyDir scratch
// directories removed with the pod, hostPath mounts limited to allowed path
// prefixes, and ConfigMaps and Secrets projected as read-only files.
package volumes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "bosun.dev/gen/bosun/core/v1"
)

// DefaultHostPathPrefix is the one directory hostPath volumes may use when
// no prefixes are configured.
const DefaultHostPathPrefix = "/var/lib/bosun/hostpath"

// Objects reads the ConfigMaps and Secrets pods refer to. Errors for a
// missing object must satisfy apierrors.IsNotFound.
type Objects interface {
	ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error)
	Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
}

// Volume is a prepared volume: the host path containers bind.
type Volume struct {
	HostPath string
	// ReadOnly volumes are always mounted read-only (ConfigMaps, Secrets).
	ReadOnly bool
}

// Manager prepares volumes.
type Manager struct {
	objects  Objects
	prefixes []string
	// isNotFound says whether an Objects error means "does not exist".
	isNotFound func(error) bool
}

// New returns a Manager. prefixes are the directories hostPath volumes may
// lie under; nil means DefaultHostPathPrefix only.
func New(objects Objects, prefixes []string, isNotFound func(error) bool) *Manager {
	if prefixes == nil {
		prefixes = []string{DefaultHostPathPrefix}
	}
	clean := make([]string, 0, len(prefixes))
	for _, p := range prefixes {
		if p != "" {
			clean = append(clean, filepath.Clean(p))
		}
	}
	return &Manager{objects: objects, prefixes: clean, isNotFound: isNotFound}
}

// Error is a volume that cannot be prepared; Reason is a Kubernetes-style
// reason for the pod's status.
type Error struct {
	Volume string
	Reason string
	Err    error
}

func (e *Error) Error() string { return fmt.Sprintf("volume %q: %v", e.Volume, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// CheckHostPaths refuses hostPath volumes outside the allowed prefixes.
func (m *Manager) CheckHostPaths(spec *corev1.PodSpec) error {
	for _, v := range spec.GetVolumes() {
		hp := v.GetHostPath()
		if hp == nil {
			continue
		}
		if err := m.allowed(hp.GetPath()); err != nil {
			return &Error{Volume: v.GetName(), Reason: "HostPathForbidden", Err: err}
		}
	}
	return nil
}

func (m *Manager) allowed(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("hostPath %q is not an absolute path", path)
	}
	clean := filepath.Clean(path)
	check := func(p string) bool {
		for _, pre := range m.prefixes {
			if p == pre || strings.HasPrefix(p, pre+"/") {
				return true
			}
		}
		return false
	}
	if !check(clean) {
		return fmt.Errorf("hostPath %q is not under an allowed prefix (%s); see --allowed-host-path-prefixes", path, strings.Join(m.prefixes, ", "))
	}
	// A symbolic link must not lead out of the allowed directories.
	if real, err := filepath.EvalSymlinks(clean); err == nil && !check(real) {
		return fmt.Errorf("hostPath %q resolves to %q, outside the allowed prefixes (%s)", path, real, strings.Join(m.prefixes, ", "))
	}
	return nil
}

// Dir is where a pod's volumes live under the pod's directory.
func Dir(podDir string) string { return filepath.Join(podDir, "volumes") }

// Setup prepares every volume of pod under podDir and returns them by name.
func (m *Manager) Setup(ctx context.Context, pod *corev1.Pod, podDir string) (map[string]Volume, error) {
	if err := m.CheckHostPaths(pod.GetSpec()); err != nil {
		return nil, err
	}
	ns := pod.GetMetadata().GetNamespace()
	out := map[string]Volume{}
	for _, v := range pod.GetSpec().GetVolumes() {
		name := v.GetName()
		var vol Volume
		var err error
		switch {
		case v.GetEmptyDir() != nil:
			vol.HostPath = filepath.Join(Dir(podDir), "empty-dir", name)
			err = os.MkdirAll(vol.HostPath, 0o777)
			if err == nil {
				err = os.Chmod(vol.HostPath, 0o777) // any container user may write, as in Kubernetes
			}
		case v.GetHostPath() != nil:
			vol.HostPath, err = hostPath(v.GetHostPath())
		case v.GetConfigMap() != nil:
			vol, err = m.configMap(ctx, ns, v.GetConfigMap(), filepath.Join(Dir(podDir), "configmap", name))
		case v.GetSecret() != nil:
			vol, err = m.secret(ctx, ns, v.GetSecret(), filepath.Join(Dir(podDir), "secret", name))
		default:
			err = errors.New("no supported volume source")
		}
		if err != nil {
			var ve *Error
			if errors.As(err, &ve) {
				return nil, err
			}
			return nil, &Error{Volume: name, Reason: "FailedMount", Err: err}
		}
		out[name] = vol
	}
	return out, nil
}

func hostPath(hp *corev1.HostPathVolumeSource) (string, error) {
	p := filepath.Clean(hp.GetPath())
	st, statErr := os.Stat(p)
	switch hp.GetType() {
	case "":
		return p, nil
	case "DirectoryOrCreate":
		if statErr != nil {
			return p, os.MkdirAll(p, 0o755)
		}
		if !st.IsDir() {
			return "", fmt.Errorf("hostPath %q exists and is not a directory", p)
		}
	case "Directory":
		if statErr != nil || !st.IsDir() {
			return "", fmt.Errorf("hostPath %q is not an existing directory", p)
		}
	case "FileOrCreate":
		if statErr != nil {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return "", err
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return "", err
			}
			return p, f.Close()
		}
		if st.IsDir() {
			return "", fmt.Errorf("hostPath %q is a directory, not a file", p)
		}
	case "File":
		if statErr != nil || !st.Mode().IsRegular() {
			return "", fmt.Errorf("hostPath %q is not an existing file", p)
		}
	case "Socket":
		if statErr != nil || st.Mode()&os.ModeSocket == 0 {
			return "", fmt.Errorf("hostPath %q is not an existing socket", p)
		}
	case "CharDevice":
		if statErr != nil || st.Mode()&os.ModeCharDevice == 0 {
			return "", fmt.Errorf("hostPath %q is not an existing character device", p)
		}
	case "BlockDevice":
		if statErr != nil || st.Mode()&os.ModeDevice == 0 || st.Mode()&os.ModeCharDevice != 0 {
			return "", fmt.Errorf("hostPath %q is not an existing block device", p)
		}
	default:
		return "", fmt.Errorf("hostPath type %q is not supported", hp.GetType())
	}
	return p, nil
}

func (m *Manager) configMap(ctx context.Context, ns string, src *corev1.ConfigMapVolumeSource, dir string) (Volume, error) {
	cm, err := m.objects.ConfigMap(ctx, ns, src.GetName())
	if err != nil {
		if m.isNotFound(err) && src.GetOptional() {
			return Volume{HostPath: dir, ReadOnly: true}, os.MkdirAll(dir, 0o755)
		}
		return Volume{}, fmt.Errorf("configMap %q: %w", src.GetName(), err)
	}
	data := map[string][]byte{}
	for k, v := range cm.GetData() {
		data[k] = []byte(v)
	}
	for k, v := range cm.GetBinaryData() {
		data[k] = v
	}
	return Volume{HostPath: dir, ReadOnly: true}, project(dir, data, src.GetItems(), src.DefaultMode, "configMap "+src.GetName())
}

func (m *Manager) secret(ctx context.Context, ns string, src *corev1.SecretVolumeSource, dir string) (Volume, error) {
	s, err := m.objects.Secret(ctx, ns, src.GetSecretName())
	if err != nil {
		if m.isNotFound(err) && src.GetOptional() {
			return Volume{HostPath: dir, ReadOnly: true}, os.MkdirAll(dir, 0o700)
		}
		return Volume{}, fmt.Errorf("secret %q: %w", src.GetSecretName(), err)
	}
	return Volume{HostPath: dir, ReadOnly: true}, project(dir, s.GetData(), src.GetItems(), src.DefaultMode, "secret "+src.GetSecretName())
}

// project writes data's keys (or the chosen items) as files under dir,
// replacing what was there.
func project(dir string, data map[string][]byte, items []*corev1.KeyToPath, defaultMode *int32, what string) error {
	mode := os.FileMode(0o644)
	if defaultMode != nil {
		mode = os.FileMode(*defaultMode) & 0o777
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	type file struct {
		path string
		mode os.FileMode
		data []byte
	}
	var files []file
	if len(items) == 0 {
		for k, v := range data {
			files = append(files, file{k, mode, v})
		}
	}
	for _, it := range items {
		v, ok := data[it.GetKey()]
		if !ok {
			return fmt.Errorf("%s has no key %q", what, it.GetKey())
		}
		m := mode
		if it.Mode != nil {
			m = os.FileMode(*it.Mode) & 0o777
		}
		files = append(files, file{it.GetPath(), m, v})
	}
	for _, f := range files {
		rel := filepath.Clean(f.path)
		if filepath.IsAbs(rel) || rel == ".." || strings.HasPrefix(rel, "../") {
			return fmt.Errorf("%s: path %q leaves the volume", what, f.path)
		}
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// Teardown removes every volume of the pod from the node (emptyDirs and
// projections; hostPath contents are never touched).
func Teardown(podDir string) error {
	if err := os.RemoveAll(Dir(podDir)); err != nil {
		return fmt.Errorf("removing volumes of %s: %w", podDir, err)
	}
	return nil
}
