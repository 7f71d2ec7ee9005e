// Package network gives pods their network: a network namespace per pod,
// attached through CNI to the node's bridge with an address from the node's
// pod CIDR (host-local IPAM), loopback, and hostPort mappings (portmap); and
// the /etc/hosts and /etc/resolv.conf files the pod's containers mount.
//
// Network is the seam: CNI implements it on the real plugins, Fake hands out
// addresses in memory for tests and the node simulator.
package network

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
)

// PortMapping forwards a port of the node to a port of the pod.
type PortMapping struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"` // tcp, udp or sctp
	HostIP        string `json:"hostIP,omitempty"`
}

// Attachment is a pod's network as set up: what Teardown needs again.
type Attachment struct {
	// NetNSPath is the pod's network namespace.
	NetNSPath string `json:"netnsPath"`
	// IP is the pod's address.
	IP string `json:"ip"`
	// Ports are the hostPort mappings set up.
	Ports []PortMapping `json:"ports,omitempty"`
}

// Network sets up and tears down pod networks. id identifies the pod's
// sandbox (its uid) and must be the same for both calls.
type Network interface {
	// Setup creates the pod's network namespace and attaches it.
	Setup(ctx context.Context, id string, ports []PortMapping) (Attachment, error)
	// Teardown detaches the namespace, releases its address and removes it.
	// Tearing down what is already gone is not an error.
	Teardown(ctx context.Context, id string, a Attachment) error
}

// Fake hands out addresses from a CIDR in memory; no namespace exists.
type Fake struct {
	mu     sync.Mutex
	prefix netip.Prefix
	next   netip.Addr
	free   []netip.Addr
	inUse  map[string]netip.Addr
}

// NewFake returns a Fake allocating from cidr (e.g. 10.244.1.0/24),
// skipping the network and gateway addresses.
func NewFake(cidr string) (*Fake, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil, fmt.Errorf("pod CIDR %q: %w", cidr, err)
	}
	p = p.Masked()
	return &Fake{prefix: p, next: p.Addr().Next().Next(), inUse: map[string]netip.Addr{}}, nil
}

// Setup allocates an address for id (the same one again for a known id).
func (f *Fake) Setup(_ context.Context, id string, ports []PortMapping) (Attachment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a, ok := f.inUse[id]; ok {
		return Attachment{IP: a.String(), Ports: ports}, nil
	}
	var a netip.Addr
	switch {
	case len(f.free) > 0:
		a, f.free = f.free[len(f.free)-1], f.free[:len(f.free)-1]
	case f.prefix.Contains(f.next):
		a, f.next = f.next, f.next.Next()
	default:
		return Attachment{}, fmt.Errorf("no free address in pod CIDR %s", f.prefix)
	}
	f.inUse[id] = a
	return Attachment{IP: a.String(), Ports: ports}, nil
}

// Teardown releases id's address.
func (f *Fake) Teardown(_ context.Context, id string, _ Attachment) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a, ok := f.inUse[id]; ok {
		delete(f.inUse, id)
		f.free = append(f.free, a)
	}
	return nil
}

// InUse counts the addresses allocated.
func (f *Fake) InUse() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.inUse)
}
