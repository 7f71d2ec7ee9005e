package informer

import (
	"fmt"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/api"
)

// Index names of the indexes this package provides.
const (
	// NamespaceIndex indexes objects by metadata.namespace. Every informer
	// has it.
	NamespaceIndex = "namespace"
	// PodNodeNameIndex indexes pods by spec.nodeName; unbound pods are
	// indexed under "". Add it with
	// Options.Indexers{PodNodeNameIndex: PodNodeNameIndexFunc}.
	PodNodeNameIndex = "spec.nodeName"
)

// NamespaceIndexFunc is the index function of NamespaceIndex.
func NamespaceIndexFunc(obj any) ([]string, error) {
	o, ok := obj.(api.Object)
	if !ok {
		return nil, fmt.Errorf("informer: %T is not an api.Object", obj)
	}
	return []string{o.GetMetadata().GetNamespace()}, nil
}

// PodNodeNameIndexFunc is the index function of PodNodeNameIndex.
func PodNodeNameIndexFunc(obj any) ([]string, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, fmt.Errorf("informer: PodNodeNameIndexFunc got %T, not a pod", obj)
	}
	return []string{pod.GetSpec().GetNodeName()}, nil
}
