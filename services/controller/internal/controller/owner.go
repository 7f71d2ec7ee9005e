package controller

import (
	"google.golang.org/protobuf/proto"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/informer"
)

// ControllerRef returns the owner reference of obj that has controller set,
// or nil.
func ControllerRef(m *metav1.ObjectMeta) *metav1.OwnerReference {
	for _, r := range m.GetOwnerReferences() {
		if r.GetController() {
			return r
		}
	}
	return nil
}

// NewControllerRef is the owner reference a controller puts on what it
// creates: controller and blockOwnerDeletion set, so that a foreground
// deletion of the owner waits for it.
func NewControllerRef(owner api.Object) *metav1.OwnerReference {
	k, err := api.KindOf(owner)
	if err != nil {
		panic(err) // owners are API objects by construction
	}
	m := owner.GetMetadata()
	return &metav1.OwnerReference{
		ApiVersion: k.APIVersion(), Kind: k.Kind, Name: m.GetName(), Uid: m.GetUid(),
		Controller: proto.Bool(true), BlockOwnerDeletion: proto.Bool(true),
	}
}

// IsControlledBy reports whether m's controller reference names the object
// with uid.
func IsControlledBy(m *metav1.ObjectMeta, uid string) bool {
	r := ControllerRef(m)
	return r != nil && r.GetUid() == uid
}

// OwnerKey returns the namespace/name key of the object of kind that
// controls pod, or "" when something else (or nothing) controls it.
func OwnerKey(pod *corev1.Pod, kind string) string {
	ref := ControllerRef(pod.GetMetadata())
	if ref == nil || ref.GetKind() != kind {
		return ""
	}
	return api.Key(pod.GetMetadata().GetNamespace(), ref.GetName())
}

// OwnedPods is the pod event handler of a controller that owns pods of
// kind outright (no adoption): each event of a pod it controls queues the
// owner's key and tells exp that a create or delete it waits for was seen.
func OwnedPods(kind string, exp *Expectations, queue Queue) informer.HandlerFuncs[*corev1.Pod] {
	return informer.HandlerFuncs[*corev1.Pod]{
		AddFunc: func(p *corev1.Pod) {
			if k := OwnerKey(p, kind); k != "" {
				exp.CreationObserved(k)
				queue.Add(k)
			}
		},
		UpdateFunc: func(_, p *corev1.Pod) {
			if k := OwnerKey(p, kind); k != "" {
				if p.GetMetadata().GetDeletionTimestamp() != nil {
					exp.DeletionObserved(k, api.KeyOf(p))
				}
				queue.Add(k)
			}
		},
		DeleteFunc: func(p *corev1.Pod) {
			if k := OwnerKey(p, kind); k != "" {
				exp.DeletionObserved(k, api.KeyOf(p))
				queue.Add(k)
			}
		},
	}
}
