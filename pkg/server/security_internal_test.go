package server

import (
	"strings"
	"testing"
)

func TestListenerSecurityIsRequiredUnlessInsecure(t *testing.T) {
	full := TLSFlags{CertFile: "s.crt", KeyFile: "s.key", ClientCAFile: "ca.crt"}
	for _, tc := range []struct {
		name     string
		insecure bool
		tls      TLSFlags
		want     string // "" for accepted
	}{
		{"mutual TLS", false, full, ""},
		{"nothing", false, TLSFlags{}, "--tls-cert-file, --tls-private-key-file and --client-ca-file are required"},
		{"no client CA", false, TLSFlags{CertFile: "s.crt", KeyFile: "s.key"}, "--client-ca-file are required"},
		{"no key", false, TLSFlags{CertFile: "s.crt", ClientCAFile: "ca.crt"}, "--tls-private-key-file"},
		{"insecure plaintext", true, TLSFlags{}, ""},
		{"insecure with TLS", true, full, ""},
	} {
		var f Flags
		f.APIServer.Insecure, f.TLS = tc.insecure, tc.tls
		err := f.checkListenerSecurity()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		case tc.want != "" && !strings.Contains(err.Error(), "--insecure"):
			t.Errorf("%s: %v does not name --insecure as the way out", tc.name, err)
		}
	}
}
