package xds

import (
	"context"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
)

// callbacks are go-control-plane's hooks into every stream.
type callbacks struct{ s *Server }

var _ serverv3.Callbacks = callbacks{}

func (c callbacks) OnStreamOpen(_ context.Context, id int64, _ string) error {
	c.s.streams.open(id, false)
	c.s.m.streams.WithLabelValues("sotw").Inc()
	return nil
}

func (c callbacks) OnStreamClosed(id int64, _ *corev3.Node) {
	c.s.m.streams.WithLabelValues("sotw").Dec()
	c.closed(id)
}

func (c callbacks) OnDeltaStreamOpen(_ context.Context, id int64, _ string) error {
	c.s.streams.open(id, true)
	c.s.m.streams.WithLabelValues("delta").Inc()
	return nil
}

func (c callbacks) OnDeltaStreamClosed(id int64, _ *corev3.Node) {
	c.s.m.streams.WithLabelValues("delta").Dec()
	c.closed(id)
}

func (c callbacks) closed(id int64) {
	if node, others := c.s.streams.close(id); node != "" && !others {
		c.s.nodeGone(node)
	}
}

// request records one request, serves a new node, and handles a NACK. It
// returns the version the request rejects, "" when it is not a NACK or
// the version is unknown.
func (c callbacks) request(id int64, node *corev3.Node, typeURL, nonce string, errDetail *rpcstatus.Status) string {
	nodeID, first, rejected := c.s.streams.request(id, node.GetId(), typeURL, nonce, errDetail != nil)
	if first && nodeID != "" {
		c.s.nodeSeen(node)
	}
	if errDetail != nil {
		c.s.m.nacks.WithLabelValues(shortType(typeURL)).Inc()
		c.s.log.Warn("proxy rejected configuration", "node", nodeID, "type", shortType(typeURL),
			"version", rejected, "error", errDetail.GetMessage())
	}
	return rejected
}

func (c callbacks) OnStreamRequest(id int64, req *discoveryv3.DiscoveryRequest) error {
	if rejected := c.request(id, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail()); rejected != "" {
		// A NACK carries the last version the proxy accepted, so the
		// cache would send the rejected one straight back. Tell it the
		// proxy has seen the rejected version: the proxy hears again only
		// when the configuration changes.
		req.VersionInfo = rejected
	}
	return nil
}

func (c callbacks) OnStreamResponse(_ context.Context, id int64, _ *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
	c.s.streams.response(id, resp.GetNonce(), resp.GetTypeUrl(), resp.GetVersionInfo())
	c.s.m.responses.WithLabelValues(shortType(resp.GetTypeUrl()), "sotw").Inc()
}

func (c callbacks) OnStreamDeltaRequest(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
	// The delta cache remembers what it sent, not what was accepted, so a
	// NACK is never answered with a resend.
	c.request(id, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail())
	return nil
}

func (c callbacks) OnStreamDeltaResponse(id int64, _ *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
	c.s.streams.response(id, resp.GetNonce(), resp.GetTypeUrl(), resp.GetSystemVersionInfo())
	c.s.m.responses.WithLabelValues(shortType(resp.GetTypeUrl()), "delta").Inc()
}

func (c callbacks) OnFetchRequest(context.Context, *discoveryv3.DiscoveryRequest) error { return nil }

func (c callbacks) OnFetchResponse(*discoveryv3.DiscoveryRequest, *discoveryv3.DiscoveryResponse) {}
