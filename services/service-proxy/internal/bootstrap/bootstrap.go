// Package bootstrap writes the bootstrap configuration that points a proxy
// at the service-proxy: an Envoy bootstrap (YAML) and a gRPC xDS bootstrap
// (JSON, for proxyless gRPC clients, passed in GRPC_XDS_BOOTSTRAP or
// GRPC_XDS_BOOTSTRAP_CONFIG).
package bootstrap

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"

	"bosun.dev/services/service-proxy/internal/xds"
)

// XDSCluster is the name of the bootstrap's static cluster that reaches the
// service-proxy.
const XDSCluster = "xds_cluster"

// Options say which proxy the bootstrap is for and where the service-proxy is.
type Options struct {
	// NodeID is the proxy's xDS node id (required). Node ids are how the
	// service-proxy tells proxies apart; give each proxy its own.
	NodeID string
	// NodeName is the Bosun Node the proxy runs on, for locality-aware
	// Services; the node id when empty.
	NodeName string
	// Cluster is Envoy's service cluster name; "bosun" when empty.
	Cluster string
	// XDSAddress is the service-proxy's gRPC address, host:port (required).
	XDSAddress string
	// AdminAddress is Envoy's admin interface, host:port; none when empty.
	AdminAddress string
	// Delta asks Envoy for the delta (incremental) xDS variant.
	Delta bool
	// TLS, when set, reaches the service-proxy over mutual TLS: the
	// proxy's client certificate and the CA of the service-proxy's
	// serving certificate, as files the proxy reads (and re-reads).
	TLS *TLSFiles
}

// TLSFiles are the PEM files a proxy uses to reach the service-proxy over
// mutual TLS.
type TLSFiles struct {
	// CAFile verifies the service-proxy's serving certificate.
	CAFile string
	// CertFile and KeyFile are the proxy's client certificate and key.
	CertFile, KeyFile string
}

func (t *TLSFiles) check() error {
	if t == nil {
		return nil
	}
	if t.CAFile == "" || t.CertFile == "" || t.KeyFile == "" {
		return errors.New("mutual TLS needs all of --ca-file, --cert-file and --key-file")
	}
	return nil
}

func (o Options) check() (host string, port uint32, err error) {
	if o.NodeID == "" {
		return "", 0, errors.New("node id is required (--node-id)")
	}
	host, p, err := splitHostPort("xDS address (--xds-address)", o.XDSAddress)
	if err != nil {
		return "", 0, err
	}
	return host, p, o.TLS.check()
}

func splitHostPort(what, addr string) (string, uint32, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: %w", what, addr, err)
	}
	p, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || p == 0 || host == "" {
		return "", 0, fmt.Errorf("%s %q: want host:port with a port from 1 to 65535", what, addr)
	}
	return host, uint32(p), nil
}

func nodeMetadata(o Options) *structpb.Struct {
	if o.NodeName == "" {
		return nil
	}
	return &structpb.Struct{Fields: map[string]*structpb.Value{xds.NodeNameKey: structpb.NewStringValue(o.NodeName)}}
}

func address(host string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// EnvoyConfig returns the Envoy bootstrap: the node, ADS over gRPC to the
// service-proxy for clusters and listeners (and through them endpoints and
// routes), the static cluster that reaches it over HTTP/2, and the admin
// interface when asked for. It passes Envoy's own validation.
func EnvoyConfig(o Options) (*bootstrapv3.Bootstrap, error) {
	host, port, err := o.check()
	if err != nil {
		return nil, err
	}
	if o.Cluster == "" {
		o.Cluster = "bosun"
	}
	ads := func() *corev3.ConfigSource {
		return &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}, ResourceApiVersion: corev3.ApiVersion_V3}
	}
	apiType := corev3.ApiConfigSource_GRPC
	if o.Delta {
		apiType = corev3.ApiConfigSource_DELTA_GRPC
	}
	discovery := clusterv3.Cluster_STRICT_DNS
	if net.ParseIP(host) != nil {
		discovery = clusterv3.Cluster_STATIC
	}
	h2, err := anypb.New(&httpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
		}},
	})
	if err != nil {
		return nil, err
	}
	b := &bootstrapv3.Bootstrap{
		Node: &corev3.Node{Id: o.NodeID, Cluster: o.Cluster, Metadata: nodeMetadata(o)},
		DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{
			AdsConfig: &corev3.ApiConfigSource{
				ApiType:             apiType,
				TransportApiVersion: corev3.ApiVersion_V3,
				GrpcServices: []*corev3.GrpcService{{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
					EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: XDSCluster},
				}}},
				SetNodeOnFirstMessageOnly: true,
			},
			CdsConfig: ads(),
			LdsConfig: ads(),
		},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{Clusters: []*clusterv3.Cluster{{
			Name:                 XDSCluster,
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: discovery},
			ConnectTimeout:       durationpb.New(5e9),
			LoadAssignment: &endpointv3.ClusterLoadAssignment{
				ClusterName: XDSCluster,
				Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
					HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: address(host, port)}},
				}}}},
			},
			TypedExtensionProtocolOptions: map[string]*anypb.Any{"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": h2},
		}}},
	}
	if o.TLS != nil {
		ts, err := upstreamTLS(host, o.TLS)
		if err != nil {
			return nil, err
		}
		b.StaticResources.Clusters[0].TransportSocket = ts
	}
	if o.AdminAddress != "" {
		ahost, aport, err := splitHostPort("admin address (--admin-address)", o.AdminAddress)
		if err != nil {
			return nil, err
		}
		b.Admin = &bootstrapv3.Admin{Address: address(ahost, aport)}
	}
	if err := b.ValidateAll(); err != nil {
		return nil, fmt.Errorf("bootstrap does not validate: %w", err)
	}
	return b, nil
}

// upstreamTLS is the xDS cluster's transport socket: Envoy's TLS with the
// proxy's certificate, verifying the service-proxy's against the CA and,
// for a host name, sending and checking it as SNI.
func upstreamTLS(host string, t *TLSFiles) (*corev3.TransportSocket, error) {
	file := func(name string) *corev3.DataSource {
		return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: name}}
	}
	ctx := &tlsv3.UpstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
		TlsCertificates: []*tlsv3.TlsCertificate{{CertificateChain: file(t.CertFile), PrivateKey: file(t.KeyFile)}},
		ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: file(t.CAFile),
		}},
	}}
	if net.ParseIP(host) == nil {
		ctx.Sni = host
	}
	tc, err := anypb.New(ctx)
	if err != nil {
		return nil, err
	}
	return &corev3.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: tc}}, nil
}

// EnvoyYAML returns EnvoyConfig as YAML with Envoy's snake_case field names.
func EnvoyYAML(o Options) ([]byte, error) {
	b, err := EnvoyConfig(o)
	if err != nil {
		return nil, err
	}
	j, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(b)
	if err != nil {
		return nil, err
	}
	return yaml.JSONToYAML(j)
}

// GRPCJSON returns a gRPC xDS bootstrap for proxyless gRPC clients: one
// xDS server speaking xDS v3 (over mutual TLS with grpc-go's "tls" channel
// credentials when o.TLS is set, else plaintext), and the node.
func GRPCJSON(o Options) ([]byte, error) {
	if _, _, err := o.check(); err != nil {
		return nil, err
	}
	node := map[string]any{"id": o.NodeID}
	if o.NodeName != "" {
		node["metadata"] = map[string]string{xds.NodeNameKey: o.NodeName}
	}
	creds := map[string]any{"type": "insecure"}
	if o.TLS != nil {
		creds = map[string]any{"type": "tls", "config": map[string]string{
			"ca_certificate_file": o.TLS.CAFile, "certificate_file": o.TLS.CertFile, "private_key_file": o.TLS.KeyFile,
		}}
	}
	return json.MarshalIndent(map[string]any{
		"xds_servers": []any{map[string]any{
			"server_uri":      o.XDSAddress,
			"channel_creds":   []any{creds},
			"server_features": []string{"xds_v3"},
		}},
		"node": node,
	}, "", "  ")
}
