// Package defaultbinder is the DefaultBinder plugin: it binds a pod through
// the apiserver's BindPod call, which is compare-and-set: a pod that is
// already bound (by another scheduler or an earlier leader) is refused.
package defaultbinder

import (
	"context"
	"encoding/json"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/scheduler/internal/framework"
)

// Name is the plugin's name.
const Name = "DefaultBinder"

// DefaultBinder is the plugin.
type DefaultBinder struct {
	pods corev1.PodServiceClient
}

var _ framework.BindPlugin = &DefaultBinder{}

// New builds the plugin; it takes no args.
func New(args json.RawMessage, h framework.Handle) (framework.Plugin, error) {
	return &DefaultBinder{pods: corev1.NewPodServiceClient(h.Conn())}, framework.DecodeArgs(Name, args, nil)
}

// Name implements framework.Plugin.
func (*DefaultBinder) Name() string { return Name }

// Bind implements framework.BindPlugin. The pod's uid is sent along, so a
// pod deleted and re-created under the same name is not bound by mistake.
func (b *DefaultBinder) Bind(ctx context.Context, _ *framework.CycleState, pod *framework.PodInfo, nodeName string) *framework.Status {
	md := pod.Pod.GetMetadata()
	_, err := b.pods.BindPod(ctx, &corev1.BindPodRequest{
		Namespace: md.GetNamespace(), Name: md.GetName(), NodeName: nodeName, Uid: md.GetUid(),
	})
	return framework.AsStatus(err)
}
