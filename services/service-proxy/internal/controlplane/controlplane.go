// Package controlplane wires the service-proxy together: watch follows
// Services, Endpoints and Nodes, translate turns them into Envoy resources,
// and xds serves them to proxies.
//
//	apiserver --watch--> Source --Input--> translate --Result--> xds.Server --ADS--> Envoy, gRPC
package controlplane

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"bosun.dev/services/service-proxy/internal/translate"
	"bosun.dev/services/service-proxy/internal/watch"
	"bosun.dev/services/service-proxy/internal/xds"
)

// Config configures a ControlPlane.
type Config struct {
	// APIServer is the connection to the apiserver.
	APIServer grpc.ClientConnInterface
	// Translate holds the proxy-wide settings.
	Translate translate.Options
	// PhaseTimeout bounds each make-before-break phase; see xds.Config.
	PhaseTimeout time.Duration
	// UpdateDelay gathers changes that arrive within it into one update.
	UpdateDelay time.Duration
	// Logger receives the logs; slog.Default() when nil.
	Logger *slog.Logger
	// Registry receives the metrics; none when nil.
	Registry prometheus.Registerer
}

// ControlPlane follows the cluster and serves its proxies.
type ControlPlane struct {
	cfg       Config
	log       *slog.Logger
	src       *watch.Source
	xds       *xds.Server
	ready     chan struct{}
	readyOnce sync.Once
}

// New builds a control plane; ctx ends its xDS streams. Register it on a
// gRPC server and start it with Run.
func New(ctx context.Context, cfg Config) *ControlPlane {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &ControlPlane{
		cfg:   cfg,
		log:   log,
		src:   watch.New(cfg.APIServer, log),
		xds:   xds.New(ctx, xds.Config{Logger: log, Registry: cfg.Registry, PhaseTimeout: cfg.PhaseTimeout}),
		ready: make(chan struct{}),
	}
}

// Register adds the xDS services to g.
func (c *ControlPlane) Register(g *grpc.Server) { c.xds.Register(g) }

// XDS is the xDS server.
func (c *ControlPlane) XDS() *xds.Server { return c.xds }

// Ready is closed once the first configuration has been served.
func (c *ControlPlane) Ready() <-chan struct{} { return c.ready }

// Run follows the cluster and serves every change until ctx ends.
func (c *ControlPlane) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.src.Run(ctx) }()
	var cache translate.Cache
	c.src.Follow(ctx, c.cfg.UpdateDelay, func(ctx context.Context, in translate.Input) {
		res := cache.Translate(in, c.cfg.Translate)
		if err := c.xds.Update(ctx, res); err != nil {
			if ctx.Err() == nil {
				c.log.ErrorContext(ctx, "update not served", "err", err)
			}
			return
		}
		c.readyOnce.Do(func() {
			c.log.InfoContext(ctx, "serving proxy configuration", "services", len(res.Groups))
			close(c.ready)
		})
	})
	wg.Wait()
	return nil
}
