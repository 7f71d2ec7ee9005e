package translate

import (
	"strings"
	"testing"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
)

// packedHCM packs httpConnectionManager, whatever the lengths of the
// names.
func TestPackedHCMIsTheManager(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, names := range [][2]string{
		{"web.default:80", "web.default:80"}, {"10.96.0.1_80", "web.default:80"}, {"", "r"}, {"s", ""}, {"", ""}, {long, long}, {"ünïcode", "名前"},
	} {
		want := httpConnectionManager(names[0], names[1])
		packed := packedHCM(names[0], names[1])
		if packed.GetTypeUrl() != mustAny(want).GetTypeUrl() {
			t.Errorf("%q: type URL %q, want %q", names, packed.GetTypeUrl(), mustAny(want).GetTypeUrl())
		}
		got := &hcmv3.HttpConnectionManager{}
		if err := proto.Unmarshal(packed.GetValue(), got); err != nil {
			t.Fatalf("%q: %v", names, err)
		}
		if !proto.Equal(got, want) {
			t.Errorf("%q: packed\n%v\nwant\n%v", names, got, want)
		}
	}
}
