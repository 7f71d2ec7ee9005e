package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"

	"bosun.dev/pkg/client"
)

// ConfigFile is the YAML file, ~/.bosun/config by default, that says which
// cluster bosun talks to:
//
//	server: 127.0.0.1:6443
//	insecure: true
//	namespace: default
//	ca: ca.pem
//	cert: client.pem
//	key: client-key.pem
//
// Relative paths are relative to the file's directory.
type ConfigFile struct {
	Server    string `json:"server,omitempty"`
	Insecure  bool   `json:"insecure,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	CA        string `json:"ca,omitempty"`
	Cert      string `json:"cert,omitempty"`
	Key       string `json:"key,omitempty"`
}

// LoadConfigFile reads a config file strictly: an unknown key is an error. A
// missing file is reported with an error matching fs.ErrNotExist.
func LoadConfigFile(path string) (*ConfigFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cfg ConfigFile
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	for _, p := range []*string{&cfg.CA, &cfg.Cert, &cfg.Key} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	return &cfg, nil
}

// Settings are what one invocation uses, from flags, environment and config
// file in that order of precedence.
type Settings struct {
	ConfigFile
	// ConfigPath is the config file consulted (it may not exist).
	ConfigPath string
}

func (s *Settings) clientConfig() client.Config {
	return client.Config{Server: s.Server, Insecure: s.Insecure, CAFile: s.CA, CertFile: s.Cert, KeyFile: s.Key}
}

// resolveSettings merges flags, environment and config file. The file may be
// missing when the server is given by flag or environment.
func resolveSettings(flags globalFlags, getenv func(string) string, home func() (string, error)) (*Settings, error) {
	st := &Settings{ConfigPath: flags.configPath}
	if st.ConfigPath == "" {
		st.ConfigPath = getenv("BOSUN_CONFIG")
	}
	if st.ConfigPath == "" {
		dir, err := home()
		if err != nil {
			return nil, fmt.Errorf("finding the config file: %w", err)
		}
		st.ConfigPath = filepath.Join(dir, ".bosun", "config")
	}
	server := flags.server
	if server == "" {
		server = getenv("BOSUN_SERVER")
	}
	file, err := LoadConfigFile(st.ConfigPath)
	switch {
	case err == nil:
		st.ConfigFile = *file
	case errors.Is(err, fs.ErrNotExist) && server != "":
		// No file is fine: the server is known.
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("no server to talk to: set --server or $BOSUN_SERVER, or write %s", st.ConfigPath)
	default:
		return nil, err
	}
	if server != "" {
		st.Server = server
	}
	if flags.insecure {
		st.Insecure = true
	}
	if flags.namespace != "" {
		st.Namespace = flags.namespace
	}
	if st.Namespace == "" {
		st.Namespace = "default"
	}
	return st, nil
}
