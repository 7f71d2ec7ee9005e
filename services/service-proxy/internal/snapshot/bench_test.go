package snapshot_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/services/service-proxy/internal/snapshot"
	"bosun.dev/services/service-proxy/internal/translate"
)

// LargeInput is services Services of one gRPC port, each with endpoints
// ready endpoints spread over 50 Nodes in 3 zones.
func LargeInput(services, endpoints int) translate.Input {
	var in translate.Input
	for n := 0; n < 50; n++ {
		in.Nodes = append(in.Nodes, &corev1.Node{Metadata: &metav1.ObjectMeta{
			Name: fmt.Sprintf("node-%d", n), Labels: map[string]string{translate.LabelRegion: "eu", translate.LabelZone: fmt.Sprintf("eu-%d", n%3)},
		}})
	}
	for s := 0; s < services; s++ {
		name := fmt.Sprintf("svc-%d", s)
		in.Services = append(in.Services, &corev1.Service{
			Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: &corev1.ServiceSpec{ClusterIp: fmt.Sprintf("10.96.%d.%d", s/250, s%250+1),
				Ports: []*corev1.ServicePort{{Name: "grpc", Port: 8080}}},
		})
		ss := &corev1.EndpointSubset{Ports: []*corev1.EndpointPort{{Name: "grpc", Port: 8080}}}
		for e := 0; e < endpoints; e++ {
			nodeName := fmt.Sprintf("node-%d", (s+e)%50)
			ss.Addresses = append(ss.Addresses, &corev1.EndpointAddress{Ip: fmt.Sprintf("10.%d.%d.%d", 100+e, s/250, s%250+1), NodeName: &nodeName})
		}
		in.Endpoints = append(in.Endpoints, &corev1.Endpoints{Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default"}, Subsets: []*corev1.EndpointSubset{ss}})
	}
	return in
}

// cpuTime is the CPU time the process has used, on every core: the
// benchmarks report it per build (cpu-ms/op), a figure that depends less
// on what else the machine runs than the wall-clock time does.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N)/1e6, "cpu-ms/op")
}

// BenchmarkBuild1000x10 is one full configuration build for 1,000 Services
// of 10 endpoints: translation, validation, hashing and the consistency
// check. Translation and hashing use every core (GOMAXPROCS): run it with
// -cpu 1,2 to see it on one core and on two.
func BenchmarkBuild1000x10(b *testing.B) {
	in := LargeInput(1000, 10)
	b.ReportAllocs()
	start := cpuTime(b)
	for b.Loop() {
		res := translate.Translate(in, translate.Options{})
		if len(res.Groups) != 1000 {
			b.Fatalf("%d groups", len(res.Groups))
		}
		if _, err := snapshot.FromResult(res, "", nil); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, start)
}

// BenchmarkIncrementalBuild1000x10 is the build after one Endpoints object
// of 1,000 Services changed, as the control plane does it: translate.Cache
// re-translates that Service only, the Hasher reads only its resources.
func BenchmarkIncrementalBuild1000x10(b *testing.B) {
	in := LargeInput(1000, 10)
	var cache translate.Cache
	h := snapshot.NewHasher()
	if _, err := snapshot.FromResult(cache.Translate(in, translate.Options{}), "", h); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	start := cpuTime(b)
	for b.Loop() {
		i++
		ep := proto.Clone(in.Endpoints[i%1000]).(*corev1.Endpoints)
		ep.Subsets[0].Addresses[0].Ip = fmt.Sprintf("10.250.%d.%d", i/250%250, i%250)
		in.Endpoints[i%1000] = ep
		set, err := snapshot.FromResult(cache.Translate(in, translate.Options{}), "", h)
		if err != nil {
			b.Fatal(err)
		}
		h.Forget(set)
	}
	reportCPU(b, start)
}
