package defaults

import corev1 "bosun.dev/gen/bosun/core/v1"

// Secret types and default.
const secretTypeOpaque = "Opaque"

func applySecret(s *corev1.Secret) {
	if s == nil {
		return
	}
	setIfEmpty(&s.Type, secretTypeOpaque)
	// stringData is a write-only convenience: its entries win over data's,
	// exactly as in Kubernetes, and it is never stored.
	if len(s.StringData) > 0 {
		if s.Data == nil {
			s.Data = make(map[string][]byte, len(s.StringData))
		}
		for k, v := range s.StringData {
			s.Data[k] = []byte(v)
		}
	}
	s.StringData = nil
}

func applyNamespace(ns *corev1.Namespace) {
	if ns == nil {
		return
	}
	if ns.Status == nil {
		ns.Status = &corev1.NamespaceStatus{}
	}
	setIfEmpty(&ns.Status.Phase, "Active")
}

func applyEvent(ev *corev1.Event) {
	if ev == nil {
		return
	}
	setIfEmpty(&ev.Type, "Normal")
	setIfEmpty(&ev.Count, 1)
}

func applyEndpoints(ep *corev1.Endpoints) {
	if ep == nil {
		return
	}
	for _, ss := range ep.Subsets {
		if ss == nil {
			continue
		}
		for _, p := range ss.Ports {
			if p != nil {
				setIfEmpty(&p.Protocol, "TCP")
			}
		}
	}
}
