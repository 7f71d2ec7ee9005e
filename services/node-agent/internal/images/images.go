// Package images puts the images pods need on the node: pulls over the OCI
// distribution protocol honouring imagePullPolicy, plain HTTP only for
// registries listed as insecure, loads of OCI tarballs for air-gapped
// nodes, and garbage collection of unused images, least recently used
// first, when the images' total size passes a threshold.
package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"bosun.dev/services/node-agent/internal/runtime"
)

// Pull policies.
const (
	PullAlways       = "Always"
	PullIfNotPresent = "IfNotPresent"
	PullNever        = "Never"
)

// ErrNeverPull reports an image absent with policy Never (ErrImageNeverPull).
var ErrNeverPull = errors.New("image is not present and the pull policy is Never")

// Options configure a Manager.
type Options struct {
	// InsecureRegistries are host[:port] names pulled from over plain HTTP.
	InsecureRegistries []string
	// GCHighBytes starts a collection when images take more than this; 0
	// disables collection.
	GCHighBytes int64
	// GCLowBytes is what a collection frees down to; 80% of GCHighBytes
	// when 0.
	GCLowBytes int64
	// Now is the clock; time.Now when nil.
	Now    func() time.Time
	Logger *slog.Logger
}

// Manager pulls, loads and collects images.
type Manager struct {
	rt   runtime.Runtime
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	lastUsed map[string]time.Time
	pulling  map[string]*pull
}

type pull struct {
	done chan struct{}
	img  runtime.Image
	err  error
}

// New returns a Manager over rt.
func New(rt runtime.Runtime, opts Options) *Manager {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.GCLowBytes == 0 {
		opts.GCLowBytes = opts.GCHighBytes * 8 / 10
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Manager{rt: rt, opts: opts, log: opts.Logger, lastUsed: map[string]time.Time{}, pulling: map[string]*pull{}}
}

// Normalize completes a reference the way Docker does: a missing registry
// is docker.io (library/ for single names) and a missing tag is latest.
func Normalize(ref string) string {
	name, tagged := ref, false
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		name, tagged = ref[:i], true
	}
	slash := strings.LastIndex(name, "/")
	if strings.LastIndex(name, ":") > slash {
		tagged = true
	}
	first, _, hasSlash := strings.Cut(ref, "/")
	if !hasSlash || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		if !hasSlash {
			ref = "library/" + ref
		}
		ref = "docker.io/" + ref
	}
	if !tagged {
		ref += ":latest"
	}
	return ref
}

// DefaultPolicy is Kubernetes' default imagePullPolicy for ref: Always for
// :latest or no tag, IfNotPresent otherwise.
func DefaultPolicy(ref string) string {
	n := Normalize(ref)
	if strings.HasSuffix(n, ":latest") && !strings.Contains(ref, "@") {
		return PullAlways
	}
	return PullIfNotPresent
}

// Host is the registry host[:port] of a normalised reference.
func Host(ref string) string {
	h, _, _ := strings.Cut(Normalize(ref), "/")
	return h
}

func (m *Manager) insecure(ref string) bool {
	h := Host(ref)
	for _, r := range m.opts.InsecureRegistries {
		if r == h {
			return true
		}
	}
	return false
}

// Ensure makes ref present according to policy ("" picks DefaultPolicy)
// and returns it. Concurrent calls for one reference share one pull.
func (m *Manager) Ensure(ctx context.Context, ref, policy string) (runtime.Image, error) {
	ref = Normalize(ref)
	if policy == "" {
		policy = DefaultPolicy(ref)
	}
	if policy != PullAlways {
		img, err := m.rt.GetImage(ctx, ref)
		if err == nil {
			m.touch(ref)
			return img, nil
		}
		if !errors.Is(err, runtime.ErrNotFound) {
			return runtime.Image{}, err
		}
		if policy == PullNever {
			return runtime.Image{}, fmt.Errorf("image %q: %w", ref, ErrNeverPull)
		}
	}
	m.mu.Lock()
	p, ok := m.pulling[ref]
	if !ok {
		p = &pull{done: make(chan struct{})}
		m.pulling[ref] = p
		go func() {
			p.img, p.err = m.rt.PullImage(context.WithoutCancel(ctx), ref, runtime.PullOptions{PlainHTTP: m.insecure(ref)})
			m.mu.Lock()
			delete(m.pulling, ref)
			if p.err == nil {
				m.lastUsed[ref] = m.opts.Now()
			}
			m.mu.Unlock()
			close(p.done)
		}()
	}
	m.mu.Unlock()
	select {
	case <-p.done:
		return p.img, p.err
	case <-ctx.Done():
		return runtime.Image{}, ctx.Err()
	}
}

func (m *Manager) touch(ref string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastUsed[ref] = m.opts.Now()
}

// Load imports the images of an OCI tarball.
func (m *Manager) Load(ctx context.Context, r io.Reader) ([]runtime.Image, error) {
	imgs, err := m.rt.ImportImages(ctx, r)
	if err != nil {
		return nil, err
	}
	for _, img := range imgs {
		m.touch(img.Ref)
	}
	return imgs, nil
}

// GC removes images no container uses, least recently used first, until
// their total is at most GCLowBytes, when it is above GCHighBytes. It
// returns the references removed.
func (m *Manager) GC(ctx context.Context) ([]string, error) {
	if m.opts.GCHighBytes <= 0 {
		return nil, nil
	}
	imgs, err := m.rt.ListImages(ctx)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, img := range imgs {
		total += img.Size
	}
	if total <= m.opts.GCHighBytes {
		return nil, nil
	}
	cs, err := m.rt.ListContainers(ctx)
	if err != nil {
		return nil, err
	}
	inUse := map[string]bool{}
	for _, c := range cs {
		inUse[c.Image] = true
	}
	m.mu.Lock()
	for _, img := range imgs {
		if _, ok := m.lastUsed[img.Ref]; !ok {
			m.lastUsed[img.Ref] = m.opts.Now() // first seen now: youngest
		}
	}
	sort.SliceStable(imgs, func(i, j int) bool { return m.lastUsed[imgs[i].Ref].Before(m.lastUsed[imgs[j].Ref]) })
	m.mu.Unlock()
	var removed []string
	for _, img := range imgs {
		if total <= m.opts.GCLowBytes {
			break
		}
		if inUse[img.Ref] {
			continue
		}
		if err := m.rt.RemoveImage(ctx, img.Ref); err != nil {
			return removed, err
		}
		m.mu.Lock()
		delete(m.lastUsed, img.Ref)
		m.mu.Unlock()
		total -= img.Size
		removed = append(removed, img.Ref)
		m.log.Info("image garbage-collected", "image", img.Ref, "bytes", img.Size)
	}
	return removed, nil
}

// Run collects garbage every interval until ctx ends.
func (m *Manager) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := m.GC(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("image garbage collection", "err", err)
			}
		}
	}
}
