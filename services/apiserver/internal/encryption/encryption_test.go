package encryption

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// keyB64 returns a deterministic base64 key of n bytes.
func keyB64(seed byte, n int) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{seed}, n))
}

// configYAML builds a configuration for secrets from provider items.
func configYAML(providers ...string) string {
	var b strings.Builder
	b.WriteString("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n")
	for _, p := range providers {
		b.WriteString(p)
	}
	return b.String()
}

func aesgcmYAML(names ...string) string {
	var b strings.Builder
	b.WriteString("  - aesgcm:\n      keys:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "      - name: %s\n        secret: %s\n", n, keyB64(n[len(n)-1], KeySize))
	}
	return b.String()
}

const identityYAML = "  - identity: {}\n"

func mustTransformer(t *testing.T, yaml string) *Transformer {
	t.Helper()
	cfg, err := Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, yaml)
	}
	return cfg.Transformer(Secrets)
}

const etcdKey = "/bosun/core/secrets/default/db"

func TestParseRefusesBadConfigs(t *testing.T) {
	head := "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
	cases := []struct {
		name, yaml string
		want       []string // substrings of the error
	}{
		{"unknown provider", configYAML("  - aescbc:\n      keys: []\n"),
			[]string{`resources[0].providers[0]: Unsupported value: "aescbc"`, `"aesgcm"`, `"identity"`}},
		{"kms provider", configYAML("  - kms: {name: x}\n"), []string{`resources[0].providers[0]: Unsupported value: "kms"`}},
		{"key too short", configYAML("  - aesgcm:\n      keys:\n      - name: k1\n        secret: " + keyB64(1, 16) + "\n"),
			[]string{`resources[0].providers[0].aesgcm.keys[0].secret`, "must be 32 bytes", "not 16"}},
		{"key too long", configYAML("  - aesgcm:\n      keys:\n      - name: k1\n        secret: " + keyB64(1, 33) + "\n"),
			[]string{`aesgcm.keys[0].secret`, "not 33"}},
		{"bad base64", configYAML("  - aesgcm:\n      keys:\n      - name: k1\n        secret: 'not*base64!'\n"),
			[]string{`resources[0].providers[0].aesgcm.keys[0].secret`, "not valid base64"}},
		{"missing secret", configYAML("  - aesgcm:\n      keys:\n      - name: k1\n"),
			[]string{`aesgcm.keys[0].secret: Required value`}},
		{"duplicate key names", configYAML(aesgcmYAML("k1", "k1")),
			[]string{`resources[0].providers[0].aesgcm.keys[1].name`, `"k1"`, "duplicate key name", "keys[0]"}},
		{"duplicate key names across providers", configYAML(aesgcmYAML("k1"), aesgcmYAML("k2", "k1")),
			[]string{`resources[0].providers[1].aesgcm.keys[1].name`, "duplicate key name"}},
		{"missing key name", configYAML("  - aesgcm:\n      keys:\n      - secret: " + keyB64(1, 32) + "\n"),
			[]string{`aesgcm.keys[0].name: Required value`}},
		{"key name with a colon", configYAML(aesgcmYAML("a:1")), []string{`aesgcm.keys[0].name`, "':'"}},
		{"no keys", configYAML("  - aesgcm:\n      keys: []\n"), []string{`resources[0].providers[0].aesgcm.keys: Required value`}},
		{"unknown key field", configYAML("  - aesgcm:\n      keys:\n      - name: k1\n        secret: " + keyB64(1, 32) + "\n        size: 32\n"),
			[]string{`aesgcm.keys[0].size: Forbidden: unknown field`}},
		{"configmaps", configYAML(identityYAML) + "- resources: [configmaps]\n  providers:\n  - identity: {}\n",
			[]string{`resources[1].resources[0]`, `"configmaps"`, `supported values: "secrets"`}},
		{"secrets and pods", strings.Replace(configYAML(identityYAML), "[secrets]", "[secrets, pods]", 1),
			[]string{`resources[0].resources[1]`, `"pods"`}},
		{"secrets twice", configYAML(identityYAML) + "- resources: [secrets]\n  providers:\n  - identity: {}\n",
			[]string{`resources[1].resources[0]: Duplicate value: "secrets"`}},
		{"no resources", head, []string{"resources: Required value"}},
		{"no providers", head + "resources:\n- resources: [secrets]\n", []string{"resources[0].providers: Required value"}},
		{"no resource names", head + "resources:\n- providers:\n  - identity: {}\n", []string{"resources[0].resources: Required value"}},
		{"two providers in one item", configYAML("  - identity: {}\n    aesgcm: {keys: []}\n"), []string{"resources[0].providers[0]", "exactly one"}},
		{"identity twice", configYAML(identityYAML, identityYAML), []string{"resources[0].providers[1].identity: Duplicate value"}},
		{"identity with fields", configYAML("  - identity: {mode: on}\n"), []string{"resources[0].providers[0].identity.mode: Forbidden: unknown field"}},
		{"wrong apiVersion", strings.Replace(configYAML(identityYAML), "apiserver.config.k8s.io/v1", "v1", 1), []string{`apiVersion: Unsupported value: "v1"`}},
		{"wrong kind", strings.Replace(configYAML(identityYAML), "EncryptionConfiguration", "Config", 1), []string{`kind: Unsupported value: "Config"`}},
		{"unknown top-level field", configYAML(identityYAML) + "extra: 1\n", []string{"extra: Forbidden: unknown field; the fields here are apiVersion, kind, resources"}},
		{"not a mapping", "- secrets\n", []string{"must be a mapping"}},
		{"not YAML", "resources: [secrets\n", []string{"not a YAML or JSON"}},
		{"duplicate YAML field", configYAML(identityYAML) + "kind: EncryptionConfiguration\n", []string{"not a YAML or JSON"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse([]byte(c.yaml))
			if err == nil {
				t.Fatalf("Parse accepted it: %+v\n%s", cfg, c.yaml)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseErrorsNeverShowSecrets(t *testing.T) {
	short := keyB64(7, 16)
	_, err := Parse([]byte(configYAML("  - aesgcm:\n      keys:\n      - name: k1\n        secret: " + short + "\n")))
	if err == nil || strings.Contains(err.Error(), short) {
		t.Fatalf("error %v shows the secret %s", err, short)
	}
}

func TestLoadFileNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "enc.yaml")
	if err := os.WriteFile(path, []byte(configYAML("  - secretbox: {}\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `providers[0]: Unsupported value: "secretbox"`) {
		t.Fatalf("LoadFile: %v", err)
	}
	if _, err := LoadFile(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("LoadFile of a missing file succeeded")
	}
}

func TestEncryptsAndDecrypts(t *testing.T) {
	tr := mustTransformer(t, configYAML(aesgcmYAML("k1"), identityYAML))
	if got := tr.WriteKey(); got != "aesgcm key k1" {
		t.Errorf("WriteKey = %q", got)
	}
	plain := []byte("password=hunter2")
	v1, err := tr.TransformToStorage(plain, etcdKey)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(v1, []byte("k8s:enc:aesgcm:v1:k1:")) {
		t.Errorf("stored value %q lacks the aesgcm k1 prefix", v1)
	}
	if bytes.Contains(v1, plain) || bytes.Contains(v1, []byte("hunter2")) {
		t.Errorf("stored value %q contains the plaintext", v1)
	}
	v2, err := tr.TransformToStorage(plain, etcdKey)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(v1, v2) {
		t.Error("two encryptions of the same data are equal: the nonce is not random")
	}
	got, stale, err := tr.TransformFromStorage(v1, etcdKey)
	if err != nil || stale || !bytes.Equal(got, plain) {
		t.Errorf("TransformFromStorage = %q, stale %v, %v; want %q, fresh", got, stale, err, plain)
	}
	// Plaintext from before encryption is readable and stale.
	got, stale, err = tr.TransformFromStorage(plain, etcdKey)
	if err != nil || !stale || !bytes.Equal(got, plain) {
		t.Errorf("plaintext: %q, stale %v, %v; want it back, stale", got, stale, err)
	}
}

func TestRotation(t *testing.T) {
	plain := []byte("token")
	old := mustTransformer(t, configYAML(aesgcmYAML("k1")))
	v1, err := old.TransformToStorage(plain, etcdKey)
	if err != nil {
		t.Fatal(err)
	}
	// Step 1: the new key first, the old one still listed.
	both := mustTransformer(t, configYAML(aesgcmYAML("k2", "k1")))
	got, stale, err := both.TransformFromStorage(v1, etcdKey)
	if err != nil || !stale || !bytes.Equal(got, plain) {
		t.Fatalf("old value under [k2 k1]: %q, stale %v, %v; want it back, stale", got, stale, err)
	}
	v2, err := both.TransformToStorage(got, etcdKey)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(v2, []byte("k8s:enc:aesgcm:v1:k2:")) {
		t.Fatalf("rewritten value %q is not under k2", v2)
	}
	// Step 2: the old key removed.
	onlyNew := mustTransformer(t, configYAML(aesgcmYAML("k2")))
	if got, stale, err := onlyNew.TransformFromStorage(v2, etcdKey); err != nil || stale || !bytes.Equal(got, plain) {
		t.Errorf("new value under [k2]: %q, stale %v, %v", got, stale, err)
	}
	_, _, err = onlyNew.TransformFromStorage(v1, etcdKey)
	if !errors.Is(err, ErrKeyNotConfigured) || !strings.Contains(err.Error(), `aesgcm key "k1"`) {
		t.Errorf("old value under [k2]: %v; want an error naming key k1", err)
	}
	// Keys in a second aesgcm provider read too.
	split := mustTransformer(t, configYAML(aesgcmYAML("k2"), aesgcmYAML("k1")))
	if got, stale, err := split.TransformFromStorage(v1, etcdKey); err != nil || !stale || !bytes.Equal(got, plain) {
		t.Errorf("old value under [k2],[k1]: %q, stale %v, %v", got, stale, err)
	}
}

func TestIdentityFirstDecryptsAndWritesPlaintext(t *testing.T) {
	enc := mustTransformer(t, configYAML(aesgcmYAML("k1")))
	v, _ := enc.TransformToStorage([]byte("x"), etcdKey)
	off := mustTransformer(t, configYAML(identityYAML, aesgcmYAML("k1")))
	if got := off.WriteKey(); got != "identity" {
		t.Errorf("WriteKey = %q", got)
	}
	got, stale, err := off.TransformFromStorage(v, etcdKey)
	if err != nil || !stale || string(got) != "x" {
		t.Errorf("encrypted value under [identity k1]: %q, stale %v, %v; want it back, stale", got, stale, err)
	}
	if out, _ := off.TransformToStorage([]byte("x"), etcdKey); string(out) != "x" {
		t.Errorf("identity first wrote %q", out)
	}
	if _, stale, _ := off.TransformFromStorage([]byte("x"), etcdKey); stale {
		t.Error("plaintext under identity first is stale")
	}
}

func TestRefusals(t *testing.T) {
	tr := mustTransformer(t, configYAML(aesgcmYAML("k1")))
	v, err := tr.TransformToStorage([]byte("secret data"), etcdKey)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(v)
	tampered[len(tampered)-1] ^= 1
	cases := []struct {
		name  string
		tr    *Transformer
		value []byte
		key   string
		want  string
	}{
		{"plaintext without identity", tr, []byte("\x0a\x03abc"), etcdKey, "no identity provider"},
		{"another etcd key", tr, v, "/bosun/core/secrets/default/other", `does not decrypt with aesgcm key "k1"`},
		{"tampered", tr, tampered, etcdKey, `does not decrypt with aesgcm key "k1"`},
		{"truncated", tr, v[:len("k8s:enc:aesgcm:v1:k1:")+4], etcdKey, "truncated"},
		{"other provider", tr, []byte("k8s:enc:kms:v2:k1:abc"), etcdKey, `provider "kms" version "v2"`},
		{"no key name", tr, []byte("k8s:enc:aesgcm"), etcdKey, "no provider, version and key name"},
		{"other secret under the same name", mustTransformer(t, strings.Replace(configYAML(aesgcmYAML("k1")), keyB64('1', KeySize), keyB64('9', KeySize), 1)),
			v, etcdKey, `does not decrypt with aesgcm key "k1"`},
		{"no configuration", Unconfigured(), v, etcdKey, `aesgcm key "k1", but the apiserver has no --encryption-provider-config`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, _, err := c.tr.TransformFromStorage(c.value, c.key)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("TransformFromStorage = %q, %v; want an error containing %q", got, err, c.want)
			}
			if got != nil {
				t.Errorf("returned data %q with the error", got)
			}
		})
	}
}

func TestUnconfiguredIsIdentity(t *testing.T) {
	var cfg *Config
	tr := cfg.Transformer(Secrets)
	out, err := tr.TransformToStorage([]byte("plain"), etcdKey)
	if err != nil || string(out) != "plain" {
		t.Fatalf("TransformToStorage = %q, %v", out, err)
	}
	got, stale, err := tr.TransformFromStorage(out, etcdKey)
	if err != nil || stale || string(got) != "plain" {
		t.Fatalf("TransformFromStorage = %q, %v, %v", got, stale, err)
	}
}
