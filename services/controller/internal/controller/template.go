package controller

import (
	"google.golang.org/protobuf/proto"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
)

// PodFromTemplate builds a pod from template for owner: the template's labels
// and annotations, the owner as controller, in the owner's namespace. The
// template is copied, never shared.
func PodFromTemplate(template *corev1.PodTemplateSpec, owner api.Object) *corev1.Pod {
	om := owner.GetMetadata()
	tm := template.GetMetadata()
	pod := &corev1.Pod{
		Metadata: &metav1.ObjectMeta{
			Namespace:       om.GetNamespace(),
			GenerateName:    om.GetName() + "-",
			Labels:          copyMap(tm.GetLabels()),
			Annotations:     copyMap(tm.GetAnnotations()),
			OwnerReferences: []*metav1.OwnerReference{NewControllerRef(owner)},
		},
		Spec: proto.Clone(template.GetSpec()).(*corev1.PodSpec),
	}
	if pod.Spec == nil {
		pod.Spec = &corev1.PodSpec{}
	}
	return pod
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// CopyMap returns a copy of m (nil for nil).
func CopyMap(m map[string]string) map[string]string { return copyMap(m) }
