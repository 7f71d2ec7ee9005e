package deployment_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/leaderelection"
	"bosun.dev/services/controller/internal/manager"
	"bosun.dev/services/controller/internal/testcluster"
)

// rolledOutAt polls until name reports every replica updated and available
// at its latest generation.
func waitRolledOut(b *testing.B, api *client.Resource[*appsv1.Deployment], name string) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		d, err := api.Get(context.Background(), "default", name)
		if err == nil {
			st, want := d.GetStatus(), d.GetSpec().GetReplicas()
			if st.GetObservedGeneration() == d.Metadata.Generation && st.GetUpdatedReplicas() == want && st.GetReplicas() == want && st.GetAvailableReplicas() == want {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatal("rollout did not finish in 5 minutes")
}

// benchCluster starts an apiserver with 50 simulated nodes and the
// controller manager as it runs in production: every controller, default
// worker counts, leader election and the lease gate on every write.
func benchCluster(b *testing.B) *testcluster.Cluster {
	c := testcluster.Start(b, testcluster.Options{Nodes: 50})
	m, err := manager.New(manager.Config{Conn: c.Conn, LeaderElect: true, Identity: "bench",
		Lock: leaderelection.Lock{Namespace: "bosun-system", Name: "controller"},
		Log:  slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	for !m.IsLeader() {
		time.Sleep(10 * time.Millisecond)
	}
	return c
}

// BenchmarkDeployment1000Running: from creating a 1,000-replica Deployment
// to every pod Running and Ready on 50 simulated nodes (the simulated
// node-agent binds and starts each pod through the API).
func BenchmarkDeployment1000Running(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c := benchCluster(b)
		api := client.For[*appsv1.Deployment](c.Conn)
		b.StartTimer()
		start := time.Now()
		if _, err := api.Create(context.Background(), newDeployment("big", 1000, "big:1")); err != nil {
			b.Fatal(err)
		}
		waitRolledOut(b, api, "big")
		b.ReportMetric(float64(time.Since(start).Milliseconds())/1000, "s-to-running")
		b.ReportMetric(1000/time.Since(start).Seconds(), "pods/s")
	}
}

// BenchmarkRollingUpdate100: a 100-replica Deployment (maxSurge and
// maxUnavailable 25%) from a template change to every pod replaced and
// available.
func BenchmarkRollingUpdate100(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c := benchCluster(b)
		api := client.For[*appsv1.Deployment](c.Conn)
		if _, err := api.Create(context.Background(), newDeployment("roll", 100, "roll:1")); err != nil {
			b.Fatal(err)
		}
		waitRolledOut(b, api, "roll")
		d, err := api.Get(context.Background(), "default", "roll")
		if err != nil {
			b.Fatal(err)
		}
		d.Spec.Template.Spec.Containers[0].Image = "roll:2"
		d.Spec.Replicas = proto.Int32(100)
		b.StartTimer()
		start := time.Now()
		if _, err := api.Update(context.Background(), d); err != nil {
			b.Fatal(err)
		}
		waitRolledOut(b, api, "roll")
		b.ReportMetric(float64(time.Since(start).Milliseconds())/1000, "s-to-rolled-out")
	}
}
