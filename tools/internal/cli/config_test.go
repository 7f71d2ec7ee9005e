package cli

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadConfigFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string
		want          ConfigFile
		wantErr       string
	}{
		{"full", "server: 127.0.0.1:6443\ninsecure: true\nnamespace: shop\nca: ca.pem\ncert: /etc/bosun/client.pem\nkey: keys/client-key.pem\n",
			ConfigFile{Server: "127.0.0.1:6443", Insecure: true, Namespace: "shop", CA: filepath.Join(dir, "ca.pem"),
				Cert: "/etc/bosun/client.pem", Key: filepath.Join(dir, "keys/client-key.pem")}, ""},
		{"empty", "", ConfigFile{}, ""},
		{"unknown key", "server: a:1\nnamspace: x\n", ConfigFile{}, `unknown field "namspace"`},
		{"wrong type", "insecure: maybe\n", ConfigFile{}, "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, dir, "config", tt.content)
			got, err := LoadConfigFile(p)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *got != tt.want {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
		})
	}
	if _, err := LoadConfigFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
}

func TestResolveSettings(t *testing.T) {
	home := t.TempDir()
	writeFile(t, home, "cfg", "server: from-file:1\nnamespace: filens\n")
	cfgPath := filepath.Join(home, "cfg")
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	homeFn := func() (string, error) { return home, nil }
	tests := []struct {
		name       string
		flags      globalFlags
		env        map[string]string
		wantServer string
		wantNS     string
		wantPath   string
		wantErr    string
	}{
		{"file from flag", globalFlags{configPath: cfgPath}, nil, "from-file:1", "filens", cfgPath, ""},
		{"file from env", globalFlags{}, map[string]string{"BOSUN_CONFIG": cfgPath}, "from-file:1", "filens", cfgPath, ""},
		{"flags win", globalFlags{configPath: cfgPath, server: "flag:2", namespace: "flagns"}, map[string]string{"BOSUN_SERVER": "env:3"}, "flag:2", "flagns", cfgPath, ""},
		{"env server beats file", globalFlags{configPath: cfgPath}, map[string]string{"BOSUN_SERVER": "env:3"}, "env:3", "filens", cfgPath, ""},
		{"missing default file with server", globalFlags{server: "flag:2"}, nil, "flag:2", "default", filepath.Join(home, ".bosun", "config"), ""},
		{"missing file without server", globalFlags{}, nil, "", "", "", "no server to talk to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := resolveSettings(tt.flags, env(tt.env), homeFn)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.Server != tt.wantServer || st.Namespace != tt.wantNS || st.ConfigPath != tt.wantPath {
				t.Errorf("got server %q namespace %q path %q", st.Server, st.Namespace, st.ConfigPath)
			}
		})
	}
}
