package skew

import (
	"context"
	"fmt"
	"slices"
	"sync"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// The xDS resource types the watcher subscribes to.
const (
	clusterType    = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	assignmentType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
)

// ADS is one aggregated discovery stream on a service-proxy, used the way
// Envoy uses it: every Cluster (wildcard CDS), and the
// ClusterLoadAssignment of each EDS cluster, every response ACKed.
type ADS struct {
	conn   *grpc.ClientConn
	stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	node   *corev3.Node
	cancel context.CancelFunc
	done   chan struct{}

	sendMu sync.Mutex // the stream's Send is not safe for concurrent use

	mu          sync.Mutex
	clusters    map[string]*clusterv3.Cluster
	assignments map[string]*endpointv3.ClusterLoadAssignment
	edsNames    []string
	err         error
}

// WatchADS opens an ADS stream to addr (plaintext) as proxy node nodeID and
// keeps the latest Clusters and ClusterLoadAssignments until Close.
func WatchADS(addr, nodeID string) (*ADS, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		cancel()
		conn.Close()
		return nil, fmt.Errorf("opening the ADS stream to %s: %w", addr, err)
	}
	a := &ADS{
		conn: conn, stream: stream, cancel: cancel, done: make(chan struct{}),
		node:     &corev3.Node{Id: nodeID, Cluster: "bosun-skew"},
		clusters: map[string]*clusterv3.Cluster{}, assignments: map[string]*endpointv3.ClusterLoadAssignment{},
	}
	if err := a.send(&discoveryv3.DiscoveryRequest{TypeUrl: clusterType}); err != nil {
		cancel()
		conn.Close()
		return nil, fmt.Errorf("subscribing to clusters on %s: %w", addr, err)
	}
	go a.receive()
	return a, nil
}

// Close ends the stream.
func (a *ADS) Close() {
	a.cancel()
	<-a.done
	a.conn.Close()
}

func (a *ADS) send(req *discoveryv3.DiscoveryRequest) error {
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	req.Node = a.node
	return a.stream.Send(req)
}

// receive stores every response, ACKs it, and follows the EDS clusters
// with an assignment subscription, until the stream ends.
func (a *ADS) receive() {
	defer close(a.done)
	var edsVersion, edsNonce string
	for {
		resp, err := a.stream.Recv()
		if err != nil {
			a.mu.Lock()
			a.err = err
			a.mu.Unlock()
			return
		}
		switch resp.GetTypeUrl() {
		case clusterType:
			clusters := map[string]*clusterv3.Cluster{}
			var eds []string
			for _, r := range resp.GetResources() {
				c := &clusterv3.Cluster{}
				if err := r.UnmarshalTo(c); err != nil {
					a.fail(fmt.Errorf("cluster in response %s: %w", resp.GetVersionInfo(), err))
					return
				}
				clusters[c.GetName()] = c
				if c.GetType() == clusterv3.Cluster_EDS {
					name := c.GetEdsClusterConfig().GetServiceName()
					if name == "" {
						name = c.GetName()
					}
					eds = append(eds, name)
				}
			}
			slices.Sort(eds)
			a.mu.Lock()
			a.clusters = clusters
			changed := !slices.Equal(eds, a.edsNames)
			a.edsNames = eds
			a.mu.Unlock()
			if err := a.send(&discoveryv3.DiscoveryRequest{TypeUrl: clusterType, VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()}); err != nil {
				a.fail(err)
				return
			}
			if changed {
				if err := a.send(&discoveryv3.DiscoveryRequest{TypeUrl: assignmentType, ResourceNames: eds, VersionInfo: edsVersion, ResponseNonce: edsNonce}); err != nil {
					a.fail(err)
					return
				}
			}
		case assignmentType:
			got := map[string]*endpointv3.ClusterLoadAssignment{}
			for _, r := range resp.GetResources() {
				cla := &endpointv3.ClusterLoadAssignment{}
				if err := r.UnmarshalTo(cla); err != nil {
					a.fail(fmt.Errorf("assignment in response %s: %w", resp.GetVersionInfo(), err))
					return
				}
				got[cla.GetClusterName()] = cla
			}
			edsVersion, edsNonce = resp.GetVersionInfo(), resp.GetNonce()
			a.mu.Lock()
			for name, cla := range got {
				a.assignments[name] = cla
			}
			// Assignments no longer subscribed to are forgotten, as
			// Envoy forgets those of removed clusters.
			for name := range a.assignments {
				if !slices.Contains(a.edsNames, name) {
					delete(a.assignments, name)
				}
			}
			eds := a.edsNames
			a.mu.Unlock()
			if err := a.send(&discoveryv3.DiscoveryRequest{TypeUrl: assignmentType, ResourceNames: eds, VersionInfo: edsVersion, ResponseNonce: edsNonce}); err != nil {
				a.fail(err)
				return
			}
		}
	}
}

func (a *ADS) fail(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err == nil {
		a.err = err
	}
}

// Err is why the stream ended, or nil while it runs.
func (a *ADS) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// Cluster is the latest Cluster named name, if the proxy has it.
func (a *ADS) Cluster(name string) (*clusterv3.Cluster, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.clusters[name]
	return c, ok
}

// Endpoints are the addresses ("ip:port") of the latest assignment named
// name, sorted; ok is false when the proxy has been sent none.
func (a *ADS) Endpoints(name string) (addrs []string, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	cla, ok := a.assignments[name]
	if !ok {
		return nil, false
	}
	for _, l := range cla.GetEndpoints() {
		for _, e := range l.GetLbEndpoints() {
			sa := e.GetEndpoint().GetAddress().GetSocketAddress()
			addrs = append(addrs, fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()))
		}
	}
	slices.Sort(addrs)
	return addrs, true
}
