package main

import (
	"flag"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

func parse(args ...string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("node-agent", flag.ContinueOnError)
	o.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return o, o.check()
}

func TestFlags(t *testing.T) {
	o, err := parse("--node-name", "n1", "--node-ip", "192.0.2.9", "--pod-cidr", "10.244.1.0/24",
		"--node-labels", "zone=a,disk=ssd", "--insecure-registries", "127.0.0.1:5000", "--insecure-registries", "reg.local",
		"--image-gc-high-threshold", "10Gi", "--allowed-host-path-prefixes", "/srv,/data",
		"--lease-duration", "8s", "--lease-renew-interval", "1s")
	if err != nil {
		t.Fatal(err)
	}
	c := o.cfg
	if c.NodeName != "n1" || c.NodeIP != "192.0.2.9" || c.PodCIDR != "10.244.1.0/24" ||
		c.Labels["zone"] != "a" || c.Labels["disk"] != "ssd" || len(c.InsecureRegistries) != 2 ||
		c.ImageGCHighBytes != 10<<30 || len(c.AllowedHostPathPrefixes) != 2 || c.LeaseDuration != 8*time.Second ||
		c.LeaseNamespace != "bosun-node-lease" {
		t.Errorf("config %+v", c)
	}
	if len(c.CNIPluginDirs) != 2 || c.CNIPluginDirs[0] != "/usr/lib/cni" {
		t.Errorf("plugin dirs %v", c.CNIPluginDirs)
	}
	withListen(&o.cfg, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 10250})
	if o.cfg.Port != 10250 || o.cfg.Annotations["health.bosun.dev/endpoint"] != "127.0.0.1:10250" {
		t.Errorf("listen on loopback: port %d annotations %v", o.cfg.Port, o.cfg.Annotations)
	}
	o.cfg.Annotations = nil
	withListen(&o.cfg, &net.TCPAddr{IP: net.IPv4zero, Port: 11250})
	if o.cfg.Port != 11250 || o.cfg.Annotations != nil {
		t.Errorf("listen on all addresses: port %d annotations %v", o.cfg.Port, o.cfg.Annotations)
	}
}

func TestAPICallers(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"bosun-apiserver"}},
		{[]string{"--api-callers", "a,b", "--api-callers", "c"}, []string{"a", "b", "c"}},
		{[]string{"--api-callers", "*"}, nil},
	} {
		o, err := parse(tc.args...)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(o.apiCallers, tc.want) {
			t.Errorf("%v: callers %v, want %v", tc.args, o.apiCallers, tc.want)
		}
	}
}

func TestFlagsRefuseBadValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--pod-cidr", "10.0.0.0"}, "--pod-cidr"},
		{[]string{"--node-ip", "not-an-ip"}, `--node-ip: "not-an-ip" is not an IP address`},
		{[]string{"--node-labels", "novalue"}, `--node-labels: "novalue" is not key=value`},
		{[]string{"--image-gc-high-threshold", "lots"}, `--image-gc-high-threshold: "lots"`},
		{[]string{"--lease-duration", "2s", "--lease-renew-interval", "5s"}, "--lease-renew-interval (5s) must be positive and shorter than --lease-duration (2s)"},
		{[]string{"--crash-backoff-base", "0s"}, "--crash-backoff-base (0s) must be positive"},
		{[]string{"--max-pods", "0"}, "--max-pods: 0 is not positive"},
		{[]string{"--api-callers", "*,bosun-apiserver"}, "--api-callers: * allows everyone"},
	} {
		_, err := parse(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
		}
	}
}
