package network

import (
	"context"
	"strings"
	"testing"
)

func TestResolvConfDropsLoopbackServers(t *testing.T) {
	got := string(ResolvConf([]byte("# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp.example\noptions ndots:2\n"), []string{"8.8.8.8"}))
	if got != "nameserver 10.0.0.2\nsearch corp.example\noptions ndots:2\n" {
		t.Errorf("got %q", got)
	}
	got = string(ResolvConf([]byte("nameserver 127.0.0.53\nsearch x\n"), []string{"8.8.8.8"}))
	if got != "search x\nnameserver 8.8.8.8\n" {
		t.Errorf("fallback: got %q", got)
	}
}

func TestHostsFile(t *testing.T) {
	h := string(HostsFile("web", "10.1.2.3"))
	if !strings.Contains(h, "127.0.0.1\tlocalhost\n") || !strings.Contains(h, "10.1.2.3\tweb\n") {
		t.Errorf("hosts %q", h)
	}
}

func TestFakeAllocatesAndReleases(t *testing.T) {
	f, err := NewFake("10.9.0.0/30")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := f.Setup(ctx, "p1", nil)
	if err != nil || a.IP != "10.9.0.2" {
		t.Fatalf("first: %v %v", a, err)
	}
	if again, _ := f.Setup(ctx, "p1", nil); again.IP != a.IP {
		t.Errorf("setup of a known id gave a new address %s", again.IP)
	}
	b, err := f.Setup(ctx, "p2", nil)
	if err != nil || b.IP != "10.9.0.3" {
		t.Fatalf("second: %v %v", b, err)
	}
	if _, err := f.Setup(ctx, "p3", nil); err == nil || !strings.Contains(err.Error(), "no free address in pod CIDR 10.9.0.0/30") {
		t.Errorf("exhausted: %v", err)
	}
	_ = f.Teardown(ctx, "p1", a)
	if c, err := f.Setup(ctx, "p3", nil); err != nil || c.IP != "10.9.0.2" {
		t.Errorf("released address not reused: %v %v", c, err)
	}
	if _, err := NewFake("nonsense"); err == nil {
		t.Error("bad CIDR accepted")
	}
}

func TestNewCNIRefusesBadOptions(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		opts CNIOptions
		want string
	}{
		{CNIOptions{PodCIDR: "10.0.0.0/24"}, "NetNSDir and IPAMDir are required"},
		{CNIOptions{PodCIDR: "bad", NetNSDir: dir, IPAMDir: dir}, `pod CIDR "bad"`},
		{CNIOptions{PodCIDR: "10.0.0.0/31", NetNSDir: dir, IPAMDir: dir}, "too small"},
		{CNIOptions{PodCIDR: "10.0.0.0/24", NetNSDir: dir, IPAMDir: dir, PluginDirs: []string{dir}}, `CNI plugin "bridge" not found`},
	} {
		if _, err := NewCNI(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.opts, err, tc.want)
		}
	}
}
