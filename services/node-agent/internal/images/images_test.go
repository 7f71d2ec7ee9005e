package images_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"bosun.dev/services/node-agent/internal/images"
	"bosun.dev/services/node-agent/internal/runtime"
	"bosun.dev/services/node-agent/internal/runtime/fake"
)

func TestNormalizeAndDefaultPolicy(t *testing.T) {
	for _, tc := range []struct{ in, norm, policy string }{
		{"nginx", "docker.io/library/nginx:latest", "Always"},
		{"nginx:1.27", "docker.io/library/nginx:1.27", "IfNotPresent"},
		{"team/app", "docker.io/team/app:latest", "Always"},
		{"127.0.0.1:5000/hello:v1", "127.0.0.1:5000/hello:v1", "IfNotPresent"},
		{"localhost/hello", "localhost/hello:latest", "Always"},
		{"reg.example.com/a/b@sha256:abcd", "reg.example.com/a/b@sha256:abcd", "IfNotPresent"},
	} {
		if got := images.Normalize(tc.in); got != tc.norm {
			t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.norm)
		}
		if got := images.DefaultPolicy(tc.in); got != tc.policy {
			t.Errorf("DefaultPolicy(%q) = %q, want %q", tc.in, got, tc.policy)
		}
	}
	if h := images.Host("127.0.0.1:5000/hello:v1"); h != "127.0.0.1:5000" {
		t.Errorf("Host = %q", h)
	}
}

func TestPullPolicies(t *testing.T) {
	ctx := context.Background()
	rt := fake.New()
	m := images.New(rt, images.Options{})
	const ref = "reg.local/app:v1"
	if _, err := m.Ensure(ctx, ref, "Never"); !errors.Is(err, images.ErrNeverPull) {
		t.Errorf("Never with the image absent: %v", err)
	}
	if _, err := m.Ensure(ctx, ref, "IfNotPresent"); err != nil || rt.Pulls() != 1 {
		t.Fatalf("IfNotPresent: %v, %d pulls", err, rt.Pulls())
	}
	if _, err := m.Ensure(ctx, ref, "IfNotPresent"); err != nil || rt.Pulls() != 1 {
		t.Errorf("IfNotPresent pulled a present image: %v, %d pulls", err, rt.Pulls())
	}
	if _, err := m.Ensure(ctx, ref, "Never"); err != nil {
		t.Errorf("Never with the image present: %v", err)
	}
	if _, err := m.Ensure(ctx, ref, "Always"); err != nil || rt.Pulls() != 2 {
		t.Errorf("Always: %v, %d pulls", err, rt.Pulls())
	}
}

func TestGCRemovesUnusedImagesLeastRecentlyUsedFirst(t *testing.T) {
	ctx := context.Background()
	rt := fake.New()
	now := time.Unix(1000, 0)
	m := images.New(rt, images.Options{GCHighBytes: 3 << 20, GCLowBytes: 2 << 20, Now: func() time.Time { return now }})
	for _, ref := range []string{"r.local/a:1", "r.local/b:1", "r.local/c:1", "r.local/d:1"} {
		now = now.Add(time.Second)
		if _, err := m.Ensure(ctx, ref, "IfNotPresent"); err != nil { // 1 MiB each
			t.Fatal(err)
		}
	}
	// a is the oldest but in use; b and c go, d (newest) stays.
	if err := rt.CreateContainer(ctx, runtime.ContainerSpec{ID: "x", PodUID: "p", Name: "x", Image: "r.local/a:1"}); err != nil {
		t.Fatal(err)
	}
	removed, err := m.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"r.local/b:1", "r.local/c:1"}; !slices.Equal(removed, want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	if removed, _ := m.GC(ctx); len(removed) != 0 {
		t.Errorf("below the threshold, GC removed %v", removed)
	}
}
