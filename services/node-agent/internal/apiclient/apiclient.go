// Package apiclient is the apiserver as the node-agent's pod workers and
// volumes see it: pod status writes, the final pod deletion, and reads of
// the ConfigMaps and Secrets pods refer to.
package apiclient

import (
	"context"

	"google.golang.org/grpc"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
)

// Client implements pods.API and volumes.Objects over a gRPC connection.
type Client struct {
	Pods       *client.Resource[*corev1.Pod]
	configMaps *client.Resource[*corev1.ConfigMap]
	secrets    *client.Resource[*corev1.Secret]
}

// New returns a Client on conn.
func New(conn grpc.ClientConnInterface) Client {
	return Client{
		Pods:       client.For[*corev1.Pod](conn),
		configMaps: client.For[*corev1.ConfigMap](conn),
		secrets:    client.For[*corev1.Secret](conn),
	}
}

// UpdatePodStatus writes a pod's status.
func (c Client) UpdatePodStatus(ctx context.Context, p *corev1.Pod) error {
	_, err := c.Pods.UpdateStatus(ctx, p)
	return err
}

// DeletePod deletes the pod object with a zero grace period if its uid
// still matches.
func (c Client) DeletePod(ctx context.Context, ns, name, uid string) error {
	zero := int64(0)
	_, err := c.Pods.Delete(ctx, ns, name, client.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{Uid: uid}})
	if apierrors.IsConflict(err) {
		return nil // a newer pod of the same name: ours is gone
	}
	return err
}

// ConfigMap reads a ConfigMap.
func (c Client) ConfigMap(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
	return c.configMaps.Get(ctx, ns, name)
}

// Secret reads a Secret.
func (c Client) Secret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	return c.secrets.Get(ctx, ns, name)
}
