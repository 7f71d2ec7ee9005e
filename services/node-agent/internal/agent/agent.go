// Package agent assembles the node-agent: the containerd runtime, the CNI
// network, image, volume and pod managers, the Node and its Lease, and the
// informer that feeds the pods bound to this node to their workers. Run
// starts them in order and cleans up what pods deleted while the agent was
// down left behind.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/informer"
	"bosun.dev/services/node-agent/internal/apiclient"
	"bosun.dev/services/node-agent/internal/images"
	"bosun.dev/services/node-agent/internal/logs"
	"bosun.dev/services/node-agent/internal/network"
	"bosun.dev/services/node-agent/internal/node"
	"bosun.dev/services/node-agent/internal/nodeapi"
	"bosun.dev/services/node-agent/internal/pods"
	"bosun.dev/services/node-agent/internal/runtime"
	"bosun.dev/services/node-agent/internal/runtime/containerd"
	"bosun.dev/services/node-agent/internal/volumes"
)

// Config is the node-agent's configuration (its flags).
type Config struct {
	// NodeName names the Node; the host name when "".
	NodeName string
	// NodeIP is the node's InternalIP and the pods' hostIP.
	NodeIP string
	// PodCIDR is the node's pod range; "" waits for the controller to
	// assign spec.podCIDR.
	PodCIDR string
	// Labels are extra node labels.
	Labels map[string]string
	// Annotations are set on the node.
	Annotations map[string]string
	// Port is the agent's gRPC port, published in the Node status.
	Port int32

	ContainerdAddress   string
	ContainerdNamespace string
	// RootDir holds pod directories, network namespaces and IPAM state.
	RootDir string
	// LogDir holds container logs.
	LogDir string

	CNIPluginDirs []string
	Bridge        string
	IPMasq        bool

	InsecureRegistries []string
	// LoadImages are OCI tarballs imported at start (air-gapped nodes).
	LoadImages []string
	// ImageGCHighBytes starts image garbage collection; 0 disables it.
	ImageGCHighBytes int64
	ImageGCLowBytes  int64

	AllowedHostPathPrefixes []string

	MaxPods                                      int
	LeaseNamespace                               string
	LeaseDuration, RenewInterval, StatusInterval time.Duration
	ResyncInterval                               time.Duration
	BackoffBase, BackoffMax                      time.Duration

	// Registerer receives the pod workers' metrics; nil keeps none.
	Registerer prometheus.Registerer
}

// Agent is a running node-agent.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	Runtime runtime.Runtime
	Pods    *pods.Manager
	Images  *images.Manager
	podInf  *informer.Informer[*corev1.Pod]
}

// APIBackend lets NodeAgentService read this agent's container logs and
// load images into its runtime.
func (a *Agent) APIBackend() *nodeapi.Backend {
	return &nodeapi.Backend{NodeName: a.cfg.NodeName, Logs: a.logsBackend(), Images: a.Images, TempDir: a.cfg.RootDir}
}

func (a *Agent) logsBackend() *logs.Backend {
	return &logs.Backend{
		Pod: a.podInf.Get,
		Dir: func(p *corev1.Pod, container string) string {
			md := p.GetMetadata()
			return filepath.Join(a.Pods.PodLogDir(md.GetNamespace(), md.GetName(), md.GetUid()), container)
		},
		Running: func(ctx context.Context, p *corev1.Pod, container string, attempt int) bool {
			c, err := a.Runtime.ContainerStatus(ctx, runtime.ContainerID(p.GetMetadata().GetUid(), container, attempt))
			return err == nil && c.State == runtime.StateRunning
		},
	}
}

// Run runs the node-agent until ctx ends. ready, when set, is called once
// the node is registered and its pods are being run.
func Run(ctx context.Context, conn grpc.ClientConnInterface, cfg Config, log *slog.Logger, ready func(*Agent)) error {
	if cfg.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("--node-name not set and no host name: %w", err)
		}
		cfg.NodeName = strings.ToLower(h)
	}
	if cfg.RootDir == "" || cfg.LogDir == "" {
		return errors.New("--root-dir and --log-dir must be set")
	}
	for _, d := range []string{cfg.RootDir, cfg.LogDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
	}
	log = log.With("node", cfg.NodeName)

	// The node is registered and heartbeats from the start; it is Ready once
	// containerd answers and the network is set up.
	var (
		rtp       atomic.Pointer[containerd.Runtime]
		rtVersion atomic.Value // string
		notReady  atomic.Value // string: why the node is not ready; "" when it is
		wake      atomic.Pointer[pods.Manager]
	)
	notReady.Store("container runtime is not connected (containerd at " + cfg.ContainerdAddress + ")")
	rtVersion.Store("")
	nodes := client.For[*corev1.Node](conn)
	na := node.New(nodes, client.For[*coordinationv1.Lease](conn), node.Options{
		Name: cfg.NodeName, Labels: cfg.Labels, Annotations: cfg.Annotations, InternalIP: cfg.NodeIP, Hostname: cfg.NodeName,
		PodCIDR: cfg.PodCIDR, MaxPods: cfg.MaxPods, Port: cfg.Port,
		RuntimeVersion: func() string { return rtVersion.Load().(string) },
		LeaseNamespace: cfg.LeaseNamespace, LeaseDuration: cfg.LeaseDuration, RenewInterval: cfg.RenewInterval,
		StatusInterval: cfg.StatusInterval, Host: node.Machine{DiskPath: cfg.RootDir}, Logger: log,
		Images: imageLister(ctx, &rtp, 30*time.Second),
	}, func() error {
		if why := notReady.Load().(string); why != "" {
			return errors.New(why)
		}
		_, err := rtp.Load().Version(ctx)
		return err
	})
	if _, err := na.Register(ctx); err != nil {
		return err
	}
	if err := na.RenewLease(ctx); err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return na.Run(ctx) })
	g.Go(func() error {
		rt, v, err := connectRuntime(ctx, cfg, log, func(uid string) {
			if m := wake.Load(); m != nil {
				m.Wake(uid)
			}
		})
		if err != nil {
			return err
		}
		defer rt.Close()
		rtp.Store(rt)
		rtVersion.Store(v)
		notReady.Store("waiting for a pod CIDR")
		podCIDR, err := na.WaitForPodCIDR(ctx)
		if err != nil {
			return err
		}
		return runPods(ctx, conn, cfg, log, rt, v, podCIDR, &wake, func(a *Agent) {
			notReady.Store("")
			if ready != nil {
				ready(a)
			}
		})
	})
	return g.Wait()
}

// imageLister lists the runtime's images for the node status, at most once
// per interval (sizes are summed from the content store).
func imageLister(ctx context.Context, rtp *atomic.Pointer[containerd.Runtime], interval time.Duration) func() ([]*corev1.ContainerImage, error) {
	var (
		last []*corev1.ContainerImage
		at   time.Time
	)
	return func() ([]*corev1.ContainerImage, error) {
		rt := rtp.Load()
		if rt == nil {
			return nil, nil
		}
		if last != nil && time.Since(at) < interval {
			return last, nil
		}
		imgs, err := rt.ListImages(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]*corev1.ContainerImage, 0, len(imgs))
		for _, img := range imgs {
			out = append(out, &corev1.ContainerImage{Names: []string{img.Ref}, SizeBytes: img.Size})
		}
		last, at = out, time.Now()
		return out, nil
	}
}

// runPods sets up the network, images and pod workers, and runs the pods
// bound to the node until ctx ends.
func runPods(ctx context.Context, conn grpc.ClientConnInterface, cfg Config, log *slog.Logger, rt *containerd.Runtime,
	rtVersion, podCIDR string, wake *atomic.Pointer[pods.Manager], ready func(*Agent)) error {
	cni, err := network.NewCNI(network.CNIOptions{
		PluginDirs: cfg.CNIPluginDirs, PodCIDR: podCIDR, Bridge: cfg.Bridge, IPMasq: cfg.IPMasq,
		NetNSDir: filepath.Join(cfg.RootDir, "netns"), IPAMDir: filepath.Join(cfg.RootDir, "ipam"),
	})
	if err != nil {
		return err
	}
	im := images.New(rt, images.Options{InsecureRegistries: cfg.InsecureRegistries,
		GCHighBytes: cfg.ImageGCHighBytes, GCLowBytes: cfg.ImageGCLowBytes, Logger: log})
	for _, p := range cfg.LoadImages {
		if err := loadTarball(ctx, im, p, log); err != nil {
			return err
		}
	}
	api := apiclient.New(conn)
	pm := pods.New(pods.Options{
		NodeName: cfg.NodeName, HostIP: cfg.NodeIP, Runtime: rt, Network: cni, Images: im,
		Volumes: volumes.New(api, cfg.AllowedHostPathPrefixes, apierrors.IsNotFound), Objects: api,
		IsNotFound: apierrors.IsNotFound, API: api,
		PodsDir: filepath.Join(cfg.RootDir, "pods"), LogDir: cfg.LogDir,
		ResyncInterval: cfg.ResyncInterval, BackoffBase: cfg.BackoffBase, BackoffMax: cfg.BackoffMax, Logger: log,
	})
	if cfg.Registerer != nil {
		pm.NewMetrics(cfg.Registerer)
	}
	wake.Store(pm)
	inf := informer.New(api.Pods, informer.Options{FieldSelector: "spec.nodeName=" + cfg.NodeName, Logger: log})
	inf.AddEventHandler(informer.HandlerFuncs[*corev1.Pod]{
		AddFunc:    pm.Update,
		UpdateFunc: func(_, p *corev1.Pod) { pm.Update(p) },
		DeleteFunc: pm.Forget,
	})

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return inf.Run(ctx) })
	g.Go(func() error { return pm.Run(ctx) })
	g.Go(func() error { im.Run(ctx, time.Minute); return nil })
	g.Go(func() error {
		select {
		case <-ctx.Done():
			return nil
		case <-inf.Synced():
		}
		// Everything bound is known now: remove what belongs to pods that
		// were deleted while the agent was down.
		bound := map[string]bool{}
		for _, p := range inf.List() {
			bound[p.GetMetadata().GetUid()] = true
		}
		if n, err := pm.Cleanup(ctx, func(uid string) bool { return bound[uid] }); err != nil {
			log.Warn("removing leftovers of deleted pods", "err", err)
		} else if n > 0 {
			log.Info("removed leftovers of deleted pods", "count", n)
		}
		log.Info("node-agent running", "podCIDR", podCIDR, "runtime", rtVersion, "pods", len(bound))
		if ready != nil {
			ready(&Agent{cfg: cfg, log: log, Runtime: rt, Pods: pm, Images: im, podInf: inf})
		}
		return nil
	})
	return g.Wait()
}

// connectRuntime connects to containerd, retrying every few seconds while
// it is not up yet, until ctx ends.
func connectRuntime(ctx context.Context, cfg Config, log *slog.Logger, notify func(string)) (*containerd.Runtime, string, error) {
	delay := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		rt, err := containerd.New(ctx, containerd.Options{
			Address: cfg.ContainerdAddress, Namespace: cfg.ContainerdNamespace, Logger: log, Notify: notify,
		})
		if err == nil {
			v, verr := rt.Version(ctx)
			if verr == nil {
				return rt, v, nil
			}
			_ = rt.Close()
			err = verr
		}
		log.Warn("containerd is not reachable yet", "address", cfg.ContainerdAddress, "attempt", attempt, "err", err, "retry_in", delay.String())
		select {
		case <-ctx.Done():
			return nil, "", ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}

func loadTarball(ctx context.Context, im *images.Manager, path string, log *slog.Logger) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("--load-image: %w", err)
	}
	defer f.Close()
	imgs, err := im.Load(ctx, f)
	if err != nil {
		return fmt.Errorf("--load-image %s: %w", path, err)
	}
	for _, img := range imgs {
		log.Info("image loaded", "file", path, "image", img.Ref, "id", img.ID)
	}
	return nil
}
