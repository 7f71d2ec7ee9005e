package scheduler

import (
	"fmt"
	"log/slog"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"bosun.dev/services/scheduler/internal/framework"
	"bosun.dev/services/scheduler/internal/plugins"
	st "bosun.dev/services/scheduler/internal/schedtest"
)

// Two profiles in one scheduler: the default spreads pods out, a profile
// that swaps LeastAllocated for MostAllocated packs them.
func TestProfilesSpreadAndPack(t *testing.T) {
	cfg, err := framework.ParseConfiguration([]byte(`
profiles:
- schedulerName: default-scheduler
- schedulerName: packer
  plugins:
    enabled: [{name: MostAllocated, weight: 5}]
    disabled: [{name: LeastAllocated}, {name: BalancedAllocation}]
`), plugins.NewRegistry(), plugins.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("passthrough:///offline", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s, err := New(Config{Conn: conn, Configuration: cfg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		s.cache.AddNode(st.Node(fmt.Sprintf("n%d", i)).Capacity("8", "32Gi", "110").Obj())
	}
	used := func(profile string) map[string]int {
		out := map[string]int{}
		for i := 0; i < 4; i++ {
			pod := st.Pod(fmt.Sprintf("%s-%d", profile, i)).Req("1", "1Gi").Obj()
			pod.Spec.SchedulerName = profile
			host, err := s.place(pod)
			if err != nil {
				t.Fatal(err)
			}
			out[host]++
		}
		return out
	}
	if spread := used("default-scheduler"); len(spread) != 4 {
		t.Fatalf("default profile placed 4 pods on %d nodes: %v", len(spread), spread)
	}
	// Every node now holds one pod; the packer piles its pods onto one.
	if packed := used("packer"); len(packed) != 1 {
		t.Fatalf("packer placed 4 pods on %d nodes: %v", len(packed), packed)
	}
}
