package registry

import (
	"context"
	"errors"
	"strconv"

	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/services/apiserver/internal/storage"
)

// Bind assigns an unbound pod to a node, compare-and-set: a pod that already
// has a node is refused with ALREADY_BOUND, so two schedulers can never both
// place it. The pod's PodScheduled condition becomes True.
func (r *Resource) Bind(ctx context.Context, namespace, name, node, uid string) (*corev1.Pod, error) {
	if err := r.checkScope(namespace, name); err != nil {
		return nil, err
	}
	if node == "" {
		return nil, apierrors.Invalid("Binding", name, field.ErrorList{field.Required(field.NewPath("nodeName"), "")})
	}
	if msgs := validation.IsDNS1123Subdomain(node); len(msgs) > 0 {
		return nil, apierrors.Invalid("Binding", name, field.ErrorList{field.Invalid(field.NewPath("nodeName"), node, msgs[0])})
	}
	// The first attempt writes on the watch cache's copy (see current); a
	// refusal, or a lost compare-and-set, is decided on etcd's.
	for fromCache := true; ; fromCache = false {
		cur, cached, err := r.current(ctx, namespace, name, fromCache)
		if err != nil {
			return nil, r.storeErr(err, namespace, name)
		}
		pod := cur.(*corev1.Pod)
		refused := (uid != "" && uid != pod.GetMetadata().GetUid()) || pod.GetSpec().GetNodeName() != "" || pod.GetMetadata().GetDeletionTimestamp() != nil
		if refused && cached {
			continue
		}
		if uid != "" && uid != pod.GetMetadata().GetUid() {
			return nil, r.conflict(namespace, name, "precondition failed: uid "+uid+" does not match the pod's")
		}
		if pod.GetSpec().GetNodeName() != "" {
			return nil, apierrors.AlreadyBound(namespace, name, pod.GetSpec().GetNodeName())
		}
		if pod.GetMetadata().GetDeletionTimestamp() != nil {
			return nil, apierrors.Terminating("Pod", namespace, name, "cannot be bound")
		}
		next := proto.Clone(pod).(*corev1.Pod)
		if next.Spec == nil {
			next.Spec = &corev1.PodSpec{}
		}
		next.Spec.NodeName = node
		if next.Status == nil {
			next.Status = &corev1.PodStatus{}
		}
		setPodCondition(next.Status, &corev1.PodCondition{Type: "PodScheduled", Status: "True", LastTransitionTime: r.now()})
		rev, _ := strconv.ParseInt(pod.GetMetadata().GetResourceVersion(), 10, 64)
		out, err := r.store.Put(ctx, next, rev)
		if errors.Is(err, storage.ErrConflict) {
			continue // re-read: if another binder won, the next round says so
		}
		if err != nil {
			return nil, r.storeErr(err, namespace, name)
		}
		return out.(*corev1.Pod), nil
	}
}

func setPodCondition(st *corev1.PodStatus, c *corev1.PodCondition) {
	for i, old := range st.Conditions {
		if old.Type == c.Type {
			if old.Status == c.Status {
				c.LastTransitionTime = old.LastTransitionTime
			}
			st.Conditions[i] = c
			return
		}
	}
	st.Conditions = append(st.Conditions, c)
}
