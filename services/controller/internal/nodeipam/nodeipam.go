// Package nodeipam runs node IPAM: it gives every node without one a pod
// CIDR, carved from the cluster CIDR in blocks of a fixed prefix length,
// and never gives one block to two nodes. The allocator starts from a live
// list of the nodes, not the cache, so a new leader knows every block its
// predecessor handed out; blocks return to the pool when their node is
// deleted.
package nodeipam

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"net/netip"
	"sync"

	"google.golang.org/protobuf/proto"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/informer"
	"bosun.dev/services/controller/internal/controller"
)

// Name is the controller's name in flags, logs and metrics.
const Name = "nodeipam"

// Allocator hands out the blocks of a CIDR.
type Allocator struct {
	cidr   netip.Prefix
	bits   int
	blocks int
	mu     sync.Mutex
	used   map[int]bool
	next   int
}

// NewAllocator splits cidr into blocks of prefix length maskSize.
func NewAllocator(cidr string, maskSize int) (*Allocator, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil, fmt.Errorf("--cluster-cidr: %q: %v", cidr, err)
	}
	p = p.Masked()
	if maskSize < p.Bits() || maskSize > p.Addr().BitLen() {
		return nil, fmt.Errorf("--node-cidr-mask-size: %d must be between the cluster CIDR's prefix length %d and %d", maskSize, p.Bits(), p.Addr().BitLen())
	}
	if maskSize-p.Bits() > 20 {
		return nil, fmt.Errorf("--node-cidr-mask-size: %d splits %s into more than 2^20 blocks", maskSize, p)
	}
	return &Allocator{cidr: p, bits: maskSize, blocks: 1 << (maskSize - p.Bits()), used: map[int]bool{}}, nil
}

func (a *Allocator) block(i int) netip.Prefix {
	base := new(big.Int).SetBytes(a.cidr.Addr().AsSlice())
	off := new(big.Int).Lsh(big.NewInt(int64(i)), uint(a.cidr.Addr().BitLen()-a.bits))
	b := base.Add(base, off).FillBytes(make([]byte, len(a.cidr.Addr().AsSlice())))
	addr, _ := netip.AddrFromSlice(b)
	return netip.PrefixFrom(addr, a.bits)
}

func (a *Allocator) index(cidr string) (int, bool) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || p.Bits() != a.bits || !a.cidr.Contains(p.Addr()) {
		return 0, false
	}
	base := new(big.Int).SetBytes(a.cidr.Addr().AsSlice())
	v := new(big.Int).SetBytes(p.Masked().Addr().AsSlice())
	v.Sub(v, base).Rsh(v, uint(a.cidr.Addr().BitLen()-a.bits))
	return int(v.Int64()), true
}

// Occupy marks cidr as taken; false when it is not a block of this CIDR.
func (a *Allocator) Occupy(cidr string) bool {
	i, ok := a.index(cidr)
	if !ok {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.used[i] = true
	return true
}

// Release returns cidr to the pool.
func (a *Allocator) Release(cidr string) {
	if i, ok := a.index(cidr); ok {
		a.mu.Lock()
		defer a.mu.Unlock()
		delete(a.used, i)
	}
}

// Allocate takes the next free block.
func (a *Allocator) Allocate() (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for n := 0; n < a.blocks; n++ {
		i := (a.next + n) % a.blocks
		if !a.used[i] {
			a.used[i] = true
			a.next = i + 1
			return a.block(i).String(), nil
		}
	}
	return "", fmt.Errorf("cluster CIDR %s has no free /%d block left", a.cidr, a.bits)
}

// Controller is the node IPAM controller.
type Controller struct {
	nodes   *informer.Informer[*corev1.Node]
	nodeAPI *client.Resource[*corev1.Node]
	alloc   *Allocator
	queue   controller.Queue
	log     *slog.Logger
}

// New builds the controller for cidr split into /maskSize blocks.
func New(c *controller.Context, cidr string, maskSize int) (*Controller, error) {
	a, err := NewAllocator(cidr, maskSize)
	if err != nil {
		return nil, err
	}
	n := &Controller{
		nodes:   c.Informers.Nodes,
		nodeAPI: client.For[*corev1.Node](c.Conn),
		alloc:   a,
		queue:   controller.NewQueue(Name, c.Metrics),
		log:     c.Logger(),
	}
	n.nodes.AddEventHandler(informer.HandlerFuncs[*corev1.Node]{
		AddFunc:    func(o *corev1.Node) { n.queue.Add(api.KeyOf(o)) },
		UpdateFunc: func(_, o *corev1.Node) { n.queue.Add(api.KeyOf(o)) },
		DeleteFunc: func(o *corev1.Node) {
			if c := o.GetSpec().GetPodCidr(); c != "" {
				n.alloc.Release(c)
			}
		},
	})
	return n, nil
}

// Run lists the nodes live to learn the blocks in use, then runs workers
// until ctx ends.
func (n *Controller) Run(ctx context.Context, workers int) {
	if !informer.WaitForCacheSync(ctx, n.nodes) {
		return
	}
	for ctx.Err() == nil {
		nodes, _, err := n.nodeAPI.ListAll(ctx, client.ListOptions{})
		if err == nil {
			for _, node := range nodes {
				if c := node.GetSpec().GetPodCidr(); c != "" && !n.alloc.Occupy(c) {
					n.log.Warn("node's pod CIDR is outside the cluster CIDR", "node", node.GetMetadata().GetName(), "podCIDR", c)
				}
			}
			break
		}
		n.log.Warn("listing nodes failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-timeAfter():
		}
	}
	controller.RunWorkers(ctx, n.queue, workers, n.sync, n.log)
}

func (n *Controller) sync(ctx context.Context, name string) error {
	node, ok := n.nodes.Get("", name)
	if !ok || node.GetSpec().GetPodCidr() != "" || node.GetMetadata().GetDeletionTimestamp() != nil {
		return nil
	}
	cidr, err := n.alloc.Allocate()
	if err != nil {
		return err
	}
	next := proto.Clone(node).(*corev1.Node)
	if next.Spec == nil {
		next.Spec = &corev1.NodeSpec{}
	}
	next.Spec.PodCidr = cidr
	next.Spec.PodCidrs = []string{cidr}
	if _, err := n.nodeAPI.Update(ctx, next); err != nil {
		n.alloc.Release(cidr)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	n.log.Info("assigned pod CIDR", "node", name, "podCIDR", cidr)
	return nil
}
