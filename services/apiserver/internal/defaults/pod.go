package defaults

import (
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	corev1 "bosun.dev/gen/bosun/core/v1"
)

// Pod-spec defaults, as in Kubernetes.
const (
	defaultSchedulerName            = "default-scheduler"
	defaultTerminationGracePeriod   = 30
	defaultTerminationMessagePath   = "/dev/termination-log"
	defaultTerminationMessagePolicy = "File"
	defaultVolumeMode               = 0o644
)

// QoS classes, as computed by Kubernetes.
const (
	qosGuaranteed = "Guaranteed"
	qosBurstable  = "Burstable"
	qosBestEffort = "BestEffort"
)

func applyPod(p *corev1.Pod) {
	if p == nil {
		return
	}
	if p.Spec == nil {
		p.Spec = &corev1.PodSpec{}
	}
	// A container that states only limits requests what it limits, so that a
	// pod with limits alone is Guaranteed. Kubernetes does this for pods but
	// not for templates, and so do we.
	for _, c := range allContainers(p.Spec) {
		requestsFromLimits(c)
	}
	applyPodSpec(p.Spec)
	if p.Status == nil {
		p.Status = &corev1.PodStatus{}
	}
	setIfEmpty(&p.Status.Phase, "Pending")
	p.Status.QosClass = qosClass(p.Spec)
}

// applyPodTemplate defaults the pod spec of a workload's template.
func applyPodTemplate(t **corev1.PodTemplateSpec) {
	if *t == nil {
		*t = &corev1.PodTemplateSpec{}
	}
	if (*t).Spec == nil {
		(*t).Spec = &corev1.PodSpec{}
	}
	applyPodSpec((*t).Spec)
}

func applyPodSpec(s *corev1.PodSpec) {
	setIfEmpty(&s.RestartPolicy, "Always")
	setIfNil(&s.TerminationGracePeriodSeconds, defaultTerminationGracePeriod)
	setIfEmpty(&s.DnsPolicy, "ClusterFirst")
	setIfEmpty(&s.SchedulerName, defaultSchedulerName)
	setIfNil(&s.Priority, 0)
	setIfNil(&s.EnableServiceLinks, true)
	for _, c := range allContainers(s) {
		applyContainer(c, s.HostNetwork)
	}
	for _, v := range s.Volumes {
		applyVolume(v)
	}
	for _, t := range s.Tolerations {
		if t != nil {
			setIfEmpty(&t.Operator, "Equal")
		}
	}
}

func allContainers(s *corev1.PodSpec) []*corev1.Container {
	out := make([]*corev1.Container, 0, len(s.InitContainers)+len(s.Containers))
	for _, c := range s.InitContainers {
		if c != nil {
			out = append(out, c)
		}
	}
	for _, c := range s.Containers {
		if c != nil {
			out = append(out, c)
		}
	}
	return out
}

func applyContainer(c *corev1.Container, hostNetwork bool) {
	setIfEmpty(&c.ImagePullPolicy, pullPolicyFor(c.Image))
	setIfEmpty(&c.TerminationMessagePath, defaultTerminationMessagePath)
	setIfEmpty(&c.TerminationMessagePolicy, defaultTerminationMessagePolicy)
	for _, p := range c.Ports {
		if p == nil {
			continue
		}
		setIfEmpty(&p.Protocol, "TCP")
		if hostNetwork {
			setIfEmpty(&p.HostPort, p.ContainerPort)
		}
	}
	for _, e := range c.Env {
		if e != nil && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			setIfEmpty(&e.ValueFrom.FieldRef.ApiVersion, "v1")
		}
	}
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
		applyProbe(p)
	}
	if c.Lifecycle != nil {
		for _, h := range []*corev1.LifecycleHandler{c.Lifecycle.PostStart, c.Lifecycle.PreStop} {
			if h != nil {
				applyHTTPGet(h.HttpGet)
			}
		}
	}
}

// pullPolicyFor is Always for an image without a tag or tagged "latest",
// IfNotPresent for any other tag or a digest reference.
func pullPolicyFor(image string) string {
	if strings.Contains(image, "@") {
		return "IfNotPresent"
	}
	last := image[strings.LastIndex(image, "/")+1:] // a registry's ":port" is not a tag
	i := strings.LastIndex(last, ":")
	if i < 0 || last[i+1:] == "latest" {
		return "Always"
	}
	return "IfNotPresent"
}

func applyProbe(p *corev1.Probe) {
	if p == nil {
		return
	}
	setIfEmpty(&p.TimeoutSeconds, 1)
	setIfEmpty(&p.PeriodSeconds, 10)
	setIfEmpty(&p.SuccessThreshold, 1)
	setIfEmpty(&p.FailureThreshold, 3)
	applyHTTPGet(p.HttpGet)
}

func applyHTTPGet(h *corev1.HTTPGetAction) {
	if h == nil {
		return
	}
	setIfEmpty(&h.Path, "/")
	setIfEmpty(&h.Scheme, "HTTP")
}

func applyVolume(v *corev1.Volume) {
	if v == nil {
		return
	}
	switch src := v.Source.(type) {
	case *corev1.Volume_ConfigMap:
		if src.ConfigMap != nil {
			setIfNil(&src.ConfigMap.DefaultMode, defaultVolumeMode)
		}
	case *corev1.Volume_Secret:
		if src.Secret != nil {
			setIfNil(&src.Secret.DefaultMode, defaultVolumeMode)
		}
	}
	// hostPath.type defaults to "" (no check), which is already the zero value.
}

func requestsFromLimits(c *corev1.Container) {
	if c.Resources == nil || len(c.Resources.Limits) == 0 {
		return
	}
	if c.Resources.Requests == nil {
		c.Resources.Requests = make(map[string]string, len(c.Resources.Limits))
	}
	for name, q := range c.Resources.Limits {
		if _, ok := c.Resources.Requests[name]; !ok {
			c.Resources.Requests[name] = q
		}
	}
}

// qosClass computes a pod's quality-of-service class from the cpu and memory
// requests and limits of all its containers, as Kubernetes does. Quantities
// that do not parse are ignored here; validation reports them.
func qosClass(s *corev1.PodSpec) string {
	requests := map[string]resource.Quantity{}
	limits := map[string]resource.Quantity{}
	guaranteed := true
	add := func(sum map[string]resource.Quantity, name, value string) bool {
		if name != "cpu" && name != "memory" {
			return false
		}
		q, err := resource.ParseQuantity(value)
		if err != nil || q.Sign() <= 0 {
			return false
		}
		total := sum[name]
		total.Add(q)
		sum[name] = total
		return true
	}
	for _, c := range allContainers(s) {
		if c.Resources == nil {
			guaranteed = false
			continue
		}
		for name, v := range c.Resources.Requests {
			add(requests, name, v)
		}
		found := map[string]bool{}
		for name, v := range c.Resources.Limits {
			if add(limits, name, v) {
				found[name] = true
			}
		}
		if !found["cpu"] || !found["memory"] {
			guaranteed = false
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return qosBestEffort
	}
	if guaranteed {
		for name, req := range requests {
			if lim, ok := limits[name]; !ok || lim.Cmp(req) != 0 {
				guaranteed = false
				break
			}
		}
	}
	if guaranteed && len(requests) == len(limits) {
		return qosGuaranteed
	}
	return qosBurstable
}
