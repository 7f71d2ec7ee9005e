package controller

import (
	"log/slog"

	"google.golang.org/grpc"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// Context is what the manager hands each controller.
type Context struct {
	// Conn is the apiserver connection writes go through (gated by
	// leadership when the manager elects a leader).
	Conn grpc.ClientConnInterface
	// Informers are the shared caches. Read-only.
	Informers *Informers
	// Metrics reports the controller's work queue; nil for none.
	Metrics workqueue.MetricsProvider
	// Clock is the controller's clock; the real one when nil.
	Clock clock.Clock
	// Log carries the controller's name.
	Log *slog.Logger
}

// ClockOrReal returns c.Clock, or the real clock.
func (c *Context) ClockOrReal() clock.Clock {
	if c.Clock == nil {
		return clock.RealClock{}
	}
	return c.Clock
}

// Logger returns c.Log, or slog.Default().
func (c *Context) Logger() *slog.Logger {
	if c.Log == nil {
		return slog.Default()
	}
	return c.Log
}
