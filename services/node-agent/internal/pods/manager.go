// Package pods runs the pods bound to this node: one worker per pod, each
// with its own sync loop that drives the pod towards its spec, in this
// order:
//
//	sandbox (volumes, network namespace + CNI, hosts/resolv.conf)
//	  -> image pull (imagePullPolicy)
//	  -> create -> start -> probes (startup, liveness, readiness)
//	  -> exits: last state, restartPolicy, exponential back-off
//	  -> status (written only when it changed)
//
// and, once the pod is marked for deletion: SIGTERM, the grace period,
// SIGKILL, removal of containers, CNI DEL and namespace removal, volume
// removal, and finally deletion of the pod object.
//
// A worker wakes when its pod changes, when one of its containers exits
// (runtime events), when a probe result flips, when a back-off expires, and
// every resync interval. Containers are found again after a node-agent
// restart through their labels (see package runtime), so pods keep running
// and keep their restart counts.
package pods

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"k8s.io/utils/clock"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/node-agent/internal/images"
	"bosun.dev/services/node-agent/internal/network"
	"bosun.dev/services/node-agent/internal/probes"
	"bosun.dev/services/node-agent/internal/runtime"
	"bosun.dev/services/node-agent/internal/sandbox"
	"bosun.dev/services/node-agent/internal/status"
	"bosun.dev/services/node-agent/internal/volumes"
)

// API is what the workers write to the apiserver.
type API interface {
	status.API
	// DeletePod removes the pod object with a zero grace period, only if
	// its uid still matches; a pod already gone is not an error.
	DeletePod(ctx context.Context, namespace, name, uid string) error
}

// Options configure a Manager.
type Options struct {
	// NodeName is this node; HostIP its address, reported in pod status.
	NodeName, HostIP string
	Runtime          runtime.Runtime
	Network          network.Network
	Images           *images.Manager
	Volumes          *volumes.Manager
	Objects          volumes.Objects
	// IsNotFound tells whether an Objects or API error means "not found".
	IsNotFound func(error) bool
	API        API
	// PodsDir holds one directory per pod (sandbox record, volumes,
	// generated files).
	PodsDir string
	// Sandboxes keeps sandbox records; a disk store in PodsDir when nil.
	// With an in-memory store pods get no files and no volumes (the node
	// simulator).
	Sandboxes sandbox.Records
	// LogDir holds container logs: LogDir/<namespace>_<pod>_<uid>/<container>/<attempt>.log;
	// "" keeps none.
	LogDir string
	// ResyncInterval re-syncs every pod this often; 0 relies on events only.
	ResyncInterval time.Duration
	// BackoffBase is the first restart delay of a crashing container (and
	// of a failing pull), doubled after each further failure up to
	// BackoffMax. Defaults 10 s and 5 min.
	BackoffBase, BackoffMax time.Duration
	// Clock is the real clock when nil.
	Clock  clock.WithTicker
	Logger *slog.Logger
}

// Manager owns the pod workers.
type Manager struct {
	opts      Options
	log       *slog.Logger
	sandboxes sandbox.Records
	probes    *probes.Manager
	status    *status.Writer
	metrics   *Metrics // nil: none

	mu      sync.Mutex
	ctx     context.Context
	workers map[string]*worker
	initial map[string][]runtime.Container // containers found at start, by pod uid
	wg      sync.WaitGroup
}

// New returns a Manager; Run starts it.
func New(opts Options) *Manager {
	if opts.BackoffBase == 0 {
		opts.BackoffBase = 10 * time.Second
	}
	if opts.BackoffMax == 0 {
		opts.BackoffMax = 5 * time.Minute
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Sandboxes == nil {
		opts.Sandboxes = sandbox.Store{Dir: opts.PodsDir}
	}
	m := &Manager{
		opts:      opts,
		log:       opts.Logger,
		sandboxes: opts.Sandboxes,
		status:    status.NewWriter(opts.API),
		workers:   map[string]*worker{},
	}
	m.probes = probes.NewManager(opts.Runtime, opts.Clock, m.Wake)
	return m
}

// Sandboxes is the store of pod sandboxes.
func (m *Manager) Sandboxes() sandbox.Records { return m.sandboxes }

// Run lists the runtime's containers once (for adoption), starts the
// workers of the pods known so far and serves until ctx ends. Containers
// keep running when it returns: a restarted node-agent adopts them.
func (m *Manager) Run(ctx context.Context) error {
	cs, err := m.opts.Runtime.ListContainers(ctx)
	if err != nil {
		return fmt.Errorf("listing containers for adoption: %w", err)
	}
	initial := map[string][]runtime.Container{}
	for _, c := range cs {
		initial[c.PodUID] = append(initial[c.PodUID], c)
	}
	m.mu.Lock()
	m.ctx, m.initial = ctx, initial
	for _, w := range m.workers {
		m.startLocked(w)
	}
	m.mu.Unlock()
	<-ctx.Done()
	m.wg.Wait()
	return nil
}

func (m *Manager) startLocked(w *worker) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		w.run(m.ctx)
	}()
}

// Update hands the latest state of a pod bound to this node to its worker,
// starting one for a new pod.
func (m *Manager) Update(pod *corev1.Pod) {
	uid := pod.GetMetadata().GetUid()
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.workers[uid]
	if !ok {
		w = newWorker(m, pod)
		m.workers[uid] = w
		if m.ctx != nil {
			m.startLocked(w)
		}
		return
	}
	w.setPod(pod, false)
}

// Forget tells the worker that its pod object is gone from the apiserver:
// its containers are stopped and everything is removed.
func (m *Manager) Forget(pod *corev1.Pod) {
	uid := pod.GetMetadata().GetUid()
	m.mu.Lock()
	defer m.mu.Unlock()
	if w, ok := m.workers[uid]; ok {
		w.setPod(pod, true)
	}
}

// Wake asks a pod's worker to sync now.
func (m *Manager) Wake(podUID string) {
	m.mu.Lock()
	w := m.workers[podUID]
	m.mu.Unlock()
	if w != nil {
		w.wake()
	}
}

// Known reports whether a worker runs for the pod.
func (m *Manager) Known(podUID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.workers[podUID]
	return ok
}

// Count is the number of pods with a worker.
func (m *Manager) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.workers)
}

func (m *Manager) done(uid string, w *worker) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.workers[uid] == w {
		delete(m.workers, uid)
	}
}

func (m *Manager) takeInitial(uid string) []runtime.Container {
	m.mu.Lock()
	defer m.mu.Unlock()
	cs := m.initial[uid]
	delete(m.initial, uid)
	return cs
}

// PodLogDir is the directory of a pod's logs ("" without a LogDir).
func (m *Manager) PodLogDir(namespace, name, uid string) string {
	if m.opts.LogDir == "" {
		return ""
	}
	return filepath.Join(m.opts.LogDir, namespace+"_"+name+"_"+uid)
}

// LogPath is the log file of one attempt of a container ("" without a
// LogDir).
func (m *Manager) LogPath(pod *corev1.Pod, container string, attempt int) string {
	md := pod.GetMetadata()
	if m.opts.LogDir == "" {
		return ""
	}
	return filepath.Join(m.PodLogDir(md.GetNamespace(), md.GetName(), md.GetUid()), container, strconv.Itoa(attempt)+".log")
}

// Cleanup stops and removes containers, sandboxes and logs of pods that
// are neither bound to this node nor run by a worker: what a node-agent
// that was down while they were deleted left behind. bound is asked per pod
// uid at the moment of removal.
func (m *Manager) Cleanup(ctx context.Context, bound func(uid string) bool) (removed int, err error) {
	keep := func(uid string) bool { return bound(uid) || m.Known(uid) }
	cs, err := m.opts.Runtime.ListContainers(ctx)
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, c := range cs {
		if keep(c.PodUID) {
			continue
		}
		m.log.Info("removing container of a pod that is gone", "container", c.ID, "pod", c.PodNamespace+"/"+c.PodName)
		if err := m.opts.Runtime.StopContainer(ctx, c.ID, 0); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := m.opts.Runtime.RemoveContainer(ctx, c.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		m.mu.Lock()
		delete(m.initial, c.PodUID)
		m.mu.Unlock()
		removed++
	}
	uids, err := m.sandboxes.List()
	if err != nil {
		return removed, errors.Join(append(errs, err)...)
	}
	for _, uid := range uids {
		if keep(uid) {
			continue
		}
		rec, ok, err := m.sandboxes.Load(uid)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			m.log.Info("removing sandbox of a pod that is gone", "pod", rec.Namespace+"/"+rec.Name, "uid", uid)
			if !rec.HostNetwork && !rec.Released {
				if err := m.opts.Network.Teardown(ctx, uid, rec.Network); err != nil {
					errs = append(errs, err)
					continue
				}
			}
			if d := m.PodLogDir(rec.Namespace, rec.Name, uid); d != "" {
				if err := os.RemoveAll(d); err != nil {
					errs = append(errs, err)
				}
			}
		}
		if err := m.sandboxes.Remove(uid); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}
