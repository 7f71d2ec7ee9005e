// Package cache is the scheduler's view of the cluster: every node with the
// pods on it, bound or assumed. A pod is assumed on a node as soon as the
// scheduling cycle picks the node, before it is bound, so the next cycle
// already counts it and throughput does not wait for the apiserver's bind
// and watch round trip. The informer's event for the bound pod confirms the
// assumption; a failed bind forgets it.
//
// Each scheduling cycle works on a Snapshot, refreshed from the cache by
// copying only the nodes that changed since the last refresh.
package cache

import (
	"fmt"
	"maps"
	"sync"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/scheduler/internal/framework"
)

type podState struct {
	info *framework.PodInfo
	// node is where the pod is (assumed or bound).
	node string
	// assumed is true until the informer reports the pod bound.
	assumed bool
	// bindingFinished is set once the bind call returned successfully.
	bindingFinished bool
}

// Cache holds the node infos. It is safe for concurrent use.
type Cache struct {
	mu         sync.RWMutex
	nodes      map[string]*framework.NodeInfo
	pods       map[string]*podState // by uid
	generation int64
	// dirty are the nodes changed since the last UpdateSnapshot;
	// listChanged says the set of nodes changed, so the snapshot's lists
	// are rebuilt.
	dirty       map[string]struct{}
	listChanged bool
	// antiKeys counts the required anti-affinity terms per topology key.
	antiKeys        map[string]int
	antiKeysChanged bool
}

// New returns an empty cache.
func New() *Cache {
	return &Cache{nodes: map[string]*framework.NodeInfo{}, pods: map[string]*podState{}, dirty: map[string]struct{}{}, antiKeys: map[string]int{}}
}

func uidOf(p *corev1.Pod) string { return p.GetMetadata().GetUid() }

func keyOf(p *corev1.Pod) string {
	return p.GetMetadata().GetNamespace() + "/" + p.GetMetadata().GetName()
}

// touch marks a node changed.
func (c *Cache) touch(name string, ni *framework.NodeInfo) {
	c.generation++
	ni.Generation = c.generation
	c.dirty[name] = struct{}{}
}

func (c *Cache) nodeInfo(name string) *framework.NodeInfo {
	ni, ok := c.nodes[name]
	if !ok {
		ni = framework.NewNodeInfo(nil)
		c.nodes[name] = ni
		c.listChanged = true
	}
	return ni
}

func (c *Cache) countAntiKeys(pi *framework.PodInfo, n int) {
	for _, t := range pi.RequiredAntiAffinityTerms {
		c.antiKeys[t.TopologyKey] += n
		if c.antiKeys[t.TopologyKey] == 0 {
			delete(c.antiKeys, t.TopologyKey)
		}
		c.antiKeysChanged = true
	}
}

func (c *Cache) addPodLocked(pi *framework.PodInfo, name string) {
	ni := c.nodeInfo(name)
	c.countAntiKeys(pi, 1)
	ni.AddPodInfo(pi)
	c.touch(name, ni)
}

func (c *Cache) removePodLocked(pod *corev1.Pod, name string) error {
	ni, ok := c.nodes[name]
	if !ok {
		return fmt.Errorf("node %q of pod %s is not in the cache", name, keyOf(pod))
	}
	uid := uidOf(pod)
	for _, p := range ni.PodsWithRequiredAntiAffinity {
		if uidOf(p.Pod) == uid {
			c.countAntiKeys(p, -1)
			break
		}
	}
	if err := ni.RemovePod(pod); err != nil {
		return err
	}
	c.touch(name, ni)
	if ni.Node() == nil && len(ni.Pods) == 0 {
		delete(c.nodes, name)
		c.listChanged = true
	}
	return nil
}

// AssumePod counts pod on node before it is bound.
func (c *Cache) AssumePod(pi *framework.PodInfo, node string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	uid := uidOf(pi.Pod)
	if _, ok := c.pods[uid]; ok {
		return fmt.Errorf("pod %s is already in the cache", keyOf(pi.Pod))
	}
	c.addPodLocked(pi, node)
	c.pods[uid] = &podState{info: pi, node: node, assumed: true}
	return nil
}

// FinishBinding records that the bind call for an assumed pod succeeded.
func (c *Cache) FinishBinding(pod *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ps, ok := c.pods[uidOf(pod)]; ok && ps.assumed {
		ps.bindingFinished = true
	}
}

// ForgetPod undoes AssumePod after a failed bind.
func (c *Cache) ForgetPod(pod *corev1.Pod) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	uid := uidOf(pod)
	ps, ok := c.pods[uid]
	if !ok {
		return nil
	}
	if !ps.assumed {
		return fmt.Errorf("pod %s is bound, not assumed: it cannot be forgotten", keyOf(pod))
	}
	if err := c.removePodLocked(ps.info.Pod, ps.node); err != nil {
		return err
	}
	delete(c.pods, uid)
	return nil
}

// IsAssumedPod reports whether pod is assumed and not yet confirmed.
func (c *Cache) IsAssumedPod(pod *corev1.Pod) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ps, ok := c.pods[uidOf(pod)]
	return ok && ps.assumed
}

// AddPod records a pod the informer reports bound. It confirms an assumed
// pod, moving it if it was bound elsewhere.
func (c *Cache) AddPod(pod *corev1.Pod) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	uid := uidOf(pod)
	node := pod.GetSpec().GetNodeName()
	if ps, ok := c.pods[uid]; ok {
		if ps.assumed && ps.node == node {
			// The assumption is confirmed: hold the bound object.
			ps.assumed = false
			return c.replacePodLocked(ps, framework.NewPodInfo(pod))
		}
		if err := c.removePodLocked(ps.info.Pod, ps.node); err != nil {
			return err
		}
	}
	pi := framework.NewPodInfo(pod)
	c.addPodLocked(pi, node)
	c.pods[uid] = &podState{info: pi, node: node}
	return nil
}

func (c *Cache) replacePodLocked(ps *podState, pi *framework.PodInfo) error {
	if err := c.removePodLocked(ps.info.Pod, ps.node); err != nil {
		return err
	}
	c.addPodLocked(pi, ps.node)
	ps.info = pi
	return nil
}

// UpdatePod replaces a bound pod's object (labels or requests may change).
func (c *Cache) UpdatePod(oldPod, newPod *corev1.Pod) error {
	c.mu.Lock()
	ps, ok := c.pods[uidOf(newPod)]
	if !ok || ps.assumed || ps.node != newPod.GetSpec().GetNodeName() {
		c.mu.Unlock()
		return c.AddPod(newPod)
	}
	defer c.mu.Unlock()
	return c.replacePodLocked(ps, framework.NewPodInfo(newPod))
}

// RemovePod removes a bound (or assumed) pod.
func (c *Cache) RemovePod(pod *corev1.Pod) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	uid := uidOf(pod)
	ps, ok := c.pods[uid]
	if !ok {
		return nil
	}
	delete(c.pods, uid)
	return c.removePodLocked(ps.info.Pod, ps.node)
}

// AddNode adds or replaces a node.
func (c *Cache) AddNode(node *corev1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	name := node.GetMetadata().GetName()
	ni := c.nodeInfo(name)
	if ni.Node() == nil {
		c.listChanged = true
	}
	ni.SetNode(node)
	c.touch(name, ni)
}

// UpdateNode replaces a node's object. Changed labels move the node
// between topology domains, so the snapshot's lists are rebuilt.
func (c *Cache) UpdateNode(old, node *corev1.Node) {
	if !maps.Equal(old.GetMetadata().GetLabels(), node.GetMetadata().GetLabels()) {
		c.mu.Lock()
		c.listChanged = true
		c.mu.Unlock()
	}
	c.AddNode(node)
}

// RemoveNode removes a node. Its pods stay accounted until they are
// deleted, as the node may come back.
func (c *Cache) RemoveNode(node *corev1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	name := node.GetMetadata().GetName()
	ni, ok := c.nodes[name]
	if !ok {
		return
	}
	c.listChanged = true
	if len(ni.Pods) == 0 {
		delete(c.nodes, name)
		c.dirty[name] = struct{}{}
		return
	}
	ni.SetNode(nil)
	c.touch(name, ni)
}

// NodeCount returns the number of known nodes.
func (c *Cache) NodeCount() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := 0
	for _, ni := range c.nodes {
		if ni.Node() != nil {
			n++
		}
	}
	return n
}

// PodCount returns the number of pods in the cache, assumed ones included.
func (c *Cache) PodCount() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.pods)
}

// Dump returns a copy of every node info, for tests and debugging.
func (c *Cache) Dump() map[string]*framework.NodeInfo {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[string]*framework.NodeInfo, len(c.nodes))
	for name, ni := range c.nodes {
		out[name] = ni.Clone()
	}
	return out
}

// UpdateSnapshot brings s up to date, copying only the nodes that changed
// since the last call. One Snapshot is refreshed by one goroutine.
func (c *Cache) UpdateSnapshot(s *Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.owner != c {
		// A snapshot refreshed from another cache (or never): copy all.
		s.owner = c
		s.nodeInfoMap = map[string]*framework.NodeInfo{}
		for name := range c.nodes {
			c.dirty[name] = struct{}{}
		}
		c.listChanged = true
		c.antiKeysChanged = true
	}
	rebuild := c.listChanged || len(s.nodeInfoList) == 0
	for name := range c.dirty {
		ni, ok := c.nodes[name]
		if !ok {
			delete(s.nodeInfoMap, name)
			continue
		}
		clone := ni.Clone()
		s.nodeInfoMap[name] = clone
		if !rebuild && clone.Node() != nil {
			s.replace(clone)
		}
	}
	clear(c.dirty)
	if c.antiKeysChanged || s.antiKeys == nil {
		s.antiKeys = maps.Clone(c.antiKeys)
		c.antiKeysChanged = false
	}
	if rebuild {
		s.rebuildLists()
		c.listChanged = false
	}
	s.generation = c.generation
}
