// Package containerd implements runtime.Runtime on a containerd daemon
// through containerd's Go client, in a containerd namespace of the
// node-agent's own so that it never sees or touches other users' containers.
//
// Containers get containerd's default seccomp profile, cgroup memory and CPU
// limits, the pod's network namespace, and their output in a log file the
// shim writes, so logs survive a node-agent restart. Task exit and OOM events
// are followed to wake the pod workers and to remember OOM kills as a
// container label.
package containerd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bosun.dev/services/node-agent/internal/runtime"
)

// Labels the runtime keeps on containers besides runtime's pod labels.
const (
	labelLogPath   = "bosun.dev/log-path"
	labelStartedAt = "bosun.dev/started-at"
	labelOOMKilled = "bosun.dev/oom-killed"
)

// DefaultNamespace is the containerd namespace the node-agent uses.
const DefaultNamespace = "bosun"

// Options configure a Runtime.
type Options struct {
	// Address is containerd's socket, e.g. /run/containerd/containerd.sock.
	Address string
	// Namespace is the containerd namespace; DefaultNamespace when "".
	Namespace string
	// Snapshotter is the snapshotter name; "overlayfs" when "".
	Snapshotter string
	// Notify, when set, is called with a pod's uid whenever one of its
	// containers exits or is OOM-killed.
	Notify func(podUID string)
	// Logger receives the runtime's logs; slog.Default() when nil.
	Logger *slog.Logger
}

// Runtime is a runtime.Runtime on containerd.
type Runtime struct {
	c    *client.Client
	opts Options
	log  *slog.Logger

	stop    context.CancelFunc
	done    chan struct{}
	execSeq atomic.Uint64
}

var _ runtime.Runtime = (*Runtime)(nil)

// New connects to containerd and starts following its task events. Close
// releases the connection.
func New(ctx context.Context, opts Options) (*Runtime, error) {
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.Snapshotter == "" {
		opts.Snapshotter = "overlayfs"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c, err := client.New(opts.Address, client.WithDefaultNamespace(opts.Namespace), client.WithTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connecting to containerd at %s: %w", opts.Address, err)
	}
	r := &Runtime{c: c, opts: opts, log: opts.Logger, done: make(chan struct{})}
	evctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r.stop = stop
	go r.followEvents(evctx)
	return r, nil
}

// Close stops following events and closes the connection.
func (r *Runtime) Close() error {
	r.stop()
	<-r.done
	return r.c.Close()
}

// Client is the underlying containerd client.
func (r *Runtime) Client() *client.Client { return r.c }

func (r *Runtime) ns(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.opts.Namespace)
}

// followEvents wakes pod workers on task exits and marks OOM kills, and
// resubscribes with back-off when containerd restarts.
func (r *Runtime) followEvents(ctx context.Context) {
	defer close(r.done)
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		evs, errs := r.c.Subscribe(ctx, fmt.Sprintf(`namespace==%s,topic~="^/tasks/(exit|oom)$"`, r.opts.Namespace))
	recv:
		for {
			select {
			case <-ctx.Done():
				return
			case err := <-errs:
				if err != nil && ctx.Err() == nil {
					r.log.Debug("containerd event stream ended; resubscribing", "err", err)
				}
				break recv
			case env := <-evs:
				delay = 100 * time.Millisecond
				r.handleEvent(ctx, env.Event)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

func (r *Runtime) handleEvent(ctx context.Context, any typeurl.Any) {
	if any == nil {
		return
	}
	ev, err := typeurl.UnmarshalAny(any)
	if err != nil {
		return
	}
	var id string
	switch e := ev.(type) {
	case *apievents.TaskOOM:
		id = e.ContainerID
		r.markOOM(ctx, id)
	case *apievents.TaskExit:
		id = e.ContainerID
	default:
		return
	}
	if r.opts.Notify == nil {
		return
	}
	c, err := r.c.LoadContainer(r.ns(ctx), id)
	if err != nil {
		return
	}
	labels, err := c.Labels(r.ns(ctx))
	if err == nil && labels[runtime.LabelPodUID] != "" {
		r.opts.Notify(labels[runtime.LabelPodUID])
	}
}

func (r *Runtime) markOOM(ctx context.Context, id string) {
	c, err := r.c.LoadContainer(r.ns(ctx), id)
	if err != nil {
		return
	}
	if _, err := c.SetLabels(r.ns(ctx), map[string]string{labelOOMKilled: "true"}); err != nil {
		r.log.Warn("recording OOM kill", "container", id, "err", err)
	}
}

func (r *Runtime) resolver(opts runtime.PullOptions) *client.RemoteContext {
	rc := &client.RemoteContext{}
	var ropts []docker.RegistryOpt
	if opts.PlainHTTP {
		ropts = append(ropts, docker.WithPlainHTTP(docker.MatchAllHosts))
	}
	rc.Resolver = docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(ropts...)})
	return rc
}

// PullImage fetches and unpacks ref.
func (r *Runtime) PullImage(ctx context.Context, ref string, opts runtime.PullOptions) (runtime.Image, error) {
	ctx = r.ns(ctx)
	img, err := r.c.Pull(ctx, ref, client.WithPullUnpack, client.WithPullSnapshotter(r.opts.Snapshotter),
		client.WithResolver(r.resolver(opts).Resolver))
	if err != nil {
		return runtime.Image{}, fmt.Errorf("pulling image %q: %w", ref, err)
	}
	return r.describe(ctx, img)
}

func (r *Runtime) describe(ctx context.Context, img client.Image) (runtime.Image, error) {
	size, err := img.Size(ctx)
	if err != nil {
		return runtime.Image{}, fmt.Errorf("image %q: %w", img.Name(), err)
	}
	return runtime.Image{Ref: img.Name(), ID: img.Target().Digest.String(), Size: size}, nil
}

// GetImage returns a stored image.
func (r *Runtime) GetImage(ctx context.Context, ref string) (runtime.Image, error) {
	ctx = r.ns(ctx)
	img, err := r.c.GetImage(ctx, ref)
	if errdefs.IsNotFound(err) {
		return runtime.Image{}, fmt.Errorf("image %q: %w", ref, runtime.ErrNotFound)
	}
	if err != nil {
		return runtime.Image{}, fmt.Errorf("image %q: %w", ref, err)
	}
	return r.describe(ctx, img)
}

// ListImages returns every stored image.
func (r *Runtime) ListImages(ctx context.Context) ([]runtime.Image, error) {
	ctx = r.ns(ctx)
	imgs, err := r.c.ListImages(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing images: %w", err)
	}
	out := make([]runtime.Image, 0, len(imgs))
	for _, img := range imgs {
		d, err := r.describe(ctx, img)
		if err != nil {
			continue // deleted meanwhile
		}
		out = append(out, d)
	}
	return out, nil
}

// RemoveImage deletes a stored image; the content it alone used is
// collected by containerd.
func (r *Runtime) RemoveImage(ctx context.Context, ref string) error {
	err := r.c.ImageService().Delete(r.ns(ctx), ref, images.SynchronousDelete())
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("removing image %q: %w", ref, err)
	}
	return nil
}

// ImportImages loads an OCI image-layout (or docker-archive) tarball and
// unpacks every image in it.
func (r *Runtime) ImportImages(ctx context.Context, rd io.Reader) ([]runtime.Image, error) {
	ctx = r.ns(ctx)
	imgs, err := r.c.Import(ctx, rd, client.WithSkipDigestRef(func(string) bool { return true }))
	if err != nil {
		return nil, fmt.Errorf("importing images: %w", err)
	}
	var out []runtime.Image
	for _, i := range imgs {
		img := client.NewImageWithPlatform(r.c, i, nil)
		if err := img.Unpack(ctx, r.opts.Snapshotter); err != nil {
			return nil, fmt.Errorf("unpacking imported image %q: %w", i.Name, err)
		}
		d, err := r.describe(ctx, img)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// CreateContainer creates the container and its snapshot.
func (r *Runtime) CreateContainer(ctx context.Context, spec runtime.ContainerSpec) error {
	ctx = r.ns(ctx)
	img, err := r.c.GetImage(ctx, spec.Image)
	if err != nil {
		return fmt.Errorf("container %q: image %q: %w", spec.ID, spec.Image, err)
	}
	args, err := processArgs(ctx, img, spec)
	if err != nil {
		return fmt.Errorf("container %q: %w", spec.ID, err)
	}
	specOpts := []oci.SpecOpts{
		oci.WithImageConfig(img),
		oci.WithProcessArgs(args...),
		oci.WithEnv(spec.Env),
		oci.WithHostname(spec.Hostname),
	}
	if spec.WorkingDir != "" {
		specOpts = append(specOpts, oci.WithProcessCwd(spec.WorkingDir))
	}
	if spec.NetNSPath != "" {
		specOpts = append(specOpts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: spec.NetNSPath}))
	}
	var mounts []specs.Mount
	for _, m := range spec.Mounts {
		o := []string{"rbind", "rprivate"}
		if m.ReadOnly {
			o = append(o, "ro")
		} else {
			o = append(o, "rw")
		}
		mounts = append(mounts, specs.Mount{Destination: m.ContainerPath, Source: m.HostPath, Type: "bind", Options: o})
	}
	if len(mounts) > 0 {
		specOpts = append(specOpts, oci.WithMounts(mounts))
	}
	if spec.MemoryLimitBytes > 0 {
		specOpts = append(specOpts, withMemoryLimit(spec.MemoryLimitBytes))
	}
	if spec.CPUMillis > 0 {
		const period = 100_000
		specOpts = append(specOpts, oci.WithCPUCFS(spec.CPUMillis*period/1000, period))
	}
	if spec.RunAsUser != nil || spec.RunAsGroup != nil {
		var uid, gid int64
		if spec.RunAsUser != nil {
			uid = *spec.RunAsUser
		}
		if spec.RunAsGroup != nil {
			gid = *spec.RunAsGroup
		}
		specOpts = append(specOpts, oci.WithUIDGID(uint32(uid), uint32(gid)))
	}
	if spec.ReadOnlyRootFS {
		specOpts = append(specOpts, oci.WithRootFSReadonly())
	}
	if spec.Privileged {
		specOpts = append(specOpts, oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices)
	} else {
		specOpts = append(specOpts, seccomp.WithDefaultProfile())
	}
	labels := map[string]string{
		runtime.LabelPodUID:       spec.PodUID,
		runtime.LabelPodNamespace: spec.PodNamespace,
		runtime.LabelPodName:      spec.PodName,
		runtime.LabelContainer:    spec.Name,
		runtime.LabelAttempt:      strconv.Itoa(spec.Attempt),
		labelLogPath:              spec.LogPath,
	}
	_, err = r.c.NewContainer(ctx, spec.ID,
		client.WithImage(img),
		client.WithSnapshotter(r.opts.Snapshotter),
		client.WithNewSnapshot(spec.ID, img),
		client.WithContainerLabels(labels),
		client.WithNewSpec(specOpts...),
	)
	if errdefs.IsAlreadyExists(err) {
		return fmt.Errorf("container %q: %w", spec.ID, runtime.ErrAlreadyExists)
	}
	if err != nil {
		// A failed create can leave the snapshot behind.
		_ = r.c.SnapshotService(r.opts.Snapshotter).Remove(ctx, spec.ID)
		return fmt.Errorf("creating container %q: %w", spec.ID, err)
	}
	return nil
}

// processArgs applies Kubernetes' rules: command replaces the entrypoint,
// args replace the image's cmd.
func processArgs(ctx context.Context, img client.Image, spec runtime.ContainerSpec) ([]string, error) {
	if len(spec.Command) > 0 {
		return append(append([]string{}, spec.Command...), spec.Args...), nil
	}
	ic, err := img.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading image config of %q: %w", spec.Image, err)
	}
	args := append([]string{}, ic.Config.Entrypoint...)
	if len(spec.Args) > 0 {
		args = append(args, spec.Args...)
	} else {
		args = append(args, ic.Config.Cmd...)
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("image %q has no entrypoint or cmd and the container sets no command", spec.Image)
	}
	return args, nil
}

// withMemoryLimit caps memory and memory+swap at the same value, so a
// container cannot escape its limit into swap.
func withMemoryLimit(limit int64) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		if s.Linux.Resources.Memory == nil {
			s.Linux.Resources.Memory = &specs.LinuxMemory{}
		}
		s.Linux.Resources.Memory.Limit = &limit
		s.Linux.Resources.Memory.Swap = &limit
		return nil
	}
}

func (r *Runtime) load(ctx context.Context, id string) (client.Container, error) {
	c, err := r.c.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("container %q: %w", id, runtime.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("container %q: %w", id, err)
	}
	return c, nil
}

// StartContainer creates the container's task with its output going to the
// log file, and starts it.
func (r *Runtime) StartContainer(ctx context.Context, id string) error {
	ctx = r.ns(ctx)
	c, err := r.load(ctx, id)
	if err != nil {
		return err
	}
	labels, err := c.Labels(ctx)
	if err != nil {
		return fmt.Errorf("container %q: %w", id, err)
	}
	creator := cio.NullIO
	if p := labels[labelLogPath]; p != "" {
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			return fmt.Errorf("container %q: log directory: %w", id, err)
		}
		creator = cio.LogFile(p)
	}
	task, err := c.NewTask(ctx, creator)
	if err != nil {
		return fmt.Errorf("creating task of container %q: %w", id, err)
	}
	if err := task.Start(ctx); err != nil {
		_, _ = task.Delete(ctx, client.WithProcessKill)
		return fmt.Errorf("starting container %q: %w", id, err)
	}
	if _, err := c.SetLabels(ctx, map[string]string{labelStartedAt: time.Now().UTC().Format(time.RFC3339Nano)}); err != nil {
		return fmt.Errorf("container %q: recording start: %w", id, err)
	}
	return nil
}

// StopContainer signals SIGTERM, then SIGKILL after grace.
func (r *Runtime) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	ctx = r.ns(ctx)
	c, err := r.load(ctx, id)
	if errors.Is(err, runtime.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("task of container %q: %w", id, err)
	}
	st, err := task.Status(ctx)
	if err != nil {
		return fmt.Errorf("task of container %q: %w", id, err)
	}
	if st.Status == client.Stopped {
		return nil
	}
	exited, err := task.Wait(ctx)
	if err != nil {
		return fmt.Errorf("waiting for container %q: %w", id, err)
	}
	if grace > 0 {
		if err := task.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("sending SIGTERM to container %q: %w", id, err)
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-exited:
			return nil
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := task.Kill(ctx, syscall.SIGKILL, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("sending SIGKILL to container %q: %w", id, err)
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RemoveContainer deletes the task, the container and its snapshot.
func (r *Runtime) RemoveContainer(ctx context.Context, id string) error {
	ctx = r.ns(ctx)
	c, err := r.load(ctx, id)
	if errors.Is(err, runtime.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if task, err := c.Task(ctx, nil); err == nil {
		if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("deleting task of container %q: %w", id, err)
		}
	} else if !errdefs.IsNotFound(err) {
		return fmt.Errorf("task of container %q: %w", id, err)
	}
	if err := c.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("deleting container %q: %w", id, err)
	}
	return nil
}

// ListContainers returns the containers that carry the pod labels.
func (r *Runtime) ListContainers(ctx context.Context) ([]runtime.Container, error) {
	ctx = r.ns(ctx)
	cs, err := r.c.Containers(ctx, fmt.Sprintf(`labels."%s"`, runtime.LabelPodUID))
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	out := make([]runtime.Container, 0, len(cs))
	for _, c := range cs {
		st, err := r.status(ctx, c)
		if errors.Is(err, runtime.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// ContainerStatus reads one container's state.
func (r *Runtime) ContainerStatus(ctx context.Context, id string) (runtime.Container, error) {
	ctx = r.ns(ctx)
	c, err := r.load(ctx, id)
	if err != nil {
		return runtime.Container{}, err
	}
	return r.status(ctx, c)
}

func (r *Runtime) status(ctx context.Context, c client.Container) (runtime.Container, error) {
	info, err := c.Info(ctx, client.WithoutRefreshedMetadata)
	if errdefs.IsNotFound(err) {
		return runtime.Container{}, fmt.Errorf("container %q: %w", c.ID(), runtime.ErrNotFound)
	}
	if err != nil {
		return runtime.Container{}, fmt.Errorf("container %q: %w", c.ID(), err)
	}
	l := info.Labels
	attempt, _ := strconv.Atoi(l[runtime.LabelAttempt])
	out := runtime.Container{
		ID: c.ID(), PodUID: l[runtime.LabelPodUID], PodNamespace: l[runtime.LabelPodNamespace],
		PodName: l[runtime.LabelPodName], Name: l[runtime.LabelContainer], Attempt: attempt,
		Image: info.Image, CreatedAt: info.CreatedAt, State: runtime.StateCreated,
		LogPath: l[labelLogPath], OOMKilled: l[labelOOMKilled] == "true",
	}
	if img, err := r.c.ImageService().Get(ctx, info.Image); err == nil {
		out.ImageID = img.Target.Digest.String()
	}
	if t, err := time.Parse(time.RFC3339Nano, l[labelStartedAt]); err == nil {
		out.StartedAt = t
	}
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return out, nil
	}
	if err != nil {
		return runtime.Container{}, fmt.Errorf("task of container %q: %w", c.ID(), err)
	}
	st, err := task.Status(ctx)
	if err != nil {
		return runtime.Container{}, fmt.Errorf("task of container %q: %w", c.ID(), err)
	}
	switch st.Status {
	case client.Running, client.Paused, client.Pausing:
		out.State = runtime.StateRunning
	case client.Stopped:
		out.State = runtime.StateExited
		out.ExitCode = int32(st.ExitStatus)
		out.FinishedAt = st.ExitTime
		if !out.OOMKilled && out.ExitCode == 137 {
			out.OOMKilled = oomKilled(info.Spec)
		}
	}
	return out, nil
}

// oomKilled reads the container's memory cgroup (cgroup v1) for an OOM
// kill: the TaskOOM event may not have been handled yet when the exit is
// seen.
func oomKilled(spec typeurl.Any) bool {
	if spec == nil {
		return false
	}
	v, err := typeurl.UnmarshalAny(spec)
	if err != nil {
		return false
	}
	s, ok := v.(*specs.Spec)
	if !ok || s.Linux == nil || s.Linux.CgroupsPath == "" {
		return false
	}
	for _, p := range []string{
		filepath.Join("/sys/fs/cgroup/memory", s.Linux.CgroupsPath, "memory.oom_control"),
		filepath.Join("/sys/fs/cgroup", s.Linux.CgroupsPath, "memory.events"),
	} {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) == 2 && fields[0] == "oom_kill" && fields[1] != "0" {
				f.Close()
				return true
			}
		}
		f.Close()
	}
	return false
}

// maxExecOutput bounds what Exec keeps of a command's output.
const maxExecOutput = 64 << 10

type cappedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := maxExecOutput - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *cappedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}

func (r *Runtime) nextExecID() string {
	return fmt.Sprintf("exec-%d-%d", time.Now().UnixNano(), r.execSeq.Add(1))
}

// Exec runs cmd in the container's namespaces with the container's
// environment and user.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string, timeout time.Duration) (runtime.ExecResult, error) {
	ctx = r.ns(ctx)
	if len(cmd) == 0 {
		return runtime.ExecResult{}, errors.New("exec: empty command")
	}
	c, err := r.load(ctx, id)
	if err != nil {
		return runtime.ExecResult{}, err
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return runtime.ExecResult{}, fmt.Errorf("container %q: %w", id, err)
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		return runtime.ExecResult{}, fmt.Errorf("container %q is not running: %w", id, err)
	}
	pspec := *spec.Process
	pspec.Args = cmd
	pspec.Terminal = false
	out := &cappedBuffer{}
	proc, err := task.Exec(ctx, r.nextExecID(), &pspec, cio.NewCreator(cio.WithStreams(nil, out, out)))
	if err != nil {
		return runtime.ExecResult{}, fmt.Errorf("exec in container %q: %w", id, err)
	}
	defer func() { _, _ = proc.Delete(context.WithoutCancel(ctx), client.WithProcessKill) }()
	exited, err := proc.Wait(ctx)
	if err != nil {
		return runtime.ExecResult{}, fmt.Errorf("exec in container %q: %w", id, err)
	}
	if err := proc.Start(ctx); err != nil {
		return runtime.ExecResult{}, fmt.Errorf("exec in container %q: %w", id, err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case st := <-exited:
		proc.IO().Wait()
		return runtime.ExecResult{ExitCode: int32(st.ExitCode()), Output: out.Bytes()}, nil
	case <-t.C:
		_ = proc.Kill(ctx, syscall.SIGKILL)
		<-exited
		return runtime.ExecResult{}, fmt.Errorf("exec in container %q: timed out after %s", id, timeout)
	case <-ctx.Done():
		_ = proc.Kill(context.WithoutCancel(ctx), syscall.SIGKILL)
		return runtime.ExecResult{}, ctx.Err()
	}
}

// Version names containerd and its version.
func (r *Runtime) Version(ctx context.Context) (string, error) {
	v, err := r.c.Version(ctx)
	if err != nil {
		return "", fmt.Errorf("containerd version: %w", err)
	}
	return "containerd://" + strings.TrimPrefix(v.Version, "v"), nil
}
