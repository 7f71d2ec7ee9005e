package controller

import "golang.org/x/time/rate"

// newBucket is the overall rate limit of a queue's retries: generous, since
// the apiserver is the bottleneck and not the queue.
func newBucket() *rate.Limiter { return rate.NewLimiter(rate.Limit(100), 1000) }
