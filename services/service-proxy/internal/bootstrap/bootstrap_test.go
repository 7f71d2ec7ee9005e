package bootstrap_test

import (
	"encoding/json"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	"bosun.dev/services/service-proxy/internal/bootstrap"
	"bosun.dev/services/service-proxy/internal/xds"
)

// The Envoy bootstrap reads back into Envoy's own Bootstrap message, passes
// its validators, and points ADS at the service-proxy.
func TestEnvoyYAMLRoundTrips(t *testing.T) {
	for _, tc := range []struct {
		name    string
		o       bootstrap.Options
		apiType corev3.ApiConfigSource_ApiType
		static  bool
	}{
		{"ip address, sotw", bootstrap.Options{NodeID: "envoy-1", NodeName: "node-a", XDSAddress: "10.0.0.5:18000", AdminAddress: "127.0.0.1:9901"}, corev3.ApiConfigSource_GRPC, true},
		{"host name, delta", bootstrap.Options{NodeID: "envoy-2", XDSAddress: "service-proxy.bosun-system:18000", Delta: true}, corev3.ApiConfigSource_DELTA_GRPC, false},
		{"mutual TLS", bootstrap.Options{NodeID: "envoy-3", XDSAddress: "service-proxy.bosun-system:18000",
			TLS: &bootstrap.TLSFiles{CAFile: "/pki/ca.crt", CertFile: "/pki/envoy.crt", KeyFile: "/pki/envoy.key"}}, corev3.ApiConfigSource_GRPC, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y, err := bootstrap.EnvoyYAML(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			j, err := yaml.YAMLToJSON(y)
			if err != nil {
				t.Fatal(err)
			}
			b := &bootstrapv3.Bootstrap{}
			if err := protojson.Unmarshal(j, b); err != nil {
				t.Fatalf("%v\n%s", err, y)
			}
			if err := b.ValidateAll(); err != nil {
				t.Fatal(err)
			}
			if b.GetNode().GetId() != tc.o.NodeID || b.GetDynamicResources().GetAdsConfig().GetApiType() != tc.apiType {
				t.Errorf("node %v, ADS %v", b.GetNode(), b.GetDynamicResources().GetAdsConfig())
			}
			if got := b.GetNode().GetMetadata().GetFields()[xds.NodeNameKey].GetStringValue(); got != tc.o.NodeName {
				t.Errorf("node name metadata %q, want %q", got, tc.o.NodeName)
			}
			if xds.NodeName(b.GetNode()) != map[bool]string{true: tc.o.NodeName, false: tc.o.NodeID}[tc.o.NodeName != ""] {
				t.Errorf("the service-proxy reads node name %q", xds.NodeName(b.GetNode()))
			}
			c := b.GetStaticResources().GetClusters()[0]
			sa := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
			if sa.GetPortValue() != 18000 || !strings.HasPrefix(tc.o.XDSAddress, sa.GetAddress()) {
				t.Errorf("xDS cluster points at %v", sa)
			}
			if (c.GetType().String() == "STATIC") != tc.static {
				t.Errorf("xDS cluster type %v", c.GetType())
			}
			if (b.GetAdmin() != nil) != (tc.o.AdminAddress != "") {
				t.Errorf("admin %v", b.GetAdmin())
			}
			if tc.o.TLS == nil {
				if c.GetTransportSocket() != nil {
					t.Errorf("plaintext bootstrap has a transport socket %v", c.GetTransportSocket())
				}
				return
			}
			up := &tlsv3.UpstreamTlsContext{}
			if err := c.GetTransportSocket().GetTypedConfig().UnmarshalTo(up); err != nil {
				t.Fatalf("xDS cluster's transport socket: %v", err)
			}
			common := up.GetCommonTlsContext()
			if up.GetSni() != "service-proxy.bosun-system" ||
				common.GetValidationContext().GetTrustedCa().GetFilename() != tc.o.TLS.CAFile ||
				common.GetTlsCertificates()[0].GetCertificateChain().GetFilename() != tc.o.TLS.CertFile ||
				common.GetTlsCertificates()[0].GetPrivateKey().GetFilename() != tc.o.TLS.KeyFile {
				t.Errorf("xDS cluster's TLS %v", up)
			}
		})
	}
}

func TestGRPCJSON(t *testing.T) {
	out, err := bootstrap.GRPCJSON(bootstrap.Options{NodeID: "client-1", NodeName: "node-a", XDSAddress: "127.0.0.1:18000"})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		XDSServers []struct {
			ServerURI      string   `json:"server_uri"`
			ServerFeatures []string `json:"server_features"`
		} `json:"xds_servers"`
		Node struct {
			ID       string            `json:"id"`
			Metadata map[string]string `json:"metadata"`
		} `json:"node"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.XDSServers) != 1 || got.XDSServers[0].ServerURI != "127.0.0.1:18000" || got.XDSServers[0].ServerFeatures[0] != "xds_v3" ||
		got.Node.ID != "client-1" || got.Node.Metadata[xds.NodeNameKey] != "node-a" {
		t.Fatalf("bootstrap %s", out)
	}
}

func TestBadOptions(t *testing.T) {
	for _, tc := range []struct {
		o    bootstrap.Options
		want string
	}{
		{bootstrap.Options{XDSAddress: "127.0.0.1:18000"}, "--node-id"},
		{bootstrap.Options{NodeID: "x", XDSAddress: "127.0.0.1"}, "--xds-address"},
		{bootstrap.Options{NodeID: "x", XDSAddress: "127.0.0.1:0"}, "port from 1 to 65535"},
		{bootstrap.Options{NodeID: "x", XDSAddress: ":18000"}, "--xds-address"},
		{bootstrap.Options{NodeID: "x", XDSAddress: "127.0.0.1:18000", AdminAddress: "nowhere"}, "--admin-address"},
		{bootstrap.Options{NodeID: "x", XDSAddress: "127.0.0.1:18000", TLS: &bootstrap.TLSFiles{CAFile: "ca.crt"}}, "--cert-file"},
	} {
		_, err := bootstrap.EnvoyYAML(tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one naming %s", tc.o, err, tc.want)
		}
	}
	if _, err := bootstrap.GRPCJSON(bootstrap.Options{XDSAddress: "127.0.0.1:18000"}); err == nil {
		t.Error("a gRPC bootstrap without node id was written")
	}
}
