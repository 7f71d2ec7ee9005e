package cli

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/apimachinery/pkg/util/validation/field"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
)

// fakeStore is an in-memory object store with resource versions: a stale
// resource_version on update is a conflict, as the apiserver does.
type fakeStore struct {
	mu      sync.Mutex
	rev     int64
	objects map[string]api.Object // kind/namespace/name
	history []storeEvent
	now     time.Time
	writes  int
}

type storeEvent struct {
	typ metav1.WatchEventType
	obj api.Object
	rev int64
}

func newFakeStore(now time.Time) *fakeStore {
	return &fakeStore{objects: map[string]api.Object{}, now: now}
}

func storeKey(kind, ns, name string) string { return kind + "/" + ns + "/" + name }

func (s *fakeStore) record(typ metav1.WatchEventType, obj api.Object) {
	s.history = append(s.history, storeEvent{typ, proto.Clone(obj).(api.Object), s.rev})
}

func (s *fakeStore) create(kind string, obj api.Object) (api.Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	md := api.Meta(obj)
	if md.GetName() == "" {
		return nil, apierrors.Invalid(kind, "", field.ErrorList{field.Required(field.NewPath("metadata", "name"), "")})
	}
	if kind == "Pod" {
		if err := validatePod(obj.(*corev1.Pod)); err != nil {
			return nil, err
		}
	}
	key := storeKey(kind, md.GetNamespace(), md.GetName())
	if _, ok := s.objects[key]; ok {
		return nil, apierrors.AlreadyExists(kind, md.GetNamespace(), md.GetName())
	}
	stored := proto.Clone(obj).(api.Object)
	s.rev++
	s.writes++
	m := api.Meta(stored)
	m.ResourceVersion = strconv.FormatInt(s.rev, 10)
	m.Uid = "uid-" + m.ResourceVersion
	m.Generation = 1
	m.CreationTimestamp = timestamppb.New(s.now)
	s.objects[key] = stored
	s.record(metav1.WatchEventType_WATCH_EVENT_TYPE_ADDED, stored)
	return proto.Clone(stored).(api.Object), nil
}

func validatePod(p *corev1.Pod) error {
	var errs field.ErrorList
	for i, c := range p.GetSpec().GetContainers() {
		if c.GetImage() == "" {
			errs = append(errs, field.Required(field.NewPath("spec", "containers").Index(i).Child("image"), ""))
		}
	}
	if len(errs) > 0 {
		return apierrors.Invalid("Pod", p.GetMetadata().GetName(), errs)
	}
	return nil
}

func (s *fakeStore) get(kind, ns, name string) (api.Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	obj, ok := s.objects[storeKey(kind, ns, name)]
	if !ok {
		return nil, apierrors.NotFound(kind, ns, name)
	}
	return proto.Clone(obj).(api.Object), nil
}

func (s *fakeStore) update(kind string, obj api.Object) (api.Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	md := obj.GetMetadata()
	key := storeKey(kind, md.GetNamespace(), md.GetName())
	cur, ok := s.objects[key]
	if !ok {
		return nil, apierrors.NotFound(kind, md.GetNamespace(), md.GetName())
	}
	if rv := md.GetResourceVersion(); rv != "" && rv != cur.GetMetadata().GetResourceVersion() {
		return nil, apierrors.Conflict(kind, md.GetNamespace(), md.GetName(), "the object has been modified; please apply your changes to the latest version and try again")
	}
	stored := proto.Clone(obj).(api.Object)
	// Status is written through its own method: keep the stored one.
	if f := stored.ProtoReflect().Descriptor().Fields().ByName("status"); f != nil {
		if cur.ProtoReflect().Has(f) {
			stored.ProtoReflect().Set(f, cur.ProtoReflect().Get(f))
		} else {
			stored.ProtoReflect().Clear(f)
		}
	}
	s.rev++
	s.writes++
	m := api.Meta(stored)
	m.ResourceVersion = strconv.FormatInt(s.rev, 10)
	m.Uid = cur.GetMetadata().GetUid()
	m.CreationTimestamp = cur.GetMetadata().GetCreationTimestamp()
	m.Generation = cur.GetMetadata().GetGeneration() + 1
	s.objects[key] = stored
	s.record(metav1.WatchEventType_WATCH_EVENT_TYPE_MODIFIED, stored)
	return proto.Clone(stored).(api.Object), nil
}

func (s *fakeStore) delete(kind, ns, name string) (api.Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := storeKey(kind, ns, name)
	cur, ok := s.objects[key]
	if !ok {
		return nil, apierrors.NotFound(kind, ns, name)
	}
	delete(s.objects, key)
	s.rev++
	s.record(metav1.WatchEventType_WATCH_EVENT_TYPE_DELETED, cur)
	return cur, nil
}

// list returns the objects of a kind in ns ("" for all) matching a label
// selector of the form k=v[,k=v].
func (s *fakeStore) list(kind, ns, selector string) ([]api.Object, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[string]string{}
	if selector != "" {
		for _, term := range strings.Split(selector, ",") {
			k, v, ok := strings.Cut(term, "=")
			if !ok {
				return nil, "", apierrors.BadRequest("unable to parse requirement %q", term)
			}
			want[k] = v
		}
	}
	var out []api.Object
	for key, obj := range s.objects {
		if !strings.HasPrefix(key, kind+"/"+ns) || (ns != "" && !strings.HasPrefix(key, kind+"/"+ns+"/")) {
			continue
		}
		ok := true
		for k, v := range want {
			if obj.GetMetadata().GetLabels()[k] != v {
				ok = false
			}
		}
		if ok {
			out = append(out, proto.Clone(obj).(api.Object))
		}
	}
	sortObjects(out)
	return out, strconv.FormatInt(s.rev, 10), nil
}

func sortObjects(objs []api.Object) {
	for i := 1; i < len(objs); i++ {
		for j := i; j > 0 && api.KeyOf(objs[j]) < api.KeyOf(objs[j-1]); j-- {
			objs[j], objs[j-1] = objs[j-1], objs[j]
		}
	}
}

// eventsAfter returns the recorded changes to a kind after rev.
func (s *fakeStore) eventsAfter(kind, ns string, rev int64) []storeEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []storeEvent
	for _, ev := range s.history {
		k, _ := api.KindOf(ev.obj)
		if ev.rev > rev && k.Kind == kind && (ns == "" || ev.obj.GetMetadata().GetNamespace() == ns) {
			out = append(out, ev)
		}
	}
	return out
}

func parseRev(rv string) int64 {
	n, _ := strconv.ParseInt(rv, 10, 64)
	return n
}

// fakeNamespaces, fakePods and fakeDeployments serve the store over gRPC.
type fakeNamespaces struct {
	corev1.UnimplementedNamespaceServiceServer
	s *fakeStore
}

func (f *fakeNamespaces) GetNamespace(_ context.Context, r *corev1.GetNamespaceRequest) (*corev1.GetNamespaceResponse, error) {
	obj, err := f.s.get("Namespace", "", r.GetName())
	if err != nil {
		return nil, err
	}
	return &corev1.GetNamespaceResponse{Namespace: obj.(*corev1.Namespace)}, nil
}

func (f *fakeNamespaces) ListNamespaces(_ context.Context, r *corev1.ListNamespacesRequest) (*corev1.ListNamespacesResponse, error) {
	objs, rv, err := f.s.list("Namespace", "", r.GetLabelSelector())
	if err != nil {
		return nil, err
	}
	resp := &corev1.ListNamespacesResponse{ResourceVersion: rv}
	for _, o := range objs {
		resp.Items = append(resp.Items, o.(*corev1.Namespace))
	}
	return resp, nil
}

func (f *fakeNamespaces) CreateNamespace(_ context.Context, r *corev1.CreateNamespaceRequest) (*corev1.CreateNamespaceResponse, error) {
	obj, err := f.s.create("Namespace", r.GetNamespace())
	if err != nil {
		return nil, err
	}
	return &corev1.CreateNamespaceResponse{Namespace: obj.(*corev1.Namespace)}, nil
}

func (f *fakeNamespaces) UpdateNamespace(_ context.Context, r *corev1.UpdateNamespaceRequest) (*corev1.UpdateNamespaceResponse, error) {
	obj, err := f.s.update("Namespace", r.GetNamespace())
	if err != nil {
		return nil, err
	}
	return &corev1.UpdateNamespaceResponse{Namespace: obj.(*corev1.Namespace)}, nil
}

func (f *fakeNamespaces) DeleteNamespace(_ context.Context, r *corev1.DeleteNamespaceRequest) (*corev1.DeleteNamespaceResponse, error) {
	obj, err := f.s.delete("Namespace", "", r.GetName())
	if err != nil {
		return nil, err
	}
	return &corev1.DeleteNamespaceResponse{Namespace: obj.(*corev1.Namespace)}, nil
}

type fakePods struct {
	corev1.UnimplementedPodServiceServer
	s           *fakeStore
	lastDelete  *corev1.DeletePodRequest
	deleteMutex sync.Mutex
	// beforeWatch, when set, runs as a watch starts.
	beforeWatch func()
}

func (f *fakePods) GetPod(_ context.Context, r *corev1.GetPodRequest) (*corev1.GetPodResponse, error) {
	obj, err := f.s.get("Pod", r.GetNamespace(), r.GetName())
	if err != nil {
		return nil, err
	}
	return &corev1.GetPodResponse{Pod: obj.(*corev1.Pod)}, nil
}

func (f *fakePods) ListPods(_ context.Context, r *corev1.ListPodsRequest) (*corev1.ListPodsResponse, error) {
	objs, rv, err := f.s.list("Pod", r.GetNamespace(), r.GetLabelSelector())
	if err != nil {
		return nil, err
	}
	resp := &corev1.ListPodsResponse{ResourceVersion: rv}
	for _, o := range objs {
		resp.Items = append(resp.Items, o.(*corev1.Pod))
	}
	return resp, nil
}

func (f *fakePods) CreatePod(_ context.Context, r *corev1.CreatePodRequest) (*corev1.CreatePodResponse, error) {
	obj, err := f.s.create("Pod", r.GetPod())
	if err != nil {
		return nil, err
	}
	return &corev1.CreatePodResponse{Pod: obj.(*corev1.Pod)}, nil
}

func (f *fakePods) UpdatePod(_ context.Context, r *corev1.UpdatePodRequest) (*corev1.UpdatePodResponse, error) {
	obj, err := f.s.update("Pod", r.GetPod())
	if err != nil {
		return nil, err
	}
	return &corev1.UpdatePodResponse{Pod: obj.(*corev1.Pod)}, nil
}

func (f *fakePods) DeletePod(_ context.Context, r *corev1.DeletePodRequest) (*corev1.DeletePodResponse, error) {
	f.deleteMutex.Lock()
	f.lastDelete = r
	f.deleteMutex.Unlock()
	obj, err := f.s.delete("Pod", r.GetNamespace(), r.GetName())
	if err != nil {
		return nil, err
	}
	return &corev1.DeletePodResponse{Pod: obj.(*corev1.Pod)}, nil
}

// WatchPods sends the recorded changes after the requested revision and ends
// the stream, so that get -w returns in tests.
func (f *fakePods) WatchPods(r *corev1.WatchPodsRequest, stream grpc.ServerStreamingServer[corev1.WatchPodsResponse]) error {
	if f.beforeWatch != nil {
		f.beforeWatch()
	}
	for _, ev := range f.s.eventsAfter("Pod", r.GetNamespace(), parseRev(r.GetResourceVersion())) {
		err := stream.Send(&corev1.WatchPodsResponse{Type: ev.typ, Pod: ev.obj.(*corev1.Pod), ResourceVersion: strconv.FormatInt(ev.rev, 10)})
		if err != nil {
			return err
		}
	}
	return nil
}

type fakeDeployments struct {
	appsv1.UnimplementedDeploymentServiceServer
	s *fakeStore
}

func (f *fakeDeployments) GetDeployment(_ context.Context, r *appsv1.GetDeploymentRequest) (*appsv1.GetDeploymentResponse, error) {
	obj, err := f.s.get("Deployment", r.GetNamespace(), r.GetName())
	if err != nil {
		return nil, err
	}
	return &appsv1.GetDeploymentResponse{Deployment: obj.(*appsv1.Deployment)}, nil
}

func (f *fakeDeployments) ListDeployments(_ context.Context, r *appsv1.ListDeploymentsRequest) (*appsv1.ListDeploymentsResponse, error) {
	objs, rv, err := f.s.list("Deployment", r.GetNamespace(), r.GetLabelSelector())
	if err != nil {
		return nil, err
	}
	resp := &appsv1.ListDeploymentsResponse{ResourceVersion: rv}
	for _, o := range objs {
		resp.Items = append(resp.Items, o.(*appsv1.Deployment))
	}
	return resp, nil
}

func (f *fakeDeployments) CreateDeployment(_ context.Context, r *appsv1.CreateDeploymentRequest) (*appsv1.CreateDeploymentResponse, error) {
	obj, err := f.s.create("Deployment", r.GetDeployment())
	if err != nil {
		return nil, err
	}
	return &appsv1.CreateDeploymentResponse{Deployment: obj.(*appsv1.Deployment)}, nil
}

func (f *fakeDeployments) UpdateDeployment(_ context.Context, r *appsv1.UpdateDeploymentRequest) (*appsv1.UpdateDeploymentResponse, error) {
	obj, err := f.s.update("Deployment", r.GetDeployment())
	if err != nil {
		return nil, err
	}
	return &appsv1.UpdateDeploymentResponse{Deployment: obj.(*appsv1.Deployment)}, nil
}

func (f *fakeDeployments) DeleteDeployment(_ context.Context, r *appsv1.DeleteDeploymentRequest) (*appsv1.DeleteDeploymentResponse, error) {
	obj, err := f.s.delete("Deployment", r.GetNamespace(), r.GetName())
	if err != nil {
		return nil, err
	}
	return &appsv1.DeleteDeploymentResponse{Deployment: obj.(*appsv1.Deployment)}, nil
}

// testCluster is an in-process gRPC server over a fakeStore.
type testCluster struct {
	addr  string
	store *fakeStore
	pods  *fakePods
}

// testNow is the clock of every test: objects are created at it, and ages
// measured from testNow plus whatever a test sets.
var testNow = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

func startCluster(t *testing.T) *testCluster {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	store := newFakeStore(testNow)
	srv := grpc.NewServer()
	pods := &fakePods{s: store}
	corev1.RegisterNamespaceServiceServer(srv, &fakeNamespaces{s: store})
	corev1.RegisterPodServiceServer(srv, pods)
	appsv1.RegisterDeploymentServiceServer(srv, &fakeDeployments{s: store})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return &testCluster{addr: lis.Addr().String(), store: store, pods: pods}
}

// runResult is what one command invocation printed and returned.
type runResult struct {
	code           int
	stdout, stderr string
}

// run executes bosun with args against the cluster, with stdin as input and
// the clock at now.
func (c *testCluster) run(t *testing.T, now time.Time, stdin string, args ...string) runResult {
	t.Helper()
	var out, errOut strings.Builder
	deps := Deps{
		Stdin:  strings.NewReader(stdin),
		Stdout: &out, Stderr: &errOut,
		Dial: func(cfg client.Config) (Conn, error) {
			return client.Dial(cfg)
		},
		Getenv:  func(string) string { return "" },
		HomeDir: func() (string, error) { return t.TempDir(), nil },
		Now:     func() time.Time { return now },
	}
	full := append([]string{"--server", c.addr, "--insecure"}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := Run(ctx, full, deps)
	return runResult{code, out.String(), errOut.String()}
}
