package scheduler

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
)

// BenchmarkScheduleCycle measures one scheduling cycle (snapshot update,
// filter, score, assume) for plain pods on 5,000 nodes, the shape of
// `bin/bench -only scheduler-plain` without the apiserver: what the
// scheduler spends per pod before its bind.
func BenchmarkScheduleCycle(b *testing.B) {
	for _, parallelism := range []int{1, 2, 16} {
		b.Run(fmt.Sprintf("nodes=5000/parallelism=%d", parallelism), func(b *testing.B) {
			s := offline(b, 1, parallelism)
			res := map[string]string{"cpu": "4", "memory": "32Gi", "pods": "110"}
			for i := range 5000 {
				name := fmt.Sprintf("node-%05d", i)
				s.cache.AddNode(&corev1.Node{
					Metadata: &metav1.ObjectMeta{Name: name, Labels: map[string]string{hostKey: name, zoneKey: fmt.Sprint("zone-", i%10)}},
					Spec:     &corev1.NodeSpec{},
					Status: &corev1.NodeStatus{Capacity: res, Allocatable: res,
						Conditions: []*corev1.NodeCondition{{Type: "Ready", Status: "True"}}},
				})
			}
			pods := make([]*corev1.Pod, b.N)
			for i := range pods {
				pods[i] = &corev1.Pod{
					Metadata: &metav1.ObjectMeta{Name: fmt.Sprintf("p-%07d", i), Namespace: "default", Uid: fmt.Sprint("uid-", i)},
					Spec: &corev1.PodSpec{SchedulerName: "default-scheduler", Containers: []*corev1.Container{{Name: "app", Image: "web:1",
						Resources: &corev1.ResourceRequirements{Requests: map[string]string{"cpu": "100m", "memory": "128Mi"}}}}},
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu := processCPU(b)
			for i := range b.N {
				if _, err := s.place(pods[i]); err != nil {
					b.Fatal(err)
				}
			}
			// On a machine whose cores are all busy (as in the end-to-end
			// benchmark) CPU time, not wall time, bounds throughput.
			b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the CPU time, user and system, the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
