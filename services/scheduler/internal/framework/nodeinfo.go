package framework

import (
	"fmt"
	"slices"

	corev1 "bosun.dev/gen/bosun/core/v1"
)

// NodeInfo is a node with the pods on it (bound or assumed) and what they
// use. The scheduler's cache owns the live copies; plugins see clones in a
// snapshot and must not modify them.
type NodeInfo struct {
	node          *corev1.Node
	name          string
	labels        map[string]string
	unschedulable bool
	taints        []*corev1.Taint
	// Allocatable is parsed from the node's status.
	Allocatable Resource
	// Requested is the sum of the pods' requests; NonZeroRequested the same
	// with default requests for pods that state none.
	Requested, NonZeroRequested Resource
	// Pods are the pods on the node, assumed ones included.
	Pods []*PodInfo
	// PodsWithAffinity are the pods with any pod (anti-)affinity term.
	PodsWithAffinity []*PodInfo
	// PodsWithRequiredAntiAffinity are the pods with a required
	// anti-affinity term.
	PodsWithRequiredAntiAffinity []*PodInfo
	// UsedPorts are the host ports the pods take.
	UsedPorts []HostPort
	// Generation grows with every change; the cache sets it.
	Generation int64
}

// NewNodeInfo returns a NodeInfo for node (nil while only its pods are known)
// with pods on it.
func NewNodeInfo(node *corev1.Node, pods ...*PodInfo) *NodeInfo {
	ni := &NodeInfo{}
	ni.SetNode(node)
	for _, p := range pods {
		ni.AddPodInfo(p)
	}
	return ni
}

// Node is the node object; nil when the node is not known (yet).
func (n *NodeInfo) Node() *corev1.Node { return n.node }

// Name is the node's name, "" when the node is not known.
func (n *NodeInfo) Name() string { return n.name }

// Labels are the node's labels (shared with the node object: read only).
func (n *NodeInfo) Labels() map[string]string { return n.labels }

// Unschedulable reports whether the node is cordoned.
func (n *NodeInfo) Unschedulable() bool { return n.unschedulable }

// Taints are the node's taints (shared with the node object: read only).
func (n *NodeInfo) Taints() []*corev1.Taint { return n.taints }

// SetNode sets the node object and its allocatable resources.
func (n *NodeInfo) SetNode(node *corev1.Node) {
	n.node = node
	n.name = node.GetMetadata().GetName()
	n.labels = node.GetMetadata().GetLabels()
	n.unschedulable = node.GetSpec().GetUnschedulable()
	n.taints = node.GetSpec().GetTaints()
	n.Allocatable = ResourceList(node.GetStatus().GetAllocatable())
}

// AddPodInfo accounts for a pod on the node.
func (n *NodeInfo) AddPodInfo(pi *PodInfo) {
	n.Pods = append(n.Pods, pi)
	if pi.HasAffinity() {
		n.PodsWithAffinity = append(n.PodsWithAffinity, pi)
	}
	if len(pi.RequiredAntiAffinityTerms) > 0 {
		n.PodsWithRequiredAntiAffinity = append(n.PodsWithRequiredAntiAffinity, pi)
	}
	n.Requested.Add(pi.Requests)
	n.NonZeroRequested.Add(pi.NonZeroRequests)
	n.UsedPorts = append(n.UsedPorts, pi.HostPorts...)
}

// RemovePod removes the pod with pod's uid from the node.
func (n *NodeInfo) RemovePod(pod *corev1.Pod) error {
	uid := pod.GetMetadata().GetUid()
	i := slices.IndexFunc(n.Pods, func(p *PodInfo) bool { return p.Pod.GetMetadata().GetUid() == uid })
	if i < 0 {
		return fmt.Errorf("pod %s/%s is not on node %q", pod.GetMetadata().GetNamespace(), pod.GetMetadata().GetName(), n.Name())
	}
	pi := n.Pods[i]
	n.Pods = slices.Delete(n.Pods, i, i+1)
	n.PodsWithAffinity = removeByUID(n.PodsWithAffinity, uid)
	n.PodsWithRequiredAntiAffinity = removeByUID(n.PodsWithRequiredAntiAffinity, uid)
	n.Requested.Sub(pi.Requests)
	n.NonZeroRequested.Sub(pi.NonZeroRequests)
	if len(pi.HostPorts) > 0 {
		n.UsedPorts = n.UsedPorts[:0:0]
		for _, p := range n.Pods {
			n.UsedPorts = append(n.UsedPorts, p.HostPorts...)
		}
	}
	return nil
}

func removeByUID(pods []*PodInfo, uid string) []*PodInfo {
	i := slices.IndexFunc(pods, func(p *PodInfo) bool { return p.Pod.GetMetadata().GetUid() == uid })
	if i < 0 {
		return pods
	}
	return slices.Delete(slices.Clone(pods), i, i+1)
}

// Clone returns a copy that can be changed without changing n. Pods are
// shared: they are never modified.
func (n *NodeInfo) Clone() *NodeInfo {
	c := *n
	c.Pods = slices.Clone(n.Pods)
	c.PodsWithAffinity = slices.Clone(n.PodsWithAffinity)
	c.PodsWithRequiredAntiAffinity = slices.Clone(n.PodsWithRequiredAntiAffinity)
	c.UsedPorts = slices.Clone(n.UsedPorts)
	return &c
}

// NodeInfoLister reads the node infos of a snapshot.
type NodeInfoLister interface {
	// List returns every node with a known Node object.
	List() []*NodeInfo
	// HavePodsWithAffinityList returns the nodes with pods that have pod
	// (anti-)affinity terms.
	HavePodsWithAffinityList() []*NodeInfo
	// HavePodsWithRequiredAntiAffinityList returns the nodes with pods that
	// have required anti-affinity terms.
	HavePodsWithRequiredAntiAffinityList() []*NodeInfo
	// HavePodsList returns the nodes with at least one pod.
	HavePodsList() []*NodeInfo
	// DomainIndex groups the listed nodes by their value of a label (the
	// topology domains of that key): value -> indexes into List(). Nodes
	// without the label are left out. single reports that every domain is
	// one node (as for kubernetes.io/hostname). Call it from PreFilter (it
	// may build the index); the result is read-only.
	DomainIndex(key string) (index map[string][]int, single bool)
	// AntiAffinityKeys are the topology keys of the required anti-affinity
	// terms of the pods in the snapshot (read-only).
	AntiAffinityKeys() map[string]int
	// Get returns one node's info, or an error when it is not in the snapshot.
	Get(name string) (*NodeInfo, error)
}
