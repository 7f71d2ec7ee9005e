package client

import (
	"context"

	"k8s.io/apimachinery/pkg/util/wait"

	"bosun.dev/pkg/apierrors"
)

// DefaultRetry is the back-off RetryOnConflict uses: short, jittered steps,
// as client-go's retry.DefaultRetry.
var DefaultRetry = wait.Backoff{Steps: 8, Duration: 10_000_000, Factor: 1.5, Jitter: 0.2}

// RetryOnConflict runs fn until it succeeds, fails with an error other than a
// conflict, the back-off is exhausted or ctx ends. fn must re-read the object
// each time: a conflict means its copy was stale.
func RetryOnConflict(ctx context.Context, backoff wait.Backoff, fn func() error) error {
	var last error
	err := wait.ExponentialBackoffWithContext(ctx, backoff, func(context.Context) (bool, error) {
		last = fn()
		switch {
		case last == nil:
			return true, nil
		case apierrors.IsConflict(last):
			return false, nil
		default:
			return false, last
		}
	})
	if wait.Interrupted(err) && last != nil {
		return last
	}
	return err
}
