package authn

import (
	"context"
	"net/http"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// Metadata keys the REST gateway forwards an identity with.
const (
	MetadataForwardedUser  = "x-bosun-forwarded-user"
	MetadataForwardedGroup = "x-bosun-forwarded-group"
	MetadataGatewaySecret  = "x-bosun-gateway-secret"
)

// FromGRPC collects the credentials of a gRPC call: the peer's
// client certificate chain and the "authorization: Bearer" metadata.
func FromGRPC(ctx context.Context) Credentials {
	var c Credentials
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			c.Certificates = ti.State.PeerCertificates
		}
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("authorization"); len(v) > 0 {
		c.Token = bearer(v[0])
	}
	if v := md.Get(MetadataGatewaySecret); len(v) > 0 {
		c.GatewaySecret = v[0]
	}
	if v := md.Get(MetadataForwardedUser); len(v) > 0 {
		c.ForwardedUser = v[0]
	}
	c.ForwardedGroups = md.Get(MetadataForwardedGroup)
	return c
}

// FromHTTP collects the credentials of an HTTP request: its verified client
// certificate and its "Authorization: Bearer" header. Forwarded identities
// are never read from HTTP.
func FromHTTP(r *http.Request) Credentials {
	var c Credentials
	if r.TLS != nil {
		c.Certificates = r.TLS.PeerCertificates
	}
	c.Token = bearer(r.Header.Get("Authorization"))
	return c
}

func bearer(h string) string {
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}
