package validation

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	corev1 "bosun.dev/gen/bosun/core/v1"
)

// The NodePort range, as in Kubernetes' default --service-node-port-range.
const (
	minNodePort = 30000
	maxNodePort = 32767
)

// maxClientIPTimeout is the longest sticky session: one day.
const maxClientIPTimeout = 86400

func validateService(svc *corev1.Service) field.ErrorList {
	sp := specPath()
	s := svc.GetSpec()
	if s == nil {
		return field.ErrorList{field.Required(sp, "")}
	}
	var errs field.ErrorList
	errs = append(errs, validateEnum(s.Type, sp.Child("type"), true, "ClusterIP", "NodePort", "LoadBalancer", "ExternalName")...)
	exposed := s.Type == "NodePort" || s.Type == "LoadBalancer"

	switch {
	case s.ClusterIp == "" || s.ClusterIp == "None":
	default:
		if len(validation.IsValidIP(sp.Child("clusterIP"), s.ClusterIp)) > 0 {
			errs = append(errs, field.Invalid(sp.Child("clusterIP"), s.ClusterIp, "must be empty, 'None', or a valid IP address"))
		}
	}
	if s.Type == "ExternalName" && s.ClusterIp != "" {
		errs = append(errs, field.Forbidden(sp.Child("clusterIP"), "must be empty for ExternalName services"))
	}
	if exposed && s.ClusterIp == "None" {
		errs = append(errs, field.Invalid(sp.Child("clusterIP"), s.ClusterIp, fmt.Sprintf("may not be set to 'None' for %s services", s.Type)))
	}
	for i, ip := range s.ClusterIps {
		p := sp.Child("clusterIPs").Index(i)
		if i == 0 && s.ClusterIp != "" && ip != s.ClusterIp {
			errs = append(errs, field.Invalid(p, ip, "must match `clusterIP`"))
		} else if !(i == 0 && ip == "None") {
			errs = append(errs, validateIP(ip, p)...)
		}
	}

	if len(s.Ports) == 0 && s.ClusterIp != "None" && s.Type != "ExternalName" {
		errs = append(errs, field.Required(sp.Child("ports"), ""))
	}
	names := map[string]bool{}
	nodePorts := map[string]bool{}
	portProtos := map[string]bool{}
	for i, port := range s.Ports {
		p := sp.Child("ports").Index(i)
		if port == nil {
			errs = append(errs, field.Required(p, ""))
			continue
		}
		switch {
		case port.Name == "" && len(s.Ports) > 1:
			errs = append(errs, field.Required(p.Child("name"), "must be specified when there is more than one port"))
		case port.Name == "":
		case names[port.Name]:
			errs = append(errs, field.Duplicate(p.Child("name"), port.Name))
		default:
			errs = append(errs, validateDNSLabel(port.Name, p.Child("name"))...)
		}
		names[port.Name] = true
		for _, msg := range validation.IsValidPortNum(int(port.Port)) {
			errs = append(errs, field.Invalid(p.Child("port"), port.Port, msg))
		}
		errs = append(errs, validateProtocol(port.Protocol, p.Child("protocol"))...)
		key := fmt.Sprintf("%d/%s", port.Port, protocolOrTCP(port.Protocol))
		if portProtos[key] {
			errs = append(errs, field.Duplicate(p, key))
		}
		portProtos[key] = true
		// An unset targetPort (zero) means "the same as port".
		if tp := port.TargetPort; tp != nil && (tp.StrVal != "" || tp.IntVal != 0) {
			errs = append(errs, validatePortNumOrName(tp, p.Child("targetPort"))...)
		}
		if port.NodePort != 0 {
			np := p.Child("nodePort")
			switch {
			case !exposed:
				errs = append(errs, field.Forbidden(np, fmt.Sprintf("may not be used when `type` is '%s'", typeOrClusterIP(s.Type))))
			case port.NodePort < minNodePort || port.NodePort > maxNodePort:
				errs = append(errs, field.Invalid(np, port.NodePort, fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %d-%d", minNodePort, maxNodePort)))
			}
			key := fmt.Sprintf("%d/%s", port.NodePort, protocolOrTCP(port.Protocol))
			if nodePorts[key] {
				errs = append(errs, field.Duplicate(np, port.NodePort))
			}
			nodePorts[key] = true
		}
		if port.AppProtocol != nil {
			errs = append(errs, validateQualifiedName(*port.AppProtocol, p.Child("appProtocol"))...)
		}
	}

	errs = append(errs, ValidateLabels(s.Selector, sp.Child("selector"))...)
	errs = append(errs, validateEnum(s.SessionAffinity, sp.Child("sessionAffinity"), true, "None", "ClientIP")...)
	if cfg := s.SessionAffinityConfig; cfg != nil {
		cp := sp.Child("sessionAffinityConfig")
		if s.SessionAffinity != "ClientIP" {
			errs = append(errs, field.Forbidden(cp, "must not be set when `sessionAffinity` is not 'ClientIP'"))
		} else if t := cfg.GetClientIp().TimeoutSeconds; t != nil && (*t <= 0 || *t > maxClientIPTimeout) {
			errs = append(errs, field.Invalid(cp.Child("clientIP", "timeoutSeconds"), *t, fmt.Sprintf("must be greater than 0 and less than or equal to %d", maxClientIPTimeout)))
		}
	}
	errs = append(errs, validateEnum(s.InternalTrafficPolicy, sp.Child("internalTrafficPolicy"), true, "Cluster", "Local")...)
	if s.ExternalTrafficPolicy != "" {
		if !exposed {
			errs = append(errs, field.Invalid(sp.Child("externalTrafficPolicy"), s.ExternalTrafficPolicy, "may only be set for NodePort and LoadBalancer services"))
		} else {
			errs = append(errs, validateEnum(s.ExternalTrafficPolicy, sp.Child("externalTrafficPolicy"), true, "Cluster", "Local")...)
		}
	}
	for i, ip := range s.ExternalIps {
		errs = append(errs, validateIP(ip, sp.Child("externalIPs").Index(i))...)
	}
	if s.LoadBalancerIp != "" {
		errs = append(errs, validateIP(s.LoadBalancerIp, sp.Child("loadBalancerIP"))...)
	}
	for i, f := range s.IpFamilies {
		errs = append(errs, validateEnum(f, sp.Child("ipFamilies").Index(i), false, "IPv4", "IPv6")...)
	}
	errs = append(errs, validateEnum(s.IpFamilyPolicy, sp.Child("ipFamilyPolicy"), true, "SingleStack", "PreferDualStack", "RequireDualStack")...)
	return errs
}

func protocolOrTCP(p string) string {
	if p == "" {
		return "TCP"
	}
	return p
}

func typeOrClusterIP(t string) string {
	if t == "" {
		return "ClusterIP"
	}
	return t
}

// validateServiceUpdate keeps an allocated cluster IP: clients and proxies
// have already been told about it.
func validateServiceUpdate(svc, old *corev1.Service) field.ErrorList {
	oldIP := old.GetSpec().GetClusterIp()
	if oldIP == "" {
		return nil
	}
	return immutable(svc.GetSpec().GetClusterIp(), oldIP, specPath().Child("clusterIP"))
}

func validateEndpoints(ep *corev1.Endpoints) field.ErrorList {
	var errs field.ErrorList
	for i, ss := range ep.Subsets {
		p := field.NewPath("subsets").Index(i)
		if ss == nil {
			errs = append(errs, field.Required(p, ""))
			continue
		}
		if len(ss.Addresses) == 0 && len(ss.NotReadyAddresses) == 0 {
			errs = append(errs, field.Required(p, "must specify `addresses` or `notReadyAddresses`"))
		}
		for j, a := range ss.Addresses {
			errs = append(errs, validateEndpointAddress(a, p.Child("addresses").Index(j))...)
		}
		for j, a := range ss.NotReadyAddresses {
			errs = append(errs, validateEndpointAddress(a, p.Child("notReadyAddresses").Index(j))...)
		}
		if len(ss.Ports) == 0 {
			errs = append(errs, field.Required(p.Child("ports"), ""))
		}
		names := map[string]bool{}
		for j, port := range ss.Ports {
			pp := p.Child("ports").Index(j)
			if port == nil {
				errs = append(errs, field.Required(pp, ""))
				continue
			}
			switch {
			case port.Name == "" && len(ss.Ports) > 1:
				errs = append(errs, field.Required(pp.Child("name"), "must be specified when there is more than one port"))
			case port.Name == "":
			case names[port.Name]:
				errs = append(errs, field.Duplicate(pp.Child("name"), port.Name))
			default:
				errs = append(errs, validateDNSLabel(port.Name, pp.Child("name"))...)
			}
			names[port.Name] = true
			for _, msg := range validation.IsValidPortNum(int(port.Port)) {
				errs = append(errs, field.Invalid(pp.Child("port"), port.Port, msg))
			}
			errs = append(errs, validateProtocol(port.Protocol, pp.Child("protocol"))...)
		}
	}
	return errs
}

func validateEndpointAddress(a *corev1.EndpointAddress, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if a == nil {
		return append(errs, field.Required(fldPath, ""))
	}
	if a.Ip == "" {
		errs = append(errs, field.Required(fldPath.Child("ip"), ""))
	} else {
		errs = append(errs, validateIP(a.Ip, fldPath.Child("ip"))...)
	}
	if a.Hostname != "" {
		errs = append(errs, validateDNSLabel(a.Hostname, fldPath.Child("hostname"))...)
	}
	if a.NodeName != nil && *a.NodeName != "" {
		errs = append(errs, validateDNSSubdomain(*a.NodeName, fldPath.Child("nodeName"))...)
	}
	return errs
}
