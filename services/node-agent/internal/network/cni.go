package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"

	"github.com/containerd/containerd/v2/pkg/netns"
	gocni "github.com/containerd/go-cni"
)

// DefaultPluginDirs are where Debian's containernetworking-plugins and the
// upstream tarball put the plugins.
var DefaultPluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// CNIOptions configure the CNI network.
type CNIOptions struct {
	// PluginDirs hold the plugin binaries; DefaultPluginDirs when empty.
	PluginDirs []string
	// PodCIDR is the node's pod range, e.g. 10.244.1.0/24.
	PodCIDR string
	// Bridge is the bridge device's name; "bosun0" when "".
	Bridge string
	// NetNSDir holds the pods' network namespace files.
	NetNSDir string
	// IPAMDir holds host-local's address leases.
	IPAMDir string
	// IPMasq masquerades traffic from pods leaving the pod CIDR.
	IPMasq bool
	// MTU of the pod interfaces; the plugin's default when 0.
	MTU int
}

// CNI attaches pods through the bridge, host-local, portmap and loopback
// plugins.
type CNI struct {
	opts CNIOptions
	cni  gocni.CNI
	// mu serialises setup and teardown: the plugins' iptables updates
	// contend on one lock anyway, and host-local's store is per-directory.
	mu sync.Mutex
}

var _ Network = (*CNI)(nil)

// NewCNI checks the options, writes nothing and loads the configuration.
func NewCNI(opts CNIOptions) (*CNI, error) {
	if len(opts.PluginDirs) == 0 {
		opts.PluginDirs = DefaultPluginDirs
	}
	if opts.Bridge == "" {
		opts.Bridge = "bosun0"
	}
	if opts.NetNSDir == "" || opts.IPAMDir == "" {
		return nil, errors.New("network: NetNSDir and IPAMDir are required")
	}
	p, err := netip.ParsePrefix(opts.PodCIDR)
	if err != nil {
		return nil, fmt.Errorf("pod CIDR %q: %w", opts.PodCIDR, err)
	}
	if p.Bits() > 30 && p.Addr().Is4() {
		return nil, fmt.Errorf("pod CIDR %q is too small for pods", opts.PodCIDR)
	}
	for _, plugin := range []string{"bridge", "host-local", "portmap", "loopback"} {
		if !pluginPresent(opts.PluginDirs, plugin) {
			return nil, fmt.Errorf("CNI plugin %q not found in %s (install containernetworking-plugins)", plugin, strings.Join(opts.PluginDirs, ", "))
		}
	}
	if err := os.MkdirAll(opts.NetNSDir, 0o755); err != nil {
		return nil, fmt.Errorf("netns directory: %w", err)
	}
	l, err := gocni.New(gocni.WithMinNetworkCount(2), gocni.WithPluginDir(opts.PluginDirs), gocni.WithInterfacePrefix("eth"))
	if err != nil {
		return nil, fmt.Errorf("CNI: %w", err)
	}
	conf, err := confList(opts, p.Masked())
	if err != nil {
		return nil, err
	}
	// The pod network first, so that its interface is eth0.
	if err := l.Load(gocni.WithConfListBytes(conf), gocni.WithLoNetwork); err != nil {
		return nil, fmt.Errorf("loading CNI configuration: %w", err)
	}
	return &CNI{opts: opts, cni: l}, nil
}

// PluginsPresent reports whether the plugins Bosun needs are in dirs.
func PluginsPresent(dirs []string) bool {
	for _, plugin := range []string{"bridge", "host-local", "portmap", "loopback"} {
		if !pluginPresent(dirs, plugin) {
			return false
		}
	}
	return true
}

func pluginPresent(dirs []string, name string) bool {
	for _, d := range dirs {
		if st, err := os.Stat(d + "/" + name); err == nil && !st.IsDir() {
			return true
		}
	}
	return false
}

func confList(opts CNIOptions, p netip.Prefix) ([]byte, error) {
	bridge := map[string]any{
		"type": "bridge", "bridge": opts.Bridge, "isGateway": true, "ipMasq": opts.IPMasq,
		"hairpinMode": true,
		"ipam": map[string]any{
			"type":    "host-local",
			"ranges":  [][]map[string]string{{{"subnet": p.String()}}},
			"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
			"dataDir": opts.IPAMDir,
		},
	}
	if opts.MTU > 0 {
		bridge["mtu"] = opts.MTU
	}
	return json.Marshal(map[string]any{
		"cniVersion": "1.0.0",
		"name":       "bosun-" + opts.Bridge,
		"plugins": []any{
			bridge,
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}, "snat": true},
		},
	})
}

func cniPorts(ports []PortMapping) []gocni.PortMapping {
	out := make([]gocni.PortMapping, 0, len(ports))
	for _, p := range ports {
		out = append(out, gocni.PortMapping{HostPort: p.HostPort, ContainerPort: p.ContainerPort,
			Protocol: strings.ToLower(p.Protocol), HostIP: p.HostIP})
	}
	return out
}

// Setup creates a network namespace and attaches it; on failure nothing is
// left behind.
func (c *CNI) Setup(ctx context.Context, id string, ports []PortMapping) (Attachment, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ns, err := netns.NewNetNS(c.opts.NetNSDir)
	if err != nil {
		return Attachment{}, fmt.Errorf("creating network namespace for %s: %w", id, err)
	}
	a := Attachment{NetNSPath: ns.GetPath(), Ports: ports}
	res, err := c.cni.Setup(ctx, id, a.NetNSPath, gocni.WithCapabilityPortMap(cniPorts(ports)))
	if err != nil {
		_ = c.cni.Remove(ctx, id, a.NetNSPath, gocni.WithCapabilityPortMap(cniPorts(ports)))
		_ = ns.Remove()
		return Attachment{}, fmt.Errorf("attaching pod %s to the network: %w", id, err)
	}
	for name, iface := range res.Interfaces {
		if name == "lo" {
			continue
		}
		for _, ipc := range iface.IPConfigs {
			if ipc.IP.To4() != nil {
				a.IP = ipc.IP.String()
			}
		}
	}
	if a.IP == "" {
		_ = c.cni.Remove(ctx, id, a.NetNSPath, gocni.WithCapabilityPortMap(cniPorts(ports)))
		_ = ns.Remove()
		return Attachment{}, fmt.Errorf("attaching pod %s: the CNI result holds no IPv4 address", id)
	}
	return a, nil
}

// Teardown runs CNI DEL and removes the namespace. A namespace already
// gone still gets a DEL without it, which releases the address and the
// port mappings.
func (c *CNI) Teardown(ctx context.Context, id string, a Attachment) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	path := a.NetNSPath
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			path = ""
		}
	}
	if err := c.cni.Remove(ctx, id, path, gocni.WithCapabilityPortMap(cniPorts(a.Ports))); err != nil {
		return fmt.Errorf("detaching pod %s from the network: %w", id, err)
	}
	if path != "" {
		if err := netns.LoadNetNS(path).Remove(); err != nil {
			return fmt.Errorf("removing network namespace %s: %w", path, err)
		}
	}
	return nil
}
