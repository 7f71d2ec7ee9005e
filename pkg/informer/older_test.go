package informer

import "testing"

// One etcd transaction can change several keys at one revision; an event at
// the revision last applied must still be applied, only older ones dropped.
func TestOlder(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"4", "5", true},
		{"5", "5", false},
		{"6", "5", false},
		{"", "5", false},
		{"5", "", false},
	} {
		if got := older(tc.a, tc.b); got != tc.want {
			t.Errorf("older(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
