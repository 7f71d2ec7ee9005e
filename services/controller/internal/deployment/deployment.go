// Package deployment runs the Deployment controller: it rolls a
// Deployment's pod template out through ReplicaSets, one per revision.
//
// A RollingUpdate grows the new ReplicaSet while never letting the pods of
// all revisions exceed replicas+maxSurge, and shrinks old ones while never
// leaving fewer than replicas-maxUnavailable available (see NewReplicas and
// ScaleDownOld). Recreate removes every old pod before the new ReplicaSet
// grows. Scaling a Deployment mid-rollout resizes its ReplicaSets in
// proportion (ProportionalSizes). Old ReplicaSets are kept, scaled to zero,
// up to revisionHistoryLimit: changing the template back to one of theirs
// (a rollback) reuses that ReplicaSet under a new revision number. A paused
// Deployment is scaled but not rolled. When a rollout makes no progress for
// progressDeadlineSeconds its Progressing condition turns False with reason
// ProgressDeadlineExceeded.
//
// The controller waits for the cache to show every ReplicaSet write it
// made before deciding again, and trusts a ReplicaSet's status only once it
// reflects the ReplicaSet's latest spec.
package deployment

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/clock"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/informer"
	"bosun.dev/services/controller/internal/controller"
)

// Name is the controller's name in flags, logs and metrics.
const Name = "deployment"

// Strategy types.
const (
	RollingUpdate = "RollingUpdate"
	Recreate      = "Recreate"
)

// Controller is the Deployment controller.
type Controller struct {
	deploys *informer.Informer[*appsv1.Deployment]
	sets    *informer.Informer[*appsv1.ReplicaSet]
	pods    *informer.Informer[*corev1.Pod]
	dAPI    *client.Resource[*appsv1.Deployment]
	rsAPI   *client.Resource[*appsv1.ReplicaSet]
	queue   controller.Queue
	clock   clock.Clock
	log     *slog.Logger

	// written holds, per ReplicaSet key, the generation of this
	// controller's last write to it: until the cache shows it, the
	// controller does not decide on stale sizes.
	mu      sync.Mutex
	written map[string]int64
}

// New builds the controller and registers its informer handlers.
func New(c *controller.Context) *Controller {
	d := &Controller{
		deploys: c.Informers.Deployments,
		sets:    c.Informers.ReplicaSets,
		pods:    c.Informers.Pods,
		dAPI:    client.For[*appsv1.Deployment](c.Conn),
		rsAPI:   client.For[*appsv1.ReplicaSet](c.Conn),
		queue:   controller.NewQueue(Name, c.Metrics),
		clock:   c.ClockOrReal(),
		log:     c.Logger(),
		written: map[string]int64{},
	}
	enqueue := func(o *appsv1.Deployment) { d.queue.Add(api.KeyOf(o)) }
	d.deploys.AddEventHandler(informer.HandlerFuncs[*appsv1.Deployment]{
		AddFunc: enqueue, UpdateFunc: func(_, o *appsv1.Deployment) { enqueue(o) }, DeleteFunc: enqueue,
	})
	d.sets.AddEventHandler(informer.HandlerFuncs[*appsv1.ReplicaSet]{
		AddFunc:    d.rsChanged,
		UpdateFunc: func(old, rs *appsv1.ReplicaSet) { d.rsChanged(old); d.rsChanged(rs) },
		DeleteFunc: d.rsChanged,
	})
	// Recreate waits for old pods to be gone: a pod's deletion may be the
	// event it waits for.
	d.pods.AddEventHandler(informer.HandlerFuncs[*corev1.Pod]{
		DeleteFunc: func(p *corev1.Pod) {
			ref := controller.ControllerRef(p.GetMetadata())
			if ref == nil || ref.GetKind() != "ReplicaSet" {
				return
			}
			if rs, ok := d.sets.Get(p.GetMetadata().GetNamespace(), ref.GetName()); ok {
				d.rsChanged(rs)
			}
		},
	})
	return d
}

func (d *Controller) rsChanged(rs *appsv1.ReplicaSet) {
	ns := rs.GetMetadata().GetNamespace()
	if ref := controller.ControllerRef(rs.GetMetadata()); ref != nil {
		if ref.GetKind() == "Deployment" {
			d.queue.Add(api.Key(ns, ref.GetName()))
		}
		return
	}
	deploys, _ := d.deploys.ByIndex(informer.NamespaceIndex, ns)
	for _, dep := range deploys {
		if controller.Matches(dep.GetSpec().GetSelector(), rs.GetMetadata().GetLabels()) {
			d.queue.Add(api.KeyOf(dep))
		}
	}
}

// Run waits for the caches and runs workers until ctx ends.
func (d *Controller) Run(ctx context.Context, workers int) {
	if !informer.WaitForCacheSync(ctx, d.deploys, d.sets, d.pods) {
		return
	}
	controller.RunWorkers(ctx, d.queue, workers, d.sync, d.log)
}

func splitKey(key string) (string, string) {
	for i := 0; i < len(key); i++ {
		if key[i] == '/' {
			return key[:i], key[i+1:]
		}
	}
	return "", key
}

// state is one sync's view of a Deployment and its ReplicaSets.
type state struct {
	d      *appsv1.Deployment
	newRS  *appsv1.ReplicaSet
	old    []*appsv1.ReplicaSet // oldest first
	all    []*appsv1.ReplicaSet
	stable bool // every ReplicaSet's status reflects its spec and our writes
	// progressed is set when this sync moved the rollout forward.
	progressed bool
	created    bool
}

func (d *Controller) sync(ctx context.Context, key string) error {
	ns, name := splitKey(key)
	dep, ok := d.deploys.Get(ns, name)
	if !ok {
		return nil
	}
	if len(dep.GetSpec().GetSelector().GetMatchLabels()) == 0 && len(dep.GetSpec().GetSelector().GetMatchExpressions()) == 0 {
		return nil
	}
	sets, err := d.claim(ctx, dep)
	if err != nil {
		return err
	}
	st := d.view(dep, sets)
	if dep.GetMetadata().GetDeletionTimestamp() != nil {
		return d.syncStatus(ctx, st)
	}
	if !st.stable {
		// A ReplicaSet event will bring us back once the cache catches up.
		return d.syncStatus(ctx, st)
	}
	if dep.GetSpec().GetPaused() {
		if err := d.scale(ctx, st); err != nil {
			return err
		}
		return d.syncStatus(ctx, st)
	}
	if st.newRS != nil && isScaling(st) {
		if err := d.scale(ctx, st); err != nil {
			return err
		}
		return d.syncStatus(ctx, st)
	}
	switch dep.GetSpec().GetStrategy().GetType() {
	case Recreate:
		err = d.recreate(ctx, st)
	default:
		err = d.rolling(ctx, st)
	}
	if err != nil {
		return err
	}
	return d.syncStatus(ctx, st)
}

// claim returns the ReplicaSets dep controls, adopting orphans its selector
// matches.
func (d *Controller) claim(ctx context.Context, dep *appsv1.Deployment) ([]*appsv1.ReplicaSet, error) {
	sel, err := controller.Selector(dep.GetSpec().GetSelector())
	if err != nil {
		return nil, nil
	}
	all, _ := d.sets.ByIndex(informer.NamespaceIndex, dep.GetMetadata().GetNamespace())
	uid := dep.GetMetadata().GetUid()
	var out []*appsv1.ReplicaSet
	for _, rs := range all {
		ref := controller.ControllerRef(rs.GetMetadata())
		switch {
		case ref != nil && ref.GetUid() == uid:
			out = append(out, rs)
		case ref == nil && dep.GetMetadata().GetDeletionTimestamp() == nil && rs.GetMetadata().GetDeletionTimestamp() == nil &&
			sel.Matches(labels.Set(rs.GetMetadata().GetLabels())):
			next := proto.Clone(rs).(*appsv1.ReplicaSet)
			next.Metadata.OwnerReferences = append(next.Metadata.OwnerReferences, controller.NewControllerRef(dep))
			adopted, err := d.rsAPI.Update(ctx, next)
			if err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return nil, err
			}
			d.wrote(adopted)
			out = append(out, adopted)
		}
	}
	return out, nil
}

func (d *Controller) wrote(rs *appsv1.ReplicaSet) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.written[api.KeyOf(rs)] = rs.GetMetadata().GetGeneration()
}

// caughtUp reports whether the cache shows this controller's last write to
// rs and rs's status reflects its spec.
func (d *Controller) caughtUp(rs *appsv1.ReplicaSet) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := api.KeyOf(rs)
	gen := rs.GetMetadata().GetGeneration()
	if want, ok := d.written[key]; ok {
		if gen < want {
			return false
		}
		delete(d.written, key)
	}
	return rs.GetStatus().GetObservedGeneration() >= gen
}

func (d *Controller) view(dep *appsv1.Deployment, sets []*appsv1.ReplicaSet) *state {
	st := &state{d: dep, stable: true}
	sort.SliceStable(sets, func(i, j int) bool {
		a, b := sets[i].GetMetadata(), sets[j].GetMetadata()
		if !a.GetCreationTimestamp().AsTime().Equal(b.GetCreationTimestamp().AsTime()) {
			return a.GetCreationTimestamp().AsTime().Before(b.GetCreationTimestamp().AsTime())
		}
		return a.GetName() < b.GetName()
	})
	for _, rs := range sets {
		if !d.caughtUp(rs) {
			st.stable = false
		}
		if st.newRS == nil && SameTemplate(rs.GetSpec().GetTemplate(), dep.GetSpec().GetTemplate()) && rs.GetMetadata().GetDeletionTimestamp() == nil {
			st.newRS = rs
			continue
		}
		st.old = append(st.old, rs)
	}
	st.all = append(append([]*appsv1.ReplicaSet(nil), st.old...), st.newRS)
	if st.newRS == nil {
		st.all = st.all[:len(st.all)-1]
	}
	return st
}

// isScaling reports whether dep's replicas changed since its active
// ReplicaSets were sized.
func isScaling(st *state) bool {
	want := strconv.Itoa(int(st.d.GetSpec().GetReplicas()))
	for _, rs := range st.all {
		if rs.GetSpec().GetReplicas() == 0 {
			continue
		}
		if v, ok := rs.GetMetadata().GetAnnotations()[DesiredReplicasAnnotation]; ok && v != want {
			return true
		}
	}
	return false
}

// resize sets rs's replicas to n. With retry, a conflict (usually the
// ReplicaSet's status changing) is retried on the latest version; without,
// it is returned, so that a rollout step decided on a stale status is
// decided again.
func (d *Controller) resize(ctx context.Context, st *state, rs *appsv1.ReplicaSet, n int32, retry bool) (*appsv1.ReplicaSet, error) {
	want := strconv.Itoa(int(st.d.GetSpec().GetReplicas()))
	if rs.GetSpec().GetReplicas() == n && rs.GetMetadata().GetAnnotations()[DesiredReplicasAnnotation] == want {
		return rs, nil
	}
	if rs.GetSpec().GetReplicas() != n {
		st.progressed = true
	}
	build := func(cur *appsv1.ReplicaSet) *appsv1.ReplicaSet {
		next := proto.Clone(cur).(*appsv1.ReplicaSet)
		if next.Metadata.Annotations == nil {
			next.Metadata.Annotations = map[string]string{}
		}
		next.Metadata.Annotations[DesiredReplicasAnnotation] = want
		next.Spec.Replicas = proto.Int32(n)
		return next
	}
	out, err := d.rsAPI.Update(ctx, build(rs))
	if retry && apierrors.IsConflict(err) {
		// Someone else wrote it (its status, usually): size the latest
		// version of the same ReplicaSet.
		err = client.RetryOnConflict(ctx, client.DefaultRetry, func() error {
			latest, err := d.rsAPI.Get(ctx, rs.Metadata.Namespace, rs.Metadata.Name)
			if err != nil {
				return err
			}
			if latest.Metadata.Uid != rs.Metadata.Uid {
				return apierrors.NotFound("ReplicaSet", rs.Metadata.Namespace, rs.Metadata.Name)
			}
			out, err = d.rsAPI.Update(ctx, build(latest))
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("scaling replicaset %s to %d: %w", api.KeyOf(rs), n, err)
	}
	d.wrote(out)
	d.log.Debug("scaled replicaset", "replicaset", api.KeyOf(rs), "replicas", n)
	return out, nil
}

// scale sizes the active ReplicaSets for dep's replicas without rolling:
// one active ReplicaSet takes them all; several share them in proportion.
func (d *Controller) scale(ctx context.Context, st *state) error {
	replicas := st.d.GetSpec().GetReplicas()
	var active []*appsv1.ReplicaSet
	for _, rs := range st.all {
		if rs.GetSpec().GetReplicas() > 0 {
			active = append(active, rs)
		}
	}
	switch {
	case len(active) == 0:
		if st.newRS != nil {
			_, err := d.resize(ctx, st, st.newRS, replicas, true)
			return err
		}
		return nil
	case len(active) == 1:
		_, err := d.resize(ctx, st, active[0], replicas, true)
		return err
	}
	target := replicas
	if st.d.GetSpec().GetStrategy().GetType() != Recreate {
		surge, _, err := Fenceposts(st.d)
		if err != nil {
			return err
		}
		target += surge
	}
	if !isScaling(st) {
		return nil
	}
	// ReplicaSets already sized for the new replicas (by an earlier,
	// interrupted pass) keep their size; the others share the rest in
	// proportion to their sizes.
	want := strconv.Itoa(int(replicas))
	next := make([]int32, len(active))
	var pending []int
	var sizes []int32
	rest := target
	for i, rs := range active {
		next[i] = rs.GetSpec().GetReplicas()
		if rs.GetMetadata().GetAnnotations()[DesiredReplicasAnnotation] == want {
			rest -= next[i]
			continue
		}
		pending = append(pending, i)
		sizes = append(sizes, next[i])
	}
	for j, n := range ProportionalSizes(sizes, max(rest, 0)) {
		next[pending[j]] = n
	}
	for i, rs := range active {
		if _, err := d.resize(ctx, st, rs, next[i], true); err != nil {
			return err
		}
	}
	return nil
}

// ensureNewRS returns the ReplicaSet of dep's template, creating it (at
// size) when missing, and gives it the latest revision.
func (d *Controller) ensureNewRS(ctx context.Context, st *state, size int32) (*appsv1.ReplicaSet, error) {
	dep := st.d
	rev := maxRevision(st.old) + 1
	if st.newRS != nil {
		rs := st.newRS
		if Revision(rs.GetMetadata().GetAnnotations()) >= rev && rs.GetMetadata().GetAnnotations()[ChangeCauseAnnotation] == dep.GetMetadata().GetAnnotations()[ChangeCauseAnnotation] {
			return rs, nil
		}
		if Revision(rs.GetMetadata().GetAnnotations()) >= rev {
			rev = Revision(rs.GetMetadata().GetAnnotations())
		}
		next := proto.Clone(rs).(*appsv1.ReplicaSet)
		if next.Metadata.Annotations == nil {
			next.Metadata.Annotations = map[string]string{}
		}
		next.Metadata.Annotations[RevisionAnnotation] = strconv.FormatInt(rev, 10)
		if cause, ok := dep.GetMetadata().GetAnnotations()[ChangeCauseAnnotation]; ok {
			next.Metadata.Annotations[ChangeCauseAnnotation] = cause
		}
		out, err := d.rsAPI.Update(ctx, next)
		if err != nil {
			return nil, err
		}
		d.wrote(out)
		st.newRS = out
		st.progressed = true
		st.all[len(st.all)-1] = out
		return out, nil
	}
	collisions := dep.GetStatus().GetCollisionCount()
	hash := TemplateHash(dep.GetSpec().GetTemplate(), collisions)
	tmpl := proto.Clone(dep.GetSpec().GetTemplate()).(*corev1.PodTemplateSpec)
	if tmpl.Metadata == nil {
		tmpl.Metadata = &metav1.ObjectMeta{}
	}
	tmpl.Metadata.Labels = controller.CopyMap(tmpl.Metadata.Labels)
	if tmpl.Metadata.Labels == nil {
		tmpl.Metadata.Labels = map[string]string{}
	}
	tmpl.Metadata.Labels[PodTemplateHashLabel] = hash
	sel := proto.Clone(dep.GetSpec().GetSelector()).(*metav1.LabelSelector)
	sel.MatchLabels = controller.CopyMap(sel.MatchLabels)
	if sel.MatchLabels == nil {
		sel.MatchLabels = map[string]string{}
	}
	sel.MatchLabels[PodTemplateHashLabel] = hash
	annotations := map[string]string{
		RevisionAnnotation:        strconv.FormatInt(rev, 10),
		DesiredReplicasAnnotation: strconv.Itoa(int(dep.GetSpec().GetReplicas())),
	}
	if cause, ok := dep.GetMetadata().GetAnnotations()[ChangeCauseAnnotation]; ok {
		annotations[ChangeCauseAnnotation] = cause
	}
	rsLabels := controller.CopyMap(tmpl.Metadata.Labels)
	rs := &appsv1.ReplicaSet{
		Metadata: &metav1.ObjectMeta{
			Name:            dep.GetMetadata().GetName() + "-" + hash,
			Namespace:       dep.GetMetadata().GetNamespace(),
			Labels:          rsLabels,
			Annotations:     annotations,
			OwnerReferences: []*metav1.OwnerReference{controller.NewControllerRef(dep)},
		},
		Spec: &appsv1.ReplicaSetSpec{
			Replicas:        proto.Int32(size),
			MinReadySeconds: dep.GetSpec().GetMinReadySeconds(),
			Selector:        sel,
			Template:        tmpl,
		},
	}
	out, err := d.rsAPI.Create(ctx, rs)
	if apierrors.IsAlreadyExists(err) {
		existing, gerr := d.rsAPI.Get(ctx, rs.Metadata.Namespace, rs.Metadata.Name)
		if gerr != nil {
			return nil, gerr
		}
		if controller.IsControlledBy(existing.GetMetadata(), dep.GetMetadata().GetUid()) && SameTemplate(existing.GetSpec().GetTemplate(), dep.GetSpec().GetTemplate()) {
			return nil, fmt.Errorf("replicaset %s exists but is not yet in the cache", api.KeyOf(existing))
		}
		// A hash collision: bump the collision count and try another name.
		next := proto.Clone(dep).(*appsv1.Deployment)
		if next.Status == nil {
			next.Status = &appsv1.DeploymentStatus{}
		}
		next.Status.CollisionCount = proto.Int32(collisions + 1)
		if _, err := d.dAPI.UpdateStatus(ctx, next); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("pod-template-hash %s of deployment %s collided; retrying", hash, api.KeyOf(dep))
	}
	if err != nil {
		return nil, fmt.Errorf("creating replicaset for deployment %s: %w", api.KeyOf(dep), err)
	}
	d.wrote(out)
	st.newRS = out
	st.all = append(st.all, out)
	st.progressed = true
	st.created = true
	return out, nil
}

// rolling takes one step of a RollingUpdate.
func (d *Controller) rolling(ctx context.Context, st *state) error {
	surge, unavailable, err := Fenceposts(st.d)
	if err != nil {
		return err
	}
	replicas := st.d.GetSpec().GetReplicas()
	if st.newRS == nil {
		// Start the new ReplicaSet at the size the surge allows.
		size := NewReplicas(replicas, surge, st.old, &appsv1.ReplicaSet{Spec: &appsv1.ReplicaSetSpec{Replicas: proto.Int32(0)}})
		if len(st.old) == 0 {
			size = replicas
		}
		if _, err := d.ensureNewRS(ctx, st, size); err != nil {
			return err
		}
		return nil
	}
	if _, err := d.ensureNewRS(ctx, st, 0); err != nil {
		return err
	}
	if n := NewReplicas(replicas, surge, st.all, st.newRS); n != st.newRS.GetSpec().GetReplicas() {
		_, err := d.resize(ctx, st, st.newRS, n, false)
		return err
	}
	if st.newRS.GetSpec().GetReplicas() > replicas {
		_, err := d.resize(ctx, st, st.newRS, replicas, false)
		return err
	}
	sizes := ScaleDownOld(replicas, unavailable, st.old, st.newRS)
	for i, rs := range st.old {
		if sizes[i] != rs.GetSpec().GetReplicas() {
			if _, err := d.resize(ctx, st, rs, sizes[i], false); err != nil {
				return err
			}
		}
	}
	if st.progressed {
		return nil
	}
	if complete(st) {
		return d.cleanup(ctx, st)
	}
	return nil
}

// recreate takes one step of a Recreate rollout: old ReplicaSets to zero,
// wait for their pods to be gone, then the new one to full size.
func (d *Controller) recreate(ctx context.Context, st *state) error {
	for _, rs := range st.old {
		if rs.GetSpec().GetReplicas() != 0 {
			if _, err := d.resize(ctx, st, rs, 0, false); err != nil {
				return err
			}
		}
	}
	if st.progressed {
		return nil
	}
	for _, rs := range st.old {
		if rs.GetStatus().GetReplicas() > 0 {
			return nil
		}
		pods, _ := d.pods.ByIndex(controller.OwnerUIDIndex, rs.GetMetadata().GetUid())
		for _, p := range pods {
			if ph := p.GetStatus().GetPhase(); ph != controller.PodSucceeded && ph != controller.PodFailed {
				return nil // an old pod is still there, perhaps terminating
			}
		}
	}
	replicas := st.d.GetSpec().GetReplicas()
	rs, err := d.ensureNewRS(ctx, st, replicas)
	if err != nil {
		return err
	}
	if rs.GetSpec().GetReplicas() != replicas {
		_, err := d.resize(ctx, st, rs, replicas, false)
		return err
	}
	if complete(st) {
		return d.cleanup(ctx, st)
	}
	return nil
}

// cleanup deletes old ReplicaSets beyond the revision history limit.
func (d *Controller) cleanup(ctx context.Context, st *state) error {
	limit := int32(10)
	if l := st.d.GetSpec().RevisionHistoryLimit; l != nil {
		limit = *l
	}
	for _, rs := range HistoryToDelete(st.old, limit) {
		_, err := d.rsAPI.Delete(ctx, rs.Metadata.Namespace, rs.Metadata.Name, client.DeleteOptions{
			Preconditions: &metav1.Preconditions{Uid: rs.Metadata.Uid},
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// complete reports whether every replica runs the new template and is
// available, and no old pod remains.
func complete(st *state) bool {
	replicas := st.d.GetSpec().GetReplicas()
	if st.newRS == nil {
		return false
	}
	ns := st.newRS.GetStatus()
	if st.newRS.GetSpec().GetReplicas() != replicas || ns.GetReplicas() != replicas || ns.GetAvailableReplicas() != replicas {
		return false
	}
	for _, rs := range st.old {
		if rs.GetSpec().GetReplicas() != 0 || rs.GetStatus().GetReplicas() != 0 {
			return false
		}
	}
	return true
}

// now is the controller's clock, truncated as the API stores timestamps.
func (d *Controller) now() time.Time { return d.clock.Now().UTC().Truncate(time.Second) }
