// Package node keeps this machine's Node object: it registers the node
// (capacity and allocatable CPU, memory, pods and ephemeral storage; labels
// for hostname, OS and architecture; addresses; the pod CIDR; the agent's
// port), renews the node's Lease on a short interval, and reports the
// node's conditions (Ready, MemoryPressure, DiskPressure, PIDPressure)
// whenever they change and at least every status interval.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	goruntime "runtime"
	"slices"
	"sort"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/utils/clock"

	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/version"
)

// Labels every node carries, as in Kubernetes.
const (
	LabelHostname = "kubernetes.io/hostname"
	LabelOS       = "kubernetes.io/os"
	LabelArch     = "kubernetes.io/arch"
)

// MaxImagesInStatus bounds status.images, as the kubelet does.
const MaxImagesInStatus = 50

// DefaultLeaseNamespace holds node leases; the apiserver keeps it.
const DefaultLeaseNamespace = "bosun-node-lease"

// HealthEndpointAnnotation tells the health-checker where the node-agent's
// gRPC health answers when that is not InternalIP:daemon port.
const HealthEndpointAnnotation = "health.bosun.dev/endpoint"

// Store is the part of a typed client (client.Resource) the node uses.
type Store[T api.Object] interface {
	Get(ctx context.Context, namespace, name string) (T, error)
	Create(ctx context.Context, obj T) (T, error)
	Update(ctx context.Context, obj T) (T, error)
}

// StatusStore can also write status.
type StatusStore[T api.Object] interface {
	Store[T]
	UpdateStatus(ctx context.Context, obj T) (T, error)
}

// Usage is the host's current state, for conditions.
type Usage struct {
	MemoryAvailableBytes int64
	DiskAvailableBytes   int64
	DiskTotalBytes       int64
	PIDsInUse, PIDsMax   int64
}

// Host describes the machine.
type Host interface {
	// Capacity returns cpu, memory, ephemeral-storage (quantities) for
	// the node's capacity.
	Capacity() (map[string]string, error)
	// Usage returns current usage.
	Usage() (Usage, error)
}

// Thresholds turn usage into pressure conditions.
type Thresholds struct {
	// MemoryAvailableBytes: MemoryPressure below it.
	MemoryAvailableBytes int64
	// DiskAvailablePercent: DiskPressure below it.
	DiskAvailablePercent float64
	// PIDsAvailablePercent: PIDPressure below it.
	PIDsAvailablePercent float64
}

// DefaultThresholds are Kubernetes' hard eviction thresholds.
var DefaultThresholds = Thresholds{MemoryAvailableBytes: 100 << 20, DiskAvailablePercent: 10, PIDsAvailablePercent: 5}

// Options configure an Agent.
type Options struct {
	Name string
	// Labels are added to the standard ones.
	Labels map[string]string
	// Annotations are set on the node.
	Annotations map[string]string
	// Taints registered with the node (only at creation).
	Taints []*corev1.Taint
	// InternalIP and Hostname are the node's addresses.
	InternalIP, Hostname string
	// PodCIDR is this node's pod range; "" waits for one to be assigned
	// (spec.podCIDR set by the controller's node IPAM).
	PodCIDR string
	// MaxPods is the pods capacity.
	MaxPods int
	// Port is the node-agent's gRPC port (daemonEndpoints.kubeletEndpoint).
	Port int32
	// RuntimeVersion is reported in nodeInfo; nil reports none.
	RuntimeVersion func() string
	// LeaseNamespace holds the lease named after the node.
	LeaseNamespace string
	// LeaseDuration is what the lease promises; RenewInterval how often it
	// is renewed.
	LeaseDuration, RenewInterval time.Duration
	// StatusInterval bounds the time between status writes.
	StatusInterval time.Duration
	Thresholds     Thresholds
	Host           Host
	// Images lists the images on the node for status.images (the largest
	// MaxImagesInStatus); nil reports none.
	Images func() ([]*corev1.ContainerImage, error)
	Clock  clock.WithTicker
	Logger *slog.Logger
}

// Agent registers and heartbeats one node.
type Agent struct {
	nodes  StatusStore[*corev1.Node]
	leases Store[*coordinationv1.Lease]
	opts   Options
	log    *slog.Logger

	lastStatus      *corev1.NodeStatus
	lastStatusWrite time.Time
	// stored is the Node as the apiserver last returned it to this agent;
	// nil when it must be read again. Status writes are conditional on its
	// resource version, so the agent reads its Node only when someone else
	// (the health-checker, an administrator) wrote it since.
	stored *corev1.Node
	lease  *coordinationv1.Lease
	ready  func() error
}

// New returns an Agent. ready, when not nil, is asked on each status
// update: an error makes the node NotReady with it as the message.
func New(nodes StatusStore[*corev1.Node], leases Store[*coordinationv1.Lease], opts Options, ready func() error) *Agent {
	if opts.LeaseNamespace == "" {
		opts.LeaseNamespace = DefaultLeaseNamespace
	}
	if opts.LeaseDuration == 0 {
		opts.LeaseDuration = 10 * time.Second
	}
	if opts.RenewInterval == 0 {
		opts.RenewInterval = opts.LeaseDuration / 4
	}
	if opts.StatusInterval == 0 {
		opts.StatusInterval = 10 * time.Second
	}
	if opts.MaxPods == 0 {
		opts.MaxPods = 110
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Thresholds == (Thresholds{}) {
		opts.Thresholds = DefaultThresholds
	}
	return &Agent{nodes: nodes, leases: leases, opts: opts, log: opts.Logger, ready: ready}
}

func (a *Agent) labels() map[string]string {
	l := map[string]string{LabelHostname: a.opts.Name, LabelOS: goruntime.GOOS, LabelArch: goruntime.GOARCH}
	maps.Copy(l, a.opts.Labels)
	return l
}

// Register creates the Node, or brings an existing one's labels, pod CIDR
// and status up to date, and returns it as stored.
func (a *Agent) Register(ctx context.Context) (*corev1.Node, error) {
	n, err := a.nodes.Get(ctx, "", a.opts.Name)
	switch {
	case apierrors.IsNotFound(err):
		n = &corev1.Node{
			Metadata: &metav1.ObjectMeta{Name: a.opts.Name, Labels: a.labels(), Annotations: a.opts.Annotations},
			Spec:     &corev1.NodeSpec{PodCidr: a.opts.PodCIDR, Taints: a.opts.Taints},
		}
		if a.opts.PodCIDR != "" {
			n.Spec.PodCidrs = []string{a.opts.PodCIDR}
		}
		n, err = a.nodes.Create(ctx, n)
		if apierrors.IsAlreadyExists(err) {
			return a.Register(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("registering node %q: %w", a.opts.Name, err)
		}
		a.log.Info("node registered")
	case err != nil:
		return nil, fmt.Errorf("reading node %q: %w", a.opts.Name, err)
	default:
		changed := false
		want := a.labels()
		if n.Metadata.Labels == nil {
			n.Metadata.Labels = map[string]string{}
		}
		for k, v := range want {
			if n.Metadata.Labels[k] != v {
				n.Metadata.Labels[k], changed = v, true
			}
		}
		if len(a.opts.Annotations) > 0 && n.Metadata.Annotations == nil {
			n.Metadata.Annotations = map[string]string{}
		}
		for k, v := range a.opts.Annotations {
			if n.Metadata.Annotations[k] != v {
				n.Metadata.Annotations[k], changed = v, true
			}
		}
		if n.Spec == nil {
			n.Spec = &corev1.NodeSpec{}
		}
		if a.opts.PodCIDR != "" && n.Spec.PodCidr == "" {
			n.Spec.PodCidr, n.Spec.PodCidrs, changed = a.opts.PodCIDR, []string{a.opts.PodCIDR}, true
		}
		if a.opts.PodCIDR != "" && n.Spec.PodCidr != a.opts.PodCIDR {
			return nil, fmt.Errorf("node %q has spec.podCIDR %s, but --pod-cidr is %s", a.opts.Name, n.Spec.PodCidr, a.opts.PodCIDR)
		}
		if changed {
			if n, err = a.nodes.Update(ctx, n); err != nil {
				return nil, fmt.Errorf("updating node %q: %w", a.opts.Name, err)
			}
		}
	}
	a.stored = n
	if err := a.updateStatus(ctx, true); err != nil {
		return nil, err
	}
	return proto.CloneOf(a.stored), nil
}

// WaitForPodCIDR returns the node's pod CIDR, waiting until one is
// assigned when the node has none.
func (a *Agent) WaitForPodCIDR(ctx context.Context) (string, error) {
	logged := false
	for {
		n, err := a.nodes.Get(ctx, "", a.opts.Name)
		if err == nil && n.GetSpec().GetPodCidr() != "" {
			return n.GetSpec().GetPodCidr(), nil
		}
		if !logged {
			a.log.Info("waiting for a pod CIDR to be assigned to the node (or set --pod-cidr)", "node", a.opts.Name)
			logged = true
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-a.opts.Clock.After(time.Second):
		}
	}
}

// Run renews the lease every RenewInterval and updates the status when it
// changes, until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	renew := a.opts.Clock.NewTicker(a.opts.RenewInterval)
	defer renew.Stop()
	for {
		if err := a.RenewLease(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("renewing node lease", "err", err)
		}
		if err := a.updateStatus(ctx, false); err != nil && ctx.Err() == nil {
			a.log.Warn("updating node status", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-renew.C():
		}
	}
}

// RenewLease creates or renews the node's lease.
func (a *Agent) RenewLease(ctx context.Context) error {
	now := timestamppb.New(a.opts.Clock.Now())
	dur := int32(a.opts.LeaseDuration / time.Second)
	if dur < 1 {
		dur = 1
	}
	if a.lease != nil {
		l := proto.CloneOf(a.lease)
		l.Spec.RenewTime = now
		l.Spec.LeaseDurationSeconds = &dur
		updated, err := a.leases.Update(ctx, l)
		if err == nil {
			a.lease = updated
			return nil
		}
		if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			return err
		}
		a.lease = nil // re-read below
	}
	l, err := a.leases.Get(ctx, a.opts.LeaseNamespace, a.opts.Name)
	if apierrors.IsNotFound(err) {
		holder := a.opts.Name
		created, err := a.leases.Create(ctx, &coordinationv1.Lease{
			Metadata: &metav1.ObjectMeta{Name: a.opts.Name, Namespace: a.opts.LeaseNamespace},
			Spec:     &coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &dur, AcquireTime: now, RenewTime: now},
		})
		if err != nil {
			return fmt.Errorf("creating lease %s/%s: %w", a.opts.LeaseNamespace, a.opts.Name, err)
		}
		a.lease = created
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading lease: %w", err)
	}
	if l.Spec == nil {
		l.Spec = &coordinationv1.LeaseSpec{}
	}
	holder := a.opts.Name
	l.Spec.HolderIdentity, l.Spec.RenewTime, l.Spec.LeaseDurationSeconds = &holder, now, &dur
	updated, err := a.leases.Update(ctx, l)
	if err != nil {
		return fmt.Errorf("renewing lease: %w", err)
	}
	a.lease = updated
	return nil
}

// Status computes the node's status now.
func (a *Agent) Status() (*corev1.NodeStatus, error) {
	now := timestamppb.New(a.opts.Clock.Now())
	capacity, err := a.opts.Host.Capacity()
	if err != nil {
		return nil, fmt.Errorf("reading node capacity: %w", err)
	}
	capacity = maps.Clone(capacity)
	capacity["pods"] = strconv.Itoa(a.opts.MaxPods)
	u, err := a.opts.Host.Usage()
	if err != nil {
		return nil, fmt.Errorf("reading node usage: %w", err)
	}
	th := a.opts.Thresholds
	cond := func(typ string, bad bool, badReason, okReason, msg string) *corev1.NodeCondition {
		s, r := "False", okReason
		if bad {
			s, r = "True", badReason
		}
		return &corev1.NodeCondition{Type: typ, Status: s, Reason: r, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	memBad := u.MemoryAvailableBytes < th.MemoryAvailableBytes
	diskBad := u.DiskTotalBytes > 0 && float64(u.DiskAvailableBytes)*100/float64(u.DiskTotalBytes) < th.DiskAvailablePercent
	pidBad := u.PIDsMax > 0 && float64(u.PIDsMax-u.PIDsInUse)*100/float64(u.PIDsMax) < th.PIDsAvailablePercent
	readyErr := error(nil)
	if a.ready != nil {
		readyErr = a.ready()
	}
	ready := cond("Ready", readyErr == nil, "NodeAgentReady", "NodeAgentNotReady", "node-agent is posting ready status")
	if readyErr != nil {
		ready.Message = readyErr.Error()
	}
	runtimeVersion := ""
	if a.opts.RuntimeVersion != nil {
		runtimeVersion = a.opts.RuntimeVersion()
	}
	st := &corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: maps.Clone(capacity),
		Conditions: []*corev1.NodeCondition{
			ready,
			cond("MemoryPressure", memBad, "NodeHasInsufficientMemory", "NodeHasSufficientMemory",
				fmt.Sprintf("%d bytes of memory available", u.MemoryAvailableBytes)),
			cond("DiskPressure", diskBad, "NodeHasDiskPressure", "NodeHasNoDiskPressure",
				fmt.Sprintf("%d of %d bytes of disk available", u.DiskAvailableBytes, u.DiskTotalBytes)),
			cond("PIDPressure", pidBad, "NodeHasInsufficientPID", "NodeHasSufficientPID",
				fmt.Sprintf("%d of %d process ids in use", u.PIDsInUse, u.PIDsMax)),
		},
		DaemonEndpoints: &corev1.NodeDaemonEndpoints{KubeletEndpoint: &corev1.DaemonEndpoint{Port: a.opts.Port}},
		NodeInfo: &corev1.NodeSystemInfo{
			OperatingSystem: goruntime.GOOS, Architecture: goruntime.GOARCH,
			ContainerRuntimeVersion: runtimeVersion, KubeletVersion: version.Version,
		},
	}
	if a.opts.Images != nil {
		imgs, err := a.opts.Images()
		if err != nil {
			return nil, fmt.Errorf("listing images: %w", err)
		}
		imgs = slices.Clone(imgs)
		sort.SliceStable(imgs, func(i, j int) bool { return imgs[i].GetSizeBytes() > imgs[j].GetSizeBytes() })
		if len(imgs) > MaxImagesInStatus {
			imgs = imgs[:MaxImagesInStatus]
		}
		st.Images = imgs
	}
	if a.opts.InternalIP != "" {
		st.Addresses = append(st.Addresses, &corev1.NodeAddress{Type: "InternalIP", Address: a.opts.InternalIP})
	}
	if a.opts.Hostname != "" {
		st.Addresses = append(st.Addresses, &corev1.NodeAddress{Type: "Hostname", Address: a.opts.Hostname})
	}
	return st, nil
}

// sameConditions compares statuses ignoring heartbeat and transition times
// and the messages that carry usage figures.
func sameConditions(a, b *corev1.NodeStatus) bool {
	if a == nil || b == nil || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		if a.Conditions[i].GetType() != b.Conditions[i].GetType() || a.Conditions[i].GetStatus() != b.Conditions[i].GetStatus() {
			return false
		}
	}
	return maps.Equal(a.Capacity, b.Capacity) &&
		proto.Equal(&corev1.NodeStatus{Addresses: a.Addresses, Images: a.Images, NodeInfo: a.NodeInfo},
			&corev1.NodeStatus{Addresses: b.Addresses, Images: b.Images, NodeInfo: b.NodeInfo})
}

func (a *Agent) updateStatus(ctx context.Context, force bool) error {
	st, err := a.Status()
	if err != nil {
		return err
	}
	now := a.opts.Clock.Now()
	if !force && sameConditions(a.lastStatus, st) && now.Sub(a.lastStatusWrite) < a.opts.StatusInterval {
		return nil
	}
	// A conflict means someone else (the health-checker, nodeipam, an
	// administrator) wrote the Node since: read it and write again, backing
	// off, as often as writers keep interleaving.
	var deleted bool
	err = client.RetryOnConflict(ctx, client.DefaultRetry, func() error {
		base := a.stored
		if base == nil {
			var err error
			if base, err = a.nodes.Get(ctx, "", a.opts.Name); err != nil {
				if apierrors.IsNotFound(err) {
					deleted = true
				}
				return err
			}
		}
		n := &corev1.Node{
			Metadata: &metav1.ObjectMeta{Name: a.opts.Name, ResourceVersion: base.GetMetadata().GetResourceVersion()},
			Status:   keepTransitionTimes(st, base.GetStatus().GetConditions()),
		}
		stored, err := a.nodes.UpdateStatus(ctx, n)
		if err != nil {
			a.stored, deleted = nil, apierrors.IsNotFound(err)
			return err
		}
		a.stored = stored
		return nil
	})
	switch {
	case err == nil:
		a.lastStatus, a.lastStatusWrite = st, now
		return nil
	case deleted:
		return a.registerAgain(ctx, err)
	default:
		return fmt.Errorf("updating node status: %w", err)
	}
}

// keepTransitionTimes returns a copy of st whose conditions keep the
// transition time they have in stored wherever their status is the same
// there. The stored Node is what counts, not this agent's last write: the
// health-checker writes Ready too, and a condition that was already True
// there has not transitioned when the agent first reports it True.
func keepTransitionTimes(st *corev1.NodeStatus, stored []*corev1.NodeCondition) *corev1.NodeStatus {
	out := proto.CloneOf(st)
	for _, c := range out.Conditions {
		for _, p := range stored {
			if p.GetType() == c.GetType() && p.GetStatus() == c.GetStatus() && p.GetLastTransitionTime() != nil {
				c.LastTransitionTime = p.GetLastTransitionTime()
			}
		}
	}
	return out
}

// registerAgain registers the node once more after it was deleted under the
// agent.
func (a *Agent) registerAgain(ctx context.Context, err error) error {
	if _, rerr := a.Register(ctx); rerr != nil {
		return errors.Join(err, rerr)
	}
	return nil
}
