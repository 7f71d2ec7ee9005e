package pods

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/node-agent/internal/runtime"
	"bosun.dev/services/node-agent/internal/sandbox"
	"bosun.dev/services/node-agent/internal/volumes"
)

// ConfigError is a container that cannot be configured from its pod's spec
// (a missing ConfigMap key, a bad quantity); its status shows
// CreateContainerConfigError with the message.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

func configErr(format string, args ...any) error {
	return &ConfigError{Err: fmt.Errorf(format, args...)}
}

// containerSpec builds the runtime's description of one attempt.
func (w *worker) containerSpec(ctx context.Context, pod *corev1.Pod, c *corev1.Container, idx, attempt int, image string, sb sandbox.Record, vols map[string]volumes.Volume) (runtime.ContainerSpec, error) {
	md := pod.GetMetadata()
	path := fmt.Sprintf("spec.containers[%d]", idx)
	env, err := w.env(ctx, pod, c, path, sb)
	if err != nil {
		return runtime.ContainerSpec{}, err
	}
	spec := runtime.ContainerSpec{
		ID:           runtime.ContainerID(md.GetUid(), c.GetName(), attempt),
		PodUID:       md.GetUid(),
		PodNamespace: md.GetNamespace(),
		PodName:      md.GetName(),
		Name:         c.GetName(),
		Attempt:      attempt,
		Image:        image,
		Command:      c.GetCommand(),
		Args:         c.GetArgs(),
		Env:          env,
		WorkingDir:   c.GetWorkingDir(),
		NetNSPath:    sb.Network.NetNSPath,
		Hostname:     sb.Hostname,
		LogPath:      w.m.LogPath(pod, c.GetName(), attempt),
	}
	if dir := w.m.sandboxes.PodDir(md.GetUid()); !sb.HostNetwork && dir != "" {
		spec.Mounts = append(spec.Mounts,
			runtime.Mount{HostPath: filepath.Join(dir, "hosts"), ContainerPath: "/etc/hosts", ReadOnly: true},
			runtime.Mount{HostPath: filepath.Join(dir, "resolv.conf"), ContainerPath: "/etc/resolv.conf", ReadOnly: true})
	}
	for j, vm := range c.GetVolumeMounts() {
		v, ok := vols[vm.GetName()]
		if !ok {
			return runtime.ContainerSpec{}, configErr("%s.volumeMounts[%d].name: no volume %q in the pod", path, j, vm.GetName())
		}
		host := v.HostPath
		if sp := vm.GetSubPath(); sp != "" {
			clean := filepath.Clean(sp)
			if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
				return runtime.ContainerSpec{}, configErr("%s.volumeMounts[%d].subPath: %q leaves the volume", path, j, sp)
			}
			host = filepath.Join(host, clean)
		}
		spec.Mounts = append(spec.Mounts, runtime.Mount{HostPath: host, ContainerPath: vm.GetMountPath(), ReadOnly: vm.GetReadOnly() || v.ReadOnly})
	}
	limits := c.GetResources().GetLimits()
	if s := limits["memory"]; s != "" {
		q, err := resource.ParseQuantity(s)
		if err != nil {
			return runtime.ContainerSpec{}, configErr("%s.resources.limits.memory: %v", path, err)
		}
		spec.MemoryLimitBytes = q.Value()
	}
	if s := limits["cpu"]; s != "" {
		q, err := resource.ParseQuantity(s)
		if err != nil {
			return runtime.ContainerSpec{}, configErr("%s.resources.limits.cpu: %v", path, err)
		}
		spec.CPUMillis = q.MilliValue()
	}
	psc, sc := pod.GetSpec().GetSecurityContext(), c.GetSecurityContext()
	if psc != nil {
		spec.RunAsUser, spec.RunAsGroup = psc.RunAsUser, psc.RunAsGroup
	}
	if sc != nil && sc.RunAsUser != nil {
		spec.RunAsUser = sc.RunAsUser
	}
	if sc != nil && sc.RunAsGroup != nil {
		spec.RunAsGroup = sc.RunAsGroup
	}
	if (sc.GetRunAsNonRoot() || psc.GetRunAsNonRoot()) && (spec.RunAsUser == nil || *spec.RunAsUser == 0) {
		return runtime.ContainerSpec{}, configErr("%s.securityContext.runAsNonRoot: set, but the container would run as root; set runAsUser to a non-zero uid", path)
	}
	spec.ReadOnlyRootFS = sc.GetReadOnlyRootFilesystem()
	spec.Privileged = sc.GetPrivileged()
	return spec, nil
}

// env resolves a container's environment: envFrom first, then env, later
// entries replacing earlier ones of the same name.
func (w *worker) env(ctx context.Context, pod *corev1.Pod, c *corev1.Container, path string, sb sandbox.Record) ([]string, error) {
	ns := pod.GetMetadata().GetNamespace()
	vars := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	for i, ef := range c.GetEnvFrom() {
		switch {
		case ef.GetConfigMapRef() != nil:
			ref := ef.GetConfigMapRef()
			cm, err := w.m.opts.Objects.ConfigMap(ctx, ns, ref.GetName())
			if err != nil {
				if w.m.opts.IsNotFound(err) && ref.GetOptional() {
					continue
				}
				return nil, configErr("%s.envFrom[%d].configMapRef: configmap %q: %v", path, i, ref.GetName(), err)
			}
			for _, k := range sortedKeys(cm.GetData()) {
				set(ef.GetPrefix()+k, cm.GetData()[k])
			}
		case ef.GetSecretRef() != nil:
			ref := ef.GetSecretRef()
			s, err := w.m.opts.Objects.Secret(ctx, ns, ref.GetName())
			if err != nil {
				if w.m.opts.IsNotFound(err) && ref.GetOptional() {
					continue
				}
				return nil, configErr("%s.envFrom[%d].secretRef: secret %q: %v", path, i, ref.GetName(), err)
			}
			for _, k := range sortedKeys(s.GetData()) {
				set(ef.GetPrefix()+k, string(s.GetData()[k]))
			}
		}
	}
	for i, e := range c.GetEnv() {
		vf := e.GetValueFrom()
		switch {
		case vf == nil:
			set(e.GetName(), expand(e.GetValue(), vars))
		case vf.GetConfigMapKeyRef() != nil:
			ref := vf.GetConfigMapKeyRef()
			cm, err := w.m.opts.Objects.ConfigMap(ctx, ns, ref.GetName())
			if err != nil {
				if w.m.opts.IsNotFound(err) && ref.GetOptional() {
					continue
				}
				return nil, configErr("%s.env[%d].valueFrom.configMapKeyRef: configmap %q: %v", path, i, ref.GetName(), err)
			}
			v, ok := cm.GetData()[ref.GetKey()]
			if !ok {
				if ref.GetOptional() {
					continue
				}
				return nil, configErr("%s.env[%d].valueFrom.configMapKeyRef: configmap %q has no key %q", path, i, ref.GetName(), ref.GetKey())
			}
			set(e.GetName(), v)
		case vf.GetSecretKeyRef() != nil:
			ref := vf.GetSecretKeyRef()
			s, err := w.m.opts.Objects.Secret(ctx, ns, ref.GetName())
			if err != nil {
				if w.m.opts.IsNotFound(err) && ref.GetOptional() {
					continue
				}
				return nil, configErr("%s.env[%d].valueFrom.secretKeyRef: secret %q: %v", path, i, ref.GetName(), err)
			}
			v, ok := s.GetData()[ref.GetKey()]
			if !ok {
				if ref.GetOptional() {
					continue
				}
				return nil, configErr("%s.env[%d].valueFrom.secretKeyRef: secret %q has no key %q", path, i, ref.GetName(), ref.GetKey())
			}
			set(e.GetName(), string(v))
		case vf.GetFieldRef() != nil:
			v, err := fieldValue(pod, vf.GetFieldRef().GetFieldPath(), sb, w.m.opts.HostIP)
			if err != nil {
				return nil, configErr("%s.env[%d].valueFrom.fieldRef.fieldPath: %v", path, i, err)
			}
			set(e.GetName(), v)
		case vf.GetResourceFieldRef() != nil:
			ref := vf.GetResourceFieldRef()
			v := c.GetResources().GetLimits()[ref.GetResource()]
			set(e.GetName(), v)
		}
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+vars[k])
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// expand replaces $(VAR) with earlier variables' values; $$ escapes.
func expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '$' && i+1 < len(s) {
			if s[i+1] == '$' {
				b.WriteByte('$')
				i++
				continue
			}
			if s[i+1] == '(' {
				if end := strings.IndexByte(s[i+2:], ')'); end >= 0 {
					name := s[i+2 : i+2+end]
					if v, ok := vars[name]; ok {
						b.WriteString(v)
						i += 2 + end
						continue
					}
				}
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func fieldValue(pod *corev1.Pod, path string, sb sandbox.Record, hostIP string) (string, error) {
	md := pod.GetMetadata()
	switch path {
	case "metadata.name":
		return md.GetName(), nil
	case "metadata.namespace":
		return md.GetNamespace(), nil
	case "metadata.uid":
		return md.GetUid(), nil
	case "spec.nodeName":
		return pod.GetSpec().GetNodeName(), nil
	case "spec.serviceAccountName":
		return pod.GetSpec().GetServiceAccountName(), nil
	case "status.podIP":
		return sb.Network.IP, nil
	case "status.hostIP":
		return hostIP, nil
	}
	for _, p := range []struct {
		prefix string
		m      map[string]string
	}{{"metadata.labels", md.GetLabels()}, {"metadata.annotations", md.GetAnnotations()}} {
		if rest, ok := strings.CutPrefix(path, p.prefix+"['"); ok && strings.HasSuffix(rest, "']") {
			return p.m[strings.TrimSuffix(rest, "']")], nil
		}
	}
	return "", fmt.Errorf("unsupported field path %q", path)
}
