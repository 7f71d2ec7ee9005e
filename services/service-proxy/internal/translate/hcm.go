package translate

import (
	"fmt"
	"sync"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Field numbers of what httpConnectionManager sets.
const (
	hcmStatPrefix   protowire.Number = 2 // HttpConnectionManager.stat_prefix
	hcmRDS          protowire.Number = 3 // HttpConnectionManager.rds
	hcmHTTPFilters  protowire.Number = 5 // HttpConnectionManager.http_filters
	rdsConfigSource protowire.Number = 1 // Rds.config_source
	rdsRouteName    protowire.Number = 2 // Rds.route_config_name
)

// hcmParts are the encodings of the parts every HTTP connection manager
// shares: the ADS config source and the router filter.
var hcmParts = sync.OnceValue(func() (p struct{ source, router []byte }) {
	var err error
	if p.source, err = proto.Marshal(adsSource()); err == nil {
		p.router, err = proto.Marshal(routerFilter())
	}
	if err != nil {
		panic(fmt.Sprintf("translate: encoding the parts of an HTTP connection manager: %v", err))
	}
	return p
})

var hcmTypeURL = "type.googleapis.com/" + string((&hcmv3.HttpConnectionManager{}).ProtoReflect().Descriptor().FullName())

// packedHCM is mustAny(httpConnectionManager(statPrefix, routeName)),
// encoded without building and encoding the message: every listener has
// one, and encoding them was a tenth of a configuration build. The
// encoding is the one proto.Marshal gives (fields in number order, the
// oneof last, empty strings left out), which a test holds it to.
func packedHCM(statPrefix, routeName string) *anypb.Any {
	parts := hcmParts()
	appendString := func(b []byte, num protowire.Number, s string) []byte {
		if s == "" {
			return b
		}
		return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), s)
	}
	rdsLen := protowire.SizeTag(rdsConfigSource) + protowire.SizeBytes(len(parts.source))
	if routeName != "" {
		rdsLen += protowire.SizeTag(rdsRouteName) + protowire.SizeBytes(len(routeName))
	}
	b := make([]byte, 0, 16+len(statPrefix)+rdsLen+len(parts.router))
	b = appendString(b, hcmStatPrefix, statPrefix)
	b = protowire.AppendBytes(protowire.AppendTag(b, hcmHTTPFilters, protowire.BytesType), parts.router)
	// The route specifier, a oneof, comes last.
	b = protowire.AppendTag(b, hcmRDS, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(rdsLen))
	b = protowire.AppendBytes(protowire.AppendTag(b, rdsConfigSource, protowire.BytesType), parts.source)
	b = appendString(b, rdsRouteName, routeName)
	return &anypb.Any{TypeUrl: hcmTypeURL, Value: b}
}
