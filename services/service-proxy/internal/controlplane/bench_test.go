package controlplane_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
)

// BenchmarkEndpointPropagation measures, with 1,000 Services of 10
// endpoints in a real apiserver and 1,000 xDS clients (SotW ADS streams,
// each subscribed to the assignment of svc-0 and of a Service of its own),
// the time from an Endpoints update of svc-0 being written to the
// apiserver until each client has received it. Each benchmark iteration is
// one update; run it with -benchtime=20x. It reports the p50, p99 and max
// over every client and update, and the process's memory (which holds the
// apiserver, etcd and the clients as well as the control plane).
func BenchmarkEndpointPropagation(b *testing.B) {
	const services, perService, clients, conns = 1000, 10, 1000, 20
	apiConn := startAPIServer(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	svcs := client.For[*corev1.Service](apiConn)
	epc := client.For[*corev1.Endpoints](apiConn)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	work := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range work {
				name := fmt.Sprintf("svc-%d", s)
				if _, err := svcs.Create(ctx, &corev1.Service{Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default"},
					Spec: &corev1.ServiceSpec{Ports: []*corev1.ServicePort{{Name: "grpc", Port: 8080}}}}); err != nil {
					errs <- err
					return
				}
				ss := &corev1.EndpointSubset{Ports: []*corev1.EndpointPort{{Name: "grpc", Port: 8080}}}
				for e := 0; e < perService; e++ {
					ss.Addresses = append(ss.Addresses, &corev1.EndpointAddress{Ip: fmt.Sprintf("10.%d.%d.%d", 100+e, s/250, s%250+1)})
				}
				if _, err := epc.Create(ctx, &corev1.Endpoints{Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default"}, Subsets: []*corev1.EndpointSubset{ss}}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for s := 0; s < services; s++ {
		work <- s
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}

	p := startProxy(b, apiConn)

	// got[round][client] is when the client saw round's marker address.
	var mu sync.Mutex
	got := map[int]map[int]time.Time{}
	marker := func(round int) string { return fmt.Sprintf("10.254.%d.%d", round/250, round%250+1) }
	ready := make(chan int, clients)
	grpcConns := make([]*grpc.ClientConn, conns)
	for i := range grpcConns {
		grpcConns[i] = dialPlain(b, p.addr)
	}
	for c := 0; c < clients; c++ {
		s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(grpcConns[c%conns]).StreamAggregatedResources(ctx)
		if err != nil {
			b.Fatal(err)
		}
		names := []string{"svc-0.default:8080", fmt.Sprintf("svc-%d.default:8080", c%services)}
		if err := s.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: fmt.Sprintf("client-%d", c)}, TypeUrl: resource.EndpointType, ResourceNames: names}); err != nil {
			b.Fatal(err)
		}
		go func() {
			announced := false
			for {
				resp, err := s.Recv()
				if err != nil {
					return
				}
				now := time.Now()
				for _, a := range resp.GetResources() {
					cla := &endpointv3.ClusterLoadAssignment{}
					if a.UnmarshalTo(cla) != nil || cla.GetClusterName() != "svc-0.default:8080" {
						continue
					}
					if !announced {
						announced = true
						ready <- c
					}
					for _, l := range cla.GetEndpoints() {
						for _, e := range l.GetLbEndpoints() {
							addr := e.GetEndpoint().GetAddress().GetSocketAddress().GetAddress()
							if !strings.HasPrefix(addr, "10.254.") {
								continue
							}
							mu.Lock()
							for r := range got {
								if marker(r) == addr {
									if _, seen := got[r][c]; !seen {
										got[r][c] = now
									}
								}
							}
							mu.Unlock()
						}
					}
				}
				_ = s.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResourceNames: names, VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()})
			}
		}()
	}
	for c := 0; c < clients; c++ {
		select {
		case <-ready:
		case <-time.After(60 * time.Second):
			b.Fatalf("only %d of %d clients got their first assignment", c, clients)
		}
	}

	var lat []time.Duration
	var roundMax []time.Duration
	round := 0
	b.ResetTimer()
	for b.Loop() {
		round++
		mu.Lock()
		got[round] = map[int]time.Time{}
		mu.Unlock()
		ep, err := epc.Get(ctx, "default", "svc-0")
		if err != nil {
			b.Fatal(err)
		}
		ep = proto.Clone(ep).(*corev1.Endpoints)
		ep.Subsets[0].Addresses[0].Ip = marker(round)
		start := time.Now()
		if _, err := epc.Update(ctx, ep); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			mu.Lock()
			n := len(got[round])
			mu.Unlock()
			if n == clients {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("round %d: %d of %d clients got the update", round, n, clients)
			}
			time.Sleep(time.Millisecond)
		}
		mu.Lock()
		var worst time.Duration
		for _, at := range got[round] {
			d := at.Sub(start)
			lat = append(lat, d)
			worst = max(worst, d)
		}
		mu.Unlock()
		roundMax = append(roundMax, worst)
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
	b.ReportMetric(rssMiB(), "rss-MiB")
	b.Logf("%d updates x %d clients: p50 %v p99 %v max %v; slowest client per update %v", round, clients, pct(0.5), pct(0.99), lat[len(lat)-1], roundMax)
}

func rssMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		var kb float64
		if _, err := fmt.Sscanf(line, "VmRSS: %f kB", &kb); err == nil {
			return kb / 1024
		}
	}
	return 0
}
