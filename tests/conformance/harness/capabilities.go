package harness

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"
)

// Capabilities are the optional behaviours an implementation claims; the
// suites check each claimed one and skip the rest.
type Capabilities map[string]bool

// ParseCapabilities reads a comma-separated list such as
// "conditions,affinity". Every name must be one of known; "" claims none.
func ParseCapabilities(list string, known []string) (Capabilities, error) {
	caps := Capabilities{}
	for _, c := range strings.Split(list, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		ok := false
		for _, k := range known {
			ok = ok || k == c
		}
		if !ok {
			sorted := append([]string(nil), known...)
			sort.Strings(sorted)
			return nil, fmt.Errorf("unknown capability %q; known: %s", c, strings.Join(sorted, ", "))
		}
		caps[c] = true
	}
	return caps, nil
}

// Require skips t unless the implementation claims capability c.
func (caps Capabilities) Require(t *testing.T, c string) {
	t.Helper()
	if !caps[c] {
		t.Skipf("the implementation does not claim capability %q", c)
	}
}

// String lists the claimed capabilities, sorted.
func (caps Capabilities) String() string {
	var out []string
	for c := range caps {
		out = append(out, c)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "(none)"
	}
	return strings.Join(out, ",")
}

// FreePort returns a loopback address that was free a moment ago.
func FreePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
