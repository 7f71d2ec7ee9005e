package pods

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/node-agent/internal/images"
	"bosun.dev/services/node-agent/internal/network"
	"bosun.dev/services/node-agent/internal/probes"
	"bosun.dev/services/node-agent/internal/runtime"
	"bosun.dev/services/node-agent/internal/sandbox"
	"bosun.dev/services/node-agent/internal/status"
	"bosun.dev/services/node-agent/internal/volumes"
)

// DefaultGracePeriod is a pod's termination grace period when neither the
// delete request nor the spec gives one.
const DefaultGracePeriod = 30 * time.Second

// ctr is a worker's memory of one container of its pod.
type ctr struct {
	// id is the current runtime container; "" when none exists.
	id      string
	attempt int
	// restarts counts the runs that ended and were followed by a restart;
	// it is also the next attempt's number.
	restarts int
	running  bool
	started  time.Time
	ready    bool
	// last is how the latest run ended, prevLast the one before.
	last, prevLast *corev1.ContainerStateTerminated
	// final: terminated and not to be restarted.
	final   bool
	waiting *corev1.ContainerStateWaiting
	// nextStart delays the next start (back-off); backoff is the next delay.
	nextStart time.Time
	backoff   time.Duration
	// pullErr is the last pull failure, shown while in ImagePullBackOff.
	pullErr string
	image   string
	imageID string
}

type worker struct {
	m   *Manager
	uid string
	log *slog.Logger

	kick chan struct{}

	mu   sync.Mutex
	pod  *corev1.Pod
	gone bool

	// Owned by the run goroutine.
	adopted   bool
	sb        *sandbox.Record
	vols      map[string]volumes.Volume
	cs        map[string]*ctr
	podReason string
	podMsg    string
	// blocked: the pod cannot run as specified (e.g. a forbidden hostPath).
	blocked bool
	// firstSync and startObserved time the pod's start for the metrics.
	firstSync     time.Time
	startObserved bool
}

func newWorker(m *Manager, pod *corev1.Pod) *worker {
	md := pod.GetMetadata()
	return &worker{
		m: m, uid: md.GetUid(), pod: pod, kick: make(chan struct{}, 1), cs: map[string]*ctr{},
		log: m.log.With("pod", md.GetNamespace()+"/"+md.GetName(), "uid", md.GetUid()),
	}
}

func (w *worker) setPod(pod *corev1.Pod, gone bool) {
	w.mu.Lock()
	w.pod = pod
	w.gone = w.gone || gone
	w.mu.Unlock()
	w.wake()
}

func (w *worker) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *worker) snapshot() (*corev1.Pod, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod, w.gone
}

func (w *worker) run(ctx context.Context) {
	defer w.m.done(w.uid, w)
	clk := w.m.opts.Clock
	w.firstSync = clk.Now()
	for {
		began := clk.Now()
		finished, next := w.sync(ctx)
		if mt := w.m.metrics; mt != nil {
			mt.SyncSeconds.Observe(clk.Since(began).Seconds())
		}
		if finished || ctx.Err() != nil {
			return
		}
		if r := w.m.opts.ResyncInterval; r > 0 && (next == 0 || r < next) {
			next = r
		}
		var (
			timer <-chan time.Time
			stop  = func() bool { return false }
		)
		if next > 0 {
			t := clk.NewTimer(next)
			timer, stop = t.C(), t.Stop
		}
		select {
		case <-ctx.Done():
			stop()
			return
		case <-w.kick:
		case <-timer:
		}
		stop()
	}
}

// sync drives the pod one step towards its spec. It reports whether the
// worker is finished (the pod is gone) and when it wants to sync again
// (0: only on events).
func (w *worker) sync(ctx context.Context) (finished bool, next time.Duration) {
	pod, gone := w.snapshot()
	if !w.adopted {
		w.adopt(ctx, pod)
	}
	if gone || pod.GetMetadata().GetDeletionTimestamp() != nil {
		if err := w.terminate(ctx, pod, gone); err != nil {
			if ctx.Err() == nil {
				w.log.Warn("terminating pod", "err", err)
			}
			return false, time.Second
		}
		return true, 0
	}
	if w.blocked {
		return false, 0
	}
	if w.sb == nil && w.finished(pod) {
		// Finished before this agent started: nothing to set up again.
		w.writeStatus(ctx, pod)
		return false, 0
	}
	if w.sb == nil {
		if err := w.phase(ctx, pod, "sandbox", func(ctx context.Context) error { return w.setupSandbox(ctx, pod) }); err != nil {
			w.log.Warn("setting up the pod sandbox", "err", err)
			var ve *volumes.Error
			if errors.As(err, &ve) && ve.Reason == "HostPathForbidden" {
				w.blocked = true
				w.podReason, w.podMsg = ve.Reason, err.Error()
				for _, c := range pod.GetSpec().GetContainers() {
					w.container(c.GetName()).waiting = &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: err.Error()}
				}
				w.writeStatus(ctx, pod)
				return false, 0
			}
			w.podReason, w.podMsg = "SandboxSetupFailed", err.Error()
			w.writeStatus(ctx, pod)
			return false, w.m.opts.BackoffBase
		}
		w.podReason, w.podMsg = "", ""
	}
	now := w.m.opts.Clock.Now()
	for i, c := range pod.GetSpec().GetContainers() {
		if d := w.syncContainer(ctx, pod, i, c, now); d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	w.observeStart(pod)
	if err := w.releaseIfFinished(ctx, pod); err != nil {
		w.log.Warn("releasing the network of a finished pod", "err", err)
		next = time.Second
	}
	w.writeStatus(ctx, pod)
	return false, next
}

// observeStart records the pod's start time once all its containers run.
func (w *worker) observeStart(pod *corev1.Pod) {
	mt := w.m.metrics
	if mt == nil || w.startObserved {
		return
	}
	for _, c := range pod.GetSpec().GetContainers() {
		if !w.container(c.GetName()).running {
			return
		}
	}
	w.startObserved = true
	mt.PodStartSeconds.Observe(w.m.opts.Clock.Since(w.firstSync).Seconds())
}

// finished reports whether every container terminated for good.
func (w *worker) finished(pod *corev1.Pod) bool {
	for _, c := range pod.GetSpec().GetContainers() {
		if !w.container(c.GetName()).final {
			return false
		}
	}
	return len(pod.GetSpec().GetContainers()) > 0
}

// releaseIfFinished tears down the network of a pod whose containers have
// all terminated for good (Succeeded or Failed), so that its address is
// free for other pods; the pod keeps its IP in its status.
func (w *worker) releaseIfFinished(ctx context.Context, pod *corev1.Pod) error {
	if w.sb == nil || w.sb.Released || w.sb.HostNetwork {
		return nil
	}
	if !w.finished(pod) {
		return nil
	}
	if err := w.m.opts.Network.Teardown(ctx, w.uid, w.sb.Network); err != nil {
		return err
	}
	rec := *w.sb
	rec.Released, rec.Network.NetNSPath = true, ""
	if err := w.m.sandboxes.Save(rec); err != nil {
		return err
	}
	w.sb = &rec
	w.log.Info("pod finished; network released", "ip", rec.Network.IP)
	return nil
}

func (w *worker) container(name string) *ctr {
	c, ok := w.cs[name]
	if !ok {
		c = &ctr{attempt: -1}
		w.cs[name] = c
	}
	return c
}

// adopt takes over what a previous node-agent left: the sandbox record,
// the latest container of each name, and restart counts and last states
// from the pod's status.
func (w *worker) adopt(ctx context.Context, pod *corev1.Pod) {
	w.adopted = true
	if rec, ok, err := w.m.sandboxes.Load(w.uid); err != nil {
		w.log.Warn("reading sandbox record", "err", err)
	} else if ok {
		w.sb = &rec
		if _, err := os.Stat(rec.Network.NetNSPath); !rec.HostNetwork && !rec.Released && err != nil {
			w.log.Warn("sandbox network namespace is gone; recreating the sandbox", "netns", rec.Network.NetNSPath)
			_ = w.m.opts.Network.Teardown(ctx, w.uid, rec.Network)
			w.sb = nil
		}
	}
	for _, cs := range pod.GetStatus().GetContainerStatuses() {
		c := w.container(cs.GetName())
		c.restarts = int(cs.GetRestartCount())
		c.last = cs.GetLastState().GetTerminated()
		if t := cs.GetState().GetTerminated(); t != nil {
			c.prevLast, c.last = c.last, t
			c.final = !shouldRestart(pod.GetSpec().GetRestartPolicy(), t.GetExitCode())
			if !c.final {
				c.restarts++
			}
		}
	}
	found := w.m.takeInitial(w.uid)
	latest := map[string]runtime.Container{}
	for _, rc := range found {
		if cur, ok := latest[rc.Name]; !ok || rc.Attempt > cur.Attempt {
			latest[rc.Name] = rc
		}
	}
	for _, rc := range found {
		if latest[rc.Name].ID != rc.ID {
			_ = w.m.opts.Runtime.StopContainer(ctx, rc.ID, 0)
			_ = w.m.opts.Runtime.RemoveContainer(ctx, rc.ID)
		}
	}
	for name, rc := range latest {
		c := w.container(name)
		c.id, c.attempt, c.restarts, c.final = rc.ID, rc.Attempt, rc.Attempt, false
		c.image, c.imageID = rc.Image, rc.ImageID
		if rc.State == runtime.StateRunning {
			w.log.Info("adopted running container", "container", name, "id", rc.ID)
			w.ensureProbes(pod, name, rc.ID)
		}
	}
}

func (w *worker) setupSandbox(ctx context.Context, pod *corev1.Pod) error {
	spec := pod.GetSpec()
	if err := w.m.opts.Volumes.CheckHostPaths(spec); err != nil {
		return err
	}
	md := pod.GetMetadata()
	hostname := spec.GetHostname()
	if hostname == "" {
		hostname = md.GetName()
	}
	if len(hostname) > 63 {
		hostname = hostname[:63]
	}
	rec := sandbox.Record{UID: w.uid, Namespace: md.GetNamespace(), Name: md.GetName(), Hostname: hostname, HostNetwork: spec.GetHostNetwork()}
	dir := w.m.sandboxes.PodDir(w.uid)
	if dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("pod directory: %w", err)
		}
	}
	if spec.GetHostNetwork() {
		rec.Network.IP = w.m.opts.HostIP
		if h, err := os.Hostname(); err == nil {
			rec.Hostname = h
		}
	} else {
		var ports []network.PortMapping
		for _, c := range spec.GetContainers() {
			for _, p := range c.GetPorts() {
				if p.GetHostPort() > 0 {
					proto := strings.ToLower(p.GetProtocol())
					if proto == "" {
						proto = "tcp"
					}
					ports = append(ports, network.PortMapping{HostPort: p.GetHostPort(), ContainerPort: p.GetContainerPort(), Protocol: proto, HostIP: p.GetHostIp()})
				}
			}
		}
		a, err := w.m.opts.Network.Setup(ctx, w.uid, ports)
		if err != nil {
			return err
		}
		rec.Network = a
		if dir != "" {
			if _, _, err := network.WritePodFiles(dir, hostname, a.IP); err != nil {
				_ = w.m.opts.Network.Teardown(ctx, w.uid, a)
				return err
			}
		}
	}
	if err := w.m.sandboxes.Save(rec); err != nil {
		if !rec.HostNetwork {
			_ = w.m.opts.Network.Teardown(ctx, w.uid, rec.Network)
		}
		return err
	}
	w.sb = &rec
	return nil
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

func shouldRestart(policy string, exitCode int32) bool {
	switch policy {
	case "Never":
		return false
	case "OnFailure":
		return exitCode != 0
	}
	return true
}

func terminationReason(rc runtime.Container) string {
	switch {
	case rc.OOMKilled:
		return "OOMKilled"
	case rc.ExitCode == 0:
		return "Completed"
	}
	return "Error"
}

// syncContainer observes one container and starts it when it should run.
// It returns when it wants to be called again (0: on events only).
func (w *worker) syncContainer(ctx context.Context, pod *corev1.Pod, idx int, spec *corev1.Container, now time.Time) time.Duration {
	c := w.container(spec.GetName())
	rt := w.m.opts.Runtime
	if c.id != "" {
		rc, err := rt.ContainerStatus(ctx, c.id)
		switch {
		case errors.Is(err, runtime.ErrNotFound):
			w.log.Warn("container vanished from the runtime", "container", spec.GetName(), "id", c.id)
			w.m.probes.Remove(c.id)
			c.id, c.running, c.ready = "", false, false
		case err != nil:
			w.log.Warn("reading container status", "container", spec.GetName(), "err", err)
			return time.Second
		}
		if c.id != "" && rc.State == runtime.StateRunning {
			if st, ok := w.m.probes.Get(c.id, probes.Liveness); ok && st.Result == probes.Failure {
				w.log.Info("liveness probe failed; restarting container", "container", spec.GetName(), "reason", st.Message)
				if err := w.stopContainer(ctx, spec, c.id, w.gracePeriod(pod, spec.GetLivenessProbe())); err != nil {
					w.log.Warn("stopping container", "container", spec.GetName(), "err", err)
					return time.Second
				}
				if rc, err = rt.ContainerStatus(ctx, c.id); err != nil {
					return time.Second
				}
			}
		}
		if c.id != "" {
			switch rc.State {
			case runtime.StateRunning:
				c.running, c.started, c.waiting = true, rc.StartedAt, nil
				c.image, c.imageID, c.attempt = rc.Image, rc.ImageID, rc.Attempt
				c.ready = w.ready(spec, c.id)
				return 0
			case runtime.StateCreated:
				// Created but never started (the agent stopped in between).
				if err := rt.RemoveContainer(ctx, c.id); err != nil {
					return time.Second
				}
				c.id = ""
			case runtime.StateExited:
				term := &corev1.ContainerStateTerminated{
					ExitCode:    rc.ExitCode,
					Reason:      terminationReason(rc),
					StartedAt:   timestamppb.New(rc.StartedAt),
					FinishedAt:  timestamppb.New(rc.FinishedAt),
					ContainerId: "containerd://" + rc.ID,
				}
				if rc.ExitCode > 128 {
					term.Signal = rc.ExitCode - 128
				}
				w.m.probes.Remove(c.id)
				if err := rt.RemoveContainer(ctx, c.id); err != nil {
					w.log.Warn("removing exited container", "container", spec.GetName(), "err", err)
					return time.Second
				}
				w.log.Info("container exited", "container", spec.GetName(), "exitCode", rc.ExitCode, "reason", term.Reason)
				c.id, c.running, c.ready = "", false, false
				c.prevLast, c.last = c.last, term
				c.final = !shouldRestart(pod.GetSpec().GetRestartPolicy(), rc.ExitCode)
				if !c.final {
					c.restarts++
					if mt := w.m.metrics; mt != nil {
						mt.ContainerRestarts.Inc()
					}
					delay := c.backoff
					if delay == 0 || rc.FinishedAt.Sub(rc.StartedAt) > 2*w.m.opts.BackoffMax {
						delay = w.m.opts.BackoffBase // ran long enough: forgive
					}
					c.nextStart = now.Add(delay)
					c.backoff = min(2*delay, w.m.opts.BackoffMax)
					c.waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
						Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", delay, spec.GetName(), pod.GetMetadata().GetName())}
				}
			}
		}
	}
	if c.final {
		return 0
	}
	if now.Before(c.nextStart) {
		if c.pullErr != "" {
			c.waiting = &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff",
				Message: fmt.Sprintf("Back-off pulling image %q: %s", spec.GetImage(), c.pullErr)}
		}
		return c.nextStart.Sub(now)
	}
	return w.start(ctx, pod, idx, spec, c, now)
}

func (w *worker) ready(spec *corev1.Container, id string) bool {
	if spec.GetStartupProbe() != nil {
		if st, ok := w.m.probes.Get(id, probes.Startup); !ok || st.Result != probes.Success {
			return false
		}
	}
	if spec.GetReadinessProbe() != nil {
		st, ok := w.m.probes.Get(id, probes.Readiness)
		return ok && st.Result == probes.Success
	}
	return true
}

func (w *worker) failStart(c *ctr, now time.Time, reason, msg string) time.Duration {
	c.waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
	delay := c.backoff
	if delay == 0 {
		delay = w.m.opts.BackoffBase
	}
	c.nextStart = now.Add(delay)
	c.backoff = min(2*delay, w.m.opts.BackoffMax)
	return delay
}

func (w *worker) start(ctx context.Context, pod *corev1.Pod, idx int, spec *corev1.Container, c *ctr, now time.Time) time.Duration {
	rt := w.m.opts.Runtime
	var img runtime.Image
	err := w.phase(ctx, pod, "pull", func(ctx context.Context) (err error) {
		img, err = w.m.opts.Images.Ensure(ctx, spec.GetImage(), spec.GetImagePullPolicy())
		return err
	})
	if mt := w.m.metrics; mt != nil && ctx.Err() == nil {
		mt.ImagePulls.WithLabelValues(result(err)).Inc()
	}
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		reason := "ErrImagePull"
		if errors.Is(err, images.ErrNeverPull) {
			reason = "ErrImageNeverPull"
		}
		c.pullErr = err.Error()
		w.log.Info("image pull failed", "image", spec.GetImage(), "err", err)
		return w.failStart(c, now, reason, err.Error())
	}
	c.pullErr = ""
	if w.vols == nil && w.m.sandboxes.PodDir(w.uid) == "" {
		w.vols = map[string]volumes.Volume{} // no files: volumes are not materialised
		for _, v := range pod.GetSpec().GetVolumes() {
			w.vols[v.GetName()] = volumes.Volume{}
		}
	}
	if w.vols == nil {
		vols, err := w.m.opts.Volumes.Setup(ctx, pod, w.m.sandboxes.PodDir(w.uid))
		if err != nil {
			return w.failStart(c, now, "CreateContainerConfigError", err.Error())
		}
		w.vols = vols
	}
	attempt := c.restarts
	cspec, err := w.containerSpec(ctx, pod, spec, idx, attempt, img.Ref, *w.sb, w.vols)
	if err != nil {
		return w.failStart(c, now, "CreateContainerConfigError", err.Error())
	}
	if err := w.phase(ctx, pod, "create", func(ctx context.Context) error { return rt.CreateContainer(ctx, cspec) }); err != nil {
		if errors.Is(err, runtime.ErrAlreadyExists) {
			// Left by an earlier attempt that failed half-way.
			_ = rt.StopContainer(ctx, cspec.ID, 0)
			_ = rt.RemoveContainer(ctx, cspec.ID)
		}
		return w.failStart(c, now, "CreateContainerError", err.Error())
	}
	err = w.phase(ctx, pod, "start", func(ctx context.Context) error { return rt.StartContainer(ctx, cspec.ID) })
	if mt := w.m.metrics; mt != nil {
		mt.ContainerStarts.WithLabelValues(result(err)).Inc()
	}
	if err != nil {
		_ = rt.RemoveContainer(ctx, cspec.ID)
		return w.failStart(c, now, "RunContainerError", err.Error())
	}
	if h := spec.GetLifecycle().GetPostStart(); h != nil {
		hctx, cancel := context.WithTimeout(ctx, postStartTimeout)
		err := w.hook(hctx, spec, cspec.ID, h, postStartTimeout)
		cancel()
		if err != nil {
			// As in Kubernetes: the container is killed, and started again
			// after the back-off its restart policy allows.
			w.log.Warn("postStart hook failed; killing the container", "container", spec.GetName(), "err", err)
			_ = rt.StopContainer(ctx, cspec.ID, w.gracePeriod(pod, nil))
			_ = rt.RemoveContainer(ctx, cspec.ID)
			return w.failStart(c, now, "PostStartHookError", "postStart hook failed: "+err.Error())
		}
	}
	w.log.Info("container started", "container", spec.GetName(), "id", cspec.ID, "attempt", attempt)
	c.id, c.attempt, c.running, c.started, c.waiting = cspec.ID, attempt, true, now, nil
	c.image, c.imageID = img.Ref, img.ID
	if rc, err := rt.ContainerStatus(ctx, cspec.ID); err == nil && !rc.StartedAt.IsZero() {
		c.started = rc.StartedAt
	}
	w.ensureProbes(pod, spec.GetName(), cspec.ID)
	c.ready = w.ready(spec, cspec.ID)
	return 0
}

func (w *worker) ensureProbes(pod *corev1.Pod, name, id string) {
	var spec *corev1.Container
	for _, c := range pod.GetSpec().GetContainers() {
		if c.GetName() == name {
			spec = c
		}
	}
	if spec == nil {
		return
	}
	ip := ""
	if w.sb != nil {
		ip = w.sb.Network.IP
	}
	t := probes.Target{ContainerID: id, PodIP: ip, Ports: spec.GetPorts()}
	hasStartup := spec.GetStartupProbe() != nil
	if hasStartup {
		w.m.probes.Ensure(w.uid, probes.Startup, spec.GetStartupProbe(), t, false)
	}
	if p := spec.GetLivenessProbe(); p != nil {
		w.m.probes.Ensure(w.uid, probes.Liveness, p, t, hasStartup)
	}
	if p := spec.GetReadinessProbe(); p != nil {
		w.m.probes.Ensure(w.uid, probes.Readiness, p, t, hasStartup)
	}
}

// gracePeriod is how long a container gets between SIGTERM and SIGKILL.
func (w *worker) gracePeriod(pod *corev1.Pod, probe *corev1.Probe) time.Duration {
	if probe != nil && probe.TerminationGracePeriodSeconds != nil {
		return time.Duration(*probe.TerminationGracePeriodSeconds) * time.Second
	}
	if g := pod.GetMetadata().DeletionGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	if g := pod.GetSpec().TerminationGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	return DefaultGracePeriod
}

func (w *worker) writeStatus(ctx context.Context, pod *corev1.Pod) {
	v := status.Pod{Pod: pod, HostIP: w.m.opts.HostIP, Reason: w.podReason, Message: w.podMsg}
	if w.sb != nil {
		v.PodIP = w.sb.Network.IP
	} else if w.finished(pod) {
		v.PodIP = pod.GetStatus().GetPodIp() // finished before this agent started
	}
	for _, spec := range pod.GetSpec().GetContainers() {
		c := w.container(spec.GetName())
		image := c.image
		if image == "" {
			image = spec.GetImage()
		}
		cv := status.Container{
			Name: spec.GetName(), Image: image, ImageID: c.imageID,
			Running: c.running, StartedAt: c.started, Ready: c.ready && c.running,
			Started: c.running && w.startupDone(spec, c.id), RestartCount: int32(c.restarts),
		}
		if c.id != "" {
			cv.ContainerID = "containerd://" + c.id
		}
		switch {
		case c.running:
			cv.LastTerminated = c.last
		case c.final:
			cv.Terminated, cv.LastTerminated = c.last, c.prevLast
		default:
			cv.Waiting, cv.LastTerminated = c.waiting, c.last
		}
		v.Containers = append(v.Containers, cv)
	}
	prev := w.m.status.Last(w.uid)
	if prev == nil {
		prev = pod.GetStatus()
	}
	st := status.Compute(v, prev, w.m.opts.Clock.Now())
	if _, err := w.m.status.Write(ctx, pod, st); err != nil && ctx.Err() == nil && !w.m.opts.IsNotFound(err) {
		w.log.Warn("writing pod status", "err", err)
	}
}

func (w *worker) startupDone(spec *corev1.Container, id string) bool {
	if spec.GetStartupProbe() == nil || id == "" {
		return true
	}
	st, ok := w.m.probes.Get(id, probes.Startup)
	return ok && st.Result == probes.Success
}

// terminate stops the pod's containers gracefully, removes everything it
// had on the node and, unless the object is already gone, deletes it.
func (w *worker) terminate(ctx context.Context, pod *corev1.Pod, gone bool) error {
	rt := w.m.opts.Runtime
	grace := w.gracePeriod(pod, nil)
	specs := map[string]*corev1.Container{}
	for _, c := range pod.GetSpec().GetContainers() {
		specs[c.GetName()] = c
	}
	ids := map[string]*corev1.Container{} // runtime id -> spec
	for name, c := range w.cs {
		if c.id != "" {
			ids[c.id] = specs[name]
		}
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for id, spec := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.m.probes.Remove(id)
			err := w.stopContainer(ctx, spec, id, grace)
			if err == nil {
				err = rt.RemoveContainer(ctx, id)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, c := range w.cs {
		if c.id != "" {
			if c.running {
				c.final = true
			}
			c.id, c.running, c.ready = "", false, false
		}
	}
	rec, ok, err := w.m.sandboxes.Load(w.uid)
	if err != nil {
		return err
	}
	if ok && !rec.HostNetwork && !rec.Released {
		if err := w.m.opts.Network.Teardown(ctx, w.uid, rec.Network); err != nil {
			return err
		}
	}
	if dir := w.m.sandboxes.PodDir(w.uid); dir != "" {
		if err := volumes.Teardown(dir); err != nil {
			return err
		}
	}
	if err := w.m.sandboxes.Remove(w.uid); err != nil {
		return err
	}
	md := pod.GetMetadata()
	if d := w.m.PodLogDir(md.GetNamespace(), md.GetName(), w.uid); d != "" {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	w.sb = nil
	if !gone {
		if err := w.m.opts.API.DeletePod(ctx, md.GetNamespace(), md.GetName(), w.uid); err != nil && !w.m.opts.IsNotFound(err) {
			return fmt.Errorf("deleting pod object: %w", err)
		}
	}
	w.m.status.Forget(w.uid)
	w.log.Info("pod terminated and removed", "grace", grace.String())
	return nil
}
