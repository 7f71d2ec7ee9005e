// Command node-agent runs the pods bound to its node on containerd with
// CNI networking: it registers the Node, renews its Lease, runs, probes and
// reports the node's pods, serves their logs (bosun.core.v1.NodeAgentService)
// and gRPC health on --listen.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"bosun.dev/pkg/server"
	"bosun.dev/services/node-agent/internal/agent"
	"bosun.dev/services/node-agent/internal/bootstrap"
	"bosun.dev/services/node-agent/internal/network"
	"bosun.dev/services/node-agent/internal/node"
	"bosun.dev/services/node-agent/internal/nodeapi"
	"bosun.dev/services/node-agent/internal/runtime/containerd"
	"bosun.dev/services/node-agent/internal/volumes"
)

const defaultListen = "127.0.0.1:10250"

// listFlag is a comma-separated list that may also be repeated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// options are the node-agent's own flags.
type options struct {
	cfg                 agent.Config
	labels, insecure    listFlag
	loadImages, plugins listFlag
	hostPaths           listFlag
	gcHigh, gcLow       string
	apiCallers          listFlag

	bootstrapTokenFile string
	// fs is the whole flag set, the shared flags included: the bootstrap
	// reads and completes them.
	fs *flag.FlagSet
	// boot is set by check when the node-agent gets its own certificate;
	// tokenErr says why the bootstrap token could not be read, an error
	// only when a certificate must be requested.
	boot     *bootstrap.Config
	tokenErr error
}

// defaultAPICaller is the user of the apiserver's client certificate for
// node-agents (`bosun certs init` issues it).
const defaultAPICaller = "bosun-apiserver"

func (o *options) register(fs *flag.FlagSet) {
	o.fs = fs
	c := &o.cfg
	fs.StringVar(&c.NodeName, "node-name", "", "name of this node (default: the host name, lower-cased)")
	fs.StringVar(&c.NodeIP, "node-ip", "", "the node's InternalIP and the pods' hostIP (default: the address of the default route's interface)")
	fs.StringVar(&c.PodCIDR, "pod-cidr", "", "this node's pod range, e.g. 10.244.1.0/24 (default: wait for the controller to assign spec.podCIDR)")
	fs.Var(&o.labels, "node-labels", "extra node labels, key=value,... (repeatable)")
	fs.Var(&o.apiCallers, "api-callers", "users (client certificate common names) that may call the node-agent's API: logs and image loads (repeatable; default "+defaultAPICaller+"; * for every certificate of --client-ca-file)")
	fs.StringVar(&c.ContainerdAddress, "containerd-address", "/run/containerd/containerd.sock", "containerd's socket")
	fs.StringVar(&c.ContainerdNamespace, "containerd-namespace", containerd.DefaultNamespace, "containerd namespace of the node's containers and images")
	fs.StringVar(&c.RootDir, "root-dir", "/var/lib/bosun/node-agent", "state directory: pod directories (volumes, sandbox records), network namespaces, IPAM leases")
	fs.StringVar(&c.LogDir, "log-dir", "/var/log/bosun/pods", "container logs, as NAMESPACE_POD_UID/CONTAINER/ATTEMPT.log")
	o.plugins = append(o.plugins, network.DefaultPluginDirs...)
	fs.Var(&o.plugins, "cni-plugin-dirs", "directories holding the CNI plugins (default /usr/lib/cni,/opt/cni/bin)")
	fs.StringVar(&c.Bridge, "cni-bridge", "bosun0", "name of the pods' bridge device")
	fs.BoolVar(&c.IPMasq, "ip-masq", true, "masquerade pod traffic leaving the pod CIDR")
	fs.Var(&o.insecure, "insecure-registries", "registries (host[:port]) pulled from over plain HTTP (repeatable)")
	fs.Var(&o.loadImages, "load-image", "OCI image-layout tarball to import at start, for air-gapped nodes (repeatable)")
	fs.StringVar(&o.gcHigh, "image-gc-high-threshold", "0", "start image garbage collection when images take more than this, e.g. 20Gi (0 disables)")
	fs.StringVar(&o.gcLow, "image-gc-low-threshold", "", "free unused images, least recently used first, down to this (default 80% of the high threshold)")
	fs.Var(&o.hostPaths, "allowed-host-path-prefixes", "directories hostPath volumes may use (default "+volumes.DefaultHostPathPrefix+")")
	fs.IntVar(&c.MaxPods, "max-pods", 110, "pods capacity of the node")
	fs.StringVar(&c.LeaseNamespace, "lease-namespace", node.DefaultLeaseNamespace, "namespace of the node's Lease")
	fs.DurationVar(&c.LeaseDuration, "lease-duration", 10*time.Second, "validity the node's Lease promises")
	fs.DurationVar(&c.RenewInterval, "lease-renew-interval", 2*time.Second, "how often the Lease is renewed")
	fs.DurationVar(&c.StatusInterval, "node-status-interval", 10*time.Second, "longest time between node status writes (changes are written at once)")
	fs.DurationVar(&c.ResyncInterval, "sync-interval", 10*time.Second, "how often every pod is re-synced besides events")
	fs.DurationVar(&c.BackoffBase, "crash-backoff-base", 10*time.Second, "first restart delay of a crashing container or failing pull; doubles per failure")
	fs.DurationVar(&c.BackoffMax, "crash-backoff-max", 5*time.Minute, "longest restart delay")
	fs.StringVar(&o.bootstrapTokenFile, "bootstrap-token-file", "", "file holding a bootstrap token: at start, when --tls-cert-file and --tls-private-key-file hold no current certificate for this node, "+
		"request one from the apiserver with the token and write them; renew it before it expires (\"\": no bootstrap)")
}

// check validates the parsed flags and completes the configuration.
func (o *options) check() error {
	c := &o.cfg
	if len(o.labels) > 0 {
		c.Labels = map[string]string{}
		for _, kv := range o.labels {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return fmt.Errorf("--node-labels: %q is not key=value", kv)
			}
			c.Labels[k] = v
		}
	}
	c.InsecureRegistries, c.LoadImages, c.CNIPluginDirs = o.insecure, o.loadImages, o.plugins
	switch {
	case len(o.apiCallers) == 0:
		o.apiCallers = listFlag{defaultAPICaller}
	case slices.Contains(o.apiCallers, "*") && len(o.apiCallers) > 1:
		return fmt.Errorf("--api-callers: * allows everyone and cannot be combined with users (%s)", o.apiCallers.String())
	case slices.Contains(o.apiCallers, "*"):
		o.apiCallers = nil
	}
	if len(o.hostPaths) > 0 {
		c.AllowedHostPathPrefixes = o.hostPaths
	}
	for _, q := range []struct {
		flag, val string
		dst       *int64
	}{{"image-gc-high-threshold", o.gcHigh, &c.ImageGCHighBytes}, {"image-gc-low-threshold", o.gcLow, &c.ImageGCLowBytes}} {
		if q.val == "" {
			continue
		}
		v, err := resource.ParseQuantity(q.val)
		if err != nil {
			return fmt.Errorf("--%s: %q: %w", q.flag, q.val, err)
		}
		*q.dst = v.Value()
	}
	if c.PodCIDR != "" {
		if _, _, err := net.ParseCIDR(c.PodCIDR); err != nil {
			return fmt.Errorf("--pod-cidr: %w", err)
		}
	}
	if c.RenewInterval <= 0 || c.LeaseDuration <= c.RenewInterval {
		return fmt.Errorf("--lease-renew-interval (%s) must be positive and shorter than --lease-duration (%s)", c.RenewInterval, c.LeaseDuration)
	}
	if c.BackoffBase <= 0 || c.BackoffMax < c.BackoffBase {
		return fmt.Errorf("--crash-backoff-base (%s) must be positive and at most --crash-backoff-max (%s)", c.BackoffBase, c.BackoffMax)
	}
	if c.MaxPods <= 0 {
		return fmt.Errorf("--max-pods: %d is not positive", c.MaxPods)
	}
	if c.NodeIP == "" {
		c.NodeIP = defaultIP()
	} else if net.ParseIP(c.NodeIP) == nil {
		return fmt.Errorf("--node-ip: %q is not an IP address", c.NodeIP)
	}
	return o.checkBootstrap()
}

// sharedFlag returns the value of a flag pkg/server registers ("" when the
// flag set has none).
func (o *options) sharedFlag(name string) string {
	if o.fs == nil {
		return ""
	}
	if f := o.fs.Lookup(name); f != nil {
		return f.Value.String()
	}
	return ""
}

// checkBootstrap validates --bootstrap-token-file against the shared flags
// and prepares the bootstrap. The bootstrapped certificate is the node's
// client certificate too: --client-cert-file and --client-key-file are set
// to --tls-cert-file and --tls-private-key-file.
func (o *options) checkBootstrap() error {
	if o.bootstrapTokenFile == "" {
		return nil
	}
	if o.sharedFlag("insecure") == "true" {
		return errors.New("--bootstrap-token-file cannot be combined with --insecure: the token is sent only over TLS, and the certificate it gets is for a cluster with authentication")
	}
	certFile, keyFile := o.sharedFlag("tls-cert-file"), o.sharedFlag("tls-private-key-file")
	if certFile == "" || keyFile == "" {
		return errors.New("--bootstrap-token-file needs --tls-cert-file and --tls-private-key-file: where the node's certificate and key are written")
	}
	for _, p := range []struct{ flag, path, from string }{{"client-cert-file", certFile, "--tls-cert-file"}, {"client-key-file", keyFile, "--tls-private-key-file"}} {
		switch v := o.sharedFlag(p.flag); v {
		case "":
			if err := o.fs.Set(p.flag, p.path); err != nil {
				return fmt.Errorf("--%s: %w", p.flag, err)
			}
		case p.path:
		default:
			return fmt.Errorf("--%s (%s) must be empty or the same as %s (%s) with --bootstrap-token-file: the node's certificate authenticates it to the apiserver", p.flag, v, p.from, p.path)
		}
	}
	token, err := readToken(o.bootstrapTokenFile)
	if err != nil {
		o.tokenErr = err
	}
	if o.cfg.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("--node-name not set and no host name: %w", err)
		}
		o.cfg.NodeName = strings.ToLower(h)
	}
	o.boot = &bootstrap.Config{
		NodeName: o.cfg.NodeName, APIServer: o.sharedFlag("apiserver"), CAFile: o.sharedFlag("apiserver-ca-file"),
		Token: token, CertFile: certFile, KeyFile: keyFile,
	}
	return nil
}

// readToken reads the bootstrap token from path: one token, surrounding
// white space ignored.
func readToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--bootstrap-token-file: %w", err)
	}
	token := strings.TrimSpace(string(data))
	switch {
	case token == "":
		return "", fmt.Errorf("--bootstrap-token-file: %s is empty", path)
	case strings.ContainsAny(token, " \t\r\n,"):
		return "", fmt.Errorf("--bootstrap-token-file: %s must hold one token (no white space or commas inside)", path)
	}
	return token, nil
}

// prepare makes sure the node has its certificate before anything loads
// it, waiting for the apiserver while it cannot be reached.
func (o *options) prepare(ctx context.Context, log *slog.Logger) error {
	if o.boot == nil {
		return nil
	}
	cfg := *o.boot
	cfg.Log = log
	if _, err := bootstrap.Ensure(ctx, cfg); err != nil {
		if o.tokenErr != nil {
			return fmt.Errorf("%w (%v)", o.tokenErr, err)
		}
		return fmt.Errorf("node certificate: %w", err)
	}
	return nil
}

// startRotation renews the bootstrapped certificate until ctx ends.
func (o *options) startRotation(ctx context.Context, s *server.Service) error {
	cfg := *o.boot
	cfg.Log = s.Log
	r, err := bootstrap.NewRotator(cfg)
	if err != nil {
		return err
	}
	go func() { _ = r.Run(ctx) }()
	return nil
}

// defaultIP is the source address of the default route, else 127.0.0.1.
func defaultIP() string {
	c, err := net.Dial("udp", "192.0.2.1:9") // no packet is sent
	if err != nil {
		return "127.0.0.1"
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String()
}

// withListen publishes the agent's port and, when it listens on one
// specific address other than the node's IP, that address for health checks.
func withListen(c *agent.Config, addr net.Addr) {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return
	}
	c.Port = int32(tcp.Port)
	if !tcp.IP.IsUnspecified() && tcp.IP.String() != c.NodeIP {
		c.Annotations = map[string]string{node.HealthEndpointAnnotation: tcp.String()}
	}
}

func main() {
	var o options
	var api *nodeapi.Server
	ready := make(chan struct{})
	var markReady sync.Once
	server.Run(server.Spec{
		Name:          "node-agent",
		DefaultListen: defaultListen,
		Flags:         o.register,
		Check:         o.check,
		Prepare:       o.prepare,
		Setup: func(ctx context.Context, s *server.Service) error {
			api = nodeapi.Register(s.Server.GRPC())
			api.Callers = o.apiCallers
			// Not ready until the node is registered and its pods are run.
			s.Ready = ready
			if o.boot != nil {
				return o.startRotation(ctx, s)
			}
			return nil
		},
		Body: func(ctx context.Context, s *server.Service) error {
			withListen(&o.cfg, s.Server.Addr())
			o.cfg.Registerer = s.Server.Registry()
			return agent.Run(ctx, s.Conn, o.cfg, s.Log, func(a *agent.Agent) {
				api.SetBackend(a.APIBackend())
				markReady.Do(func() { close(ready) })
			})
		},
	})
}
