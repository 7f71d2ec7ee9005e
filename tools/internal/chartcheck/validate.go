package chartcheck

import (
	"errors"
	"fmt"
	"path"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// clusterScoped are the kinds without a namespace.
var clusterScoped = map[string]bool{
	"Namespace": true, "Node": true, "PersistentVolume": true, "ClusterRole": true,
	"ClusterRoleBinding": true, "PriorityClass": true, "StorageClass": true,
	"ValidatingWebhookConfiguration": true, "MutatingWebhookConfiguration": true,
}

// podTemplate is a workload's pod template with where it came from.
type podTemplate struct {
	owner     Object
	namespace string
	labels    labels.Set
	spec      *corev1.PodSpec
}

// Validate checks decoded objects one by one and against each other. It
// returns every problem found, each naming the object and the field.
func Validate(objs []Object) error {
	var errs []error
	add := func(o Object, list field.ErrorList) {
		for _, e := range list {
			errs = append(errs, fmt.Errorf("%s: %s", o, e.Error()))
		}
	}

	seen := map[string]Object{}
	var templates []podTemplate
	serviceAccounts := map[string]bool{}
	services := map[string]bool{}
	for _, o := range objs {
		namespaced := !clusterScoped[o.GVK.Kind]
		nameFn := apivalidation.NameIsDNSSubdomain
		switch o.GVK.Kind {
		case "Service":
			nameFn = apivalidation.NameIsDNS1035Label
		case "Namespace":
			nameFn = apivalidation.NameIsDNSLabel
		}
		add(o, apivalidation.ValidateObjectMetaAccessor(o.Meta, namespaced, nameFn, field.NewPath("metadata")))
		key := o.GVK.GroupKind().String() + " " + o.Meta.GetNamespace() + "/" + o.Meta.GetName()
		if first, dup := seen[key]; dup {
			errs = append(errs, fmt.Errorf("%s: rendered twice (first as document %d)", o, first.Index))
		}
		seen[key] = o

		switch obj := o.Object.(type) {
		case *appsv1.Deployment:
			templates = append(templates, podTemplate{o, o.Meta.GetNamespace(), obj.Spec.Template.Labels, &obj.Spec.Template.Spec})
			add(o, checkWorkload(obj.Spec.Selector, &obj.Spec.Template, nil, field.NewPath("spec")))
		case *appsv1.DaemonSet:
			templates = append(templates, podTemplate{o, o.Meta.GetNamespace(), obj.Spec.Template.Labels, &obj.Spec.Template.Spec})
			add(o, checkWorkload(obj.Spec.Selector, &obj.Spec.Template, nil, field.NewPath("spec")))
		case *appsv1.StatefulSet:
			templates = append(templates, podTemplate{o, o.Meta.GetNamespace(), obj.Spec.Template.Labels, &obj.Spec.Template.Spec})
			var claims []string
			for _, c := range obj.Spec.VolumeClaimTemplates {
				claims = append(claims, c.Name)
			}
			add(o, checkWorkload(obj.Spec.Selector, &obj.Spec.Template, claims, field.NewPath("spec")))
		case *batchv1.Job:
			templates = append(templates, podTemplate{o, o.Meta.GetNamespace(), obj.Spec.Template.Labels, &obj.Spec.Template.Spec})
			add(o, checkPodSpec(&obj.Spec.Template.Spec, nil, field.NewPath("spec", "template", "spec")))
		case *corev1.ServiceAccount:
			serviceAccounts[o.Meta.GetNamespace()+"/"+o.Meta.GetName()] = true
		case *corev1.Service:
			services[o.Meta.GetNamespace()+"/"+o.Meta.GetName()] = true
		case *corev1.Secret:
			if obj.Type == corev1.SecretTypeTLS {
				for _, k := range []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey} {
					if len(obj.Data[k]) == 0 && obj.StringData[k] == "" {
						add(o, field.ErrorList{field.Required(field.NewPath("data").Key(k), "a kubernetes.io/tls Secret needs it")})
					}
				}
			}
		}
	}

	// Checks across objects.
	for _, o := range objs {
		ns := o.Meta.GetNamespace()
		switch obj := o.Object.(type) {
		case *corev1.Service:
			add(o, checkService(obj, templatesIn(templates, ns)))
		case *policyv1.PodDisruptionBudget:
			p := field.NewPath("spec")
			if (obj.Spec.MinAvailable == nil) == (obj.Spec.MaxUnavailable == nil) {
				add(o, field.ErrorList{field.Invalid(p, "", "set exactly one of minAvailable and maxUnavailable")})
			}
			if sel, ok := selectorOf(obj.Spec.Selector, p.Child("selector"), func(l field.ErrorList) { add(o, l) }); ok && len(selected(sel, templatesIn(templates, ns))) == 0 {
				add(o, field.ErrorList{field.Invalid(p.Child("selector"), sel.String(), "selects no pod template of this render")})
			}
		case *appsv1.StatefulSet:
			if !services[ns+"/"+obj.Spec.ServiceName] {
				add(o, field.ErrorList{field.NotFound(field.NewPath("spec", "serviceName"), obj.Spec.ServiceName)})
			}
		}
	}
	for _, t := range templates {
		sa := t.spec.ServiceAccountName
		if sa != "" && sa != "default" && !serviceAccounts[t.namespace+"/"+sa] {
			errs = append(errs, fmt.Errorf("%s: spec.template.spec.serviceAccountName: Not found: %q is no ServiceAccount of this render", t.owner, sa))
		}
	}
	return errors.Join(errs...)
}

func templatesIn(all []podTemplate, namespace string) []podTemplate {
	var out []podTemplate
	for _, t := range all {
		if t.namespace == namespace {
			out = append(out, t)
		}
	}
	return out
}

func selected(sel labels.Selector, templates []podTemplate) []podTemplate {
	var out []podTemplate
	for _, t := range templates {
		if sel.Matches(t.labels) {
			out = append(out, t)
		}
	}
	return out
}

// selectorOf converts a label selector, reporting a malformed or empty one.
func selectorOf(ls *metav1.LabelSelector, p *field.Path, report func(field.ErrorList)) (labels.Selector, bool) {
	if ls == nil || (len(ls.MatchLabels) == 0 && len(ls.MatchExpressions) == 0) {
		report(field.ErrorList{field.Required(p, "an empty selector selects every pod")})
		return nil, false
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		report(field.ErrorList{field.Invalid(p, ls, err.Error())})
		return nil, false
	}
	return sel, true
}

// checkWorkload checks a controller's selector against its pod template,
// then the pod spec.
func checkWorkload(ls *metav1.LabelSelector, tmpl *corev1.PodTemplateSpec, claims []string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if sel, ok := selectorOf(ls, p.Child("selector"), func(l field.ErrorList) { errs = append(errs, l...) }); ok && !sel.Matches(labels.Set(tmpl.Labels)) {
		errs = append(errs, field.Invalid(p.Child("template", "metadata", "labels"), tmpl.Labels, fmt.Sprintf("do not match the selector %q", sel)))
	}
	errs = append(errs, checkPodSpec(&tmpl.Spec, claims, p.Child("template", "spec"))...)
	return errs
}

// checkPodSpec checks containers, ports, volumes and their mounts, probes
// and resources of one pod spec.
func checkPodSpec(spec *corev1.PodSpec, claims []string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	volumes := map[string]bool{}
	for _, c := range claims {
		volumes[c] = true
	}
	for i, v := range spec.Volumes {
		vp := p.Child("volumes").Index(i)
		for _, msg := range validation.IsDNS1123Label(v.Name) {
			errs = append(errs, field.Invalid(vp.Child("name"), v.Name, msg))
		}
		if volumes[v.Name] {
			errs = append(errs, field.Duplicate(vp.Child("name"), v.Name))
		}
		volumes[v.Name] = true
		if v.HostPath != nil && !path.IsAbs(v.HostPath.Path) {
			errs = append(errs, field.Invalid(vp.Child("hostPath", "path"), v.HostPath.Path, "must be an absolute path"))
		}
	}
	if len(spec.Containers) == 0 {
		errs = append(errs, field.Required(p.Child("containers"), "a pod needs a container"))
	}
	names := map[string]bool{}
	portNames := map[string]bool{}
	check := func(c *corev1.Container, cp *field.Path) {
		for _, msg := range validation.IsDNS1123Label(c.Name) {
			errs = append(errs, field.Invalid(cp.Child("name"), c.Name, msg))
		}
		if names[c.Name] {
			errs = append(errs, field.Duplicate(cp.Child("name"), c.Name))
		}
		names[c.Name] = true
		if c.Image == "" {
			errs = append(errs, field.Required(cp.Child("image"), ""))
		}
		own := map[string]bool{}
		for j, port := range c.Ports {
			pp := cp.Child("ports").Index(j)
			for _, msg := range validation.IsValidPortNum(int(port.ContainerPort)) {
				errs = append(errs, field.Invalid(pp.Child("containerPort"), port.ContainerPort, msg))
			}
			if port.Name == "" {
				continue
			}
			for _, msg := range validation.IsValidPortName(port.Name) {
				errs = append(errs, field.Invalid(pp.Child("name"), port.Name, msg))
			}
			if portNames[port.Name] {
				errs = append(errs, field.Duplicate(pp.Child("name"), port.Name))
			}
			portNames[port.Name], own[port.Name] = true, true
		}
		mounts := map[string]bool{}
		for j, m := range c.VolumeMounts {
			mp := cp.Child("volumeMounts").Index(j)
			if !volumes[m.Name] {
				errs = append(errs, field.NotFound(mp.Child("name"), m.Name))
			}
			if !path.IsAbs(m.MountPath) {
				errs = append(errs, field.Invalid(mp.Child("mountPath"), m.MountPath, "must be an absolute path"))
			}
			if mounts[m.MountPath] {
				errs = append(errs, field.Duplicate(mp.Child("mountPath"), m.MountPath))
			}
			mounts[m.MountPath] = true
			if m.MountPropagation != nil && *m.MountPropagation == corev1.MountPropagationBidirectional &&
				(c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged) {
				errs = append(errs, field.Forbidden(mp.Child("mountPropagation"), "Bidirectional propagation needs a privileged container"))
			}
		}
		for j, e := range c.Env {
			ep := cp.Child("env").Index(j)
			for _, msg := range validation.IsEnvVarName(e.Name) {
				errs = append(errs, field.Invalid(ep.Child("name"), e.Name, msg))
			}
			if e.Value != "" && e.ValueFrom != nil {
				errs = append(errs, field.Invalid(ep, e.Name, "value and valueFrom are exclusive"))
			}
		}
		for name, probe := range map[string]*corev1.Probe{"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe, "startupProbe": c.StartupProbe} {
			errs = append(errs, checkProbe(probe, own, cp.Child(name))...)
		}
		for res, limit := range c.Resources.Limits {
			if req, ok := c.Resources.Requests[res]; ok && req.Cmp(limit) > 0 {
				errs = append(errs, field.Invalid(cp.Child("resources", "requests").Key(string(res)), req.String(), "must not exceed the limit "+limit.String()))
			}
		}
	}
	for i := range spec.InitContainers {
		check(&spec.InitContainers[i], p.Child("initContainers").Index(i))
	}
	for i := range spec.Containers {
		check(&spec.Containers[i], p.Child("containers").Index(i))
	}
	return errs
}

// checkProbe checks that a probe has one handler and that a named port is
// one of the container's.
func checkProbe(probe *corev1.Probe, ports map[string]bool, p *field.Path) field.ErrorList {
	if probe == nil {
		return nil
	}
	var errs field.ErrorList
	handlers := 0
	port := func(v intstr.IntOrString, pp *field.Path) {
		if v.Type == intstr.String {
			if !ports[v.StrVal] {
				errs = append(errs, field.NotFound(pp, v.StrVal))
			}
			return
		}
		for _, msg := range validation.IsValidPortNum(v.IntValue()) {
			errs = append(errs, field.Invalid(pp, v.IntValue(), msg))
		}
	}
	if h := probe.HTTPGet; h != nil {
		handlers++
		port(h.Port, p.Child("httpGet", "port"))
	}
	if t := probe.TCPSocket; t != nil {
		handlers++
		port(t.Port, p.Child("tcpSocket", "port"))
	}
	if g := probe.GRPC; g != nil {
		handlers++
		port(intstr.FromInt32(g.Port), p.Child("grpc", "port"))
	}
	if probe.Exec != nil {
		handlers++
	}
	if handlers != 1 {
		errs = append(errs, field.Invalid(p, handlers, "a probe needs exactly one handler"))
	}
	return errs
}

// checkService checks that a Service selects pods of the render and that
// its named target ports exist on them.
func checkService(svc *corev1.Service, templates []podTemplate) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("spec")
	if len(svc.Spec.Ports) == 0 {
		errs = append(errs, field.Required(p.Child("ports"), ""))
	}
	names := map[string]bool{}
	for i, port := range svc.Spec.Ports {
		pp := p.Child("ports").Index(i)
		if port.Name == "" && len(svc.Spec.Ports) > 1 {
			errs = append(errs, field.Required(pp.Child("name"), "every port of a multi-port Service needs a name"))
		}
		if names[port.Name] {
			errs = append(errs, field.Duplicate(pp.Child("name"), port.Name))
		}
		names[port.Name] = true
		for _, msg := range validation.IsValidPortNum(int(port.Port)) {
			errs = append(errs, field.Invalid(pp.Child("port"), port.Port, msg))
		}
	}
	if len(svc.Spec.Selector) == 0 {
		return errs // endpoints managed elsewhere
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	pods := selected(sel, templates)
	if len(pods) == 0 {
		return append(errs, field.Invalid(p.Child("selector"), svc.Spec.Selector, "selects no pod template of this render"))
	}
	for i, port := range svc.Spec.Ports {
		if port.TargetPort.Type != intstr.String {
			continue
		}
		for _, t := range pods {
			if !hasPort(t.spec, port.TargetPort.StrVal) {
				errs = append(errs, field.NotFound(p.Child("ports").Index(i).Child("targetPort"), fmt.Sprintf("%s (no container of %s has a port of that name)", port.TargetPort.StrVal, t.owner)))
			}
		}
	}
	return errs
}

func hasPort(spec *corev1.PodSpec, name string) bool {
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name {
				return true
			}
		}
	}
	return false
}
