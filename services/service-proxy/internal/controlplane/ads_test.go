package controlplane_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/protobuf/proto"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/client"
)

type discoveryResponse = *discoveryv3.DiscoveryResponse

const clusterType = resource.ClusterType

var allTypes = []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// batchNoWait sends one RPC that fails rather than wait for a ready backend.
func batchNoWait(ctx context.Context, conn *grpc.ClientConn) (*testpb.SimpleResponse, error) {
	return testgrpc.NewTestServiceClient(conn).UnaryCall(ctx, &testpb.SimpleRequest{})
}

func dialPlain(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func openADS(t *testing.T, ctx context.Context, addr string) discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient {
	t.Helper()
	s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(dialPlain(t, addr)).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// recvWithin receives one response, failing the test after timeout.
func recvWithin[T any](t *testing.T, timeout time.Duration, recv func() (T, error)) T {
	t.Helper()
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() { v, err := recv(); ch <- result{v, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.v
	case <-time.After(timeout):
		t.Fatalf("no response within %v", timeout)
		panic("unreachable")
	}
}

// sotwGet subscribes stream s to names of type typ and returns the first
// response accept takes, acknowledging every response it reads.
func sotwGet(t *testing.T, ctx context.Context, s discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient,
	nodeID, typ string, names []string, accept func(discoveryResponse) bool) discoveryResponse {
	t.Helper()
	if err := s.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: nodeID}, TypeUrl: typ, ResourceNames: names}); err != nil {
		t.Fatal(err)
	}
	for {
		resp := recvWithin(t, 30*time.Second, s.Recv)
		if resp.GetTypeUrl() != typ {
			continue
		}
		if err := s.Send(&discoveryv3.DiscoveryRequest{TypeUrl: typ, ResourceNames: names, VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()}); err != nil {
			t.Fatal(err)
		}
		if accept(resp) {
			return resp
		}
	}
}

func resourceDigest(t *testing.T, resp discoveryResponse) string {
	t.Helper()
	var parts []string
	for _, a := range resp.GetResources() {
		m, err := a.UnmarshalNew()
		if err != nil {
			t.Fatal(err)
		}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		parts = append(parts, hex.EncodeToString(sum[:8]))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// A proxy that rejects a response is logged with its node id and error and
// counted, and is not sent the rejected version again: the next response
// it gets carries the next configuration.
func TestNACKIsLoggedCountedAndNotResent(t *testing.T) {
	apiConn := startAPIServer(t)
	p := startProxy(t, apiConn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	services := client.For[*corev1.Service](apiConn)
	svc, err := services.Create(ctx, service("nacked", nil, &corev1.ServicePort{Name: "grpc", Port: 9000}))
	if err != nil {
		t.Fatal(err)
	}
	s := openADS(t, ctx, p.addr)
	names := []string{"nacked.default"}
	if err := s.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "picky-node"}, TypeUrl: resource.ListenerType, ResourceNames: names}); err != nil {
		t.Fatal(err)
	}
	var first discoveryResponse
	for first == nil || len(first.GetResources()) == 0 {
		first = recvWithin(t, 30*time.Second, s.Recv)
		if len(first.GetResources()) == 0 { // before the Service was seen: accept and wait
			if err := s.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resource.ListenerType, ResourceNames: names, VersionInfo: first.GetVersionInfo(), ResponseNonce: first.GetNonce()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Send(&discoveryv3.DiscoveryRequest{
		TypeUrl: resource.ListenerType, ResourceNames: names, ResponseNonce: first.GetNonce(),
		ErrorDetail: &rpcstatus.Status{Code: 3, Message: "listener nacked.default: unsupported filter"},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if got := p.counter(t, "service_proxy_xds_nacks_total", map[string]string{"type": "Listener"}); got != 1 {
			return errorf("service_proxy_xds_nacks_total{type=Listener} = %v, want 1", got)
		}
		return nil
	})
	logs := p.logs.String()
	if !strings.Contains(logs, `"node":"picky-node"`) || !strings.Contains(logs, "unsupported filter") {
		t.Fatalf("the NACK was not logged with node id and error; logs:\n%s", logs)
	}

	// Change the Service's listeners; the next response must be the new
	// version, not the rejected one again.
	svc.Spec.Ports = append(svc.Spec.Ports, &corev1.ServicePort{Name: "admin", Port: 9001})
	if _, err := services.Update(ctx, svc); err != nil {
		t.Fatal(err)
	}
	next := recvWithin(t, 30*time.Second, s.Recv)
	if next.GetVersionInfo() == first.GetVersionInfo() {
		t.Fatalf("the rejected version %q was sent again", first.GetVersionInfo())
	}
	if got := p.counter(t, "service_proxy_xds_nacks_total", nil); got != 1 {
		t.Fatalf("service_proxy_xds_nacks_total = %v, want 1", got)
	}
}

// The delta variant of ADS: a proxy subscribed to a Service's endpoints is
// sent only what changed, is told when the Service goes, and a NACK is not
// answered with a resend.
func TestDeltaADS(t *testing.T) {
	apiConn := startAPIServer(t)
	p := startProxy(t, apiConn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	services := client.For[*corev1.Service](apiConn)
	eps := client.For[*corev1.Endpoints](apiConn)
	if _, err := services.Create(ctx, service("api", nil, &corev1.ServicePort{Name: "grpc", Port: 7000})); err != nil {
		t.Fatal(err)
	}
	b1, b2 := &backend{name: "x1", port: 7001}, &backend{name: "x2", port: 7002}
	ep, err := eps.Create(ctx, endpoints("api", "grpc", []*backend{b1}, nil))
	if err != nil {
		t.Fatal(err)
	}

	s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(dialPlain(t, p.addr)).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const name, listener = "api.default:7000", "api.default"
	if err := s.Send(&discoveryv3.DeltaDiscoveryRequest{
		Node: &corev3.Node{Id: "delta-node"}, TypeUrl: resource.EndpointType, ResourceNamesSubscribe: []string{name},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resource.ListenerType, ResourceNamesSubscribe: []string{listener}}); err != nil {
		t.Fatal(err)
	}
	sawListener := false
	// recv reads responses, acknowledging each, until one holds name with
	// want endpoints.
	recv := func(want int) *discoveryv3.DeltaDiscoveryResponse {
		t.Helper()
		for {
			resp := recvWithin(t, 30*time.Second, s.Recv)
			if err := s.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()}); err != nil {
				t.Fatal(err)
			}
			for _, r := range resp.GetResources() {
				if resp.GetTypeUrl() == resource.ListenerType {
					sawListener = sawListener || r.GetName() == listener
					continue
				}
				cla := &endpointv3.ClusterLoadAssignment{}
				if err := r.GetResource().UnmarshalTo(cla); err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, l := range cla.GetEndpoints() {
					n += len(l.GetLbEndpoints())
				}
				if r.GetName() == name && n == want {
					return resp
				}
			}
		}
	}
	first := recv(1)
	if len(first.GetResources()) != 1 {
		t.Fatalf("delta response has %d resources, want only the subscribed one", len(first.GetResources()))
	}

	ep.Subsets = endpoints("api", "grpc", []*backend{b1, b2}, nil).Subsets
	if ep, err = eps.Update(ctx, ep); err != nil {
		t.Fatal(err)
	}
	second := recv(2)
	if !sawListener {
		t.Fatalf("the listener %s did not arrive over delta", listener)
	}
	if v1, v2 := first.GetResources()[0].GetVersion(), second.GetResources()[0].GetVersion(); v1 == v2 {
		t.Fatalf("resource version did not change: %q", v1)
	}

	// NACK the next change; the one after must still arrive, and no
	// resend of the rejected one before it.
	ep.Subsets = endpoints("api", "grpc", []*backend{b2}, nil).Subsets
	if ep, err = eps.Update(ctx, ep); err != nil {
		t.Fatal(err)
	}
	rejected := recvWithin(t, 30*time.Second, s.Recv)
	if err := s.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: rejected.GetTypeUrl(), ResponseNonce: rejected.GetNonce(),
		ErrorDetail: &rpcstatus.Status{Code: 3, Message: "endpoint rejected"}}); err != nil {
		t.Fatal(err)
	}
	ep.Subsets = endpoints("api", "grpc", []*backend{b1, b2}, nil).Subsets
	if _, err = eps.Update(ctx, ep); err != nil {
		t.Fatal(err)
	}
	after := recvWithin(t, 30*time.Second, s.Recv)
	if len(after.GetResources()) != 1 || after.GetResources()[0].GetVersion() == rejected.GetResources()[0].GetVersion() {
		t.Fatalf("after a NACK the proxy got %v, want the next change", after)
	}
	if err := s.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: after.GetTypeUrl(), ResponseNonce: after.GetNonce()}); err != nil {
		t.Fatal(err)
	}
	if got := p.counter(t, "service_proxy_xds_nacks_total", map[string]string{"type": "ClusterLoadAssignment"}); got != 1 {
		t.Fatalf("service_proxy_xds_nacks_total{type=ClusterLoadAssignment} = %v, want 1", got)
	}

	// Deleting the Service removes the listener and the assignment.
	if _, err := services.Delete(ctx, "default", "api", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	removed := map[string]bool{}
	for !removed[name] || !removed[listener] {
		resp := recvWithin(t, 30*time.Second, s.Recv)
		if err := s.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()}); err != nil {
			t.Fatal(err)
		}
		for _, r := range resp.GetRemovedResources() {
			removed[r] = true
		}
	}
	if got := p.counter(t, "service_proxy_xds_pushes_total", map[string]string{"variant": "delta"}); got < 4 {
		t.Fatalf("service_proxy_xds_pushes_total{variant=delta} = %v, want at least 4", got)
	}
}
