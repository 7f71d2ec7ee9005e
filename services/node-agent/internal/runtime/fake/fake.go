// Package fake is an in-memory runtime.Runtime: containers "run" instantly
// and forever until stopped or told to exit, images are names in a map.
// The node simulator runs thousands of nodes on it, and tests of the pod
// workers use its hooks (Exit, SetExecResult, FailPull) to script what a
// real runtime would do.
package fake

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"bosun.dev/services/node-agent/internal/runtime"
)

// Runtime is an in-memory runtime.Runtime.
type Runtime struct {
	mu         sync.Mutex
	images     map[string]runtime.Image
	registry   map[string]bool // refs a pull succeeds for; nil: every ref
	pullErr    map[string]error
	containers map[string]*runtime.Container
	specs      map[string]runtime.ContainerSpec
	execResult map[string]runtime.ExecResult // by container name
	execs      []ExecCall
	pulls      int
	now        func() time.Time
	notify     func(podUID string)
}

var _ runtime.Runtime = (*Runtime)(nil)

// New returns an empty runtime whose pulls succeed for every reference.
func New() *Runtime {
	return &Runtime{
		images:     map[string]runtime.Image{},
		pullErr:    map[string]error{},
		containers: map[string]*runtime.Container{},
		specs:      map[string]runtime.ContainerSpec{},
		execResult: map[string]runtime.ExecResult{},
		now:        time.Now,
	}
}

// SetNotify sets the function called with a pod's uid when one of its
// containers exits.
func (r *Runtime) SetNotify(f func(podUID string)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notify = f
}

// SetRegistry limits successful pulls to refs; others fail as not found.
func (r *Runtime) SetRegistry(refs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.registry = map[string]bool{}
	for _, ref := range refs {
		r.registry[ref] = true
	}
}

// FailPull makes pulls of ref fail with err (nil clears it).
func (r *Runtime) FailPull(ref string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		delete(r.pullErr, ref)
	} else {
		r.pullErr[ref] = err
	}
}

// Pulls counts the pulls made.
func (r *Runtime) Pulls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pulls
}

// AddImage stores an image as if pulled.
func (r *Runtime) AddImage(ref string, size int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.images[ref] = image(ref, size)
}

func image(ref string, size int64) runtime.Image {
	return runtime.Image{Ref: ref, ID: fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(ref))), Size: size}
}

// Exit ends a running container's process with code; oom marks it as an
// OOM kill.
func (r *Runtime) Exit(id string, code int32, oom bool) error {
	r.mu.Lock()
	c, ok := r.containers[id]
	if !ok || c.State != runtime.StateRunning {
		r.mu.Unlock()
		return fmt.Errorf("container %q is not running", id)
	}
	c.State, c.ExitCode, c.OOMKilled, c.FinishedAt = runtime.StateExited, code, oom, r.now()
	notify, uid := r.notify, c.PodUID
	r.mu.Unlock()
	if notify != nil {
		notify(uid)
	}
	return nil
}

// SetExecResult sets what Exec returns in containers named name.
func (r *Runtime) SetExecResult(name string, res runtime.ExecResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.execResult[name] = res
}

// Spec returns the spec a container was created with.
func (r *Runtime) Spec(id string) (runtime.ContainerSpec, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.specs[id]
	return s, ok
}

// PullImage stores ref unless a registry or failure says otherwise.
func (r *Runtime) PullImage(_ context.Context, ref string, _ runtime.PullOptions) (runtime.Image, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pulls++
	if err := r.pullErr[ref]; err != nil {
		return runtime.Image{}, fmt.Errorf("pulling image %q: %w", ref, err)
	}
	if r.registry != nil && !r.registry[ref] {
		return runtime.Image{}, fmt.Errorf("pulling image %q: %s: not found", ref, ref)
	}
	img := image(ref, 1<<20)
	r.images[ref] = img
	return img, nil
}

// GetImage returns a stored image.
func (r *Runtime) GetImage(_ context.Context, ref string) (runtime.Image, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	img, ok := r.images[ref]
	if !ok {
		return runtime.Image{}, fmt.Errorf("image %q: %w", ref, runtime.ErrNotFound)
	}
	return img, nil
}

// ListImages returns the stored images sorted by reference.
func (r *Runtime) ListImages(context.Context) ([]runtime.Image, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]runtime.Image, 0, len(r.images))
	for _, img := range r.images {
		out = append(out, img)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out, nil
}

// RemoveImage forgets an image.
func (r *Runtime) RemoveImage(_ context.Context, ref string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.images, ref)
	return nil
}

// ImportImages is not supported by the fake.
func (r *Runtime) ImportImages(context.Context, io.Reader) ([]runtime.Image, error) {
	return nil, errors.New("the fake runtime cannot import images")
}

// CreateContainer records the container.
func (r *Runtime) CreateContainer(_ context.Context, spec runtime.ContainerSpec) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.containers[spec.ID]; ok {
		return fmt.Errorf("container %q: %w", spec.ID, runtime.ErrAlreadyExists)
	}
	img, ok := r.images[spec.Image]
	if !ok {
		return fmt.Errorf("container %q: image %q: %w", spec.ID, spec.Image, runtime.ErrNotFound)
	}
	r.containers[spec.ID] = &runtime.Container{
		ID: spec.ID, PodUID: spec.PodUID, PodNamespace: spec.PodNamespace, PodName: spec.PodName,
		Name: spec.Name, Attempt: spec.Attempt, Image: spec.Image, ImageID: img.ID,
		State: runtime.StateCreated, CreatedAt: r.now(), LogPath: spec.LogPath,
	}
	r.specs[spec.ID] = spec
	return nil
}

func (r *Runtime) get(id string) (*runtime.Container, error) {
	c, ok := r.containers[id]
	if !ok {
		return nil, fmt.Errorf("container %q: %w", id, runtime.ErrNotFound)
	}
	return c, nil
}

// StartContainer marks the container running.
func (r *Runtime) StartContainer(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.get(id)
	if err != nil {
		return err
	}
	if c.State != runtime.StateCreated {
		return fmt.Errorf("container %q is %s, not Created", id, c.State)
	}
	c.State, c.StartedAt = runtime.StateRunning, r.now()
	return nil
}

// StopContainer ends a running container as if killed by SIGTERM (exit 143).
func (r *Runtime) StopContainer(_ context.Context, id string, _ time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok || c.State != runtime.StateRunning {
		return nil
	}
	c.State, c.ExitCode, c.FinishedAt = runtime.StateExited, 143, r.now()
	return nil
}

// RemoveContainer forgets a container that is not running.
func (r *Runtime) RemoveContainer(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.containers[id]; ok && c.State == runtime.StateRunning {
		return fmt.Errorf("container %q is running", id)
	}
	delete(r.containers, id)
	delete(r.specs, id)
	return nil
}

// ListContainers returns every container, sorted by id.
func (r *Runtime) ListContainers(context.Context) ([]runtime.Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]runtime.Container, 0, len(r.containers))
	for _, c := range r.containers {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// ContainerStatus returns a copy of one container's state.
func (r *Runtime) ContainerStatus(_ context.Context, id string) (runtime.Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.get(id)
	if err != nil {
		return runtime.Container{}, err
	}
	return *c, nil
}

// ExecCall is one command run in a running container.
type ExecCall struct {
	Container string // the container's name
	Command   []string
}

// Execs returns the commands run so far, in order.
func (r *Runtime) Execs() []ExecCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ExecCall(nil), r.execs...)
}

// Exec returns the result set with SetExecResult (exit 0 by default).
func (r *Runtime) Exec(_ context.Context, id string, cmd []string, _ time.Duration) (runtime.ExecResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.get(id)
	if err != nil {
		return runtime.ExecResult{}, err
	}
	if c.State != runtime.StateRunning {
		return runtime.ExecResult{}, fmt.Errorf("container %q is not running", id)
	}
	r.execs = append(r.execs, ExecCall{Container: c.Name, Command: append([]string(nil), cmd...)})
	return r.execResult[c.Name], nil
}

// Version names the fake.
func (r *Runtime) Version(context.Context) (string, error) { return "fake://1.0", nil }
