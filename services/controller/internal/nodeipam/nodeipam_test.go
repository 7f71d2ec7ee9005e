package nodeipam_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/services/controller/internal/nodeipam"
	"bosun.dev/services/controller/internal/testcluster"
)

func TestAllocatorNeverGivesABlockTwice(t *testing.T) {
	a, err := nodeipam.NewAllocator("10.244.0.0/22", 24)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Occupy("10.244.1.0/24") {
		t.Fatal("Occupy refused a block of the range")
	}
	seen := map[string]bool{"10.244.1.0/24": true}
	for range 3 {
		c, err := a.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		if seen[c] {
			t.Fatalf("%s given twice", c)
		}
		seen[c] = true
	}
	if _, err := a.Allocate(); err == nil || !strings.Contains(err.Error(), "no free") {
		t.Fatalf("fifth block of four: %v", err)
	}
	a.Release("10.244.2.0/24")
	if c, err := a.Allocate(); err != nil || c != "10.244.2.0/24" {
		t.Fatalf("after release: %s, %v", c, err)
	}
}

func TestAllocatorRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		cidr string
		mask int
		flag string
	}{
		{"10.0.0.0/33", 24, "--cluster-cidr"},
		{"not-a-cidr", 24, "--cluster-cidr"},
		{"10.0.0.0/16", 8, "--node-cidr-mask-size"},
		{"10.0.0.0/16", 40, "--node-cidr-mask-size"},
		{"fd00::/48", 112, "--node-cidr-mask-size"},
	} {
		if _, err := nodeipam.NewAllocator(tc.cidr, tc.mask); err == nil || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("NewAllocator(%q, %d) = %v, want an error naming %s", tc.cidr, tc.mask, err, tc.flag)
		}
	}
}

// Nodes registered before and after the controller starts, and after a
// restart of the controller, all get distinct pod CIDRs.
func TestNodesGetDistinctPodCIDRs(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	c.AddNode("a", nil, nil)
	c.AddNode("b", nil, nil)
	run := func() func() {
		cc := c.Context(nil)
		ctrl, err := nodeipam.New(cc, "10.244.0.0/16", 24)
		if err != nil {
			t.Fatal(err)
		}
		return testcluster.Run(t, cc, ctrl)
	}
	stop := run()
	c.AddNode("c", nil, nil)
	check := func(n int) {
		t.Helper()
		testcluster.Eventually(t, 20*time.Second, func() error {
			nodes, _, err := client.For[*corev1.Node](c.Conn).ListAll(context.Background(), client.ListOptions{})
			if err != nil {
				return err
			}
			seen := map[string]string{}
			for _, node := range nodes {
				cidr := node.GetSpec().GetPodCidr()
				if cidr == "" {
					return fmt.Errorf("node %s has no pod CIDR", node.Metadata.Name)
				}
				if other, dup := seen[cidr]; dup {
					t.Fatalf("nodes %s and %s share %s", other, node.Metadata.Name, cidr)
				}
				seen[cidr] = node.Metadata.Name
				if !strings.HasPrefix(cidr, "10.244.") || !strings.HasSuffix(cidr, "/24") {
					t.Fatalf("node %s got %s, outside 10.244.0.0/16 in /24s", node.Metadata.Name, cidr)
				}
			}
			if len(seen) != n {
				return fmt.Errorf("%d nodes with CIDRs, want %d", len(seen), n)
			}
			return nil
		})
	}
	check(3)
	stop()
	c.AddNode("d", nil, nil)
	run()
	check(4)
}
