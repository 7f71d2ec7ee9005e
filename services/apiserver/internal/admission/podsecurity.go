package admission

import (
	"context"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/util/validation/field"

	corev1 "bosun.dev/gen/bosun/core/v1"
)

// PodSecurityName is the PodSecurity plugin's name.
const PodSecurityName = "PodSecurity"

// EnforceLabel is the namespace label that sets the namespace's pod security
// level, as in Kubernetes' Pod Security Admission.
const EnforceLabel = "pod-security.kubernetes.io/enforce"

// Pod security levels.
const (
	LevelPrivileged = "privileged"
	LevelBaseline   = "baseline"
	LevelRestricted = "restricted"
)

// baselineCapabilities are the capabilities baseline lets containers add.
var baselineCapabilities = []string{
	"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
	"NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}

// PodSecurity refuses pods that break their namespace's pod security level:
//
//   - privileged (or no label): anything goes;
//   - baseline: no privileged containers, no host network, PID or IPC
//     namespace, no hostPath volumes, no host ports, no added capabilities
//     beyond the default set;
//   - restricted: baseline, and every container runs as non-root
//     (runAsNonRoot true, runAsUser not 0, on the pod or the container), with
//     allowPrivilegeEscalation false, adding no capability but
//     NET_BIND_SERVICE.
//
// A refusal names the level and every field that breaks it.
type PodSecurity struct{}

var _ Validator = PodSecurity{}

// Name implements Plugin.
func (PodSecurity) Name() string { return PodSecurityName }

// Validate implements Validator.
func (PodSecurity) Validate(_ context.Context, r *Request) error {
	pod, ok := r.Object.(*corev1.Pod)
	if !ok || r.Namespace == nil {
		return nil
	}
	level := r.Namespace.GetMetadata().GetLabels()[EnforceLabel]
	var errs field.ErrorList
	switch level {
	case "", LevelPrivileged:
		return nil
	case LevelBaseline:
		errs = CheckBaseline(pod.GetSpec(), field.NewPath("spec"))
	case LevelRestricted:
		errs = CheckRestricted(pod.GetSpec(), field.NewPath("spec"))
	default:
		// An unknown level enforces the strictest one rather than none.
		errs = CheckRestricted(pod.GetSpec(), field.NewPath("spec"))
		level = fmt.Sprintf("%s (unknown level %q)", LevelRestricted, level)
	}
	if len(errs) == 0 {
		return nil
	}
	m := pod.GetMetadata()
	return Forbidden("Pod", m.GetNamespace(), m.GetName(), fmt.Sprintf("PodSecurity %q", level), errs)
}

type containerAt struct {
	c    *corev1.Container
	path *field.Path
}

func containers(spec *corev1.PodSpec, p *field.Path) []containerAt {
	var out []containerAt
	for i, c := range spec.GetInitContainers() {
		out = append(out, containerAt{c, p.Child("initContainers").Index(i)})
	}
	for i, c := range spec.GetContainers() {
		out = append(out, containerAt{c, p.Child("containers").Index(i)})
	}
	return out
}

// CheckBaseline returns what in spec breaks the baseline level.
func CheckBaseline(spec *corev1.PodSpec, p *field.Path) field.ErrorList {
	return checkBaseline(spec, p, baselineCapabilities)
}

func checkBaseline(spec *corev1.PodSpec, p *field.Path, allowedCaps []string) field.ErrorList {
	var errs field.ErrorList
	if spec.GetHostNetwork() {
		errs = append(errs, field.Forbidden(p.Child("hostNetwork"), "host networking is not allowed"))
	}
	if spec.GetHostPid() {
		errs = append(errs, field.Forbidden(p.Child("hostPID"), "sharing the host's PID namespace is not allowed"))
	}
	if spec.GetHostIpc() {
		errs = append(errs, field.Forbidden(p.Child("hostIPC"), "sharing the host's IPC namespace is not allowed"))
	}
	for i, v := range spec.GetVolumes() {
		if v.GetHostPath() != nil {
			errs = append(errs, field.Forbidden(p.Child("volumes").Index(i).Child("hostPath"), "hostPath volumes are not allowed"))
		}
	}
	for _, c := range containers(spec, p) {
		sc := c.path.Child("securityContext")
		if c.c.GetSecurityContext().GetPrivileged() {
			errs = append(errs, field.Forbidden(sc.Child("privileged"), "privileged containers are not allowed"))
		}
		for i, capName := range c.c.GetSecurityContext().GetCapabilities().GetAdd() {
			if !slices.Contains(allowedCaps, capName) {
				errs = append(errs, field.Forbidden(sc.Child("capabilities", "add").Index(i), fmt.Sprintf("capability %s may not be added", capName)))
			}
		}
		for i, port := range c.c.GetPorts() {
			if port.GetHostPort() != 0 {
				errs = append(errs, field.Forbidden(c.path.Child("ports").Index(i).Child("hostPort"), "host ports are not allowed"))
			}
		}
	}
	return errs
}

// CheckRestricted returns what in spec breaks the restricted level.
func CheckRestricted(spec *corev1.PodSpec, p *field.Path) field.ErrorList {
	errs := checkBaseline(spec, p, []string{"NET_BIND_SERVICE"})
	podSC := spec.GetSecurityContext()
	if podSC != nil && podSC.RunAsUser != nil && podSC.GetRunAsUser() == 0 {
		errs = append(errs, field.Forbidden(p.Child("securityContext", "runAsUser"), "containers must not run as root (uid 0)"))
	}
	for _, c := range containers(spec, p) {
		sc := c.c.GetSecurityContext()
		scPath := c.path.Child("securityContext")
		nonRoot := podSC.GetRunAsNonRoot()
		if sc != nil && sc.RunAsNonRoot != nil {
			nonRoot = sc.GetRunAsNonRoot()
		}
		if !nonRoot {
			errs = append(errs, field.Required(scPath.Child("runAsNonRoot"), "must be true (on the container or the pod) in a restricted namespace"))
		}
		if sc != nil && sc.RunAsUser != nil && sc.GetRunAsUser() == 0 {
			errs = append(errs, field.Forbidden(scPath.Child("runAsUser"), "containers must not run as root (uid 0)"))
		}
		if sc == nil || sc.AllowPrivilegeEscalation == nil || sc.GetAllowPrivilegeEscalation() {
			errs = append(errs, field.Required(scPath.Child("allowPrivilegeEscalation"), "must be false in a restricted namespace"))
		}
	}
	return errs
}
