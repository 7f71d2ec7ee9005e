package multinode

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// StartRuntime starts what node-agents run on, without a control plane or
// nodes: the private containerd and the in-process registry, serving app (a
// static Linux binary, run as `/app serve 8080` unless a container says
// otherwise) as Image. It is for suites that bring their own apiserver and
// start the node-agents themselves (NewNode): Addr and Conn stay empty;
// set them to use WaitNode. Everything is removed when the test ends, as
// with Start.
func StartRuntime(t *testing.T, app []byte) *Cluster {
	t.Helper()
	Require(t)
	dir, err := os.MkdirTemp("", "bosun-multinode-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, dir: dir, controlBin: map[string]string{}}
	t.Cleanup(func() { removeDir(t, dir) })
	c.startContainerd(t)
	c.startRegistry(t, app)
	return c
}

// Registry is the address (host:port) of the cluster's plain-HTTP registry.
func (c *Cluster) Registry() string { return c.registry }

// NewNode reserves for node name what AddNode gives a node-agent — a
// containerd namespace, a root directory, a bridge name and a pod CIDR of
// its own — without starting one: the caller starts the node-agent with
// the node's Env, and stops it before the test's end runs this cleanup
// (register the stop after calling NewNode). Unlike AddNode's nodes it has
// no network namespace: the agent runs in the host's, with 127.0.0.1 as
// its address, and the test process reaches its pods on the pod CIDR
// through the bridge. When the test ends what the node's pods left is
// removed as for AddNode's nodes: containerd namespace, network namespaces
// under the root directory, CNI result caches and masquerade chains of the
// bridge, the bridge, cgroups. Listen is left empty.
func (c *Cluster) NewNode(t *testing.T, name string) *Node {
	t.Helper()
	n := &Node{
		Name: name, Namespace: "bosun-mn-" + randomHex(4), Bridge: "bmn" + randomHex(4),
		PodCIDR: c.freeCIDR(t), RootDir: filepath.Join(c.dir, name, "root"), c: c,
	}
	for _, d := range []string{n.RootDir, n.logDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	c.Nodes = append(c.Nodes, n)
	t.Cleanup(func() { n.removeLeftovers(t) })
	return n
}

func (n *Node) logDir() string { return filepath.Join(n.c.dir, n.Name, "logs") }

// Env describes the node to a node-agent, by variable name:
//
//	NODE_NAME             the node's name
//	NODE_IP               the node's address (127.0.0.1)
//	POD_CIDR              the node's pod range (a /24 no route of the host overlaps)
//	CNI_BRIDGE            the name for the pods' bridge device
//	CONTAINERD_ADDRESS    the socket of the cluster's containerd
//	CONTAINERD_NAMESPACE  the node's containerd namespace
//	ROOT_DIR              a directory for the node's state
//	LOG_DIR               a directory for the node's container logs
//	REGISTRY              the plain-HTTP registry serving Image (host:port)
func (n *Node) Env() map[string]string {
	return map[string]string{
		"NODE_NAME":            n.Name,
		"NODE_IP":              "127.0.0.1",
		"POD_CIDR":             n.PodCIDR,
		"CNI_BRIDGE":           n.Bridge,
		"CONTAINERD_ADDRESS":   n.c.ctrdAddr,
		"CONTAINERD_NAMESPACE": n.Namespace,
		"ROOT_DIR":             n.RootDir,
		"LOG_DIR":              n.logDir(),
		"REGISTRY":             n.c.registry,
	}
}

// String names the node and its containerd namespace, for test logs.
func (n *Node) String() string {
	return fmt.Sprintf("%s (containerd namespace %s, bridge %s, pod CIDR %s)", n.Name, n.Namespace, n.Bridge, n.PodCIDR)
}
