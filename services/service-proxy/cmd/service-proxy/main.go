// Command service-proxy is Bosun's xDS control plane: it turns Services and
// Endpoints into Envoy configuration and serves it over ADS, state of the
// world and delta, to Envoy and to proxyless gRPC clients, on --listen.
//
//	service-proxy [flags]                     serve
//	service-proxy bootstrap --node-id ID ...  print a proxy's bootstrap
//
// It waits for the apiserver, reports NOT_SERVING on gRPC health (and
// /readyz) until it has served its first configuration, and stops on SIGINT
// or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"bosun.dev/pkg/server"
	"bosun.dev/services/service-proxy/internal/bootstrap"
	"bosun.dev/services/service-proxy/internal/controlplane"
	"bosun.dev/services/service-proxy/internal/translate"
	"bosun.dev/services/service-proxy/internal/xds"
)

const (
	name          = "service-proxy"
	defaultListen = "127.0.0.1:18000"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "bootstrap" {
		if err := runBootstrap(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "%s bootstrap: %v\n", name, err)
			os.Exit(2)
		}
		return
	}
	var o options
	var cp *controlplane.ControlPlane
	server.Run(server.Spec{
		Name:          name,
		DefaultListen: defaultListen,
		Flags:         o.register,
		Check:         o.check,
		Setup: func(ctx context.Context, s *server.Service) error {
			cp = controlplane.New(ctx, controlplane.Config{
				APIServer: s.Conn, Translate: o.translate, PhaseTimeout: o.phaseTimeout, UpdateDelay: o.updateDelay,
				Logger: s.Log, Registry: s.Server.Registry(),
			})
			cp.Register(s.Server.GRPC())
			// Health says NOT_SERVING until the first configuration is served.
			s.Ready = cp.Ready()
			return nil
		},
		Body: func(ctx context.Context, _ *server.Service) error { return cp.Run(ctx) },
	})
}

// options are the service-proxy's own flags.
type options struct {
	translate    translate.Options
	phaseTimeout time.Duration
	updateDelay  time.Duration
	outboundPort uint
}

func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.translate.ClusterDomain, "cluster-domain", "cluster.local", "DNS suffix of services: name.namespace.svc.<domain> is a virtual host name")
	fs.StringVar(&o.translate.IngressAddress, "ingress-address", "0.0.0.0", "address the proxies' ingress listeners (NodePort and LoadBalancer services) bind on")
	fs.UintVar(&o.outboundPort, "outbound-port", 15001, "port of the proxies' virtual_outbound listener, where connections to service addresses are redirected")
	fs.DurationVar(&o.phaseTimeout, "phase-timeout", xds.DefaultPhaseTimeout, "longest wait for proxies to answer one make-before-break phase of an update")
	fs.DurationVar(&o.updateDelay, "update-delay", 0, "gather changes arriving within this delay into one update (0: update at once, coalescing only changes that arrive during an update)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s [flags]\n       %s bootstrap --node-id ID [bootstrap flags]\n\nFlags:\n", name, name)
		fs.PrintDefaults()
	}
}

func (o *options) check() error {
	if o.outboundPort == 0 || o.outboundPort > 65535 {
		return fmt.Errorf("--outbound-port %d: want a port from 1 to 65535", o.outboundPort)
	}
	if o.phaseTimeout <= 0 {
		return fmt.Errorf("--phase-timeout %s: must be positive", o.phaseTimeout)
	}
	if o.updateDelay < 0 {
		return fmt.Errorf("--update-delay %s: must not be negative", o.updateDelay)
	}
	o.translate.OutboundPort = uint32(o.outboundPort)
	return nil
}

// runBootstrap prints the bootstrap of one proxy.
func runBootstrap(args []string, out io.Writer) error {
	var o bootstrap.Options
	fs := flag.NewFlagSet(name+" bootstrap", flag.ContinueOnError)
	fs.StringVar(&o.NodeID, "node-id", "", "xDS node id of the proxy (required; one per proxy)")
	fs.StringVar(&o.NodeName, "node-name", "", "Bosun Node the proxy runs on, for services that prefer local endpoints (default: the node id)")
	fs.StringVar(&o.XDSAddress, "xds-address", defaultListen, "the service-proxy's gRPC address, host:port")
	fs.StringVar(&o.Cluster, "cluster", "bosun", "Envoy service cluster name")
	fs.StringVar(&o.AdminAddress, "admin-address", "127.0.0.1:9901", "Envoy admin interface, host:port (\"\": none)")
	fs.BoolVar(&o.Delta, "delta", false, "use the delta (incremental) xDS variant")
	format := fs.String("format", "envoy", "envoy: Envoy bootstrap YAML; grpc: gRPC xDS bootstrap JSON for proxyless gRPC clients")
	var tlsFiles bootstrap.TLSFiles
	fs.StringVar(&tlsFiles.CAFile, "ca-file", "", "CA of the service-proxy's serving certificate (required unless --insecure)")
	fs.StringVar(&tlsFiles.CertFile, "cert-file", "", "the proxy's client certificate, signed by the cluster CA (required unless --insecure)")
	fs.StringVar(&tlsFiles.KeyFile, "key-file", "", "key of --cert-file (required unless --insecure)")
	insecure := fs.Bool("insecure", false, "reach a service-proxy started with --insecure, in plaintext (local experiments only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case !*insecure:
		o.TLS = &tlsFiles
	case tlsFiles != (bootstrap.TLSFiles{}):
		return errors.New("--insecure and --ca-file/--cert-file/--key-file exclude each other")
	}
	var b []byte
	var err error
	switch *format {
	case "envoy":
		b, err = bootstrap.EnvoyYAML(o)
	case "grpc":
		b, err = bootstrap.GRPCJSON(o)
		b = append(b, '\n')
	default:
		return fmt.Errorf("--format %q: want envoy or grpc", *format)
	}
	if err != nil {
		return err
	}
	_, err = out.Write(b)
	return err
}
