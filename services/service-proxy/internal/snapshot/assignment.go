package snapshot

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
)

// assignmentHash hashes an assignment from the fields translation sets:
// localities with their weight and priority, and endpoints with a socket
// address, a health status and a weight. Encoding the whole message costs
// several times more. It reports false for an assignment with any other
// field set, which must then be hashed from its encoding.
func assignmentHash(cla *endpointv3.ClusterLoadAssignment) (string, bool) {
	if cla.GetPolicy() != nil || len(cla.GetNamedEndpoints()) > 0 || len(cla.ProtoReflect().GetUnknown()) > 0 {
		return "", false
	}
	// A first byte 0 sets these bytes apart from any encoded message, whose
	// first byte is a tag of a field numbered 1 or more.
	size := 16 + len(cla.GetClusterName())
	for _, lle := range cla.GetEndpoints() {
		size += 32 + len(lle.GetLocality().GetRegion()) + len(lle.GetLocality().GetZone()) + 32*len(lle.GetLbEndpoints())
	}
	w := hashWriter{buf: append(make([]byte, 0, size), 0)}
	w.string(cla.GetClusterName())
	w.uint(uint64(len(cla.GetEndpoints())))
	for _, lle := range cla.GetEndpoints() {
		if lle.GetMetadata() != nil || lle.GetProximity() != nil || lle.GetLoadBalancerEndpoints() != nil || lle.GetLedsClusterLocalityConfig() != nil {
			return "", false
		}
		if loc := lle.GetLocality(); loc != nil {
			w.uint(1)
			w.string(loc.GetRegion())
			w.string(loc.GetZone())
			w.string(loc.GetSubZone())
		} else {
			w.uint(0)
		}
		w.uint32Value(lle.GetLoadBalancingWeight() != nil, lle.GetLoadBalancingWeight().GetValue())
		w.uint(uint64(lle.GetPriority()))
		w.uint(uint64(len(lle.GetLbEndpoints())))
		for _, lbe := range lle.GetLbEndpoints() {
			ep := lbe.GetEndpoint()
			if lbe.GetMetadata() != nil || ep == nil || ep.GetHealthCheckConfig() != nil || ep.GetHostname() != "" ||
				len(ep.GetAdditionalAddresses()) > 0 || ep.GetObservabilityName() != "" {
				return "", false
			}
			if !w.socketAddress(ep.GetAddress()) {
				return "", false
			}
			w.uint(uint64(lbe.GetHealthStatus()))
			w.uint32Value(lbe.GetLoadBalancingWeight() != nil, lbe.GetLoadBalancingWeight().GetValue())
		}
	}
	sum := sha256.Sum256(w.buf)
	return hex.EncodeToString(sum[:12]), true
}

// hashWriter encodes values so that no two sequences of them encode the
// same.
type hashWriter struct{ buf []byte }

func (w *hashWriter) uint(v uint64) { w.buf = binary.AppendUvarint(w.buf, v) }

func (w *hashWriter) string(s string) {
	w.uint(uint64(len(s)))
	w.buf = append(w.buf, s...)
}

func (w *hashWriter) uint32Value(set bool, v uint32) {
	if !set {
		w.uint(0)
		return
	}
	w.uint(1)
	w.uint(uint64(v))
}

// socketAddress writes a, or reports false when it is not a socket address
// with a port number.
func (w *hashWriter) socketAddress(a *corev3.Address) bool {
	sa := a.GetSocketAddress()
	if sa == nil || sa.GetNamedPort() != "" {
		return false
	}
	w.uint(uint64(sa.GetProtocol()))
	w.string(sa.GetAddress())
	w.uint(uint64(sa.GetPortValue()))
	w.string(sa.GetResolverName())
	if sa.GetIpv4Compat() {
		w.uint(1)
	} else {
		w.uint(0)
	}
	w.string(sa.GetNetworkNamespaceFilepath())
	return true
}
