// Command apiserver serves Bosun's API: the only reader and writer of cluster
// state, kept in etcd (embedded by default, or an external cluster).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"bosun.dev/pkg/server"
	"bosun.dev/pkg/version"
	"bosun.dev/services/apiserver/apiserver"
)

func main() {
	var (
		cfg           apiserver.Config
		etcdEndpoints string
		logLevel      string
		showVersion   bool
	)
	fs := flag.NewFlagSet("apiserver", flag.ExitOnError)
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:6443", "gRPC API address")
	fs.StringVar(&cfg.HTTPListen, "http-listen", "127.0.0.1:6480", "REST/JSON gateway address (\"\" disables it)")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", "", "address of /metrics, /healthz and /debug/pprof (\"\" disables them)")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "data directory of the embedded etcd (required unless --etcd-endpoints is set)")
	fs.StringVar(&etcdEndpoints, "etcd-endpoints", "", "comma-separated client URLs of an external etcd cluster; no etcd is embedded when set")
	fs.StringVar(&cfg.EtcdCAFile, "etcd-cafile", "", "CA bundle that signs the external etcd's certificates")
	fs.StringVar(&cfg.EtcdCertFile, "etcd-certfile", "", "client certificate for the external etcd")
	fs.StringVar(&cfg.EtcdKeyFile, "etcd-keyfile", "", "client key for the external etcd")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "serve plaintext gRPC and HTTP with no authentication (local experiments only)")
	fs.StringVar(&cfg.TLSCertFile, "tls-cert-file", "", "serving certificate (PEM); without one a self-signed CA and certificate are made in --cert-dir")
	fs.StringVar(&cfg.TLSKeyFile, "tls-private-key-file", "", "key of --tls-cert-file (PEM)")
	fs.StringVar(&cfg.TLSCAFile, "tls-ca-file", "", "CA that signs --tls-cert-file, for the apiserver's own loopback calls")
	fs.StringVar(&cfg.CertDir, "cert-dir", "", "where generated certificates are kept (default DATA_DIR/pki)")
	fs.IntVar(&cfg.WatchCacheCapacity, "watch-cache-size", 10000, "recent events kept per kind for resuming watches")
	fs.DurationVar(&cfg.BookmarkInterval, "bookmark-interval", 5*time.Second, "interval between watch bookmarks")
	fs.DurationVar(&cfg.CompactionInterval, "compaction-interval", 5*time.Minute, "interval between etcd compactions (0 disables)")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&showVersion, "version", false, "print the version and exit")
	_ = fs.Parse(os.Args[1:])
	if showVersion {
		fmt.Println("apiserver", version.String())
		return
	}
	if cfg.CompactionInterval == 0 {
		cfg.CompactionInterval = -1
	}
	if etcdEndpoints != "" {
		cfg.EtcdEndpoints = strings.Split(etcdEndpoints, ",")
	}
	log := server.NewLogger(logLevel, os.Stderr)
	cfg.Logger = log
	if cfg.Insecure {
		log.Warn("--insecure: serving plaintext with no authentication; use only for local experiments")
	}

	ctx, stop := server.SignalContext()
	defer stop()
	shutdownTracing, err := server.SetupTracing(ctx, "apiserver")
	if err != nil {
		fmt.Fprintf(os.Stderr, "apiserver: tracing: %v\n", err)
		os.Exit(1)
	}
	defer func() { _ = shutdownTracing(context.Background()) }()
	s, err := apiserver.New(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "apiserver: %v\n", err)
		os.Exit(1)
	}
	if err := s.Run(ctx); err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "apiserver: %v\n", err)
		os.Exit(1)
	}
}
