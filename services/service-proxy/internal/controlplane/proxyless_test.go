package controlplane_test

import (
	"context"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
)

// A proxyless gRPC client (grpc-go's own xDS client, state of the world)
// dialing xds:///echo.default reaches every ready backend of the Service in
// turn; a backend that turns not ready stops getting traffic and a new one
// starts getting it without a failed request, through a whole rolling
// replacement; deleting the Service makes the client fail cleanly.
func TestProxylessGRPCFollowsEndpoints(t *testing.T) {
	apiConn := startAPIServer(t)
	p := startProxy(t, apiConn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	services := client.For[*corev1.Service](apiConn)
	eps := client.For[*corev1.Endpoints](apiConn)

	b1, b2, b3 := startBackend(t, "b1"), startBackend(t, "b2"), startBackend(t, "b3")
	if _, err := services.Create(ctx, service("echo", nil, &corev1.ServicePort{Name: "grpc", Port: 50051})); err != nil {
		t.Fatal(err)
	}
	ep, err := eps.Create(ctx, endpoints("echo", "grpc", []*backend{b1, b2, b3}, nil))
	if err != nil {
		t.Fatal(err)
	}
	conn := dialXDS(t, p.addr, "client-1", "echo.default")

	// Round robin is exact once every subchannel is ready: wait until a
	// batch reaches all three, then count a fresh batch.
	spreadOver := func(want ...string) {
		t.Helper()
		eventually(t, 30*time.Second, func() error {
			got, err := batch(ctx, conn, 3*len(want))
			if err != nil {
				return err
			}
			if len(got) != len(want) {
				return errorf("batch reached %s, want exactly %v", names(got), want)
			}
			for _, w := range want {
				if got[w] == 0 {
					return errorf("batch reached %s, want %v", names(got), want)
				}
			}
			return nil
		})
		got, err := batch(ctx, conn, 10*len(want))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if got[w] != 10 {
				t.Fatalf("round robin over %v: got %s, want 10 each", want, names(got))
			}
		}
	}
	spreadOver("b1", "b2", "b3")

	// b3 turns not ready: traffic stops reaching it, and nothing fails. The
	// load runs on a client of its own so the batches' counts stay exact.
	l := startLoad(dialXDS(t, p.addr, "client-2", "echo.default"))
	ep.Subsets = endpoints("echo", "grpc", []*backend{b1, b2}, []*backend{b3}).Subsets
	if ep, err = eps.Update(ctx, ep); err != nil {
		t.Fatal(err)
	}
	spreadOver("b1", "b2")

	// A rolling replacement: b4 comes up ready, then b1 goes not ready,
	// leaves the Endpoints and stops; no request may fail throughout.
	b4 := startBackend(t, "b4")
	ep.Subsets = endpoints("echo", "grpc", []*backend{b1, b2, b4}, []*backend{b3}).Subsets
	if ep, err = eps.Update(ctx, ep); err != nil {
		t.Fatal(err)
	}
	spreadOver("b1", "b2", "b4")
	ep.Subsets = endpoints("echo", "grpc", []*backend{b2, b4}, []*backend{b1, b3}).Subsets
	if ep, err = eps.Update(ctx, ep); err != nil {
		t.Fatal(err)
	}
	spreadOver("b2", "b4")
	ep.Subsets = endpoints("echo", "grpc", []*backend{b2, b4}, []*backend{b3}).Subsets
	if _, err = eps.Update(ctx, ep); err != nil {
		t.Fatal(err)
	}
	b1.stop()
	spreadOver("b2", "b4")
	ok, failures := l.stop()
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed during the changes; first: %v", len(failures), ok+len(failures), failures[0])
	}
	if ok == 0 {
		t.Fatal("the load sent no request")
	}
	t.Logf("%d requests during readiness changes and the rolling replacement, none failed", ok)

	// Deleting the Service: the client is told the listener is gone and
	// fails fast with UNAVAILABLE instead of hanging.
	if _, err := services.Delete(ctx, "default", "echo", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := eps.Delete(ctx, "default", "echo", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		defer rcancel()
		_, err := batchNoWait(rctx, conn)
		switch status.Code(err) {
		case codes.Unavailable:
			return nil
		case codes.OK:
			return errorf("RPC still succeeds after the Service was deleted")
		default:
			return errorf("RPC after delete failed with %v, want UNAVAILABLE", err)
		}
	})

	// Created again, the Service is found again by the same channel.
	if _, err := services.Create(ctx, service("echo", nil, &corev1.ServicePort{Name: "grpc", Port: 50051})); err != nil {
		t.Fatal(err)
	}
	if _, err := eps.Create(ctx, endpoints("echo", "grpc", []*backend{b2}, nil)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		got, err := batch(ctx, conn, 3)
		if err != nil {
			return err
		}
		if got["b2"] != 3 {
			return errorf("after re-creation the channel reached %s, want b2", names(got))
		}
		return nil
	})

	if got := p.counter(t, "service_proxy_xds_pushes_total", map[string]string{"variant": "sotw"}); got == 0 {
		t.Error("service_proxy_xds_pushes_total{variant=sotw} is 0")
	}
	if got := p.counter(t, "service_proxy_xds_nacks_total", nil); got != 0 {
		t.Errorf("grpc-go rejected %v responses; logs:\n%s", got, p.logs.String())
	}
}

// Two control-plane replicas on one apiserver serve the same configuration,
// clusters, listeners and routes under the same versions, so a client that
// moves between them sees no change.
func TestReplicasServeTheSameConfiguration(t *testing.T) {
	apiConn := startAPIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := client.For[*corev1.Service](apiConn).Create(ctx, service("web", nil, &corev1.ServicePort{Name: "http", Port: 80})); err != nil {
		t.Fatal(err)
	}
	ep := &corev1.Endpoints{
		Metadata: &metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Subsets: []*corev1.EndpointSubset{{
			Addresses: []*corev1.EndpointAddress{{Ip: "10.244.1.5"}, {Ip: "10.244.2.7"}},
			Ports:     []*corev1.EndpointPort{{Name: "http", Port: 8080}},
		}},
	}
	if _, err := client.For[*corev1.Endpoints](apiConn).Create(ctx, ep); err != nil {
		t.Fatal(err)
	}
	a, b := startProxy(t, apiConn), startProxy(t, apiConn)
	fetch := func(p *proxy) map[string]string {
		s := openADS(t, ctx, p.addr)
		out := map[string]string{}
		for _, typ := range allTypes {
			var resp = sotwGet(t, ctx, s, "replica-client", typ, nil, func(r discoveryResponse) bool { return len(r.GetResources()) > 1 || typ != clusterType })
			// Assignments come from a shared cache with versions of its own;
			// their content must match. Every other type's version is a
			// hash of its content and must match too.
			out[typ] = resourceDigest(t, resp)
			if typ != resource.EndpointType {
				out[typ] = resp.GetVersionInfo() + " " + out[typ]
			}
		}
		return out
	}
	eventually(t, 30*time.Second, func() error {
		fa, fb := fetch(a), fetch(b)
		for typ, v := range fa {
			if fb[typ] != v {
				return errorf("%s: replica A serves %q, replica B %q", typ, v, fb[typ])
			}
		}
		return nil
	})
}

// grpc-go accepts every load-balancing choice a Service can make, and
// ClientIP session affinity keeps a whole channel on one backend.
func TestProxylessLoadBalancingChoices(t *testing.T) {
	apiConn := startAPIServer(t)
	p := startProxy(t, apiConn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	services := client.For[*corev1.Service](apiConn)
	eps := client.For[*corev1.Endpoints](apiConn)
	backends := []*backend{startBackend(t, "c1"), startBackend(t, "c2"), startBackend(t, "c3")}

	sticky := service("sticky", nil, &corev1.ServicePort{Name: "grpc", Port: 50051})
	sticky.Spec.SessionAffinity = "ClientIP"
	for _, svc := range []*corev1.Service{
		sticky,
		service("fewest", map[string]string{"service-proxy.bosun.dev/lb-policy": "least-request"}, &corev1.ServicePort{Name: "grpc", Port: 50051}),
		service("hashed", map[string]string{"service-proxy.bosun.dev/lb-policy": "ring-hash"}, &corev1.ServicePort{Name: "grpc", Port: 50051}),
		service("retried", map[string]string{"service-proxy.bosun.dev/retries": "2", "service-proxy.bosun.dev/outlier-consecutive-errors": "5"}, &corev1.ServicePort{Name: "grpc", Port: 50051}),
	} {
		if _, err := services.Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
		if _, err := eps.Create(ctx, endpoints(svc.Metadata.Name, "grpc", backends, nil)); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"fewest", "hashed", "retried"} {
		conn := dialXDS(t, p.addr, "client-"+name, name+".default:50051")
		if _, err := batch(ctx, conn, 10); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// Every request of one channel lands on the same backend.
	conn := dialXDS(t, p.addr, "client-sticky", "sticky.default")
	got, err := batch(ctx, conn, 30)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("ClientIP affinity spread one channel over %s", names(got))
	}
	if n := p.counter(t, "service_proxy_xds_nacks_total", nil); n != 0 {
		t.Fatalf("grpc-go rejected %v responses; logs:\n%s", n, p.logs.String())
	}
}

// Proxyless clients on different Nodes are each sent their own
// configuration: for a Service that prefers local endpoints, a client on n1
// reaches only the backend on n1 and a client on n2 only the one on n2,
// while a client of a Service without the preference reaches both.
func TestProxylessClientsPreferTheirNode(t *testing.T) {
	apiConn := startAPIServer(t)
	p := startProxy(t, apiConn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, n := range []struct{ name, zone string }{{"n1", "zone-a"}, {"n2", "zone-b"}} {
		if _, err := client.For[*corev1.Node](apiConn).Create(ctx, &corev1.Node{Metadata: &metav1.ObjectMeta{
			Name: n.name, Labels: map[string]string{"topology.kubernetes.io/zone": n.zone},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	onN1, onN2 := startBackend(t, "on-n1"), startBackend(t, "on-n2")
	nodeOf := map[string]string{"on-n1": "n1", "on-n2": "n2"}
	for _, svc := range []*corev1.Service{
		service("local", map[string]string{"service-proxy.bosun.dev/prefer-local": "true"}, &corev1.ServicePort{Name: "grpc", Port: 50051}),
		service("anywhere", nil, &corev1.ServicePort{Name: "grpc", Port: 50051}),
	} {
		if _, err := client.For[*corev1.Service](apiConn).Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
		ep := onNodes(endpoints(svc.Metadata.Name, "grpc", []*backend{onN1, onN2}, nil), nodeOf)
		if _, err := client.For[*corev1.Endpoints](apiConn).Create(ctx, ep); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ node, target, want string }{
		{"n1", "local.default", "on-n1"},
		{"n2", "local.default", "on-n2"},
	} {
		conn := dialXDSFrom(t, p.addr, "client-on-"+tc.node, tc.node, tc.target)
		got, err := batch(ctx, conn, 20)
		if err != nil {
			t.Fatal(err)
		}
		if got[tc.want] != 20 {
			t.Errorf("client on %s: %s, want all 20 on %s", tc.node, names(got), tc.want)
		}
	}
	// Without the preference, the same client spreads over both Nodes
	// (two localities of one endpoint each).
	conn := dialXDSFrom(t, p.addr, "client-on-n1-b", "n1", "anywhere.default")
	eventually(t, 30*time.Second, func() error {
		got, err := batch(ctx, conn, 20)
		if err != nil {
			return err
		}
		if got["on-n1"] == 0 || got["on-n2"] == 0 {
			return errorf("a Service without locality preference reached only %s", names(got))
		}
		return nil
	})
}
