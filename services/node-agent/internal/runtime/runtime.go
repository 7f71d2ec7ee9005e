// Package runtime is the node-agent's seam to the container runtime: the
// Runtime interface the pod workers drive, the container description they
// hand it, and the states it reports back. Package containerd implements it
// on a containerd daemon; package fake implements it in memory for tests and
// the node simulator.
//
// A container here is one attempt of one container of one pod: a restart
// creates a new runtime container with the next attempt number, so the
// attempt is also the container's restart count. The pod, container name and
// attempt travel as labels on the runtime's objects, which is what lets a
// restarted node-agent find and adopt what it started before.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Labels set on every container the node-agent creates.
const (
	LabelPodUID       = "bosun.dev/pod-uid"
	LabelPodNamespace = "bosun.dev/pod-namespace"
	LabelPodName      = "bosun.dev/pod-name"
	LabelContainer    = "bosun.dev/container"
	LabelAttempt      = "bosun.dev/attempt"
)

// Errors returned by runtimes; wrap them with %w.
var (
	// ErrNotFound: the container or image does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: a container with that id exists.
	ErrAlreadyExists = errors.New("already exists")
)

// State is a container's lifecycle state.
type State int

// Container states.
const (
	// StateCreated: the container exists but its process has not started.
	StateCreated State = iota
	// StateRunning: its process runs.
	StateRunning
	// StateExited: its process ended; ExitCode and FinishedAt say how.
	StateExited
)

func (s State) String() string {
	switch s {
	case StateCreated:
		return "Created"
	case StateRunning:
		return "Running"
	case StateExited:
		return "Exited"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Mount binds a host path into a container.
type Mount struct {
	HostPath      string
	ContainerPath string
	ReadOnly      bool
}

// ContainerSpec is everything a runtime needs to create one container
// attempt. The pod worker fills it from the pod spec; the runtime does not
// read the pod.
type ContainerSpec struct {
	// ID is unique on the node; ContainerID builds it.
	ID string
	// PodUID, PodNamespace, PodName, Name and Attempt identify the container
	// and are stored as labels.
	PodUID, PodNamespace, PodName, Name string
	Attempt                             int
	// Image is the image reference, already present (see Runtime.PullImage).
	Image string
	// Command replaces the image's entrypoint and Args its cmd, as in Kubernetes.
	Command, Args []string
	// Env holds NAME=value pairs appended to the image's environment.
	Env []string
	// WorkingDir replaces the image's when not empty.
	WorkingDir string
	// NetNSPath is the network namespace to join; "" keeps the host's.
	NetNSPath string
	// Hostname is the container's hostname.
	Hostname string
	// Mounts are bound in order after the runtime's own.
	Mounts []Mount
	// MemoryLimitBytes caps memory (and swap) when positive.
	MemoryLimitBytes int64
	// CPUMillis caps CPU through the CFS quota when positive.
	CPUMillis int64
	// RunAsUser and RunAsGroup override the image's user when set.
	RunAsUser, RunAsGroup *int64
	// ReadOnlyRootFS mounts the root filesystem read-only.
	ReadOnlyRootFS bool
	// Privileged gives every capability and no seccomp filter.
	Privileged bool
	// LogPath receives the container's stdout and stderr.
	LogPath string
}

// ContainerID is the runtime id of one attempt of a pod's container.
func ContainerID(podUID, name string, attempt int) string {
	return fmt.Sprintf("%s-%s-%d", podUID, name, attempt)
}

// Container is the observed state of one runtime container.
type Container struct {
	ID                            string
	PodUID, PodNamespace, PodName string
	Name                          string
	Attempt                       int
	// Image is the reference the container was created from, ImageID its
	// content digest.
	Image, ImageID string
	State          State
	// CreatedAt, StartedAt and FinishedAt are zero until they happen.
	CreatedAt, StartedAt, FinishedAt time.Time
	// ExitCode is set once State is StateExited.
	ExitCode int32
	// OOMKilled reports that the kernel killed the process for exceeding its
	// memory limit.
	OOMKilled bool
	// LogPath is where its output went.
	LogPath string
}

// ExecResult is the outcome of a command run in a container.
type ExecResult struct {
	ExitCode int32
	// Output holds stdout and stderr, possibly truncated.
	Output []byte
}

// Image is an image present on the node.
type Image struct {
	// Ref is the name it is stored under, e.g. 127.0.0.1:5000/hello:v1.
	Ref string
	// ID is the digest of its manifest.
	ID string
	// Size is the bytes it takes in the content store.
	Size int64
}

// PullOptions tune a pull.
type PullOptions struct {
	// PlainHTTP talks plain HTTP to the registry (for insecure registries).
	PlainHTTP bool
}

// Runtime runs containers and stores images. Implementations are safe for
// concurrent use. Methods taking an id return an error wrapping ErrNotFound
// when no such container exists.
type Runtime interface {
	// PullImage fetches ref from its registry and returns the stored image.
	PullImage(ctx context.Context, ref string, opts PullOptions) (Image, error)
	// GetImage returns a stored image, or ErrNotFound.
	GetImage(ctx context.Context, ref string) (Image, error)
	// ListImages returns every stored image.
	ListImages(ctx context.Context) ([]Image, error)
	// RemoveImage deletes a stored image; removing a missing one is not an error.
	RemoveImage(ctx context.Context, ref string) error
	// ImportImages loads an OCI image-layout tarball and returns what it held.
	ImportImages(ctx context.Context, r io.Reader) ([]Image, error)

	// CreateContainer creates a container without starting it. An existing
	// id fails with ErrAlreadyExists.
	CreateContainer(ctx context.Context, spec ContainerSpec) error
	// StartContainer starts a created container's process.
	StartContainer(ctx context.Context, id string) error
	// StopContainer sends SIGTERM, waits up to grace for the process to
	// end, then sends SIGKILL and waits for it. Stopping a container that
	// is not running is not an error.
	StopContainer(ctx context.Context, id string, grace time.Duration) error
	// RemoveContainer deletes a container that is not running, with its
	// filesystem; removing a missing one is not an error.
	RemoveContainer(ctx context.Context, id string) error
	// ListContainers returns every container the node-agent created.
	ListContainers(ctx context.Context) ([]Container, error)
	// ContainerStatus returns one container's state.
	ContainerStatus(ctx context.Context, id string) (Container, error)
	// Exec runs cmd in a running container and waits for it, up to timeout.
	Exec(ctx context.Context, id string, cmd []string, timeout time.Duration) (ExecResult, error)
	// Version names the runtime, e.g. "containerd://1.6.20".
	Version(ctx context.Context) (string, error)
}
