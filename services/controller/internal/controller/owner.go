package controller

import (
	"google.golang.org/protobuf/proto"

	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
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
