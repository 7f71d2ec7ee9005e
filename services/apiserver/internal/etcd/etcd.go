// Package etcd connects the apiserver to its etcd: an embedded single-member
// server with its data on disk (the default), or an external cluster reached
// over TLS.
package etcd

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"bosun.dev/pkg/client"
)

// newRequestSeconds is the histogram of the apiserver's etcd calls (Range,
// Txn, Put, ...) by method and gRPC code, exported as Backend.Metrics.
func newRequestSeconds() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "bosun_apiserver_etcd_request_duration_seconds",
		Help:    "Duration of the apiserver's unary etcd calls, by etcd gRPC method and status code.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"method", "code"})
}

// instrumented makes every etcd call a client span of the apiserver request
// that made it (etcdserverpb.KV/Range, /Txn, ...) and times unary calls in
// hist.
func instrumented(hist *prometheus.HistogramVec) []grpc.DialOption {
	return append(client.TracingDialOptions(),
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			start := time.Now()
			err := invoker(ctx, method, req, reply, cc, opts...)
			hist.WithLabelValues(method[strings.LastIndex(method, "/")+1:], status.Code(err).String()).Observe(time.Since(start).Seconds())
			return err
		}),
	)
}

// Config says which etcd to use.
type Config struct {
	// DataDir is the embedded member's data directory. Ignored with Endpoints.
	DataDir string
	// Endpoints of an external cluster; empty starts an embedded member.
	Endpoints []string
	// CAFile, CertFile and KeyFile secure the connection to an external cluster.
	CAFile, CertFile, KeyFile string
	// ClientURL and PeerURL of the embedded member; "" picks 127.0.0.1 and a free port.
	ClientURL, PeerURL string
	// Logger for etcd itself; nil silences it.
	Logger *zap.Logger
	// QuotaBytes is the embedded member's backend quota; 0 keeps etcd's default (2 GiB).
	QuotaBytes int64
}

// Backend is a connected etcd.
type Backend struct {
	Client *clientv3.Client
	// Endpoints the client uses (the embedded member's bound client URL).
	Endpoints []string
	// Metrics times the client's etcd calls; register it to export them.
	Metrics prometheus.Collector
	server  *embed.Etcd
}

// Open starts the embedded member or connects to the external cluster.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	if len(cfg.Endpoints) > 0 {
		return connect(ctx, cfg, logger)
	}
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("etcd: --data-dir is required for the embedded etcd")
	}
	ec := embed.NewConfig()
	ec.Name = "bosun"
	ec.Dir = cfg.DataDir
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(logger)
	ec.LogLevel = "error"
	ec.TickMs = 10
	ec.ElectionMs = 50
	ec.AutoCompactionRetention = "0"
	if cfg.QuotaBytes > 0 {
		ec.QuotaBackendBytes = cfg.QuotaBytes
	}
	client, err := parseURL(cfg.ClientURL, "http://127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	peer, err := parseURL(cfg.PeerURL, "http://127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ec.ListenClientUrls, ec.AdvertiseClientUrls = []url.URL{*client}, []url.URL{*client}
	ec.ListenPeerUrls, ec.AdvertisePeerUrls = []url.URL{*peer}, []url.URL{*peer}
	// Port 0 cannot be advertised to peers; a single member has none.
	ec.InitialCluster = fmt.Sprintf("%s=%s", ec.Name, peer.String())
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("starting embedded etcd in %s: %w", cfg.DataDir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s was not ready within 60s", cfg.DataDir)
	}
	endpoint := "http://" + e.Clients[0].Addr().String()
	hist := newRequestSeconds()
	c, err := clientv3.New(clientv3.Config{
		Endpoints: []string{endpoint}, Logger: logger, DialTimeout: 5 * time.Second,
		MaxCallRecvMsgSize: 512 << 20, DialOptions: instrumented(hist),
	})
	if err != nil {
		e.Close()
		return nil, err
	}
	return &Backend{Client: c, Endpoints: []string{endpoint}, Metrics: hist, server: e}, nil
}

func connect(ctx context.Context, cfg Config, logger *zap.Logger) (*Backend, error) {
	var tlsConfig *tls.Config
	if cfg.CAFile != "" || cfg.CertFile != "" {
		info := transport.TLSInfo{TrustedCAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile}
		var err error
		if tlsConfig, err = info.ClientConfig(); err != nil {
			return nil, fmt.Errorf("etcd TLS: %w", err)
		}
	}
	hist := newRequestSeconds()
	c, err := clientv3.New(clientv3.Config{
		Endpoints: cfg.Endpoints, TLS: tlsConfig, Logger: logger, DialTimeout: 5 * time.Second,
		MaxCallRecvMsgSize: 512 << 20, Context: ctx, DialOptions: instrumented(hist),
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to etcd %v: %w", cfg.Endpoints, err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.Status(sctx, cfg.Endpoints[0]); err != nil {
		c.Close()
		return nil, fmt.Errorf("etcd %s does not answer: %w", cfg.Endpoints[0], err)
	}
	return &Backend{Client: c, Endpoints: cfg.Endpoints, Metrics: hist}, nil
}

func parseURL(s, def string) (*url.URL, error) {
	if s == "" {
		s = def
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("etcd URL %q: %w", s, err)
	}
	return u, nil
}

// Close disconnects and, for the embedded member, stops it.
func (b *Backend) Close() {
	b.Client.Close()
	if b.server != nil {
		b.server.Close()
	}
}
