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
		authzModes    string
		admission     string
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
	fs.StringVar(&cfg.ClientCAFile, "client-ca-file", "", "CA bundle that signs client certificates (CN = user, O = groups); re-read when it changes (default: the generated CA)")
	fs.StringVar(&cfg.TokenAuthFile, "token-auth-file", "", "bearer tokens, one token,user,uid,\"group1,group2\" per line; re-read when it changes, so deleting a line revokes a token")
	fs.StringVar(&authzModes, "authorization-mode", "Node,RBAC", "authorizers asked in order: Node, RBAC (ignored with --insecure)")
	fs.StringVar(&admission, "admission-plugins", "PodSecurity", "admission plugins in order: PodSecurity, DefaultTolerations (\"\" for none; none with --insecure unless given)")
	fs.Int64Var(&cfg.DefaultTolerationSeconds, "default-toleration-seconds", 300, "not-ready and unreachable toleration the DefaultTolerations plugin gives pods")
	fs.StringVar(&cfg.AuditLogPath, "audit-log-path", "", "file audit lines are appended to, one JSON object per request (\"-\": standard output; \"\": no audit)")
	fs.StringVar(&cfg.AuditPolicy, "audit-policy", "default=Metadata", "audit level per kind, None, Metadata or Request: \"default=Metadata,Event=None,Pod=Request\" (Secrets never above Metadata)")
	fs.StringVar(&cfg.ClusterSigningCertFile, "cluster-signing-cert-file", "", "CA certificate that signs node-agents' certificates (default: the generated CA)")
	fs.StringVar(&cfg.ClusterSigningKeyFile, "cluster-signing-key-file", "", "key of --cluster-signing-cert-file")
	fs.DurationVar(&cfg.NodeCertificateValidity, "node-certificate-validity", 365*24*time.Hour, "how long the node certificates the apiserver signs last")
	fs.StringVar(&cfg.EncryptionProviderConfig, "encryption-provider-config", "", "EncryptionConfiguration file that encrypts Secrets in etcd (providers aesgcm and identity; the first writes, all read; Secrets not under the first key are rewritten at start); \"\" stores them as plaintext")
	fs.StringVar(&cfg.NodeAgentCAFile, "node-agent-ca-file", "", "CA of the node-agents' serving certificates: the node-agent proxy (bosun logs, bosun image load) dials them over mutual TLS (default: the cluster signing CA, presenting a bosun-apiserver certificate the apiserver signs itself; plaintext only with --insecure or without a signing CA)")
	fs.StringVar(&cfg.NodeAgentCertFile, "node-agent-cert-file", "", "client certificate presented to node-agents that require one (their --client-ca-file); needs --node-agent-ca-file")
	fs.StringVar(&cfg.NodeAgentKeyFile, "node-agent-key-file", "", "key of --node-agent-cert-file")
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
		log.Warn("--insecure: serving plaintext with no authentication or authorization; use only for local experiments")
		if cfg.ClientCAFile != "" || cfg.TokenAuthFile != "" {
			fmt.Fprintln(os.Stderr, "apiserver: --insecure serves with no authentication: drop --client-ca-file and --token-auth-file, or --insecure")
			os.Exit(2)
		}
	} else {
		cfg.Authenticate = true
		cfg.AuthorizationModes = splitList(authzModes)
	}
	admissionSet := false
	fs.Visit(func(f *flag.Flag) { admissionSet = admissionSet || f.Name == "admission-plugins" })
	if !cfg.Insecure || admissionSet {
		cfg.AdmissionPlugins = splitList(admission)
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

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
