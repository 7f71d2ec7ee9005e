// Package leaderelection chooses one leader among the replicas of a Bosun
// service through a coordination.v1 Lease in the apiserver, as client-go's
// leaderelection does for Kubernetes.
//
// Every write to the Lease is compare-and-set on its resource_version, so two
// candidates can never both believe they wrote the current record. A candidate
// takes over a Lease held by someone else only when the record has not changed
// for the holder's lease duration, measured on the candidate's own clock from
// the moment it saw the record change; the timestamps inside the record are
// informational, since clocks on different machines differ.
//
// A leader renews every RetryPeriod and steps down (cancelling the context it
// gave OnStartedLeading) when it has not renewed for RenewDeadline. Because
// RenewDeadline < LeaseDuration and the leader measures from before its last
// successful write, it stops before any candidate can take over, as long as
// the clocks run at about the same rate. On shutdown the leader clears the
// holder so a standby takes over at its next retry instead of waiting for the
// lease to expire.
//
// Every acquisition increments spec.lease_transitions; the new value is the
// leader's fencing token (see Fence).
package leaderelection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"

	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
)

// Defaults, chosen for fast failover: a crashed leader is replaced about
// LeaseDuration after its last renewal (4-4.5 s), a leader that shuts down
// cleanly within one RetryPeriod (0.5 s). RenewDeadline leaves one second
// between a cut-off leader stepping down and a standby taking over.
const (
	DefaultLeaseDuration = 4 * time.Second
	DefaultRenewDeadline = 3 * time.Second
	DefaultRetryPeriod   = 500 * time.Millisecond
)

// FenceAnnotation is the annotation under which a leader stamps the objects
// it writes with its fence (see Fence.Stamp).
const FenceAnnotation = "coordination.bosun.dev/fence"

// Lock names the Lease the candidates compete for.
type Lock struct {
	Namespace, Name string
}

// Callbacks are called as leadership changes. They are called from the
// elector's goroutine except OnStartedLeading, which runs in its own.
type Callbacks struct {
	// OnStartedLeading runs when this candidate becomes leader. ctx is
	// cancelled when leadership ends, and the function must then return
	// promptly: the elector waits for it before releasing the lease or
	// campaigning again.
	OnStartedLeading func(ctx context.Context, fence Fence)
	// OnStoppedLeading is called after leadership ended and OnStartedLeading
	// returned.
	OnStoppedLeading func()
	// OnNewLeader is called when the observed holder changes, with the new
	// holder's identity (this candidate's own included). It must not block.
	OnNewLeader func(identity string)
}

// Config configures an Elector.
type Config struct {
	// Conn reaches the apiserver.
	Conn grpc.ClientConnInterface
	// Lock is the Lease to hold.
	Lock Lock
	// Identity names this candidate uniquely, e.g. hostname plus a random suffix.
	Identity string
	// LeaseDuration is how long candidates wait, after last seeing the record
	// change, before taking it over. Written to the Lease in whole seconds.
	// DefaultLeaseDuration when zero.
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps leading without a successful
	// renewal. Must be less than LeaseDuration. DefaultRenewDeadline when zero.
	RenewDeadline time.Duration
	// RetryPeriod is the interval between attempts to acquire or renew.
	// DefaultRetryPeriod when zero.
	RetryPeriod time.Duration
	// Clock measures all the durations above; the real clock when nil.
	Clock clock.Clock
	// Callbacks are told of leadership changes.
	Callbacks Callbacks
	// Logger receives the elector's logs; slog.Default() when nil.
	Logger *slog.Logger
}

// Fence identifies one term of leadership. Token is the Lease's
// lease_transitions after the acquisition that began the term: the
// compare-and-set makes it unique per Lease, and later terms have larger
// tokens. ResourceVersion is the revision of that acquisition, which grows
// across the whole cluster (it survives even deletion and re-creation of the
// Lease, which restarts Token).
//
// A leader carries its fence on what it writes, so that a deposed leader
// whose work is still in flight cannot overwrite the new leader's:
//
//   - stamp written objects with Stamp (annotation FenceAnnotation), and
//     before writing an object compare the stamp it carries with your own:
//     refuse to write over a larger token (FenceOf reads it back). Since every
//     update is compare-and-set on resource_version, a stale leader that read
//     the object before the new leader wrote it fails with a conflict, re-reads,
//     and then sees the larger token;
//   - or, for writes that must be exact, re-read the Lease and require that
//     spec.lease_transitions still equals Token (and holder is you) before
//     acting.
type Fence struct {
	Token           int64
	ResourceVersion string
}

// String is "token@resource_version".
func (f Fence) String() string { return strconv.FormatInt(f.Token, 10) + "@" + f.ResourceVersion }

// Stamp records f in obj's FenceAnnotation.
func (f Fence) Stamp(obj api.Object) {
	m := api.Meta(obj)
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[FenceAnnotation] = f.String()
}

// FenceOf returns the fence stamped on obj, if any.
func FenceOf(obj api.Object) (Fence, bool) {
	s, ok := obj.GetMetadata().GetAnnotations()[FenceAnnotation]
	if !ok {
		return Fence{}, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '@' {
			tok, err := strconv.ParseInt(s[:i], 10, 64)
			if err != nil {
				return Fence{}, false
			}
			return Fence{Token: tok, ResourceVersion: s[i+1:]}, true
		}
	}
	return Fence{}, false
}

// Elector runs one candidate's side of an election.
type Elector struct {
	cfg    Config
	leases *client.Resource[*coordinationv1.Lease]
	clock  clock.Clock
	log    *slog.Logger

	running  atomic.Bool
	isLeader atomic.Bool

	mu           sync.Mutex
	observed     *coordinationv1.Lease // last record seen; shared, never modified
	observedTime time.Time             // local time the record was last seen to change
	leader       string
}

// New checks cfg, fills in defaults and returns an Elector.
func New(cfg Config) (*Elector, error) {
	if cfg.Conn == nil {
		return nil, errors.New("leaderelection: Conn is required")
	}
	if cfg.Lock.Name == "" {
		return nil, errors.New("leaderelection: Lock.Name is required")
	}
	if cfg.Identity == "" {
		return nil, errors.New("leaderelection: Identity is required")
	}
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration = DefaultLeaseDuration
	}
	if cfg.RenewDeadline == 0 {
		cfg.RenewDeadline = DefaultRenewDeadline
	}
	if cfg.RetryPeriod == 0 {
		cfg.RetryPeriod = DefaultRetryPeriod
	}
	if cfg.RenewDeadline >= cfg.LeaseDuration {
		return nil, fmt.Errorf("leaderelection: RenewDeadline %v must be less than LeaseDuration %v", cfg.RenewDeadline, cfg.LeaseDuration)
	}
	if cfg.RetryPeriod >= cfg.RenewDeadline {
		return nil, fmt.Errorf("leaderelection: RetryPeriod %v must be less than RenewDeadline %v", cfg.RetryPeriod, cfg.RenewDeadline)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Elector{
		cfg:    cfg,
		leases: client.For[*coordinationv1.Lease](cfg.Conn),
		clock:  cfg.Clock,
		log:    log.With("lease", api.Key(cfg.Lock.Namespace, cfg.Lock.Name), "identity", cfg.Identity),
	}, nil
}

// IsLeader reports whether this candidate currently leads.
func (e *Elector) IsLeader() bool { return e.isLeader.Load() }

// Leader is the identity of the holder last observed, "" when none.
func (e *Elector) Leader() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leader
}

// Run campaigns until ctx ends: it acquires the lease, leads while it can
// renew, and campaigns again after losing it. When ctx ends while leading, it
// stops the leader's work and releases the lease. It returns nil when ctx
// ends, or an error if called twice.
func (e *Elector) Run(ctx context.Context) error {
	if !e.running.CompareAndSwap(false, true) {
		return errors.New("leaderelection: Run called twice")
	}
	defer e.running.Store(false)
	for {
		fence, acquired, ok := e.acquire(ctx)
		if !ok {
			return nil
		}
		e.lead(ctx, fence, acquired)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// acquire retries until this candidate holds the lease or ctx ends. It
// returns the local time the successful write was sent: the leader's term is
// measured from then, which is no later than any other candidate's
// observation of the write.
func (e *Elector) acquire(ctx context.Context) (Fence, time.Time, bool) {
	for {
		start := e.clock.Now()
		fence, held, err := e.tryAcquireOrRenew(ctx)
		if err != nil && ctx.Err() == nil {
			e.log.Debug("acquiring lease failed", "err", err)
		}
		if held {
			e.log.Info("acquired lease", "fence", fence.String())
			return fence, start, true
		}
		if !e.sleep(ctx, jitter(e.cfg.RetryPeriod)) {
			return Fence{}, time.Time{}, false
		}
	}
}

type renewResult struct {
	start time.Time
	held  bool
	err   error
}

// lead runs the leader's term: it starts OnStartedLeading and renews until
// renewal fails for RenewDeadline, someone else holds the lease, or ctx ends.
func (e *Elector) lead(ctx context.Context, fence Fence, lastRenew time.Time) {
	e.isLeader.Store(true)
	leaderCtx, stopLeading := context.WithCancel(ctx)
	var work sync.WaitGroup
	if f := e.cfg.Callbacks.OnStartedLeading; f != nil {
		work.Add(1)
		go func() { defer work.Done(); f(leaderCtx, fence) }()
	}

	attemptCtx, stopAttempts := context.WithCancel(context.WithoutCancel(ctx))
	results := make(chan renewResult, 1)
	inFlight := false
	retry := e.clock.NewTimer(e.cfg.RetryPeriod)
	deadline := e.clock.NewTimer(e.cfg.RenewDeadline - e.clock.Since(lastRenew))
	release := false
loop:
	for {
		select {
		case <-ctx.Done():
			release = true
			break loop
		case <-deadline.C():
			e.log.Warn("could not renew the lease within the renew deadline; stepping down", "renew_deadline", e.cfg.RenewDeadline)
			break loop
		case <-retry.C():
			if !inFlight {
				inFlight = true
				go func() {
					start := e.clock.Now()
					_, held, err := e.tryAcquireOrRenew(attemptCtx)
					results <- renewResult{start: start, held: held, err: err}
				}()
			}
		case r := <-results:
			inFlight = false
			switch {
			case r.held:
				lastRenew = r.start
				deadline.Reset(e.cfg.RenewDeadline - e.clock.Since(lastRenew))
			case r.err == nil:
				e.log.Warn("lease is held by another candidate; stepping down", "holder", e.Leader())
				break loop
			default:
				e.log.Info("renewing the lease failed", "err", r.err)
			}
			retry.Reset(e.cfg.RetryPeriod)
		}
	}
	retry.Stop()
	deadline.Stop()
	e.isLeader.Store(false)
	stopLeading()
	stopAttempts()
	if inFlight {
		<-results
	}
	work.Wait()
	if release {
		e.release(ctx)
	}
	if f := e.cfg.Callbacks.OnStoppedLeading; f != nil {
		f()
	}
}

// release clears the holder so that a standby need not wait for expiry.
func (e *Elector) release(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.RenewDeadline)
	defer cancel()
	e.mu.Lock()
	old := e.observed
	e.mu.Unlock()
	if old == nil || old.GetSpec().GetHolderIdentity() != e.cfg.Identity {
		return
	}
	lease := proto.Clone(old).(*coordinationv1.Lease)
	now := timestamppb.New(e.clock.Now())
	lease.Spec.HolderIdentity = proto.String("")
	lease.Spec.LeaseDurationSeconds = proto.Int32(1)
	lease.Spec.RenewTime = now
	updated, err := e.leases.Update(ctx, lease)
	if err != nil {
		e.log.Warn("releasing the lease failed; standbys take over when it expires", "err", err)
		return
	}
	e.observe(updated)
	e.log.Info("released lease")
}

// tryAcquireOrRenew makes one attempt to take or keep the lease. held reports
// success; a nil err with held false means another candidate holds it.
func (e *Elector) tryAcquireOrRenew(ctx context.Context) (fence Fence, held bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.RenewDeadline)
	defer cancel()
	now := e.clock.Now()
	lock := e.cfg.Lock
	current, err := e.leases.Get(ctx, lock.Namespace, lock.Name)
	if apierrors.IsNotFound(err) {
		lease := &coordinationv1.Lease{
			Metadata: &metav1.ObjectMeta{Namespace: lock.Namespace, Name: lock.Name},
			Spec: &coordinationv1.LeaseSpec{
				HolderIdentity:       proto.String(e.cfg.Identity),
				LeaseDurationSeconds: proto.Int32(e.leaseSeconds()),
				AcquireTime:          timestamppb.New(now),
				RenewTime:            timestamppb.New(now),
				LeaseTransitions:     proto.Int32(1),
			},
		}
		created, err := e.leases.Create(ctx, lease)
		if err != nil {
			return Fence{}, false, err
		}
		e.observe(created)
		return fenceOf(created), true, nil
	}
	if err != nil {
		return Fence{}, false, err
	}
	e.observe(current)

	spec := current.GetSpec()
	holder := spec.GetHolderIdentity()
	if holder != "" && holder != e.cfg.Identity && !e.expired(current) {
		return Fence{}, false, nil
	}
	lease := proto.Clone(current).(*coordinationv1.Lease)
	if lease.Spec == nil {
		lease.Spec = &coordinationv1.LeaseSpec{}
	}
	lease.Spec.RenewTime = timestamppb.New(now)
	lease.Spec.LeaseDurationSeconds = proto.Int32(e.leaseSeconds())
	if holder != e.cfg.Identity {
		lease.Spec.HolderIdentity = proto.String(e.cfg.Identity)
		lease.Spec.AcquireTime = timestamppb.New(now)
		lease.Spec.LeaseTransitions = proto.Int32(spec.GetLeaseTransitions() + 1)
	}
	updated, err := e.leases.Update(ctx, lease)
	if err != nil {
		return Fence{}, false, err
	}
	e.observe(updated)
	return fenceOf(updated), true, nil
}

// fenceOf is the fence of a term whose current record is l. Renewals keep
// lease_transitions, so it is the term's token; ResourceVersion is that of
// the acquisition only when called on the acquiring write, which is the only
// fence handed out.
func fenceOf(l *coordinationv1.Lease) Fence {
	return Fence{Token: int64(l.GetSpec().GetLeaseTransitions()), ResourceVersion: l.GetMetadata().GetResourceVersion()}
}

func (e *Elector) leaseSeconds() int32 {
	return int32(math.Ceil(e.cfg.LeaseDuration.Seconds()))
}

// observe records l as the last seen record, restarting the expiry clock
// when it changed, and reports a new holder.
func (e *Elector) observe(l *coordinationv1.Lease) {
	e.mu.Lock()
	changed := e.observed == nil || e.observed.GetMetadata().GetResourceVersion() != l.GetMetadata().GetResourceVersion()
	if changed {
		e.observed = l
		e.observedTime = e.clock.Now()
	}
	holder := l.GetSpec().GetHolderIdentity()
	newLeader := holder != e.leader
	e.leader = holder
	e.mu.Unlock()
	if newLeader && holder != "" {
		e.log.Info("new leader observed", "leader", holder)
		if f := e.cfg.Callbacks.OnNewLeader; f != nil {
			f(holder)
		}
	}
}

// expired reports whether l, as last observed, has gone unchanged for its
// holder's lease duration on the local clock.
func (e *Elector) expired(l *coordinationv1.Lease) bool {
	d := e.cfg.LeaseDuration
	if s := l.GetSpec().GetLeaseDurationSeconds(); s > 0 {
		d = time.Duration(s) * time.Second
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return !e.clock.Now().Before(e.observedTime.Add(d))
}

func (e *Elector) sleep(ctx context.Context, d time.Duration) bool {
	t := e.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}

func jitter(d time.Duration) time.Duration { return wait.Jitter(d, 0.2) }
