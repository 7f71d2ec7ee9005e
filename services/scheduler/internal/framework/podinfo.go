package framework

import (
	"fmt"

	"k8s.io/apimachinery/pkg/labels"

	corev1 "bosun.dev/gen/bosun/core/v1"
)

// AffinityTerm is a parsed pod (anti-)affinity term.
type AffinityTerm struct {
	// Namespaces the matching pods live in; with NamespaceSelector unset and
	// no names, the pod's own namespace.
	Namespaces map[string]struct{}
	// NamespaceSelector selects more namespaces by their labels; nil when
	// the term names its namespaces (or means the pod's own).
	NamespaceSelector labels.Selector
	// Selector matches pod labels.
	Selector labels.Selector
	// TopologyKey is the node label whose value is the topology domain.
	TopologyKey string
}

// WeightedAffinityTerm is a preferred term with its weight.
type WeightedAffinityTerm struct {
	AffinityTerm
	Weight int32
}

// NamespaceLabels returns the labels of a namespace, for terms with a
// namespace selector. It may be nil, when only named namespaces match.
type NamespaceLabels func(namespace string) labels.Set

// Matches reports whether pod is selected by the term.
func (t *AffinityTerm) Matches(pod *corev1.Pod, nsLabels NamespaceLabels) bool {
	ns := pod.GetMetadata().GetNamespace()
	if _, ok := t.Namespaces[ns]; !ok {
		if t.NamespaceSelector == nil {
			return false
		}
		// The empty namespace selector means every namespace.
		if !t.NamespaceSelector.Empty() && (nsLabels == nil || !t.NamespaceSelector.Matches(nsLabels(ns))) {
			return false
		}
	}
	return t.Selector.Matches(labels.Set(pod.GetMetadata().GetLabels()))
}

// HostPort is a port a pod takes on its node.
type HostPort struct {
	Protocol string
	IP       string
	Port     int32
}

// Conflicts reports whether two host ports cannot both be taken: same port
// and protocol, on the same IP or either on every IP.
func (p HostPort) Conflicts(q HostPort) bool {
	if p.Port != q.Port || p.Protocol != q.Protocol {
		return false
	}
	return p.IP == q.IP || p.IP == "0.0.0.0" || q.IP == "0.0.0.0"
}

// PodInfo is a pod with what the plugins need from it parsed once.
type PodInfo struct {
	// Pod is shared with the informer's cache: never modify it.
	Pod *corev1.Pod
	// Requests is what the pod requests; NonZeroRequests the same with the
	// default cpu and memory requests filled in, for scoring.
	Requests, NonZeroRequests Resource
	// Priority is spec.priority (0 when unset).
	Priority int32

	RequiredAffinityTerms      []AffinityTerm
	RequiredAntiAffinityTerms  []AffinityTerm
	PreferredAffinityTerms     []WeightedAffinityTerm
	PreferredAntiAffinityTerms []WeightedAffinityTerm
	// HostPorts are the ports the pod takes on its node.
	HostPorts []HostPort
	// ParseError is set when an affinity term could not be parsed; the
	// InterPodAffinity plugin refuses such a pod.
	ParseError error
}

// NewPodInfo parses pod.
func NewPodInfo(pod *corev1.Pod) *PodInfo {
	pi := &PodInfo{Pod: pod, Priority: pod.GetSpec().GetPriority()}
	pi.Requests, pi.NonZeroRequests = PodRequests(pod.GetSpec())
	for _, c := range pod.GetSpec().GetContainers() {
		for _, p := range c.GetPorts() {
			if p.GetHostPort() <= 0 {
				continue
			}
			hp := HostPort{Protocol: p.GetProtocol(), IP: p.GetHostIp(), Port: p.GetHostPort()}
			if hp.Protocol == "" {
				hp.Protocol = "TCP"
			}
			if hp.IP == "" {
				hp.IP = "0.0.0.0"
			}
			pi.HostPorts = append(pi.HostPorts, hp)
		}
	}
	aff := pod.GetSpec().GetAffinity()
	ns := pod.GetMetadata().GetNamespace()
	var err error
	if pa := aff.GetPodAffinity(); pa != nil {
		pi.RequiredAffinityTerms, err = parseTerms(ns, pa.RequiredDuringSchedulingIgnoredDuringExecution, "podAffinity")
		pi.setErr(err)
		pi.PreferredAffinityTerms, err = parseWeightedTerms(ns, pa.PreferredDuringSchedulingIgnoredDuringExecution, "podAffinity")
		pi.setErr(err)
	}
	if pa := aff.GetPodAntiAffinity(); pa != nil {
		pi.RequiredAntiAffinityTerms, err = parseTerms(ns, pa.RequiredDuringSchedulingIgnoredDuringExecution, "podAntiAffinity")
		pi.setErr(err)
		pi.PreferredAntiAffinityTerms, err = parseWeightedTerms(ns, pa.PreferredDuringSchedulingIgnoredDuringExecution, "podAntiAffinity")
		pi.setErr(err)
	}
	return pi
}

func (pi *PodInfo) setErr(err error) {
	if err != nil && pi.ParseError == nil {
		pi.ParseError = err
	}
}

// HasAffinity reports whether the pod has any pod (anti-)affinity term.
func (pi *PodInfo) HasAffinity() bool {
	return len(pi.RequiredAffinityTerms)+len(pi.RequiredAntiAffinityTerms)+
		len(pi.PreferredAffinityTerms)+len(pi.PreferredAntiAffinityTerms) > 0
}

func parseTerms(ns string, terms []*corev1.PodAffinityTerm, field string) ([]AffinityTerm, error) {
	out := make([]AffinityTerm, 0, len(terms))
	for i, t := range terms {
		at, err := NewAffinityTerm(ns, t)
		if err != nil {
			return nil, fmt.Errorf("spec.affinity.%s.requiredDuringSchedulingIgnoredDuringExecution[%d]: %w", field, i, err)
		}
		out = append(out, at)
	}
	return out, nil
}

func parseWeightedTerms(ns string, terms []*corev1.WeightedPodAffinityTerm, field string) ([]WeightedAffinityTerm, error) {
	out := make([]WeightedAffinityTerm, 0, len(terms))
	for i, t := range terms {
		at, err := NewAffinityTerm(ns, t.GetPodAffinityTerm())
		if err != nil {
			return nil, fmt.Errorf("spec.affinity.%s.preferredDuringSchedulingIgnoredDuringExecution[%d]: %w", field, i, err)
		}
		out = append(out, WeightedAffinityTerm{AffinityTerm: at, Weight: t.GetWeight()})
	}
	return out, nil
}

// NewAffinityTerm parses term for a pod in namespace ns.
func NewAffinityTerm(ns string, term *corev1.PodAffinityTerm) (AffinityTerm, error) {
	sel, err := LabelSelector(term.GetLabelSelector())
	if err != nil {
		return AffinityTerm{}, fmt.Errorf("labelSelector: %w", err)
	}
	at := AffinityTerm{Selector: sel, TopologyKey: term.GetTopologyKey(), Namespaces: map[string]struct{}{}}
	for _, n := range term.GetNamespaces() {
		at.Namespaces[n] = struct{}{}
	}
	if term.GetNamespaceSelector() != nil {
		if at.NamespaceSelector, err = LabelSelector(term.GetNamespaceSelector()); err != nil {
			return AffinityTerm{}, fmt.Errorf("namespaceSelector: %w", err)
		}
	} else if len(at.Namespaces) == 0 {
		at.Namespaces[ns] = struct{}{}
	}
	return at, nil
}
