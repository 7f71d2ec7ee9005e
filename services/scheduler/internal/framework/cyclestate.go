package framework

// StateData is what a plugin keeps in the CycleState between extension
// points of one cycle.
type StateData interface {
	// Clone copies the data, for preemption's what-if runs.
	Clone() StateData
}

// StateKey names a plugin's data in the CycleState.
type StateKey string

// CycleState is the scratch space of one pod's scheduling cycle, shared by
// the plugins. Write it only from the extension points that run once per
// cycle (PreFilter, PreScore, Reserve, Permit); Filter and Score, which run
// in parallel over nodes, only Read. Reads take no lock: they happen once
// per plugin per node.
type CycleState struct {
	data map[StateKey]StateData
	// skipFilter and skipScore name the plugins whose PreFilter or PreScore
	// returned Skip.
	skipFilter map[string]bool
	skipScore  map[string]bool
	// filters are the Filter plugins not skipped, set after PreFilter so
	// that the per-node loop does not look names up.
	filters    []FilterPlugin
	filtersSet bool
}

// NewCycleState returns an empty state.
func NewCycleState() *CycleState {
	return &CycleState{data: map[StateKey]StateData{}, skipFilter: map[string]bool{}, skipScore: map[string]bool{}}
}

// Read returns the data under key and whether there is any.
func (c *CycleState) Read(key StateKey) (StateData, bool) {
	d, ok := c.data[key]
	return d, ok
}

// Write stores data under key.
func (c *CycleState) Write(key StateKey, d StateData) {
	c.data[key] = d
}

// Clone copies the state and every plugin's data.
func (c *CycleState) Clone() *CycleState {
	out := NewCycleState()
	for k, v := range c.data {
		out.data[k] = v.Clone()
	}
	for k, v := range c.skipFilter {
		out.skipFilter[k] = v
	}
	for k, v := range c.skipScore {
		out.skipScore[k] = v
	}
	out.filters, out.filtersSet = c.filters, c.filtersSet
	return out
}
