package controller

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"k8s.io/client-go/util/workqueue"

	"bosun.dev/pkg/apierrors"
)

// Queue is a rate-limited, deduplicating queue of object keys.
type Queue = workqueue.TypedRateLimitingInterface[string]

// NewQueue returns a queue named name whose depth, latency, work duration and
// retries are reported through mp (no metrics when nil).
func NewQueue(name string, mp workqueue.MetricsProvider) Queue {
	rl := workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](10*time.Millisecond, 30*time.Second),
		&workqueue.TypedBucketRateLimiter[string]{Limiter: newBucket()},
	)
	return workqueue.NewTypedRateLimitingQueueWithConfig(rl, workqueue.TypedRateLimitingQueueConfig[string]{
		Name: name, MetricsProvider: mp,
	})
}

var tracer = otel.Tracer("bosun.dev/services/controller")

// SyncFunc reconciles the object with key. An error requeues the key with
// back-off.
type SyncFunc func(ctx context.Context, key string) error

// RunWorkers runs n workers that take keys from q and call sync, until ctx
// ends; then it shuts q down and waits for the workers.
func RunWorkers(ctx context.Context, q Queue, n int, syncFn SyncFunc, log *slog.Logger) {
	if n < 1 {
		n = 1
	}
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for processNext(ctx, q, syncFn, log) {
			}
		}()
	}
	<-ctx.Done()
	q.ShutDown()
	wg.Wait()
}

func processNext(ctx context.Context, q Queue, syncFn SyncFunc, log *slog.Logger) bool {
	key, quit := q.Get()
	if quit {
		return false
	}
	defer q.Done(key)
	// Each reconcile is a trace of its own; the calls it makes to the
	// apiserver join it.
	sctx, span := tracer.Start(ctx, "controller.Reconcile", trace.WithAttributes(attribute.String("bosun.key", key)))
	err := syncFn(sctx, key)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
	switch {
	case err == nil:
		q.Forget(key)
	case ctx.Err() != nil:
	default:
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) || apierrors.IsAlreadyExists(err) {
			log.DebugContext(sctx, "sync raced another writer; retrying", "key", key, "err", err)
		} else {
			log.WarnContext(sctx, "sync failed; retrying", "key", key, "err", err, "retries", q.NumRequeues(key))
		}
		q.AddRateLimited(key)
	}
	return true
}
