// Package agenttest holds test doubles for the node-agent's view of the
// apiserver: an in-memory store of pods, ConfigMaps and Secrets that
// implements pods.API and volumes.Objects, and polling helpers.
package agenttest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
)

// API is an in-memory apiserver for one node's pods.
type API struct {
	mu         sync.Mutex
	pods       map[string]*corev1.Pod // by uid
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
	deleted    []string
	writes     int
}

// NewAPI returns an empty API.
func NewAPI() *API {
	return &API{pods: map[string]*corev1.Pod{}, configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
}

func notFound(kind, ns, name string) error {
	return status.Errorf(codes.NotFound, "%s %s/%s not found", kind, ns, name)
}

// IsNotFound reports a NotFound error.
func IsNotFound(err error) bool { return status.Code(err) == codes.NotFound }

// AddPod stores a pod (its uid must be set).
func (a *API) AddPod(p *corev1.Pod) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pods[p.GetMetadata().GetUid()] = proto.CloneOf(p)
}

// Pod returns a copy of the stored pod, or nil.
func (a *API) Pod(uid string) *corev1.Pod {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.pods[uid]
	if !ok {
		return nil
	}
	return proto.CloneOf(p)
}

// Deleted lists the uids of pods removed through DeletePod.
func (a *API) Deleted() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.deleted...)
}

// StatusWrites counts UpdatePodStatus calls.
func (a *API) StatusWrites() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.writes
}

// PutConfigMap stores a ConfigMap.
func (a *API) PutConfigMap(cm *corev1.ConfigMap) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.configMaps[cm.GetMetadata().GetNamespace()+"/"+cm.GetMetadata().GetName()] = cm
}

// PutSecret stores a Secret.
func (a *API) PutSecret(s *corev1.Secret) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.secrets[s.GetMetadata().GetNamespace()+"/"+s.GetMetadata().GetName()] = s
}

// UpdatePodStatus implements pods.API.
func (a *API) UpdatePodStatus(_ context.Context, p *corev1.Pod) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	md := p.GetMetadata()
	cur, ok := a.pods[md.GetUid()]
	if !ok {
		return notFound("pod", md.GetNamespace(), md.GetName())
	}
	cur.Status = proto.CloneOf(p.GetStatus())
	a.writes++
	return nil
}

// DeletePod implements pods.API.
func (a *API) DeletePod(_ context.Context, ns, name, uid string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.pods[uid]; !ok {
		return notFound("pod", ns, name)
	}
	delete(a.pods, uid)
	a.deleted = append(a.deleted, uid)
	return nil
}

// ConfigMap implements volumes.Objects.
func (a *API) ConfigMap(_ context.Context, ns, name string) (*corev1.ConfigMap, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	cm, ok := a.configMaps[ns+"/"+name]
	if !ok {
		return nil, notFound("configmap", ns, name)
	}
	return cm, nil
}

// Secret implements volumes.Objects.
func (a *API) Secret(_ context.Context, ns, name string) (*corev1.Secret, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.secrets[ns+"/"+name]
	if !ok {
		return nil, notFound("secret", ns, name)
	}
	return s, nil
}

// Pod builds a pod bound to node with the given containers.
func Pod(uid, name, node string, cs ...*corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default", Uid: uid},
		Spec:     &corev1.PodSpec{NodeName: node, Containers: cs},
	}
}

// Eventually polls f until it returns nil or timeout passes, then fails
// the test with f's last error.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ContainerStatus returns the named container's status from a pod.
func ContainerStatus(p *corev1.Pod, name string) (*corev1.ContainerStatus, error) {
	if p == nil {
		return nil, fmt.Errorf("pod is gone")
	}
	for _, cs := range p.GetStatus().GetContainerStatuses() {
		if cs.GetName() == name {
			return cs, nil
		}
	}
	return nil, fmt.Errorf("no status for container %q yet (phase %q)", name, p.GetStatus().GetPhase())
}

// Condition returns a pod condition's status ("" when absent).
func Condition(p *corev1.Pod, typ string) string {
	for _, c := range p.GetStatus().GetConditions() {
		if c.GetType() == typ {
			return c.GetStatus()
		}
	}
	return ""
}
