// Package minimalscheduler is a deliberately small scheduler for Bosun,
// written only against bosun.dev/gen and bosun.dev/pkg. It exists to show
// that a team can replace Bosun's scheduler: it passes the scheduler
// conformance suite (tests/conformance/scheduler) for the constraints it
// claims, which are node name, node selector, required node affinity,
// taints and tolerations, resource requests against allocatable (pod count
// included), host ports and cordoned nodes.
//
// It is level-triggered: whenever a pod or node changes, and once a second
// in any case, it goes over every unscheduled pod that names it, filters the
// nodes with Fits, picks the one running the fewest pods, and binds the pod
// with the apiserver's compare-and-set BindPod. Pods that fit nowhere are
// simply tried again on the next pass. It writes no conditions or events.
package minimalscheduler

import (
	"context"
	"log/slog"
	"sort"
	"time"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/informer"

	"google.golang.org/grpc"
)

// DefaultSchedulerName is the schedulerName the apiserver gives pods that
// name none.
const DefaultSchedulerName = "default-scheduler"

// RetryInterval is the longest time between two passes over the pending pods.
const RetryInterval = time.Second

// Config configures a Scheduler.
type Config struct {
	// Conn reaches the apiserver.
	Conn grpc.ClientConnInterface
	// SchedulerName is the spec.schedulerName of the pods this scheduler
	// places; DefaultSchedulerName when "".
	SchedulerName string
	// Logger receives the scheduler's logs; slog.Default() when nil.
	Logger *slog.Logger
}

// Scheduler binds pending pods to nodes. Create one with New; Run it once.
type Scheduler struct {
	name  string
	log   *slog.Logger
	bind  corev1.PodServiceClient
	pods  *informer.Informer[*corev1.Pod]
	nodes *informer.Informer[*corev1.Node]
	wake  chan struct{}
	// assumed maps the pods this scheduler bound to their node until the
	// informer shows them bound, so that the next pod counts them.
	assumed map[string]string
}

// New returns a Scheduler for cfg.
func New(cfg Config) *Scheduler {
	s := &Scheduler{
		name:    cfg.SchedulerName,
		log:     cfg.Logger,
		bind:    corev1.NewPodServiceClient(cfg.Conn),
		pods:    informer.New(client.For[*corev1.Pod](cfg.Conn), informer.Options{}),
		nodes:   informer.New(client.For[*corev1.Node](cfg.Conn), informer.Options{}),
		wake:    make(chan struct{}, 1),
		assumed: map[string]string{},
	}
	if s.name == "" {
		s.name = DefaultSchedulerName
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.pods.AddEventHandler(informer.HandlerFuncs[*corev1.Pod]{
		AddFunc:    func(*corev1.Pod) { s.poke() },
		UpdateFunc: func(_, _ *corev1.Pod) { s.poke() },
		DeleteFunc: func(*corev1.Pod) { s.poke() },
	})
	s.nodes.AddEventHandler(informer.HandlerFuncs[*corev1.Node]{
		AddFunc:    func(*corev1.Node) { s.poke() },
		UpdateFunc: func(_, _ *corev1.Node) { s.poke() },
		DeleteFunc: func(*corev1.Node) { s.poke() },
	})
	return s
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run schedules until ctx ends, and then returns nil.
func (s *Scheduler) Run(ctx context.Context) error {
	go func() { _ = s.pods.Run(ctx) }()
	go func() { _ = s.nodes.Run(ctx) }()
	if !informer.WaitForCacheSync(ctx, s.pods, s.nodes) {
		return nil
	}
	s.log.InfoContext(ctx, "scheduling", "schedulerName", s.name)
	tick := time.NewTicker(RetryInterval)
	defer tick.Stop()
	for {
		s.pass(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-tick.C:
		}
	}
}

// pass tries to place every pending pod once, oldest first.
func (s *Scheduler) pass(ctx context.Context) {
	onNode := map[string][]*corev1.Pod{}
	var pending []*corev1.Pod
	live := map[string]bool{}
	for _, p := range s.pods.List() {
		key := api.KeyOf(p)
		live[key] = true
		if phase := p.GetStatus().GetPhase(); phase == "Succeeded" || phase == "Failed" {
			continue
		}
		node := p.GetSpec().GetNodeName()
		if node != "" {
			delete(s.assumed, key) // the informer caught up
		} else {
			node = s.assumed[key]
		}
		switch {
		case node != "":
			onNode[node] = append(onNode[node], p)
		case p.GetSpec().GetSchedulerName() == s.name && p.GetMetadata().GetDeletionTimestamp() == nil:
			pending = append(pending, p)
		}
	}
	for key := range s.assumed {
		if !live[key] {
			delete(s.assumed, key)
		}
	}
	sort.Slice(pending, func(i, j int) bool {
		a, b := pending[i].GetMetadata(), pending[j].GetMetadata()
		if !a.GetCreationTimestamp().AsTime().Equal(b.GetCreationTimestamp().AsTime()) {
			return a.GetCreationTimestamp().AsTime().Before(b.GetCreationTimestamp().AsTime())
		}
		return api.KeyOf(pending[i]) < api.KeyOf(pending[j])
	})
	nodes := s.nodes.List()
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].GetMetadata().GetName() < nodes[j].GetMetadata().GetName() })
	for _, p := range pending {
		if ctx.Err() != nil {
			return
		}
		node := s.choose(p, nodes, onNode)
		if node == "" {
			continue
		}
		bound, err := s.bindTo(ctx, p, node)
		if err != nil {
			s.log.WarnContext(ctx, "binding failed", "pod", api.KeyOf(p), "node", node, "err", err)
		}
		if !bound {
			continue
		}
		s.assumed[api.KeyOf(p)] = node
		onNode[node] = append(onNode[node], p)
	}
}

// choose returns the feasible node running the fewest pods, or "" when no
// node fits.
func (s *Scheduler) choose(p *corev1.Pod, nodes []*corev1.Node, onNode map[string][]*corev1.Pod) string {
	best := ""
	for _, n := range nodes {
		name := n.GetMetadata().GetName()
		if err := Fits(p, n, onNode[name]); err != nil {
			s.log.Debug("node does not fit", "pod", api.KeyOf(p), "node", name, "reason", err)
			continue
		}
		if best == "" || len(onNode[name]) < len(onNode[best]) {
			best = name
		}
	}
	return best
}

// bindTo binds p to node and reports whether it did. A pod that is already
// bound or gone is no error: someone else dealt with it.
func (s *Scheduler) bindTo(ctx context.Context, p *corev1.Pod, node string) (bool, error) {
	m := p.GetMetadata()
	_, err := s.bind.BindPod(ctx, &corev1.BindPodRequest{
		Namespace: m.GetNamespace(), Name: m.GetName(), NodeName: node, Uid: m.GetUid(),
	})
	if apierrors.IsAlreadyBound(err) || apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}
