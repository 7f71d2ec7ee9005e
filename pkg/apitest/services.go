package apitest

import (
	"context"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/api"
)

func errUnavailable(msg string) error { return status.Error(codes.Unavailable, msg) }

func podKind() *api.Kind {
	k, _ := api.KindOf(&corev1.Pod{})
	return k
}

func leaseKind() *api.Kind {
	k, _ := api.KindOf(&coordinationv1.Lease{})
	return k
}

func items[T api.Object](objs []api.Object) []T {
	out := make([]T, len(objs))
	for i, o := range objs {
		out[i] = o.(T)
	}
	return out
}

func as[T api.Object](obj api.Object, err error) (T, error) {
	var zero T
	if err != nil {
		return zero, err
	}
	return obj.(T), nil
}

func rev(r int64) string { return strconv.FormatInt(r, 10) }

// podService serves corev1.PodService from the Server's store.
type podService struct {
	corev1.UnimplementedPodServiceServer
	s *Server
}

func (p podService) GetPod(_ context.Context, r *corev1.GetPodRequest) (*corev1.GetPodResponse, error) {
	obj, err := as[*corev1.Pod](p.s.get(podKind(), r.GetNamespace(), r.GetName()))
	if err != nil {
		return nil, err
	}
	return &corev1.GetPodResponse{Pod: obj}, nil
}

func (p podService) ListPods(_ context.Context, r *corev1.ListPodsRequest) (*corev1.ListPodsResponse, error) {
	objs, rv, err := p.s.list(podKind(), r.GetNamespace(), r.GetLabelSelector(), r.GetFieldSelector())
	if err != nil {
		return nil, err
	}
	return &corev1.ListPodsResponse{Items: items[*corev1.Pod](objs), ResourceVersion: rv}, nil
}

func (p podService) CreatePod(_ context.Context, r *corev1.CreatePodRequest) (*corev1.CreatePodResponse, error) {
	obj, err := as[*corev1.Pod](p.s.create(podKind(), r.GetPod()))
	if err != nil {
		return nil, err
	}
	return &corev1.CreatePodResponse{Pod: obj}, nil
}

func (p podService) UpdatePod(_ context.Context, r *corev1.UpdatePodRequest) (*corev1.UpdatePodResponse, error) {
	obj, err := as[*corev1.Pod](p.s.update(podKind(), r.GetPod(), false))
	if err != nil {
		return nil, err
	}
	return &corev1.UpdatePodResponse{Pod: obj}, nil
}

func (p podService) UpdatePodStatus(_ context.Context, r *corev1.UpdatePodStatusRequest) (*corev1.UpdatePodStatusResponse, error) {
	obj, err := as[*corev1.Pod](p.s.update(podKind(), r.GetPod(), true))
	if err != nil {
		return nil, err
	}
	return &corev1.UpdatePodStatusResponse{Pod: obj}, nil
}

func (p podService) DeletePod(_ context.Context, r *corev1.DeletePodRequest) (*corev1.DeletePodResponse, error) {
	obj, err := as[*corev1.Pod](p.s.delete(podKind(), r.GetNamespace(), r.GetName(), r.GetPreconditions()))
	if err != nil {
		return nil, err
	}
	return &corev1.DeletePodResponse{Pod: obj}, nil
}

func (p podService) BindPod(_ context.Context, r *corev1.BindPodRequest) (*corev1.BindPodResponse, error) {
	obj, err := p.s.bind(r.GetNamespace(), r.GetName(), r.GetNodeName(), r.GetUid())
	if err != nil {
		return nil, err
	}
	return &corev1.BindPodResponse{Pod: obj}, nil
}

func (p podService) WatchPods(r *corev1.WatchPodsRequest, stream grpc.ServerStreamingServer[corev1.WatchPodsResponse]) error {
	if err := p.s.checkFault(corev1.PodService_WatchPods_FullMethodName, r); err != nil {
		return err
	}
	return p.s.watch(stream.Context(), podKind(), r.GetNamespace(), r.GetLabelSelector(), r.GetFieldSelector(),
		r.GetResourceVersion(), r.GetAllowBookmarks(), func(e event) error {
			resp := &corev1.WatchPodsResponse{Type: e.typ, ResourceVersion: rev(e.rev)}
			if e.obj == nil {
				resp.Type = bookmark
			} else {
				resp.Pod = e.obj.(*corev1.Pod)
			}
			return stream.Send(resp)
		})
}

// leaseService serves coordinationv1.LeaseService from the Server's store.
type leaseService struct {
	coordinationv1.UnimplementedLeaseServiceServer
	s *Server
}

func (l leaseService) GetLease(_ context.Context, r *coordinationv1.GetLeaseRequest) (*coordinationv1.GetLeaseResponse, error) {
	obj, err := as[*coordinationv1.Lease](l.s.get(leaseKind(), r.GetNamespace(), r.GetName()))
	if err != nil {
		return nil, err
	}
	return &coordinationv1.GetLeaseResponse{Lease: obj}, nil
}

func (l leaseService) ListLeases(_ context.Context, r *coordinationv1.ListLeasesRequest) (*coordinationv1.ListLeasesResponse, error) {
	objs, rv, err := l.s.list(leaseKind(), r.GetNamespace(), r.GetLabelSelector(), r.GetFieldSelector())
	if err != nil {
		return nil, err
	}
	return &coordinationv1.ListLeasesResponse{Items: items[*coordinationv1.Lease](objs), ResourceVersion: rv}, nil
}

func (l leaseService) CreateLease(_ context.Context, r *coordinationv1.CreateLeaseRequest) (*coordinationv1.CreateLeaseResponse, error) {
	obj, err := as[*coordinationv1.Lease](l.s.create(leaseKind(), r.GetLease()))
	if err != nil {
		return nil, err
	}
	return &coordinationv1.CreateLeaseResponse{Lease: obj}, nil
}

func (l leaseService) UpdateLease(_ context.Context, r *coordinationv1.UpdateLeaseRequest) (*coordinationv1.UpdateLeaseResponse, error) {
	obj, err := as[*coordinationv1.Lease](l.s.update(leaseKind(), r.GetLease(), false))
	if err != nil {
		return nil, err
	}
	return &coordinationv1.UpdateLeaseResponse{Lease: obj}, nil
}

func (l leaseService) DeleteLease(_ context.Context, r *coordinationv1.DeleteLeaseRequest) (*coordinationv1.DeleteLeaseResponse, error) {
	obj, err := as[*coordinationv1.Lease](l.s.delete(leaseKind(), r.GetNamespace(), r.GetName(), r.GetPreconditions()))
	if err != nil {
		return nil, err
	}
	return &coordinationv1.DeleteLeaseResponse{Lease: obj}, nil
}

func (l leaseService) WatchLeases(r *coordinationv1.WatchLeasesRequest, stream grpc.ServerStreamingServer[coordinationv1.WatchLeasesResponse]) error {
	if err := l.s.checkFault(coordinationv1.LeaseService_WatchLeases_FullMethodName, r); err != nil {
		return err
	}
	return l.s.watch(stream.Context(), leaseKind(), r.GetNamespace(), r.GetLabelSelector(), r.GetFieldSelector(),
		r.GetResourceVersion(), r.GetAllowBookmarks(), func(e event) error {
			resp := &coordinationv1.WatchLeasesResponse{Type: e.typ, ResourceVersion: rev(e.rev)}
			if e.obj == nil {
				resp.Type = bookmark
			} else {
				resp.Lease = e.obj.(*coordinationv1.Lease)
			}
			return stream.Send(resp)
		})
}
