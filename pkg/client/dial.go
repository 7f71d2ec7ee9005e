package client

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"bosun.dev/pkg/pki"
)

// MaxMessageSize bounds one gRPC message: a full page of a large list.
const MaxMessageSize = 256 << 20

// Config says how to reach the apiserver.
type Config struct {
	// Server is the apiserver's gRPC address, host:port.
	Server string
	// Insecure dials in plaintext with no credentials.
	Insecure bool
	// CAFile verifies the server's certificate; the system pool when empty.
	CAFile string
	// CertFile and KeyFile are the client certificate, when one is used.
	CertFile, KeyFile string
	// ServerName overrides the name checked in the server's certificate.
	ServerName string
}

// Keepalive pings of Bosun's clients: one after KeepaliveTime without
// activity, and the connection is closed when no answer comes within
// KeepaliveTimeout.
const (
	KeepaliveTime    = 10 * time.Second
	KeepaliveTimeout = 5 * time.Second
)

// TracingConfigured reports whether this process exports traces: OTLP
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or a
// file (BOSUN_TRACES_FILE). Without an exporter, gRPC connections carry no
// OpenTelemetry handlers: they would cost a few percent of every call's CPU
// to make spans nobody sees.
func TracingConfigured() bool {
	for _, env := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", EnvTracesFile} {
		if os.Getenv(env) != "" {
			return true
		}
	}
	return false
}

// EnvTracesFile names the file spans are written to, one JSON object per
// line (see pkg/server.SetupTracing).
const EnvTracesFile = "BOSUN_TRACES_FILE"

// TracingDialOptions are the options that carry a caller's trace to the
// server, when TracingConfigured.
func TracingDialOptions() []grpc.DialOption {
	if !TracingConfigured() {
		return nil
	}
	return []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler())}
}

// Dial connects to the apiserver. Traces propagate through OpenTelemetry
// when the process exports them.
func Dial(cfg Config, extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	if cfg.Server == "" {
		return nil, fmt.Errorf("no server address: set --server or the config file's server")
	}
	var creds credentials.TransportCredentials
	var rot *rotation
	if cfg.Insecure {
		creds = insecure.NewCredentials()
	} else {
		tc := &tls.Config{ServerName: cfg.ServerName, MinVersion: tls.VersionTLS12}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("reading CA file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("CA file %s holds no PEM certificate", cfg.CAFile)
			}
			tc.RootCAs = pool
		}
		if cfg.CertFile != "" || cfg.KeyFile != "" {
			kp, err := pki.NewKeyPair(cfg.CertFile, cfg.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("loading client certificate: %w", err)
			}
			// Read again when the files change: rotated certificates need
			// no restart, and connections made with the old one are
			// dialled again (see rotation).
			tc.GetClientCertificate = kp.GetClientCertificate
			rot = &rotation{kp: kp}
		}
		creds = credentials.NewTLS(tc)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if rot != nil {
		opts = append(opts, grpc.WithContextDialer(rot.dial))
	}
	opts = append(append(opts,
		// A connection whose peer vanished (a partition, a killed host)
		// is found dead within Time+Timeout instead of waiting on TCP's
		// retransmissions; servers permit these pings (pkg/server).
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: KeepaliveTime, Timeout: KeepaliveTimeout, PermitWithoutStream: true}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageSize), grpc.MaxCallSendMsgSize(MaxMessageSize)),
	), append(TracingDialOptions(), extra...)...)
	conn, err := grpc.NewClient(cfg.Server, opts...)
	if err != nil {
		return nil, err
	}
	if rot != nil {
		go rot.watch(conn)
	}
	return conn, nil
}
