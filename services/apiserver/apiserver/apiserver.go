// Package apiserver assembles Bosun's apiserver: etcd (embedded or external),
// one watch cache per kind, the registry of storage rules, the gRPC API with
// health and reflection, the REST gateway, and the request filters of
// security.go (authentication, authorization, admission, audit), which the
// gateway's requests pass through too. The apiserver command runs one;
// tests and benchmarks embed one in-process through the same Config.
package apiserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	authorizationv1 "bosun.dev/gen/bosun/authorization/v1"
	certificatesv1 "bosun.dev/gen/bosun/certificates/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/pki"
	"bosun.dev/pkg/server"
	"bosun.dev/services/apiserver/internal/apiservice"
	"bosun.dev/services/apiserver/internal/defaults"
	"bosun.dev/services/apiserver/internal/encryption"
	"bosun.dev/services/apiserver/internal/etcd"
	"bosun.dev/services/apiserver/internal/gateway"
	"bosun.dev/services/apiserver/internal/nodeproxy"
	"bosun.dev/services/apiserver/internal/registry"
	"bosun.dev/services/apiserver/internal/storage"
	"bosun.dev/services/apiserver/internal/validation"
	"bosun.dev/services/apiserver/internal/watchcache"
)

// Config configures an apiserver. The zero value of each field is a usable
// default except DataDir (or EtcdEndpoints).
type Config struct {
	// Listen is the gRPC address; default 127.0.0.1:6443.
	Listen string
	// HTTPListen is the REST gateway address; "" disables it.
	HTTPListen string
	// MetricsListen serves /metrics, /healthz and pprof; "" disables it.
	MetricsListen string
	// DataDir holds the embedded etcd's data.
	DataDir string
	// EtcdEndpoints of an external cluster; when set no etcd is embedded.
	EtcdEndpoints []string
	// EtcdCAFile, EtcdCertFile and EtcdKeyFile secure the external etcd connection.
	EtcdCAFile, EtcdCertFile, EtcdKeyFile string
	// Insecure serves plaintext with no authentication.
	Insecure bool
	// TLSCertFile and TLSKeyFile are the serving certificate. When both are
	// empty (and Insecure is false) a self-signed CA and serving certificate are
	// made in CertDir and reused on later starts.
	TLSCertFile, TLSKeyFile string
	// TLSCAFile verifies the serving certificate for the apiserver's own
	// loopback calls (the REST gateway); the generated CA by default.
	TLSCAFile string
	// CertDir holds generated certificates; default DataDir/pki.
	CertDir string
	// WatchCacheCapacity is the number of recent events each kind keeps for
	// resuming watchers; default 10000.
	WatchCacheCapacity int
	// BookmarkInterval between bookmark events; default 5s.
	BookmarkInterval time.Duration
	// CompactionInterval between etcd compactions; default 5m, negative disables.
	CompactionInterval time.Duration
	// Logger; default discards.
	Logger *slog.Logger
	// UnaryInterceptors and StreamInterceptors wrap every call.
	UnaryInterceptors  []grpc.UnaryServerInterceptor
	StreamInterceptors []grpc.StreamServerInterceptor

	// Security. The zero values leave every call allowed and unaudited; the
	// apiserver command turns authentication, authorization (Node, RBAC),
	// admission (PodSecurity) on unless --insecure. The REST gateway goes
	// through the same checks as gRPC calls.

	// Authenticate refuses calls without valid credentials (Unauthenticated);
	// gRPC health checks need none. Wrong credentials are refused even
	// without it.
	Authenticate bool
	// ClientCAFile is the CA bundle that signs client certificates
	// (CommonName = user, Organizations = groups); re-read when it changes.
	// With Authenticate and generated certificates it defaults to the
	// generated CA, and an admin certificate (admin.crt, admin.key, group
	// system:masters) is made beside it.
	ClientCAFile string
	// TokenAuthFile lists bearer tokens, one `token,user,uid,"group1,group2"`
	// per line; it is re-read when it changes, so removing a line revokes the
	// token.
	TokenAuthFile string
	// AuthorizationModes are "Node" and "RBAC", asked in order; none allows
	// every call. With RBAC the built-in roles are written at start.
	AuthorizationModes []string
	// AdmissionPlugins are "PodSecurity" and "DefaultTolerations", in order.
	AdmissionPlugins []string
	// DefaultTolerationSeconds is DefaultTolerations' toleration; 300 when 0.
	DefaultTolerationSeconds int64
	// AuditLogPath is a file audit lines are appended to ("-": standard
	// output); "" writes none unless AuditWriter is set.
	AuditLogPath string
	// AuditWriter receives the audit lines instead of AuditLogPath.
	AuditWriter io.Writer
	// AuditPolicy gives the audit level per kind, e.g.
	// "default=Metadata,Event=None,Pod=Request"; Metadata for all when "".
	AuditPolicy string
	// ClusterSigningCertFile and ClusterSigningKeyFile are the CA that signs
	// node certificates (NodeCertificateService); with generated certificates
	// and Authenticate they default to the generated CA. Without them no
	// node certificates are issued.
	ClusterSigningCertFile, ClusterSigningKeyFile string
	// NodeCertificateValidity is how long issued node certificates last;
	// one year when zero.
	NodeCertificateValidity time.Duration
	// EncryptionProviderConfig is an EncryptionConfiguration file that
	// encrypts Secrets in etcd (aesgcm and identity providers; the first
	// writes, all read). At start the apiserver rewrites every Secret not
	// stored with the first provider's first key. "" stores plaintext.
	EncryptionProviderConfig string

	// NodeAgentCAFile, when set, makes the apiserver dial node-agents
	// (the NodeAgentService proxy behind `bosun logs` and `bosun image
	// load`) over TLS verified with this CA; plaintext when "", as
	// node-agents serve unless given --tls-cert-file.
	// NodeAgentCertFile and NodeAgentKeyFile are the client certificate
	// presented to node-agents that require one (--client-ca-file); they
	// are re-read when they change.
	NodeAgentCAFile, NodeAgentCertFile, NodeAgentKeyFile string
}

// APIServer is a running apiserver.
type APIServer struct {
	cfg       Config
	log       *slog.Logger
	backend   *etcd.Backend
	caches    map[*api.Kind]*watchcache.Cache
	registry  *registry.Registry
	compactor *storage.Compactor
	server    *server.Server
	httpLis   net.Listener
	sec       *security
	secrets   *storage.Store
	nodeProxy *nodeproxy.Proxy
}

// New opens etcd, fills the watch caches and binds the listeners. Run serves.
func New(ctx context.Context, cfg Config) (*APIServer, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:6443"
	}
	if cfg.CompactionInterval == 0 {
		cfg.CompactionInterval = 5 * time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var encryptionConfig *encryption.Config
	if cfg.EncryptionProviderConfig != "" {
		var err error
		if encryptionConfig, err = encryption.LoadFile(cfg.EncryptionProviderConfig); err != nil {
			return nil, fmt.Errorf("--encryption-provider-config: %w", err)
		}
	}
	tlsConfig, err := serving(&cfg, log)
	if err != nil {
		return nil, err
	}
	nodeAgentTLS, err := nodeAgentTLS(&cfg, log)
	if err != nil {
		return nil, err
	}
	backend, err := etcd.Open(ctx, etcd.Config{
		DataDir: cfg.DataDir, Endpoints: cfg.EtcdEndpoints,
		CAFile: cfg.EtcdCAFile, CertFile: cfg.EtcdCertFile, KeyFile: cfg.EtcdKeyFile,
	})
	if err != nil {
		return nil, err
	}
	s := &APIServer{cfg: cfg, log: log, backend: backend, caches: map[*api.Kind]*watchcache.Cache{}}
	stores := map[*api.Kind]*storage.Store{}
	for _, k := range api.Kinds() {
		var storeOpts []storage.Option
		if k.Group == "" && k.Resource == encryption.Secrets {
			secrets := encryptionConfig.Transformer(encryption.Secrets)
			storeOpts = append(storeOpts, storage.WithTransformer(secrets))
			if encryptionConfig != nil {
				log.Info("encryption at rest configured for Secrets", "writeWith", secrets.WriteKey())
			}
		}
		stores[k] = storage.New(backend.Client, k, storeOpts...)
		if len(storeOpts) > 0 {
			s.secrets = stores[k]
		}
		opts := watchcache.Options{Capacity: cfg.WatchCacheCapacity, BookmarkInterval: cfg.BookmarkInterval, Logger: log}
		if k.Kind == "Pod" {
			opts.TriggerField = func(obj api.Object) string { return obj.(*corev1.Pod).GetSpec().GetNodeName() }
		}
		s.caches[k] = watchcache.New(stores[k], opts)
	}
	if s.sec, err = newSecurity(&cfg, log, s.caches); err != nil {
		backend.Close()
		return nil, err
	}
	unary, stream := cfg.UnaryInterceptors, cfg.StreamInterceptors
	if s.sec != nil {
		unary = append([]grpc.UnaryServerInterceptor{s.sec.unary}, unary...)
		stream = append([]grpc.StreamServerInterceptor{s.sec.stream}, stream...)
	}
	s.registry = registry.New(registry.Config{
		Stores: stores, Caches: s.caches, Default: defaults.Apply, Validator: validator{}, Logger: log,
	})
	s.compactor = &storage.Compactor{Client: backend.Client, Interval: cfg.CompactionInterval, Logger: log,
		OnCompact: func(rev int64) {
			for _, c := range s.caches {
				c.Compacted(rev)
			}
		}}

	s.server, err = server.New(server.Options{
		Name: "apiserver", GRPCListen: cfg.Listen, MetricsListen: cfg.MetricsListen, Logger: log, TLS: tlsConfig,
		UnaryInterceptors: unary, StreamInterceptors: stream,
	})
	if err != nil {
		s.sec.close()
		backend.Close()
		return nil, fmt.Errorf("--listen: %w", err)
	}
	apiservice.Register(s.server.GRPC(), s.registry)
	s.server.Registry().MustRegister(backend.Metrics, s.registry.Metrics())
	s.nodeProxy = nodeproxy.New(nodeproxy.Config{Objects: proxyObjects{caches: s.caches, reg: s.registry}, TLS: nodeAgentTLS, Logger: log})
	s.nodeProxy.Register(s.server.GRPC())
	if s.sec != nil {
		authorizationv1.RegisterAccessReviewServiceServer(s.server.GRPC(), accessReview{sec: s.sec})
		if cfg.ClusterSigningCertFile != "" || cfg.ClusterSigningKeyFile != "" {
			ca, err := pki.LoadCA(cfg.ClusterSigningCertFile, cfg.ClusterSigningKeyFile)
			if err != nil {
				s.sec.close()
				backend.Close()
				return nil, fmt.Errorf("--cluster-signing-cert-file: %w", err)
			}
			validity := cfg.NodeCertificateValidity
			if validity <= 0 {
				validity = DefaultNodeCertificateValidity
			}
			certificatesv1.RegisterNodeCertificateServiceServer(s.server.GRPC(), nodeCertificates{sec: s.sec, ca: ca, validity: validity})
		}
	}
	s.server.Health().SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	if cfg.HTTPListen != "" {
		if s.httpLis, err = net.Listen("tcp", cfg.HTTPListen); err != nil {
			backend.Close()
			return nil, fmt.Errorf("--http-listen %s: %w", cfg.HTTPListen, err)
		}
		if tlsConfig != nil {
			s.httpLis = tls.NewListener(s.httpLis, tlsConfig)
		}
	}
	return s, nil
}

// Addr is the gRPC listener's address.
func (s *APIServer) Addr() string { return s.server.Addr().String() }

// HTTPAddr is the REST gateway's address, or "" when it is off.
func (s *APIServer) HTTPAddr() string {
	if s.httpLis == nil {
		return ""
	}
	return s.httpLis.Addr().String()
}

// Etcd returns the etcd client, for tests and benchmarks that compare with raw etcd.
func (s *APIServer) Etcd() *clientv3.Client { return s.backend.Client }

// EtcdEndpoints returns the endpoints of the etcd in use.
func (s *APIServer) EtcdEndpoints() []string { return s.backend.Endpoints }

// Compact compacts etcd's history up to rev now, as the periodic compactor does.
func (s *APIServer) Compact(ctx context.Context, rev int64) error {
	return s.compactor.Compact(ctx, rev)
}

// Run serves until ctx ends, then stops gracefully and closes etcd.
func (s *APIServer) Run(ctx context.Context) error {
	defer s.backend.Close()
	defer s.sec.close()
	defer s.nodeProxy.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range s.caches {
		wg.Add(1)
		go func() { defer wg.Done(); c.Run(ctx) }()
	}
	for _, c := range s.caches {
		select {
		case <-c.Ready():
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
	}
	if err := s.registry.EnsureNamespaces(ctx); err != nil {
		cancel()
		wg.Wait()
		return err
	}
	if s.sec != nil && s.sec.rbac {
		written, err := ensureBootstrapPolicy(ctx, s.registry, s.log)
		if err == nil {
			err = s.waitForCaches(ctx, written)
		}
		if err != nil {
			cancel()
			wg.Wait()
			return err
		}
	}
	wg.Add(1)
	go func() { defer wg.Done(); s.compactor.Run(ctx) }()
	if s.cfg.EncryptionProviderConfig != "" {
		wg.Add(1)
		go func() { defer wg.Done(); s.rewriteSecretsAtStart(ctx) }()
	}

	errc := make(chan error, 2)
	var httpSrv *http.Server
	if s.httpLis != nil {
		conn, err := client.Dial(client.Config{Server: s.Addr(), Insecure: s.cfg.Insecure, CAFile: s.cfg.TLSCAFile})
		if err != nil {
			return err
		}
		defer conn.Close()
		var muxOpts []runtime.ServeMuxOption
		if s.sec != nil {
			muxOpts = s.sec.gatewayOptions()
		}
		h, err := gateway.Handler(ctx, conn, muxOpts...)
		if err != nil {
			return err
		}
		if s.sec != nil {
			h = s.sec.httpHandler(h)
		}
		httpSrv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := httpSrv.Serve(s.httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
		defer func() {
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = httpSrv.Shutdown(sctx)
			scancel()
		}()
	}
	s.server.Health().SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.log.Info("apiserver ready", "grpc", s.Addr(), "http", s.HTTPAddr(), "etcd", s.backend.Endpoints)
	go func() { errc <- s.server.Run(ctx) }()
	var err error
	select {
	case <-ctx.Done():
		err = <-errc // the gRPC server's graceful stop
	case err = <-errc:
		cancel()
	}
	cancel()
	wg.Wait()
	return err
}

// RewriteSecrets stores again every Secret that is not encrypted with the
// first provider's first key of the encryption configuration (or that is
// encrypted while identity comes first), so that an old key can then be
// removed. The apiserver does this at every start with an encryption
// configuration; concurrent updates are never overwritten. It returns how
// many Secrets it rewrote, and an error naming each Secret it could not read
// or store.
func (s *APIServer) RewriteSecrets(ctx context.Context) (int, error) {
	res, err := s.secrets.Rewrite(ctx)
	if err != nil {
		return res.Rewritten, fmt.Errorf("rewriting secrets: %w", err)
	}
	return res.Rewritten, errors.Join(res.Failed...)
}

// rewriteSecretsAtStart runs RewriteSecrets and logs what it did.
func (s *APIServer) rewriteSecretsAtStart(ctx context.Context) {
	res, err := s.secrets.Rewrite(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("rewriting secrets with the first encryption key", "error", err, "rewritten", res.Rewritten)
		}
		return
	}
	for i, f := range res.Failed {
		if i == 10 {
			s.log.Error("more secrets could not be rewritten", "count", len(res.Failed)-i)
			break
		}
		s.log.Error("secret not rewritten", "error", f)
	}
	s.log.Info("secrets rewritten with the first encryption key", "rewritten", res.Rewritten, "current", res.Current, "failed", len(res.Failed))
}

// proxyObjects finds the pods and nodes the node-agent proxy routes by:
// the watch cache first, storage for what the cache has not seen yet.
type proxyObjects struct {
	caches map[*api.Kind]*watchcache.Cache
	reg    *registry.Registry
}

func (o proxyObjects) Cached(k *api.Kind, namespace, name string) (api.Object, bool) {
	return o.caches[k].Get(namespace, name)
}

func (o proxyObjects) Get(ctx context.Context, k *api.Kind, namespace, name string) (api.Object, error) {
	return o.reg.Resource(k).Get(ctx, namespace, name)
}

// NodeAgentClientUser is the user of the certificate the apiserver presents
// to node-agents when it signs its own.
const NodeAgentClientUser = "bosun-apiserver"

// nodeAgentTLS is the client TLS configuration for node-agents, or nil for
// plaintext. Without --node-agent-ca-file, a secure apiserver that holds
// the cluster signing CA trusts that CA (which signs node certificates) and
// presents a certificate for bosun-apiserver that it signs itself, the
// caller node-agents accept by default; with neither it dials plaintext.
func nodeAgentTLS(cfg *Config, log *slog.Logger) (*tls.Config, error) {
	if cfg.NodeAgentCAFile == "" {
		if cfg.NodeAgentCertFile != "" || cfg.NodeAgentKeyFile != "" {
			return nil, errors.New("--node-agent-cert-file and --node-agent-key-file need --node-agent-ca-file: client certificates are only sent over TLS")
		}
		if cfg.Insecure {
			return nil, nil
		}
		if cfg.ClusterSigningCertFile == "" || cfg.ClusterSigningKeyFile == "" {
			log.Warn("dialing node-agents in plaintext for logs and image loads: give --node-agent-ca-file (and a client certificate), or --cluster-signing-cert-file and --cluster-signing-key-file")
			return nil, nil
		}
		ca, err := pki.LoadCA(cfg.ClusterSigningCertFile, cfg.ClusterSigningKeyFile)
		if err != nil {
			return nil, fmt.Errorf("node-agent TLS from the cluster signing CA (--cluster-signing-cert-file, --cluster-signing-key-file): %w", err)
		}
		return ca.ClientConfig(NodeAgentClientUser, 30*24*time.Hour), nil
	}
	if (cfg.NodeAgentCertFile == "") != (cfg.NodeAgentKeyFile == "") {
		return nil, errors.New("--node-agent-cert-file and --node-agent-key-file go together")
	}
	tc, err := pki.ReloadingClientConfig(cfg.NodeAgentCAFile, cfg.NodeAgentCertFile, cfg.NodeAgentKeyFile)
	if err != nil {
		return nil, fmt.Errorf("node-agent TLS (--node-agent-ca-file, --node-agent-cert-file, --node-agent-key-file): %w", err)
	}
	return tc, nil
}

// validator adapts the validation package to the registry.
type validator struct{}

func (validator) Validate(obj api.Object) field.ErrorList { return validation.Validate(obj) }
func (validator) ValidateUpdate(obj, old api.Object) field.ErrorList {
	return validation.ValidateUpdate(obj, old)
}
func (validator) ValidateStatus(obj api.Object) field.ErrorList {
	return validation.ValidateStatus(obj)
}

// serving returns the TLS configuration to serve with, or nil with Insecure.
// Without a certificate it makes (or reuses) a self-signed one in CertDir and
// writes a CLI config beside it that trusts it.
func serving(cfg *Config, log *slog.Logger) (*tls.Config, error) {
	if cfg.Insecure {
		return nil, nil
	}
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		return nil, errors.New("--tls-cert-file and --tls-private-key-file go together")
	}
	if cfg.TLSCertFile == "" {
		dir := cfg.CertDir
		if dir == "" {
			if cfg.DataDir == "" {
				return nil, errors.New("no serving certificate: give --tls-cert-file and --tls-private-key-file, --cert-dir, or --data-dir (certificates are made in DATA_DIR/pki), or --insecure")
			}
			dir = filepath.Join(cfg.DataDir, "pki")
		}
		host, _, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("--listen %q: %w", cfg.Listen, err)
		}
		hosts := []string{host}
		if name, err := os.Hostname(); err == nil {
			hosts = append(hosts, name)
		}
		files, err := pki.EnsureServing(dir, "bosun-apiserver", hosts)
		if err != nil {
			return nil, fmt.Errorf("making a serving certificate in %s: %w", dir, err)
		}
		cfg.TLSCertFile, cfg.TLSKeyFile = files.CertFile, files.KeyFile
		if cfg.TLSCAFile == "" {
			cfg.TLSCAFile = files.CAFile
		}
		if cfg.Authenticate && cfg.ClusterSigningCertFile == "" && cfg.ClusterSigningKeyFile == "" {
			cfg.ClusterSigningCertFile, cfg.ClusterSigningKeyFile = files.CAFile, filepath.Join(dir, pki.CAKey)
		}
		if cfg.Authenticate && cfg.ClientCAFile == "" {
			cfg.ClientCAFile = files.CAFile
			admin := filepath.Join(dir, "admin.crt")
			if _, err := os.Stat(admin); errors.Is(err, os.ErrNotExist) {
				if _, err := pki.Issue(dir, pki.Certificate{Name: "admin", CommonName: "admin", Organizations: []string{"system:masters"}, Client: true}); err != nil {
					return nil, fmt.Errorf("making an admin certificate in %s: %w", dir, err)
				}
			}
			log.Info("client certificates are verified against the generated CA; an admin certificate is beside it", "cert", admin)
		}
		log.Info("serving with a self-signed certificate; clients must trust its CA", "ca", files.CAFile)
	}
	tc, err := pki.ReloadingServerConfig(cfg.TLSCertFile, cfg.TLSKeyFile)
	if err != nil {
		return nil, err
	}
	if !securityEnabled(cfg) {
		tc.ClientAuth = tls.NoClientCert
	}
	return tc, nil
}

// waitForCaches returns once each kind's watch cache has applied every
// event up to its revision in revs.
func (s *APIServer) waitForCaches(ctx context.Context, revs map[*api.Kind]int64) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for k, rev := range revs {
		for s.caches[k].Revision() < rev {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}
