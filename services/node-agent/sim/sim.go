// Package sim runs many simulated node-agents in one process, kwok-style,
// for scale tests and benchmarks of the control plane. Each simulated node
// registers its Node (with a pod CIDR of its own), renews its Lease and
// runs the pods bound to it with the node-agent's own pod workers on the
// in-memory fake runtime and network: containers "start" at once, get an
// address, pass their probes and report Running; deletion removes them and
// deletes the pod object, as on a real node.
//
// One watch on the apiserver (spec.nodeName!="") feeds every simulated
// node, instead of one watch per node.
package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/informer"
	"bosun.dev/services/node-agent/internal/apiclient"
	"bosun.dev/services/node-agent/internal/images"
	"bosun.dev/services/node-agent/internal/network"
	"bosun.dev/services/node-agent/internal/node"
	"bosun.dev/services/node-agent/internal/pods"
	"bosun.dev/services/node-agent/internal/runtime/fake"
	"bosun.dev/services/node-agent/internal/sandbox"
	"bosun.dev/services/node-agent/internal/volumes"
)

// Options configure the simulated nodes.
type Options struct {
	// Nodes is how many to simulate.
	Nodes int
	// Prefix names them Prefix0, Prefix1, ...; "sim-" when "".
	Prefix string
	// Capacity of each node; 32 CPUs, 256 GiB, 110 pods when nil.
	Capacity map[string]string
	// Zones spreads nodes over this many topology.kubernetes.io/zone
	// labels (zone-0, zone-1, ...); 0 sets none.
	Zones int
	// Labels are added to every node.
	Labels map[string]string
	// LeaseDuration and RenewInterval of each node's lease (40 s and 10 s
	// when zero).
	LeaseDuration, RenewInterval time.Duration
	// StatusInterval bounds the time between node status writes (1 min).
	StatusInterval time.Duration
	// RegisterConcurrency bounds the registrations in flight (50).
	RegisterConcurrency int
	Logger              *slog.Logger
}

// Sim is a running set of simulated nodes.
type Sim struct {
	opts    Options
	log     *slog.Logger
	conn    grpc.ClientConnInterface
	nodes   map[string]*simNode
	running atomic.Int64
	ready   chan struct{}
}

type simNode struct {
	name  string
	agent *node.Agent
	pods  *pods.Manager
}

// PodCIDR is the pod range of the i-th simulated node: a /24 in 10.128.0.0/9
// (room for 32,768 nodes).
func PodCIDR(i int) string {
	return fmt.Sprintf("10.%d.%d.0/24", 128+i/256, i%256)
}

// New prepares opts.Nodes simulated nodes; Run starts them.
func New(conn grpc.ClientConnInterface, opts Options) (*Sim, error) {
	if opts.Nodes <= 0 || opts.Nodes > 32768 {
		return nil, fmt.Errorf("nodes: %d is not in 1..32768", opts.Nodes)
	}
	if opts.Prefix == "" {
		opts.Prefix = "sim-"
	}
	if opts.Capacity == nil {
		opts.Capacity = map[string]string{"cpu": "32", "memory": "256Gi", "ephemeral-storage": "1Ti"}
	}
	if opts.LeaseDuration == 0 {
		opts.LeaseDuration = 40 * time.Second
	}
	if opts.RenewInterval == 0 {
		opts.RenewInterval = 10 * time.Second
	}
	if opts.StatusInterval == 0 {
		opts.StatusInterval = time.Minute
	}
	if opts.RegisterConcurrency == 0 {
		opts.RegisterConcurrency = 50
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Sim{opts: opts, log: opts.Logger, conn: conn, nodes: map[string]*simNode{}, ready: make(chan struct{})}
	api := apiclient.New(conn)
	maxPods := 110
	if v, ok := opts.Capacity["pods"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("capacity pods: %q is not a number", v)
		}
		maxPods = n
	}
	host := node.Fixed{Cap: opts.Capacity, Use: node.Usage{MemoryAvailableBytes: 200 << 30, DiskAvailableBytes: 900 << 30, DiskTotalBytes: 1 << 40, PIDsInUse: 500, PIDsMax: 4 << 20}}
	for i := 0; i < opts.Nodes; i++ {
		name := opts.Prefix + strconv.Itoa(i)
		labels := map[string]string{"bosun.dev/simulated": "true"}
		for k, v := range opts.Labels {
			labels[k] = v
		}
		if opts.Zones > 0 {
			labels["topology.kubernetes.io/zone"] = "zone-" + strconv.Itoa(i%opts.Zones)
		}
		rt := fake.New()
		net, err := network.NewFake(PodCIDR(i))
		if err != nil {
			return nil, err
		}
		pm := pods.New(pods.Options{
			NodeName: name, HostIP: fmt.Sprintf("10.127.%d.%d", i/256, i%256),
			Runtime: rt, Network: net, Images: images.New(rt, images.Options{Logger: opts.Logger}),
			Volumes: volumes.New(api, []string{"/"}, apierrors.IsNotFound), Objects: api,
			IsNotFound: apierrors.IsNotFound, API: api, Sandboxes: sandbox.NewMemory(),
			BackoffBase: time.Second, BackoffMax: time.Minute, Logger: opts.Logger.With("node", name),
		})
		rt.SetNotify(pm.Wake)
		na := node.New(client.For[*corev1.Node](conn), client.For[*coordinationv1.Lease](conn), node.Options{
			Name: name, Labels: labels, InternalIP: fmt.Sprintf("10.127.%d.%d", i/256, i%256), Hostname: name,
			PodCIDR: PodCIDR(i), MaxPods: maxPods, Port: 10250, RuntimeVersion: func() string { return "fake://1.0" },
			LeaseDuration: opts.LeaseDuration, RenewInterval: opts.RenewInterval, StatusInterval: opts.StatusInterval,
			Host: host, Logger: opts.Logger.With("node", name),
		}, nil)
		s.nodes[name] = &simNode{name: name, agent: na, pods: pm}
	}
	return s, nil
}

// Ready is closed once every node is registered and pods are being run.
func (s *Sim) Ready() <-chan struct{} { return s.ready }

// Pods counts the pods the simulated nodes run.
func (s *Sim) Pods() int {
	n := 0
	for _, sn := range s.nodes {
		n += sn.pods.Count()
	}
	return n
}

// Run registers every node, then runs leases and pods until ctx ends.
func (s *Sim) Run(ctx context.Context) error {
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opts.RegisterConcurrency)
	for _, sn := range s.nodes {
		g.Go(func() error {
			if _, err := sn.agent.Register(gctx); err != nil {
				return err
			}
			return sn.agent.RenewLease(gctx)
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("registering simulated nodes: %w", err)
	}
	s.log.Info("simulated nodes registered", "nodes", len(s.nodes), "took", time.Since(start).Round(time.Millisecond))

	inf := informer.New(client.For[*corev1.Pod](s.conn), informer.Options{FieldSelector: "spec.nodeName!=", Logger: s.log})
	route := func(p *corev1.Pod) *pods.Manager {
		if sn, ok := s.nodes[p.GetSpec().GetNodeName()]; ok {
			return sn.pods
		}
		return nil
	}
	inf.AddEventHandler(informer.HandlerFuncs[*corev1.Pod]{
		AddFunc: func(p *corev1.Pod) {
			if m := route(p); m != nil {
				m.Update(p)
			}
		},
		UpdateFunc: func(_, p *corev1.Pod) {
			if m := route(p); m != nil {
				m.Update(p)
			}
		},
		DeleteFunc: func(p *corev1.Pod) {
			if m := route(p); m != nil {
				m.Forget(p)
			}
		},
	})
	g, ctx = errgroup.WithContext(ctx)
	g.Go(func() error { return inf.Run(ctx) })
	// Leases are renewed by a few goroutines walking the nodes, not one
	// ticker per node: spread over the interval.
	names := make([]string, 0, len(s.nodes))
	for name := range s.nodes {
		names = append(names, name)
	}
	const renewers = 8
	for r := 0; r < renewers; r++ {
		g.Go(func() error { return s.renew(ctx, names, r, renewers) })
	}
	var wg sync.WaitGroup
	for _, sn := range s.nodes {
		wg.Add(1)
		g.Go(func() error { defer wg.Done(); return sn.pods.Run(ctx) })
	}
	g.Go(func() error {
		select {
		case <-ctx.Done():
		case <-inf.Synced():
			close(s.ready)
		}
		return nil
	})
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func (s *Sim) renew(ctx context.Context, names []string, shard, shards int) error {
	var mine []*simNode
	for i := shard; i < len(names); i += shards {
		mine = append(mine, s.nodes[names[i]])
	}
	if len(mine) == 0 {
		return nil
	}
	step := s.opts.RenewInterval / time.Duration(len(mine))
	t := time.NewTicker(max(step, time.Millisecond))
	defer t.Stop()
	for i := 0; ; i = (i + 1) % len(mine) {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := mine[i].agent.RenewLease(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("renewing simulated node lease", "node", mine[i].name, "err", err)
		}
	}
}
