// Package interpodaffinity is the InterPodAffinity plugin. Required pod
// affinity places a pod only in topology domains (nodes sharing the value
// of the term's topology key) that already run a matching pod; required
// anti-affinity keeps it out of domains that do, and also keeps it out of
// domains whose pods' own anti-affinity rejects it. Preferred terms, of the
// pod and of the pods already placed, add or subtract their weights in the
// score.
package interpodaffinity

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"sync"

	"bosun.dev/services/scheduler/internal/framework"
)

// Name is the plugin's name.
const Name = "InterPodAffinity"

// Rejection reasons.
const (
	ErrReasonExistingAntiAffinity = "node(s) didn't satisfy existing pods anti-affinity rules"
	ErrReasonAffinity             = "node(s) didn't match pod affinity rules"
	ErrReasonAntiAffinity         = "node(s) didn't match pod anti-affinity rules"
)

// Shared rejections: a status is never modified once returned.
var (
	errExistingAnti = framework.NewStatus(framework.Unschedulable, ErrReasonExistingAntiAffinity).WithPlugin(Name)
	errAnti         = framework.NewStatus(framework.Unschedulable, ErrReasonAntiAffinity).WithPlugin(Name)
	errAffinity     = framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonAffinity).WithPlugin(Name)
)

// Args are the plugin's arguments.
type Args struct {
	// HardPodAffinityWeight is the score weight of an existing pod's
	// required affinity term that the incoming pod matches; default 1.
	HardPodAffinityWeight *int32 `json:"hardPodAffinityWeight,omitempty"`
}

// InterPodAffinity is the plugin.
type InterPodAffinity struct {
	h          framework.Handle
	hardWeight int64
}

var (
	_ framework.PreFilterWithExtensions = &InterPodAffinity{}
	_ framework.FilterPlugin            = &InterPodAffinity{}
	_ framework.PreScorePlugin          = &InterPodAffinity{}
	_ framework.ScorePlugin             = &InterPodAffinity{}
	_ framework.EnqueueExtensions       = &InterPodAffinity{}
)

// New builds the plugin.
func New(args json.RawMessage, h framework.Handle) (framework.Plugin, error) {
	var a Args
	if err := framework.DecodeArgs(Name, args, &a); err != nil {
		return nil, err
	}
	p := &InterPodAffinity{h: h, hardWeight: 1}
	if a.HardPodAffinityWeight != nil {
		p.hardWeight = int64(*a.HardPodAffinityWeight)
	}
	return p, nil
}

// Name implements framework.Plugin.
func (*InterPodAffinity) Name() string { return Name }

type topologyPair struct{ key, value string }

type counts map[topologyPair]int64

func (c counts) clone() counts {
	out := make(counts, len(c))
	for k, v := range c {
		out[k] = v
	}
	return out
}

func (c counts) add(key, value string, n int64) {
	p := topologyPair{key, value}
	c[p] += n
	if c[p] == 0 {
		delete(c, p)
	}
}

const preFilterKey framework.StateKey = "PreFilter" + Name

// preFilterState holds what Filter needs. Required affinity is counted
// over the whole cluster up front (a pod whose group has no pod anywhere
// may start it); anti-affinity is checked per topology domain when a node
// of that domain is filtered, and remembered for the cycle, so a cycle
// touches only the domains of the nodes it filters.
type preFilterState struct {
	// affinity: domains with pods matching all of the pod's affinity terms.
	affinity counts
	// existing are the topology keys of the existing pods' required
	// anti-affinity terms; own those of the pod's own terms, by index.
	existing, own []keyDomains
	nodes         []*framework.NodeInfo
	// overrides are what-if copies of nodes (preemption, nominated pods).
	overrides map[string]*framework.NodeInfo

	mu   sync.Mutex
	memo map[memoKey]bool
}

// memoKey names one anti-affinity check: term -1 is the existing pods'
// terms, term i the pod's own i-th term.
type memoKey struct {
	term       int
	key, value string
}

// keyDomains is a topology key with its domains. single marks keys whose
// every domain is one node: those are checked on the node alone.
type keyDomains struct {
	key     string
	domains map[string][]int
	single  bool
}

func (s *preFilterState) Clone() framework.StateData {
	c := &preFilterState{affinity: s.affinity.clone(), existing: s.existing, own: s.own, nodes: s.nodes,
		overrides: make(map[string]*framework.NodeInfo, len(s.overrides)), memo: map[memoKey]bool{}}
	for k, v := range s.overrides {
		c.overrides[k] = v
	}
	return c
}

func (p *InterPodAffinity) nsLabels() framework.NamespaceLabels { return p.h.NamespaceLabels }

// matchesAll reports whether target matches every term.
func matchesAll(terms []framework.AffinityTerm, target *framework.PodInfo, ns framework.NamespaceLabels) bool {
	if len(terms) == 0 {
		return false
	}
	for i := range terms {
		if !terms[i].Matches(target.Pod, ns) {
			return false
		}
	}
	return true
}

// addAffinity counts existing on ni (n = 1) or uncounts it (n = -1).
func (p *InterPodAffinity) addAffinity(s *preFilterState, pod, existing *framework.PodInfo, ni *framework.NodeInfo, n int64) {
	if !matchesAll(pod.RequiredAffinityTerms, existing, p.nsLabels()) {
		return
	}
	labels := ni.Labels()
	for i := range pod.RequiredAffinityTerms {
		t := &pod.RequiredAffinityTerms[i]
		if v, ok := labels[t.TopologyKey]; ok {
			s.affinity.add(t.TopologyKey, v, n)
		}
	}
}

// PreFilter implements framework.PreFilterPlugin.
func (p *InterPodAffinity) PreFilter(_ context.Context, state *framework.CycleState, pod *framework.PodInfo) *framework.Status {
	if pod.ParseError != nil {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, pod.ParseError.Error())
	}
	lister := p.h.SnapshotSharedLister()
	existingKeys := lister.AntiAffinityKeys()
	if len(pod.RequiredAffinityTerms)+len(pod.RequiredAntiAffinityTerms)+len(existingKeys) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	s := &preFilterState{affinity: counts{}, nodes: lister.List(), overrides: map[string]*framework.NodeInfo{}, memo: map[memoKey]bool{}}
	for k := range existingKeys {
		s.existing = append(s.existing, keyDomainsOf(lister, k))
	}
	sort.Slice(s.existing, func(i, j int) bool { return s.existing[i].key < s.existing[j].key })
	for i := range pod.RequiredAntiAffinityTerms {
		s.own = append(s.own, keyDomainsOf(lister, pod.RequiredAntiAffinityTerms[i].TopologyKey))
	}
	if len(pod.RequiredAffinityTerms) > 0 {
		for _, ni := range lister.HavePodsList() {
			for _, existing := range ni.Pods {
				p.addAffinity(s, pod, existing, ni, 1)
			}
		}
	}
	state.Write(preFilterKey, s)
	return nil
}

func keyDomainsOf(lister framework.NodeInfoLister, key string) keyDomains {
	d, single := lister.DomainIndex(key)
	return keyDomains{key: key, domains: d, single: single}
}

// PreFilterExtensions implements framework.PreFilterWithExtensions.
func (p *InterPodAffinity) PreFilterExtensions() framework.PreFilterExtensions { return p }

// AddPod implements framework.PreFilterExtensions.
func (p *InterPodAffinity) AddPod(_ context.Context, state *framework.CycleState, pod, add *framework.PodInfo, ni *framework.NodeInfo) *framework.Status {
	return p.whatIf(state, pod, add, ni, 1)
}

// RemovePod implements framework.PreFilterExtensions.
func (p *InterPodAffinity) RemovePod(_ context.Context, state *framework.CycleState, pod, remove *framework.PodInfo, ni *framework.NodeInfo) *framework.Status {
	return p.whatIf(state, pod, remove, ni, -1)
}

// whatIf records that ni (a copy) gained or lost a pod.
func (p *InterPodAffinity) whatIf(state *framework.CycleState, pod, other *framework.PodInfo, ni *framework.NodeInfo, n int64) *framework.Status {
	s, st := readState(state)
	if st != nil {
		return st
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p.addAffinity(s, pod, other, ni, n)
	s.overrides[ni.Name()] = ni
	clear(s.memo)
	// The what-if pod may bring anti-affinity keys not seen in PreFilter.
	if n > 0 {
	terms:
		for _, t := range other.RequiredAntiAffinityTerms {
			for _, kd := range s.existing {
				if kd.key == t.TopologyKey {
					continue terms
				}
			}
			s.existing = append(slices.Clone(s.existing), keyDomainsOf(p.h.SnapshotSharedLister(), t.TopologyKey))
		}
	}
	return nil
}

func readState(state *framework.CycleState) (*preFilterState, *framework.Status) {
	d, ok := state.Read(preFilterKey)
	if !ok {
		return nil, framework.NewStatus(framework.Error, "InterPodAffinity: no PreFilter state")
	}
	return d.(*preFilterState), nil
}

// blocked reports whether the domain value of key holds a pod that the
// anti-affinity check term rejects the pod for (see memoKey).
func (p *InterPodAffinity) blocked(s *preFilterState, pod *framework.PodInfo, ni *framework.NodeInfo, term int, kd *keyDomains, value string) bool {
	key := kd.key
	if kd.single {
		// The domain is the node being filtered (possibly a what-if copy).
		return p.blockedOn(ni, pod, term, key)
	}
	domain := kd.domains[value]
	// A one-node domain (a hostname key) is checked directly: remembering
	// it would cost more than looking at the node's pods.
	remember := len(domain) > 1
	mk := memoKey{term: term, key: key, value: value}
	if remember {
		s.mu.Lock()
		b, ok := s.memo[mk]
		s.mu.Unlock()
		if ok {
			return b
		}
	}
	b := false
	for _, idx := range domain {
		ni := s.nodes[idx]
		if len(s.overrides) > 0 {
			s.mu.Lock()
			if o, ok := s.overrides[ni.Name()]; ok {
				ni = o
			}
			s.mu.Unlock()
		}
		if b = p.blockedOn(ni, pod, term, key); b {
			break
		}
	}
	if remember {
		s.mu.Lock()
		s.memo[mk] = b
		s.mu.Unlock()
	}
	return b
}

// blockedOn reports whether a pod on ni rejects the pod (term -1) or is
// rejected by the pod's term.
func (p *InterPodAffinity) blockedOn(ni *framework.NodeInfo, pod *framework.PodInfo, term int, key string) bool {
	ns := p.nsLabels()
	if term < 0 {
		for _, existing := range ni.PodsWithRequiredAntiAffinity {
			for i := range existing.RequiredAntiAffinityTerms {
				t := &existing.RequiredAntiAffinityTerms[i]
				if t.TopologyKey == key && t.Matches(pod.Pod, ns) {
					return true
				}
			}
		}
		return false
	}
	t := &pod.RequiredAntiAffinityTerms[term]
	for _, existing := range ni.Pods {
		if t.Matches(existing.Pod, ns) {
			return true
		}
	}
	return false
}

// Filter implements framework.FilterPlugin.
func (p *InterPodAffinity) Filter(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, ni *framework.NodeInfo) *framework.Status {
	s, st := readState(state)
	if st != nil {
		return st
	}
	labels := ni.Labels()
	for i := range s.existing {
		kd := &s.existing[i]
		if v, ok := labels[kd.key]; ok && p.blocked(s, pod, ni, -1, kd, v) {
			return errExistingAnti
		}
	}
	for i := range s.own {
		kd := &s.own[i]
		if v, ok := labels[kd.key]; ok && p.blocked(s, pod, ni, i, kd, v) {
			return errAnti
		}
	}
	if len(pod.RequiredAffinityTerms) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range pod.RequiredAffinityTerms {
		t := &pod.RequiredAffinityTerms[i]
		v, has := labels[t.TopologyKey]
		if has && s.affinity[topologyPair{t.TopologyKey, v}] > 0 {
			continue
		}
		// The first pod of a group that matches its own affinity may go
		// anywhere that has the topology keys.
		if len(s.affinity) == 0 && matchesAll(pod.RequiredAffinityTerms, pod, p.nsLabels()) {
			for j := range pod.RequiredAffinityTerms {
				if _, has := labels[pod.RequiredAffinityTerms[j].TopologyKey]; !has {
					return errAffinity
				}
			}
			return nil
		}
		return errAffinity
	}
	return nil
}

const preScoreKey framework.StateKey = "PreScore" + Name

type preScoreState struct{ scores counts }

func (s *preScoreState) Clone() framework.StateData { return s }

// PreScore implements framework.PreScorePlugin: it sums, per topology
// domain, the weights of every preferred term between the pod and the pods
// already placed.
func (p *InterPodAffinity) PreScore(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, _ []*framework.NodeInfo) *framework.Status {
	lister := p.h.SnapshotSharedLister()
	hasPreferred := len(pod.PreferredAffinityTerms)+len(pod.PreferredAntiAffinityTerms) > 0
	nodes := lister.HavePodsWithAffinityList()
	if hasPreferred {
		nodes = lister.List()
	}
	if len(nodes) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	ns := p.nsLabels()
	scores := counts{}
	for _, ni := range nodes {
		labels := ni.Labels()
		add := func(t *framework.AffinityTerm, w int64) {
			if v, ok := labels[t.TopologyKey]; ok && w != 0 {
				scores.add(t.TopologyKey, v, w)
			}
		}
		existingPods := ni.PodsWithAffinity
		if hasPreferred {
			existingPods = ni.Pods
		}
		for _, existing := range existingPods {
			for i := range pod.PreferredAffinityTerms {
				if t := &pod.PreferredAffinityTerms[i]; t.Matches(existing.Pod, ns) {
					add(&t.AffinityTerm, int64(t.Weight))
				}
			}
			for i := range pod.PreferredAntiAffinityTerms {
				if t := &pod.PreferredAntiAffinityTerms[i]; t.Matches(existing.Pod, ns) {
					add(&t.AffinityTerm, -int64(t.Weight))
				}
			}
			for i := range existing.PreferredAffinityTerms {
				if t := &existing.PreferredAffinityTerms[i]; t.Matches(pod.Pod, ns) {
					add(&t.AffinityTerm, int64(t.Weight))
				}
			}
			for i := range existing.PreferredAntiAffinityTerms {
				if t := &existing.PreferredAntiAffinityTerms[i]; t.Matches(pod.Pod, ns) {
					add(&t.AffinityTerm, -int64(t.Weight))
				}
			}
			for i := range existing.RequiredAffinityTerms {
				if t := &existing.RequiredAffinityTerms[i]; t.Matches(pod.Pod, ns) {
					add(t, p.hardWeight)
				}
			}
		}
	}
	if len(scores) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	state.Write(preScoreKey, &preScoreState{scores: scores})
	return nil
}

// Score implements framework.ScorePlugin: the sum over the node's topology
// domains of the weights gathered in PreScore.
func (p *InterPodAffinity) Score(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, ni *framework.NodeInfo) (int64, *framework.Status) {
	d, ok := state.Read(preScoreKey)
	if !ok {
		return 0, framework.NewStatus(framework.Error, "InterPodAffinity: no PreScore state")
	}
	scores := d.(*preScoreState).scores
	var s int64
	for k, v := range ni.Labels() {
		s += scores[topologyPair{k, v}]
	}
	return s, nil
}

// ScoreExtensions implements framework.ScorePlugin.
func (p *InterPodAffinity) ScoreExtensions() framework.ScoreExtensions { return p }

// NormalizeScore implements framework.ScoreExtensions.
func (*InterPodAffinity) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, scores framework.NodeScoreList) *framework.Status {
	framework.NormalizeMinMax(scores)
	return nil
}

// EventsToRegister implements framework.EnqueueExtensions.
func (*InterPodAffinity) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{
		framework.EventAssignedPodAdd, framework.EventAssignedPodUpdate, framework.EventAssignedPodDelete,
		framework.EventNodeAdd, framework.EventNodeUpdate,
	}
}
