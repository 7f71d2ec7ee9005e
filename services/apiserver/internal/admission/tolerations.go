package admission

import (
	"context"

	corev1 "bosun.dev/gen/bosun/core/v1"
)

// DefaultTolerationsName is the DefaultTolerations plugin's name.
const DefaultTolerationsName = "DefaultTolerations"

// The taints the health-checker puts on nodes that stop being ready.
const (
	TaintNotReady    = "node.kubernetes.io/not-ready"
	TaintUnreachable = "node.kubernetes.io/unreachable"
)

// DefaultTolerations gives every new pod a NoExecute toleration of the
// not-ready and unreachable taints for Seconds, unless the pod already
// tolerates that taint: its pods then stay that long on a node that stops
// answering before they are evicted, as in Kubernetes.
type DefaultTolerations struct {
	Seconds int64
}

var _ Mutator = DefaultTolerations{}

// NewDefaultTolerations returns the plugin; seconds <= 0 means 300.
func NewDefaultTolerations(seconds int64) DefaultTolerations {
	if seconds <= 0 {
		seconds = 300
	}
	return DefaultTolerations{Seconds: seconds}
}

// Name implements Plugin.
func (DefaultTolerations) Name() string { return DefaultTolerationsName }

// Mutate implements Mutator.
func (d DefaultTolerations) Mutate(_ context.Context, r *Request) error {
	pod, ok := r.Object.(*corev1.Pod)
	if !ok || r.Operation != Create {
		return nil
	}
	if pod.Spec == nil {
		pod.Spec = &corev1.PodSpec{}
	}
	for _, key := range []string{TaintNotReady, TaintUnreachable} {
		if tolerates(pod.Spec.Tolerations, key) {
			continue
		}
		secs := d.Seconds
		pod.Spec.Tolerations = append(pod.Spec.Tolerations, &corev1.Toleration{
			Key: key, Operator: "Exists", Effect: "NoExecute", TolerationSeconds: &secs,
		})
	}
	return nil
}

func tolerates(ts []*corev1.Toleration, key string) bool {
	for _, t := range ts {
		if (t.GetEffect() == "" || t.GetEffect() == "NoExecute") &&
			(t.GetKey() == key || (t.GetKey() == "" && t.GetOperator() == "Exists")) {
			return true
		}
	}
	return false
}
