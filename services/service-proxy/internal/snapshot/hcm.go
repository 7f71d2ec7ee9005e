package snapshot

import (
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of the parts of an encoded HttpConnectionManager that
// hcmRoutes reads.
const (
	hcmRDS            protowire.Number = 3  // rds: Rds
	hcmRouteConfig    protowire.Number = 4  // route_config: RouteConfiguration
	hcmHTTPFilters    protowire.Number = 5  // http_filters: repeated HttpFilter
	hcmScopedRoutes   protowire.Number = 31 // scoped_routes: ScopedRoutes
	rdsRouteName      protowire.Number = 2  // Rds.route_config_name
	filterTypedConfig protowire.Number = 4  // HttpFilter.typed_config
	filterDiscovery   protowire.Number = 5  // HttpFilter.config_discovery
)

// hcmRoutes reads from an encoded HttpConnectionManager the name of the
// route configuration it takes over RDS and whether its last HTTP filter
// has a typed_config, without decoding the rest: decoding every listener's
// manager is a tenth of a configuration build. It reports false for
// anything but one RDS route specifier and well-formed filters, which the
// caller must then decode whole.
func hcmRoutes(b []byte) (route string, lastFilterTyped, ok bool) {
	rdsSeen, filters := false, 0
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", false, false
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if num == hcmRDS || num == hcmRouteConfig || num == hcmHTTPFilters || num == hcmScopedRoutes {
				return "", false, false
			}
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return "", false, false
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return "", false, false
		}
		b = b[n:]
		switch num {
		case hcmRouteConfig, hcmScopedRoutes:
			return "", false, false
		case hcmRDS:
			if rdsSeen { // a repeated message field merges: leave it to the decoder
				return "", false, false
			}
			rdsSeen = true
			if route, ok = messageString(v, rdsRouteName); !ok {
				return "", false, false
			}
		case hcmHTTPFilters:
			filters++
			if lastFilterTyped, ok = lastOneofIs(v, filterTypedConfig, filterDiscovery); !ok {
				return "", false, false
			}
		}
	}
	return route, filters > 0 && lastFilterTyped, rdsSeen
}

// messageString returns the last value of string field num of encoded
// message b, "" when it has none.
func messageString(b []byte, num protowire.Number) (string, bool) {
	var out string
	for len(b) > 0 {
		fnum, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", false
		}
		b = b[n:]
		if fnum == num {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 || typ != protowire.BytesType || !utf8.Valid(v) {
				return "", false
			}
			out, b = string(v), b[n:]
			continue
		}
		if n = protowire.ConsumeFieldValue(fnum, typ, b); n < 0 {
			return "", false
		}
		b = b[n:]
	}
	return out, true
}

// lastOneofIs reports whether the last of the oneof fields is and other
// present in encoded message b is is.
func lastOneofIs(b []byte, is, other protowire.Number) (bool, bool) {
	last := protowire.Number(0)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false, false
		}
		b = b[n:]
		if num == is || num == other {
			last = num
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return false, false
		}
		b = b[n:]
	}
	return last == is, true
}
