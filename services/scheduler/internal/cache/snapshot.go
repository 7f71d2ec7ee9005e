package cache

import (
	"fmt"
	"slices"
	"sort"
	"sync"

	"bosun.dev/services/scheduler/internal/framework"
)

// Snapshot is a point-in-time copy of the cache that one scheduling cycle
// reads without locks. It implements framework.NodeInfoLister.
type Snapshot struct {
	owner       *Cache
	nodeInfoMap map[string]*framework.NodeInfo
	// nodeInfoList holds the nodes with a Node object, sorted by name so
	// that runs over the same cluster are reproducible.
	nodeInfoList []*framework.NodeInfo
	// pos is each listed node's index in nodeInfoList.
	pos map[string]int
	// The nodes with affinity pods, in no particular order, and each one's
	// index in its list.
	withAffinity, withRequiredAnti []*framework.NodeInfo
	affinityPos, antiPos           map[string]int
	// withPods are the nodes with pods, in no particular order.
	withPods []*framework.NodeInfo
	podsPos  map[string]int
	// domains caches DomainIndex per label key until the nodes change.
	domainsMu  sync.RWMutex
	domains    map[string]domainIndex
	antiKeys   map[string]int
	generation int64
}

var _ framework.NodeInfoLister = &Snapshot{}

// NewSnapshot returns an empty snapshot; fill it with Cache.UpdateSnapshot.
func NewSnapshot() *Snapshot {
	return &Snapshot{nodeInfoMap: map[string]*framework.NodeInfo{}, pos: map[string]int{},
		affinityPos: map[string]int{}, antiPos: map[string]int{}, podsPos: map[string]int{},
		domains: map[string]domainIndex{}, antiKeys: map[string]int{}}
}

// NewSnapshotFrom builds a snapshot of the given node infos, for tests.
func NewSnapshotFrom(infos ...*framework.NodeInfo) *Snapshot {
	s := NewSnapshot()
	for _, ni := range infos {
		s.nodeInfoMap[ni.Name()] = ni
	}
	s.rebuildLists()
	for _, ni := range infos {
		for _, p := range ni.PodsWithRequiredAntiAffinity {
			for _, t := range p.RequiredAntiAffinityTerms {
				s.antiKeys[t.TopologyKey]++
			}
		}
	}
	return s
}

// rebuildLists rebuilds every list from nodeInfoMap: after nodes were added
// or removed.
func (s *Snapshot) rebuildLists() {
	s.nodeInfoList = s.nodeInfoList[:0]
	for _, ni := range s.nodeInfoMap {
		if ni.Node() != nil {
			s.nodeInfoList = append(s.nodeInfoList, ni)
		}
	}
	sort.Slice(s.nodeInfoList, func(i, j int) bool { return s.nodeInfoList[i].Name() < s.nodeInfoList[j].Name() })
	clear(s.pos)
	s.withAffinity, s.withRequiredAnti = s.withAffinity[:0], s.withRequiredAnti[:0]
	clear(s.affinityPos)
	clear(s.antiPos)
	s.withPods = s.withPods[:0]
	clear(s.podsPos)
	for i, ni := range s.nodeInfoList {
		s.pos[ni.Name()] = i
		s.setMembership(ni)
	}
	s.domainsMu.Lock()
	clear(s.domains)
	s.domainsMu.Unlock()
}

func (s *Snapshot) setMembership(ni *framework.NodeInfo) {
	s.withAffinity = setMember(s.withAffinity, s.affinityPos, ni, len(ni.PodsWithAffinity) > 0)
	s.withRequiredAnti = setMember(s.withRequiredAnti, s.antiPos, ni, len(ni.PodsWithRequiredAntiAffinity) > 0)
	s.withPods = setMember(s.withPods, s.podsPos, ni, len(ni.Pods) > 0)
}

// replace points the lists at a node's new copy; the set of nodes must be
// unchanged.
func (s *Snapshot) replace(ni *framework.NodeInfo) {
	i, ok := s.pos[ni.Name()]
	if !ok {
		return
	}
	s.nodeInfoList[i] = ni
	s.setMembership(ni)
}

// setMember makes ni a member of list (or not), replacing an older copy,
// and keeps pos in step.
func setMember(list []*framework.NodeInfo, pos map[string]int, ni *framework.NodeInfo, member bool) []*framework.NodeInfo {
	name := ni.Name()
	i, in := pos[name]
	switch {
	case member && in:
		list[i] = ni
	case member:
		pos[name] = len(list)
		list = append(list, ni)
	case in:
		last := len(list) - 1
		list[i] = list[last]
		pos[list[i].Name()] = i
		list = slices.Delete(list, last, last+1)
		delete(pos, name)
	}
	return list
}

// List implements framework.NodeInfoLister.
func (s *Snapshot) List() []*framework.NodeInfo { return s.nodeInfoList }

// HavePodsWithAffinityList implements framework.NodeInfoLister.
func (s *Snapshot) HavePodsWithAffinityList() []*framework.NodeInfo { return s.withAffinity }

// HavePodsWithRequiredAntiAffinityList implements framework.NodeInfoLister.
func (s *Snapshot) HavePodsWithRequiredAntiAffinityList() []*framework.NodeInfo {
	return s.withRequiredAnti
}

// HavePodsList implements framework.NodeInfoLister.
func (s *Snapshot) HavePodsList() []*framework.NodeInfo { return s.withPods }

// AntiAffinityKeys implements framework.NodeInfoLister.
func (s *Snapshot) AntiAffinityKeys() map[string]int { return s.antiKeys }

type domainIndex struct {
	index  map[string][]int
	single bool
}

// DomainIndex implements framework.NodeInfoLister.
func (s *Snapshot) DomainIndex(key string) (map[string][]int, bool) {
	s.domainsMu.RLock()
	d, ok := s.domains[key]
	s.domainsMu.RUnlock()
	if ok {
		return d.index, d.single
	}
	d = domainIndex{index: map[string][]int{}, single: true}
	for i, ni := range s.nodeInfoList {
		if v, ok := ni.Labels()[key]; ok {
			d.index[v] = append(d.index[v], i)
			if len(d.index[v]) > 1 {
				d.single = false
			}
		}
	}
	s.domainsMu.Lock()
	s.domains[key] = d
	s.domainsMu.Unlock()
	return d.index, d.single
}

// Get implements framework.NodeInfoLister.
func (s *Snapshot) Get(name string) (*framework.NodeInfo, error) {
	ni, ok := s.nodeInfoMap[name]
	if !ok || ni.Node() == nil {
		return nil, fmt.Errorf("node %q is not in the snapshot", name)
	}
	return ni, nil
}

// NumNodes is the number of nodes in the snapshot.
func (s *Snapshot) NumNodes() int { return len(s.nodeInfoList) }
