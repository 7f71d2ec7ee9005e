// Package watch follows the Services, Endpoints and Nodes the proxy
// configuration is made from, through pkg/informer, and says when they
// change.
package watch

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"time"

	"google.golang.org/grpc"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/informer"
	"bosun.dev/services/service-proxy/internal/translate"
)

// Source caches Services, Endpoints and Nodes.
type Source struct {
	services  *informer.Informer[*corev1.Service]
	endpoints *informer.Informer[*corev1.Endpoints]
	nodes     *informer.Informer[*corev1.Node]
	changed   chan struct{}
}

// New returns a Source reading from the apiserver behind conn. Start it with
// Run.
func New(conn grpc.ClientConnInterface, log *slog.Logger) *Source {
	s := &Source{
		services:  informer.New(client.For[*corev1.Service](conn), informer.Options{Logger: log}),
		endpoints: informer.New(client.For[*corev1.Endpoints](conn), informer.Options{Logger: log}),
		nodes:     informer.New(client.For[*corev1.Node](conn), informer.Options{Logger: log}),
		changed:   make(chan struct{}, 1),
	}
	s.services.AddEventHandler(notify[*corev1.Service](s.mark, nil))
	s.endpoints.AddEventHandler(notify[*corev1.Endpoints](s.mark, nil))
	// Nodes change their status every heartbeat; only their labels (the
	// locality) matter here.
	s.nodes.AddEventHandler(notify(s.mark, func(old, cur *corev1.Node) bool {
		return !maps.Equal(old.GetMetadata().GetLabels(), cur.GetMetadata().GetLabels())
	}))
	return s
}

// notify calls mark on every add and delete, and on updates for which
// relevant (nil: always) is true.
func notify[T api.Object](mark func(), relevant func(old, cur T) bool) informer.HandlerFuncs[T] {
	return informer.HandlerFuncs[T]{
		AddFunc: func(T) { mark() },
		UpdateFunc: func(old, cur T) {
			if relevant == nil || relevant(old, cur) {
				mark()
			}
		},
		DeleteFunc: func(T) { mark() },
	}
}

func (s *Source) mark() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Run runs the informers until ctx ends.
func (s *Source) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{s.services.Run, s.endpoints.Run, s.nodes.Run} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = run(ctx) }()
	}
	wg.Wait()
}

// Input is the cached state, as translate takes it. Its objects are shared
// with the cache and must not be modified.
func (s *Source) Input() translate.Input {
	return translate.Input{Services: s.services.List(), Endpoints: s.endpoints.List(), Nodes: s.nodes.List()}
}

// Follow waits until the caches are filled, then calls apply with the
// cached state at once and again after every change, until ctx ends.
// Changes that arrive while apply runs, or within settle of each other, are
// applied together.
func (s *Source) Follow(ctx context.Context, settle time.Duration, apply func(context.Context, translate.Input)) {
	if !informer.WaitForCacheSync(ctx, s.services, s.endpoints, s.nodes) {
		return
	}
	for {
		// What changed so far is in the state about to be read.
		select {
		case <-s.changed:
		default:
		}
		apply(ctx, s.Input())
		select {
		case <-ctx.Done():
			return
		case <-s.changed:
		}
		if settle > 0 {
			t := time.NewTimer(settle)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}
