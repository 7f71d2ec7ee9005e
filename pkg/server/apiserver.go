package server

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/util/wait"
)

// WaitForAPIServer blocks until the apiserver behind conn reports SERVING on
// the gRPC health service, retrying with jittered back-off (0.2 s growing to
// 5 s) and logging each failure to log (nil logs nothing). An apiserver
// without the health service counts as serving once it answers at all. It
// returns ctx's error if ctx ends first.
func WaitForAPIServer(ctx context.Context, conn grpc.ClientConnInterface, log *slog.Logger) error {
	hc := healthpb.NewHealthClient(conn)
	backoff := wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 1 << 30, Cap: 5 * time.Second}
	for attempt := 1; ; attempt++ {
		callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := hc.Check(callCtx, &healthpb.HealthCheckRequest{})
		cancel()
		switch {
		case err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING:
			return nil
		case status.Code(err) == codes.Unimplemented:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		}
		d := backoff.Step()
		if log != nil {
			if err == nil {
				log.InfoContext(ctx, "apiserver not serving yet", "status", resp.GetStatus().String(), "attempt", attempt, "retry_in", d)
			} else {
				log.InfoContext(ctx, "apiserver not reachable yet", "err", err, "attempt", attempt, "retry_in", d)
			}
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
