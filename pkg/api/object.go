package api

import (
	"google.golang.org/protobuf/proto"

	metav1 "bosun.dev/gen/bosun/meta/v1"
)

// Object is a stored Bosun object: a generated message with metadata.
type Object interface {
	proto.Message
	GetMetadata() *metav1.ObjectMeta
}

// Meta returns obj's metadata, first giving obj an empty one when it has none,
// so that callers may always write through the result.
func Meta(obj Object) *metav1.ObjectMeta {
	if m := obj.GetMetadata(); m != nil {
		return m
	}
	msg := obj.ProtoReflect()
	fd := msg.Descriptor().Fields().ByName("metadata")
	m := &metav1.ObjectMeta{}
	msg.Set(fd, protoreflectValueOf(m))
	return m
}

// Key is "namespace/name", or "name" for cluster-scoped objects: the key
// caches and work queues use.
func Key(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// KeyOf is Key for an object.
func KeyOf(obj Object) string {
	m := obj.GetMetadata()
	return Key(m.GetNamespace(), m.GetName())
}
