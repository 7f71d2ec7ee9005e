package validation

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
)

// validateContainer checks one container. volumes holds the pod's volume
// names; names the container names seen so far, which init and regular
// containers share. Probes are for regular containers only.
func validateContainer(c *corev1.Container, volumes, names map[string]bool, regular bool, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c == nil {
		return append(errs, field.Required(fldPath, ""))
	}
	switch {
	case c.Name == "":
		errs = append(errs, field.Required(fldPath.Child("name"), ""))
	case names[c.Name]:
		errs = append(errs, field.Duplicate(fldPath.Child("name"), c.Name))
	default:
		errs = append(errs, validateDNSLabel(c.Name, fldPath.Child("name"))...)
	}
	names[c.Name] = true
	if strings.TrimSpace(c.Image) == "" {
		errs = append(errs, field.Required(fldPath.Child("image"), ""))
	} else if c.Image != strings.TrimSpace(c.Image) {
		errs = append(errs, field.Invalid(fldPath.Child("image"), c.Image, "must not have leading or trailing whitespace"))
	}
	if c.WorkingDir != "" && !path.IsAbs(c.WorkingDir) {
		errs = append(errs, field.Invalid(fldPath.Child("workingDir"), c.WorkingDir, "must be an absolute path"))
	}
	errs = append(errs, validateContainerPorts(c.Ports, fldPath.Child("ports"))...)
	errs = append(errs, validateEnv(c.Env, fldPath.Child("env"))...)
	errs = append(errs, validateEnvFrom(c.EnvFrom, fldPath.Child("envFrom"))...)
	errs = append(errs, validateResources(c.Resources, fldPath.Child("resources"))...)
	errs = append(errs, validateVolumeMounts(c.VolumeMounts, volumes, fldPath.Child("volumeMounts"))...)
	for _, pr := range []struct {
		probe *corev1.Probe
		name  string
	}{{c.LivenessProbe, "livenessProbe"}, {c.ReadinessProbe, "readinessProbe"}, {c.StartupProbe, "startupProbe"}} {
		if pr.probe == nil {
			continue
		}
		if !regular {
			errs = append(errs, field.Forbidden(fldPath.Child(pr.name), "may not be set for init containers"))
			continue
		}
		errs = append(errs, validateProbe(pr.probe, pr.name != "readinessProbe", fldPath.Child(pr.name))...)
	}
	if lc := c.Lifecycle; lc != nil {
		if lc.PostStart != nil {
			errs = append(errs, validateHandler(lc.PostStart.Exec, lc.PostStart.HttpGet, lc.PostStart.TcpSocket, nil, fldPath.Child("lifecycle", "postStart"))...)
		}
		if lc.PreStop != nil {
			errs = append(errs, validateHandler(lc.PreStop.Exec, lc.PreStop.HttpGet, lc.PreStop.TcpSocket, nil, fldPath.Child("lifecycle", "preStop"))...)
		}
	}
	errs = append(errs, validateEnum(c.ImagePullPolicy, fldPath.Child("imagePullPolicy"), true, "Always", "IfNotPresent", "Never")...)
	errs = append(errs, validateEnum(c.TerminationMessagePolicy, fldPath.Child("terminationMessagePolicy"), true, "File", "FallbackToLogsOnError")...)
	if sc := c.SecurityContext; sc != nil {
		p := fldPath.Child("securityContext")
		errs = append(errs, validateNonNegativePtr(sc.RunAsUser, p.Child("runAsUser"))...)
		errs = append(errs, validateNonNegativePtr(sc.RunAsGroup, p.Child("runAsGroup"))...)
		if sc.Privileged != nil && *sc.Privileged && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
			errs = append(errs, field.Invalid(p.Child("allowPrivilegeEscalation"), false, "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"))
		}
	}
	return errs
}

func validateProtocol(v string, fldPath *field.Path) field.ErrorList {
	return validateEnum(v, fldPath, true, "TCP", "UDP", "SCTP")
}

func validateContainerPorts(ports []*corev1.ContainerPort, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := map[string]bool{}
	for i, p := range ports {
		pp := fldPath.Index(i)
		if p == nil {
			errs = append(errs, field.Required(pp, ""))
			continue
		}
		if p.Name != "" {
			for _, msg := range validation.IsValidPortName(p.Name) {
				errs = append(errs, field.Invalid(pp.Child("name"), p.Name, msg))
			}
			if names[p.Name] {
				errs = append(errs, field.Duplicate(pp.Child("name"), p.Name))
			}
			names[p.Name] = true
		}
		if p.ContainerPort == 0 {
			errs = append(errs, field.Required(pp.Child("containerPort"), ""))
		} else {
			for _, msg := range validation.IsValidPortNum(int(p.ContainerPort)) {
				errs = append(errs, field.Invalid(pp.Child("containerPort"), p.ContainerPort, msg))
			}
		}
		if p.HostPort != 0 {
			for _, msg := range validation.IsValidPortNum(int(p.HostPort)) {
				errs = append(errs, field.Invalid(pp.Child("hostPort"), p.HostPort, msg))
			}
		}
		if p.HostIp != "" {
			errs = append(errs, validateIP(p.HostIp, pp.Child("hostIP"))...)
		}
		errs = append(errs, validateProtocol(p.Protocol, pp.Child("protocol"))...)
	}
	return errs
}

func validateEnvVarName(v string, fldPath *field.Path) field.ErrorList {
	if v == "" {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	var errs field.ErrorList
	for _, msg := range validation.IsEnvVarName(v) {
		errs = append(errs, field.Invalid(fldPath, v, msg))
	}
	return errs
}

// fieldRefPaths are the pod fields an environment variable may take its
// value from, besides single labels and annotations.
func fieldRefPaths() []string {
	return []string{
		"metadata.name", "metadata.namespace", "metadata.uid", "metadata.labels", "metadata.annotations",
		"spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.podIP", "status.podIPs",
	}
}

// resourceFieldRefs are the container resources an environment variable may
// take its value from.
func resourceFieldRefs() []string {
	return []string{
		"limits.cpu", "limits.memory", "limits.ephemeral-storage",
		"requests.cpu", "requests.memory", "requests.ephemeral-storage",
	}
}

func validateEnv(env []*corev1.EnvVar, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, e := range env {
		p := fldPath.Index(i)
		if e == nil {
			errs = append(errs, field.Required(p, ""))
			continue
		}
		errs = append(errs, validateEnvVarName(e.Name, p.Child("name"))...)
		if e.ValueFrom == nil {
			continue
		}
		vp := p.Child("valueFrom")
		vf := e.ValueFrom
		n := 0
		if vf.FieldRef != nil {
			n++
			fp := vp.Child("fieldRef")
			if vf.FieldRef.FieldPath == "" {
				errs = append(errs, field.Required(fp.Child("fieldPath"), ""))
			} else if !isDownwardLabelOrAnnotation(vf.FieldRef.FieldPath) && !slices.Contains(fieldRefPaths(), vf.FieldRef.FieldPath) {
				errs = append(errs, field.NotSupported(fp.Child("fieldPath"), vf.FieldRef.FieldPath, fieldRefPaths()))
			}
			errs = append(errs, validateEnum(vf.FieldRef.ApiVersion, fp.Child("apiVersion"), true, "v1")...)
		}
		if vf.ResourceFieldRef != nil {
			n++
			rp := vp.Child("resourceFieldRef")
			errs = append(errs, validateEnum(vf.ResourceFieldRef.Resource, rp.Child("resource"), false, resourceFieldRefs()...)...)
			if vf.ResourceFieldRef.ContainerName != "" {
				errs = append(errs, validateDNSLabel(vf.ResourceFieldRef.ContainerName, rp.Child("containerName"))...)
			}
			if vf.ResourceFieldRef.Divisor != "" {
				errs = append(errs, validateQuantity(vf.ResourceFieldRef.Divisor, rp.Child("divisor"))...)
			}
		}
		if r := vf.ConfigMapKeyRef; r != nil {
			n++
			errs = append(errs, validateRequiredName(r.Name, vp.Child("configMapKeyRef", "name"))...)
			errs = append(errs, validateConfigMapKey(r.Key, vp.Child("configMapKeyRef", "key"))...)
		}
		if r := vf.SecretKeyRef; r != nil {
			n++
			errs = append(errs, validateRequiredName(r.Name, vp.Child("secretKeyRef", "name"))...)
			errs = append(errs, validateConfigMapKey(r.Key, vp.Child("secretKeyRef", "key"))...)
		}
		switch {
		case n == 0:
			errs = append(errs, field.Invalid(vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
		case n > 1:
			errs = append(errs, field.Invalid(vp, "", "may not have more than one field specified at a time"))
		case e.Value != "":
			errs = append(errs, field.Invalid(vp, "", "may not be specified when `value` is not empty"))
		}
	}
	return errs
}

// isDownwardLabelOrAnnotation matches metadata.labels['key'] and
// metadata.annotations['key'] with a valid key.
func isDownwardLabelOrAnnotation(fp string) bool {
	for _, prefix := range []string{"metadata.labels['", "metadata.annotations['"} {
		if rest, ok := strings.CutPrefix(fp, prefix); ok {
			key, ok := strings.CutSuffix(rest, "']")
			return ok && len(content.IsLabelKey(key)) == 0
		}
	}
	return false
}

func validateEnvFrom(envFrom []*corev1.EnvFromSource, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, ef := range envFrom {
		p := fldPath.Index(i)
		if ef == nil {
			errs = append(errs, field.Required(p, ""))
			continue
		}
		if ef.Prefix != "" {
			errs = append(errs, validateEnvVarName(ef.Prefix, p.Child("prefix"))...)
		}
		n := 0
		if ef.ConfigMapRef != nil {
			n++
			errs = append(errs, validateRequiredName(ef.ConfigMapRef.Name, p.Child("configMapRef", "name"))...)
		}
		if ef.SecretRef != nil {
			n++
			errs = append(errs, validateRequiredName(ef.SecretRef.Name, p.Child("secretRef", "name"))...)
		}
		switch n {
		case 0:
			errs = append(errs, field.Invalid(p, "", "must specify one of: `configMapRef` or `secretRef`"))
		case 2:
			errs = append(errs, field.Invalid(p, "", "may not have more than one field specified at a time"))
		}
	}
	return errs
}

// standardResources are the resource names Bosun knows without a domain.
func standardResources() []string { return []string{"cpu", "memory", "ephemeral-storage", "pods"} }

// validateResourceName accepts the standard resources, hugepages-<size> and
// extended resources, which are qualified names with a domain outside
// kubernetes.io (such as example.com/gpu).
func validateResourceName(name string, fldPath *field.Path) field.ErrorList {
	if slices.Contains(standardResources(), name) {
		return nil
	}
	if size, ok := strings.CutPrefix(name, "hugepages-"); ok {
		if q, err := resource.ParseQuantity(size); err != nil || q.Sign() <= 0 {
			return field.ErrorList{field.Invalid(fldPath, name, "must be hugepages-<size> with a positive quantity as the size, e.g. hugepages-2Mi")}
		}
		return nil
	}
	if msgs := content.IsLabelKey(name); len(msgs) > 0 {
		return field.ErrorList{field.Invalid(fldPath, name, "must be a standard resource name or a qualified extended resource name: "+strings.Join(msgs, "; "))}
	}
	domain, _, ok := strings.Cut(name, "/")
	if !ok || domain == "kubernetes.io" || strings.HasSuffix(domain, ".kubernetes.io") {
		return field.ErrorList{field.Invalid(fldPath, name, fmt.Sprintf("must be one of %q, hugepages-<size>, or an extended resource name with a domain prefix outside kubernetes.io (e.g. example.com/gpu)", standardResources()))}
	}
	return nil
}

// validateResourceList checks the names and quantities of a resource map and
// returns the quantities that parsed.
func validateResourceList(list map[string]string, fldPath *field.Path) (map[string]resource.Quantity, field.ErrorList) {
	var errs field.ErrorList
	parsed := map[string]resource.Quantity{}
	for _, name := range sortedKeys(list) {
		p := fldPath.Key(name)
		errs = append(errs, validateResourceName(name, p)...)
		qErrs := validateQuantity(list[name], p)
		errs = append(errs, qErrs...)
		if len(qErrs) == 0 {
			parsed[name] = resource.MustParse(list[name])
		}
	}
	return parsed, errs
}

func validateResources(r *corev1.ResourceRequirements, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if r == nil {
		return errs
	}
	limits, lErrs := validateResourceList(r.Limits, fldPath.Child("limits"))
	requests, rErrs := validateResourceList(r.Requests, fldPath.Child("requests"))
	errs = append(errs, lErrs...)
	errs = append(errs, rErrs...)
	for _, name := range sortedKeys(requests) {
		req := requests[name]
		if lim, ok := limits[name]; ok && req.Cmp(lim) > 0 {
			errs = append(errs, field.Invalid(fldPath.Child("requests").Key(name), r.Requests[name],
				fmt.Sprintf("must be less than or equal to %s limit of %s", name, r.Limits[name])))
		}
	}
	return errs
}

func validateVolumeMounts(mounts []*corev1.VolumeMount, volumes map[string]bool, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	paths := map[string]bool{}
	for i, m := range mounts {
		p := fldPath.Index(i)
		if m == nil {
			errs = append(errs, field.Required(p, ""))
			continue
		}
		if m.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		} else if !volumes[m.Name] {
			errs = append(errs, field.NotFound(p.Child("name"), m.Name))
		}
		switch {
		case m.MountPath == "":
			errs = append(errs, field.Required(p.Child("mountPath"), ""))
		case !path.IsAbs(m.MountPath):
			errs = append(errs, field.Invalid(p.Child("mountPath"), m.MountPath, "must be an absolute path"))
		case paths[path.Clean(m.MountPath)]:
			errs = append(errs, field.Duplicate(p.Child("mountPath"), m.MountPath))
		}
		paths[path.Clean(m.MountPath)] = true
		if m.SubPath != "" {
			errs = append(errs, validateRelativePath(m.SubPath, p.Child("subPath"))...)
		}
	}
	return errs
}

// validateProbe checks a probe; restartable is true for liveness and startup
// probes, whose success threshold must be 1 and which may override the pod's
// termination grace period.
func validateProbe(pr *corev1.Probe, restartable bool, fldPath *field.Path) field.ErrorList {
	errs := validateHandler(pr.Exec, pr.HttpGet, pr.TcpSocket, pr.Grpc, fldPath)
	errs = append(errs, validateNonNegative(pr.InitialDelaySeconds, fldPath.Child("initialDelaySeconds"))...)
	errs = append(errs, validateNonNegative(pr.TimeoutSeconds, fldPath.Child("timeoutSeconds"))...)
	errs = append(errs, validateNonNegative(pr.PeriodSeconds, fldPath.Child("periodSeconds"))...)
	for _, t := range []struct {
		v    int32
		name string
	}{{pr.SuccessThreshold, "successThreshold"}, {pr.FailureThreshold, "failureThreshold"}} {
		// Zero means "default" (1 and 3) before defaulting has run.
		if t.v < 0 {
			errs = append(errs, field.Invalid(fldPath.Child(t.name), t.v, "must be greater than or equal to 1"))
		}
	}
	if restartable && pr.SuccessThreshold > 1 {
		errs = append(errs, field.Invalid(fldPath.Child("successThreshold"), pr.SuccessThreshold, "must be 1"))
	}
	if pr.TerminationGracePeriodSeconds != nil {
		p := fldPath.Child("terminationGracePeriodSeconds")
		if !restartable {
			errs = append(errs, field.Forbidden(p, "may not be set for readiness probes"))
		} else if *pr.TerminationGracePeriodSeconds <= 0 {
			errs = append(errs, field.Invalid(p, *pr.TerminationGracePeriodSeconds, "must be greater than 0"))
		}
	}
	return errs
}

// validateHandler checks that exactly one handler of a probe or lifecycle
// hook is set, and that one.
func validateHandler(exec *corev1.ExecAction, httpGet *corev1.HTTPGetAction, tcp *corev1.TCPSocketAction, grpc *corev1.GRPCAction, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	n := 0
	more := func(name string) {
		n++
		if n > 1 {
			errs = append(errs, field.Forbidden(fldPath.Child(name), "may not specify more than 1 handler type"))
		}
	}
	if exec != nil {
		more("exec")
		if len(exec.Command) == 0 {
			errs = append(errs, field.Required(fldPath.Child("exec", "command"), ""))
		}
	}
	if httpGet != nil {
		more("httpGet")
		p := fldPath.Child("httpGet")
		errs = append(errs, validatePortNumOrName(httpGet.Port, p.Child("port"))...)
		errs = append(errs, validateEnum(httpGet.Scheme, p.Child("scheme"), true, "HTTP", "HTTPS")...)
		if httpGet.Path != "" && !strings.HasPrefix(httpGet.Path, "/") {
			errs = append(errs, field.Invalid(p.Child("path"), httpGet.Path, "must start with '/'"))
		}
		for i, h := range httpGet.HttpHeaders {
			for _, msg := range validation.IsHTTPHeaderName(h.GetName()) {
				errs = append(errs, field.Invalid(p.Child("httpHeaders").Index(i).Child("name"), h.GetName(), msg))
			}
		}
	}
	if tcp != nil {
		more("tcpSocket")
		errs = append(errs, validatePortNumOrName(tcp.Port, fldPath.Child("tcpSocket", "port"))...)
	}
	if grpc != nil {
		more("grpc")
		for _, msg := range validation.IsValidPortNum(int(grpc.Port)) {
			errs = append(errs, field.Invalid(fldPath.Child("grpc", "port"), grpc.Port, msg))
		}
	}
	if n == 0 {
		errs = append(errs, field.Required(fldPath, "must specify a handler type"))
	}
	return errs
}

// validatePortNumOrName checks an int-or-string port: 1-65535 or an IANA
// service name.
func validatePortNumOrName(port *metav1.IntOrString, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if port == nil {
		return append(errs, field.Required(fldPath, ""))
	}
	if port.StrVal != "" {
		for _, msg := range validation.IsValidPortName(port.StrVal) {
			errs = append(errs, field.Invalid(fldPath, port.StrVal, msg))
		}
		return errs
	}
	for _, msg := range validation.IsValidPortNum(int(port.IntVal)) {
		errs = append(errs, field.Invalid(fldPath, port.IntVal, msg))
	}
	return errs
}
