package framework

import (
	"k8s.io/apimachinery/pkg/api/resource"

	corev1 "bosun.dev/gen/bosun/core/v1"
)

// Resource names the scheduler accounts for.
const (
	ResourceCPU              = "cpu"
	ResourceMemory           = "memory"
	ResourceEphemeralStorage = "ephemeral-storage"
	ResourcePods             = "pods"
)

// Requests assumed for scoring when a container requests nothing, as in
// Kubernetes, so that best-effort pods still spread.
const (
	DefaultMilliCPURequest int64 = 100               // 0.1 core
	DefaultMemoryRequest   int64 = 200 * 1024 * 1024 // 200 MiB
)

// Resource is an amount of each resource the scheduler accounts for.
type Resource struct {
	MilliCPU         int64
	Memory           int64
	EphemeralStorage int64
	// AllowedPodNumber is the pod capacity (allocatable "pods") of a node.
	AllowedPodNumber int64
}

// Add adds r2 to r.
func (r *Resource) Add(r2 Resource) {
	r.MilliCPU += r2.MilliCPU
	r.Memory += r2.Memory
	r.EphemeralStorage += r2.EphemeralStorage
	r.AllowedPodNumber += r2.AllowedPodNumber
}

// Sub subtracts r2 from r.
func (r *Resource) Sub(r2 Resource) {
	r.MilliCPU -= r2.MilliCPU
	r.Memory -= r2.Memory
	r.EphemeralStorage -= r2.EphemeralStorage
	r.AllowedPodNumber -= r2.AllowedPodNumber
}

// ResourceList parses a map of quantities, such as a node's allocatable.
// Unparsable values count as zero: the apiserver validates them.
func ResourceList(m map[string]string) Resource {
	var r Resource
	for name, v := range m {
		q, err := resource.ParseQuantity(v)
		if err != nil {
			continue
		}
		switch name {
		case ResourceCPU:
			r.MilliCPU = q.MilliValue()
		case ResourceMemory:
			r.Memory = q.Value()
		case ResourceEphemeralStorage:
			r.EphemeralStorage = q.Value()
		case ResourcePods:
			r.AllowedPodNumber = q.Value()
		}
	}
	return r
}

// PodRequests is what a pod requests: the sum over its containers, or the
// largest init container's request when that is larger (init containers run
// one at a time, before the others). nonZero uses the default requests for
// containers that request no cpu or memory, for scoring.
func PodRequests(spec *corev1.PodSpec) (req, nonZero Resource) {
	for _, c := range spec.GetContainers() {
		r := ResourceList(c.GetResources().GetRequests())
		req.Add(r)
		nonZero.Add(withDefaults(r))
	}
	for _, c := range spec.GetInitContainers() {
		r := ResourceList(c.GetResources().GetRequests())
		req = maxResource(req, r)
		nonZero = maxResource(nonZero, withDefaults(r))
	}
	return req, nonZero
}

func withDefaults(r Resource) Resource {
	if r.MilliCPU == 0 {
		r.MilliCPU = DefaultMilliCPURequest
	}
	if r.Memory == 0 {
		r.Memory = DefaultMemoryRequest
	}
	return r
}

func maxResource(a, b Resource) Resource {
	return Resource{
		MilliCPU:         max(a.MilliCPU, b.MilliCPU),
		Memory:           max(a.Memory, b.Memory),
		EphemeralStorage: max(a.EphemeralStorage, b.EphemeralStorage),
		AllowedPodNumber: max(a.AllowedPodNumber, b.AllowedPodNumber),
	}
}
