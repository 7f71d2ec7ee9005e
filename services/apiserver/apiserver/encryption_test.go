package apiserver_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/services/apiserver/apiserver"
)

// The etcd prefixes of secrets and config maps in the default namespace.
const (
	secretsPrefix    = "/bosun/core/secrets/default/"
	configMapsPrefix = "/bosun/core/configmaps/default/"
)

// encryptionKey is a named aesgcm key of the test configurations.
type encryptionKey struct{ name, secret string }

func newEncryptionKey(name string, seed byte) encryptionKey {
	return encryptionKey{name, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{seed}, 32))}
}

// writeEncryptionConfig writes a configuration whose first provider is aesgcm
// with keys (in order), followed by identity when withIdentity.
func writeEncryptionConfig(t *testing.T, withIdentity bool, keys ...encryptionKey) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aesgcm:\n      keys:\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "      - name: %s\n        secret: %s\n", k.name, k.secret)
	}
	if withIdentity {
		b.WriteString("  - identity: {}\n")
	}
	path := filepath.Join(t.TempDir(), "encryption.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func withEncryption(path string) serverOption {
	return func(c *apiserver.Config) { c.EncryptionProviderConfig = path }
}

func secret(name, password string) *corev1.Secret {
	return &corev1.Secret{
		Metadata:   &metav1.ObjectMeta{Name: name, Namespace: "default"},
		StringData: map[string]string{"password": password},
	}
}

// rawValues returns the stored values under an etcd prefix by key.
func rawValues(t *testing.T, c *clientv3.Client, prefix string) map[string][]byte {
	t.Helper()
	resp, err := c.Get(ctxT(t), prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, kv := range resp.Kvs {
		out[string(kv.Key)] = kv.Value
	}
	return out
}

func wantPassword(t *testing.T, ctx context.Context, secrets *client.Resource[*corev1.Secret], name, password string) {
	t.Helper()
	s, err := secrets.Get(ctx, "default", name)
	if err != nil {
		t.Fatalf("get secret %s: %v", name, err)
	}
	if got := string(s.Data["password"]); got != password {
		t.Fatalf("secret %s password = %q, want %q", name, got, password)
	}
}

func TestSecretsEncryptedAtRest(t *testing.T) {
	k1 := newEncryptionKey("k1", 1)
	ts := startServer(t, "", withEncryption(writeEncryptionConfig(t, true, k1)))
	ctx := ctxT(t)
	secrets := client.For[*corev1.Secret](ts.conn)
	cms := client.For[*corev1.ConfigMap](ts.conn)

	w, err := secrets.Watch(ctx, client.WatchOptions{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	const password = "hunter2-plaintext"
	created, err := secrets.Create(ctx, secret("db", password))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Create(ctx, configMap("default", "settings", map[string]string{"color": "plainly-visible"})); err != nil {
		t.Fatal(err)
	}

	raw := rawValues(t, ts.Etcd(), secretsPrefix)[secretsPrefix+"db"]
	if !bytes.HasPrefix(raw, []byte("k8s:enc:aesgcm:v1:k1:")) {
		t.Errorf("stored secret %q lacks the aesgcm k1 prefix", raw)
	}
	if bytes.Contains(raw, []byte(password)) || bytes.Contains(raw, []byte("password")) {
		t.Errorf("stored secret contains the plaintext: %q", raw)
	}
	wantPassword(t, ctx, secrets, "db", password)
	list, err := secrets.List(ctx, client.ListOptions{Namespace: "default"})
	if err != nil || len(list.Items) != 1 || string(list.Items[0].Data["password"]) != password {
		t.Fatalf("list = %v, %v", list, err)
	}
	ev, err := w.Next()
	if err != nil || ev.Object.GetMetadata().GetName() != "db" || string(ev.Object.Data["password"]) != password {
		t.Fatalf("watch event = %v, %v; want the decrypted secret", ev, err)
	}

	// An update is encrypted too.
	created.Data = map[string][]byte{"password": []byte("second-" + password)}
	if _, err := secrets.Update(ctx, created); err != nil {
		t.Fatal(err)
	}
	raw = rawValues(t, ts.Etcd(), secretsPrefix)[secretsPrefix+"db"]
	if !bytes.HasPrefix(raw, []byte("k8s:enc:aesgcm:v1:k1:")) || bytes.Contains(raw, []byte("second-")) {
		t.Errorf("updated secret stored as %q", raw)
	}
	wantPassword(t, ctx, secrets, "db", "second-"+password)

	// Other kinds are stored as before.
	cmRaw := rawValues(t, ts.Etcd(), configMapsPrefix)[configMapsPrefix+"settings"]
	if bytes.HasPrefix(cmRaw, []byte("k8s:enc:")) || !bytes.Contains(cmRaw, []byte("plainly-visible")) {
		t.Errorf("config map stored as %q; want its plain encoding", cmRaw)
	}
}

func TestSecretsPlaintextWithoutEncryptionConfig(t *testing.T) {
	ts := startServer(t, "")
	ctx := ctxT(t)
	secrets := client.For[*corev1.Secret](ts.conn)
	if _, err := secrets.Create(ctx, secret("db", "visible-password")); err != nil {
		t.Fatal(err)
	}
	raw := rawValues(t, ts.Etcd(), secretsPrefix)[secretsPrefix+"db"]
	if bytes.HasPrefix(raw, []byte("k8s:enc:")) || !bytes.Contains(raw, []byte("visible-password")) {
		t.Errorf("secret stored as %q; want its plain encoding", raw)
	}
	wantPassword(t, ctx, secrets, "db", "visible-password")
}

// TestSecretKeyRotation follows the rotation procedure: plaintext secrets,
// then encryption with k1 (identity kept to read the plaintext ones), then k2
// added first, then k1 removed. Each start rewrites what is not under the
// first key.
func TestSecretKeyRotation(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := newEncryptionKey("k1", 1), newEncryptionKey("k2", 2)
	passwords := map[string]string{}

	// Plaintext first.
	ts := startServer(t, dir)
	ctx := ctxT(t)
	for i := range 3 {
		name := fmt.Sprintf("plain-%d", i)
		passwords[name] = "pw-" + name
		if _, err := client.For[*corev1.Secret](ts.conn).Create(ctx, secret(name, passwords[name])); err != nil {
			t.Fatal(err)
		}
	}
	ts.stop(t)

	phase := func(identity bool, keys []encryptionKey, create string) *testServer {
		t.Helper()
		ts := startServer(t, dir, withEncryption(writeEncryptionConfig(t, identity, keys...)))
		secrets := client.For[*corev1.Secret](ts.conn)
		if create != "" {
			passwords[create] = "pw-" + create
			if _, err := secrets.Create(ctx, secret(create, passwords[create])); err != nil {
				t.Fatal(err)
			}
		}
		// The start's rewrite moves every secret under the first key.
		want := []byte("k8s:enc:aesgcm:v1:" + keys[0].name + ":")
		deadline := time.Now().Add(30 * time.Second)
		for {
			var notYet []string
			for k, v := range rawValues(t, ts.Etcd(), secretsPrefix) {
				if !bytes.HasPrefix(v, want) {
					notYet = append(notYet, k)
				}
			}
			if len(notYet) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("secrets not rewritten under %s: %v", keys[0].name, notYet)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if n, err := ts.RewriteSecrets(ctx); n != 0 || err != nil {
			t.Fatalf("RewriteSecrets after the start's rewrite = %d, %v; want nothing left", n, err)
		}
		for name, pw := range passwords {
			wantPassword(t, ctx, secrets, name, pw)
		}
		for k, v := range rawValues(t, ts.Etcd(), secretsPrefix) {
			if bytes.Contains(v, []byte("pw-")) {
				t.Errorf("%s stored with its plaintext: %q", k, v)
			}
		}
		return ts
	}
	phase(true, []encryptionKey{k1}, "enc-k1").stop(t)
	phase(false, []encryptionKey{k2, k1}, "enc-k2").stop(t)
	ts = phase(false, []encryptionKey{k2}, "")
	if len(passwords) != 5 {
		t.Fatalf("%d secrets, want 5", len(passwords))
	}
	ts.stop(t)
}

func TestSecretWithMissingKey(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := newEncryptionKey("k1", 1), newEncryptionKey("k2", 2)
	ts := startServer(t, dir, withEncryption(writeEncryptionConfig(t, false, k1)))
	ctx := ctxT(t)
	if _, err := client.For[*corev1.Secret](ts.conn).Create(ctx, secret("db", "pw-db")); err != nil {
		t.Fatal(err)
	}
	if _, err := client.For[*corev1.ConfigMap](ts.conn).Create(ctx, configMap("default", "settings", map[string]string{"a": "b"})); err != nil {
		t.Fatal(err)
	}
	before := rawValues(t, ts.Etcd(), secretsPrefix)[secretsPrefix+"db"]
	ts.stop(t)

	for _, c := range []struct {
		name string
		opts []serverOption
		want string
	}{
		{"key removed", []serverOption{withEncryption(writeEncryptionConfig(t, true, k2))},
			`aesgcm key "k1", which the encryption configuration does not list`},
		{"no configuration", nil, `aesgcm key "k1", but the apiserver has no --encryption-provider-config`},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The apiserver starts and serves; only the undecodable secret fails.
			ts := startServer(t, dir, c.opts...)
			defer ts.stop(t)
			secrets := client.For[*corev1.Secret](ts.conn)
			_, err := secrets.Get(ctx, "default", "db")
			if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), secretsPrefix+"db") {
				t.Fatalf("get = %v; want Internal naming the etcd key and: %s", err, c.want)
			}
			if _, err := secrets.List(ctx, client.ListOptions{Namespace: "default"}); status.Code(err) != codes.Internal || !strings.Contains(err.Error(), `"k1"`) {
				t.Fatalf("list = %v; want Internal naming key k1", err)
			}
			if _, err := client.For[*corev1.ConfigMap](ts.conn).Get(ctx, "default", "settings"); err != nil {
				t.Fatalf("config map: %v", err)
			}
			if c.opts != nil {
				if n, err := ts.RewriteSecrets(ctx); n != 0 || err == nil || !strings.Contains(err.Error(), secretsPrefix+"db") || !strings.Contains(err.Error(), `"k1"`) {
					t.Fatalf("RewriteSecrets = %d, %v; want an error naming the secret and key k1", n, err)
				}
			}
			// A new secret is still written (and read) with the current key.
			if _, err := secrets.Create(ctx, secret("new-"+strings.ReplaceAll(c.name, " ", "-"), "pw")); err != nil {
				t.Fatal(err)
			}
			if after := rawValues(t, ts.Etcd(), secretsPrefix)[secretsPrefix+"db"]; !bytes.Equal(after, before) {
				t.Fatal("the undecodable secret's stored value changed")
			}
		})
	}
}

func TestBadEncryptionConfigRefusedAtStart(t *testing.T) {
	good := newEncryptionKey("k1", 1)
	head := "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
	providers := func(p string) string { return head + "- resources: [secrets]\n  providers:\n" + p }
	key := func(name, secret string) string {
		return "      - name: " + name + "\n        secret: " + secret + "\n"
	}
	cases := []struct{ name, file, want string }{
		{"unknown provider", providers("  - aescbc:\n      keys:\n" + key("k1", good.secret)),
			`resources[0].providers[0]: Unsupported value: "aescbc"`},
		{"wrong key length", providers("  - aesgcm:\n      keys:\n" + key("k1", base64.StdEncoding.EncodeToString([]byte("short")))),
			"resources[0].providers[0].aesgcm.keys[0].secret: Invalid value: must be 32 bytes once base64-decoded, not 5"},
		{"bad base64", providers("  - aesgcm:\n      keys:\n" + key("k1", "not-base64!")),
			"resources[0].providers[0].aesgcm.keys[0].secret: Invalid value: not valid base64"},
		{"duplicate key names", providers("  - aesgcm:\n      keys:\n" + key("k1", good.secret) + key("k1", good.secret)),
			`resources[0].providers[0].aesgcm.keys[1].name: Invalid value: "k1": duplicate key name`},
		{"resources other than secrets", head + "- resources: [configmaps]\n  providers:\n  - identity: {}\n",
			`resources[0].resources[0]: Unsupported value: "configmaps"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "encryption.yaml")
			if err := os.WriteFile(path, []byte(c.file), 0o600); err != nil {
				t.Fatal(err)
			}
			dataDir := t.TempDir()
			// Secure, so that a start would make certificates in the data dir.
			s, err := apiserver.New(ctxT(t), apiserver.Config{
				Listen: "127.0.0.1:0", DataDir: dataDir, Authenticate: true, EncryptionProviderConfig: path,
			})
			if err == nil {
				t.Fatalf("apiserver started with %s: %v", c.name, s.Addr())
			}
			for _, w := range []string{"--encryption-provider-config", path, c.want} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if entries, _ := os.ReadDir(dataDir); len(entries) != 0 {
				t.Errorf("the apiserver wrote %v before checking the configuration", entries)
			}
		})
	}
	_, err := apiserver.New(ctxT(t), apiserver.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Insecure: true,
		EncryptionProviderConfig: filepath.Join(t.TempDir(), "missing.yaml")})
	if err == nil || !strings.Contains(err.Error(), "--encryption-provider-config") || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file: %v", err)
	}
}
