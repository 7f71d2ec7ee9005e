package multinode

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
)

// The cluster's network: a bridge on the host (the "switch") with an
// address of a free /24, and per node a network namespace joined to it by
// a veth, with the next address of that /24 on its eth0. The host routes
// each node's pod CIDR via the node's address, and every node routes the
// other nodes' pod CIDRs the same way, so the test process reaches every
// pod and pods reach each other across nodes. The apiserver and the
// registry listen on the bridge's address, the one address every node
// reaches.

// nodeIface is the name of a node's interface inside its namespace.
const nodeIface = "eth0"

// startNetwork creates the host-side bridge of the cluster's network.
func (c *Cluster) startNetwork(t *testing.T) {
	t.Helper()
	prefix := netip.MustParsePrefix(c.freeCIDR(t))
	c.hostBridge = "bmh" + randomHex(4)
	c.hostIP = prefix.Addr().Next()
	c.nodeNet = prefix
	c.nextNodeIP = c.hostIP.Next()
	if err := run("ip", "link", "add", c.hostBridge, "type", "bridge"); err != nil {
		t.Fatalf("creating the cluster's bridge: %v", err)
	}
	t.Cleanup(func() {
		if err := run("ip", "link", "del", c.hostBridge); err != nil {
			t.Errorf("removing the cluster's bridge: %v", err)
		}
	})
	for _, args := range [][]string{
		{"addr", "add", c.hostIP.String() + "/24", "dev", c.hostBridge},
		{"link", "set", c.hostBridge, "up"},
	} {
		if err := run("ip", args...); err != nil {
			t.Fatalf("setting up the cluster's bridge: %v", err)
		}
	}
}

// HostIP is the host's address on the cluster's network: the apiserver and
// the registry listen there ("" for StartRuntime's clusters, which have no
// network of their own and use loopback).
func (c *Cluster) HostIP() string {
	if !c.hostIP.IsValid() {
		return ""
	}
	return c.hostIP.String()
}

// freePortOn reserves a free TCP port on ip (on loopback when ip is the
// zero Addr: a cluster without a network of its own) and returns ip:port.
func freePortOn(t *testing.T, ip netip.Addr) string {
	t.Helper()
	if !ip.IsValid() {
		ip = netip.MustParseAddr("127.0.0.1")
	}
	l, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// listenOnHost listens on a free port of the host's address on the
// cluster's network.
func (c *Cluster) listenOnHost(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", freePortOn(t, c.hostIP))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// startNodeNetwork creates the node's network namespace, its veth to the
// cluster's bridge, its address and the routes between its pod CIDR and
// every other node's. What it creates is removed when the test ends.
func (c *Cluster) startNodeNetwork(t *testing.T, n *Node) {
	t.Helper()
	if b := c.nextNodeIP.As4(); !c.nodeNet.Contains(c.nextNodeIP) || b[3] == 255 {
		t.Fatalf("no address left in %s for node %s", c.nodeNet, n.Name)
	}
	n.IP = c.nextNodeIP.String()
	c.nextNodeIP = c.nextNodeIP.Next()
	suffix := randomHex(4)
	n.NetworkNamespace = "bosun-mn-" + suffix
	n.hostVeth = "bmv" + suffix
	if err := run("ip", "netns", "add", n.NetworkNamespace); err != nil {
		t.Fatalf("creating the network namespace of %s: %v", n.Name, err)
	}
	t.Cleanup(func() { n.removeNetwork(t) })
	steps := [][]string{
		{"ip", "link", "add", n.hostVeth, "type", "veth", "peer", "name", nodeIface, "netns", n.NetworkNamespace},
		{"ip", "link", "set", n.hostVeth, "master", c.hostBridge, "up"},
		{"ip", "-n", n.NetworkNamespace, "addr", "add", n.IP + "/24", "dev", nodeIface},
		{"ip", "-n", n.NetworkNamespace, "link", "set", nodeIface, "up"},
		{"ip", "-n", n.NetworkNamespace, "link", "set", "lo", "up"},
		{"nsenter", "--net=" + n.netnsPath(), "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		{"ip", "route", "add", n.PodCIDR, "via", n.IP, "dev", c.hostBridge},
	}
	for _, o := range c.Nodes {
		if o == n || o.NetworkNamespace == "" {
			continue
		}
		steps = append(steps,
			[]string{"ip", "-n", n.NetworkNamespace, "route", "add", o.PodCIDR, "via", o.IP, "dev", nodeIface},
			[]string{"ip", "-n", o.NetworkNamespace, "route", "add", n.PodCIDR, "via", n.IP, "dev", nodeIface})
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			t.Fatalf("setting up the network of %s: %v", n.Name, err)
		}
	}
}

// removeNetwork removes the node's host route, veth and network namespace
// (with everything in it: the pods' bridge, their host-side veths, the
// node's iptables rules).
func (n *Node) removeNetwork(t *testing.T) {
	_ = run("ip", "route", "del", n.PodCIDR, "via", n.IP)
	_ = run("ip", "link", "del", n.hostVeth)
	if err := run("ip", "netns", "del", n.NetworkNamespace); err != nil {
		t.Errorf("removing the network namespace of %s: %v", n.Name, err)
	}
}

func (n *Node) netnsPath() string { return "/run/netns/" + n.NetworkNamespace }

// InNetNS is a command that runs name with args in the node's network
// namespace (through nsenter: `ip netns exec` remounts /sys, which breaks
// the cgroups of what it starts); on the host for a node without one
// (NewNode's).
func (n *Node) InNetNS(name string, args ...string) *exec.Cmd {
	if n.NetworkNamespace == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("nsenter", append([]string{"--net=" + n.netnsPath(), name}, args...)...)
}

// partitionRules are the iptables rules that cut a node off: nothing in or
// out of its interface, for the node itself and for its pods.
var partitionRules = [][]string{
	{"INPUT", "-i", nodeIface, "-j", "DROP"},
	{"OUTPUT", "-o", nodeIface, "-j", "DROP"},
	{"FORWARD", "-i", nodeIface, "-j", "DROP"},
	{"FORWARD", "-o", nodeIface, "-j", "DROP"},
}

// Partition cuts the node off the cluster's network: iptables DROP rules in
// its network namespace for everything through its interface. Heal removes
// them; the namespace's removal at the end removes them too.
func (n *Node) Partition(t *testing.T) {
	t.Helper()
	for _, r := range partitionRules {
		if out, err := n.InNetNS("iptables", append([]string{"-I", r[0]}, r[1:]...)...).CombinedOutput(); err != nil {
			t.Fatalf("partitioning %s: %v: %s", n.Name, err, out)
		}
	}
}

// Heal removes the rules Partition inserted.
func (n *Node) Heal(t *testing.T) {
	t.Helper()
	for _, r := range partitionRules {
		if out, err := n.InNetNS("iptables", append([]string{"-D", r[0]}, r[1:]...)...).CombinedOutput(); err != nil {
			t.Fatalf("healing %s: %v: %s", n.Name, err, out)
		}
	}
}

// run runs a command and returns its output in the error when it fails.
func run(name string, args ...string) error {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
