package bench

import (
	"strings"
	"testing"
)

func TestAffinityPlacementCheck(t *testing.T) {
	wl := affinityWorkload(20, 10)
	tests := []struct {
		name      string
		placement map[string]string
		want      string // error substring, "" for none
	}{
		{name: "one per node, one per zone", placement: map[string]string{
			"a": "node-00000", "b": "node-00001", "c": "node-00002", "d": "node-00003", "e": "node-00004",
			"f": "node-00005", "g": "node-00006", "h": "node-00007", "i": "node-00008", "j": "node-00009"}},
		{name: "two on a node", placement: map[string]string{"a": "node-00000", "b": "node-00000"}, want: "anti-affinity violated"},
		{name: "zones apart by two", placement: map[string]string{"a": "node-00000", "b": "node-00010"}, want: "topology spread violated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := wl.check(tc.placement)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestSchedulerWorkloadPods(t *testing.T) {
	p := affinityWorkload(5000, 2000).pod("3", 7)
	if p.Metadata.Name != "sched-3-000007" || p.Metadata.Labels["group"] != "3" {
		t.Fatalf("pod %s labels %v", p.Metadata.Name, p.Metadata.Labels)
	}
	if len(p.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) != 1 || len(p.Spec.TopologySpreadConstraints) != 1 {
		t.Fatal("affinity pod lacks its constraints")
	}
	if plain := plainWorkload(5000, 10000).pod("1", 0); plain.Spec.Affinity != nil || plain.Spec.TopologySpreadConstraints != nil {
		t.Fatal("plain pod has constraints")
	}
	if got := schedNodeZone(schedNodeName(4321)); got != "zone-1" {
		t.Fatalf("zone of node 4321 is %s", got)
	}
}
