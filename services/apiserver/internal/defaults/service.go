package defaults

import (
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
)

// defaultClientIPTimeout is Kubernetes' sticky-session timeout: three hours.
const defaultClientIPTimeout = 10800

func applyService(svc *corev1.Service) {
	if svc == nil {
		return
	}
	if svc.Spec == nil {
		svc.Spec = &corev1.ServiceSpec{}
	}
	s := svc.Spec
	setIfEmpty(&s.Type, "ClusterIP")
	setIfEmpty(&s.SessionAffinity, "None")
	if s.SessionAffinity == "ClientIP" {
		if s.SessionAffinityConfig == nil {
			s.SessionAffinityConfig = &corev1.SessionAffinityConfig{}
		}
		if s.SessionAffinityConfig.ClientIp == nil {
			s.SessionAffinityConfig.ClientIp = &corev1.ClientIPConfig{}
		}
		setIfNil(&s.SessionAffinityConfig.ClientIp.TimeoutSeconds, defaultClientIPTimeout)
	}
	for _, p := range s.Ports {
		if p == nil {
			continue
		}
		setIfEmpty(&p.Protocol, "TCP")
		if p.TargetPort == nil || (p.TargetPort.IntVal == 0 && p.TargetPort.StrVal == "") {
			p.TargetPort = &metav1.IntOrString{IntVal: p.Port}
		}
	}
	if s.Type != "ExternalName" {
		setIfEmpty(&s.InternalTrafficPolicy, "Cluster")
	}
	if s.Type == "NodePort" || s.Type == "LoadBalancer" {
		setIfEmpty(&s.ExternalTrafficPolicy, "Cluster")
	}
}
