package encryption

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	"bosun.dev/services/apiserver/internal/storage"
)

// prefix starts every encrypted value: "k8s:enc:<provider>:v1:<key name>:".
const prefix = "k8s:enc:"

// ErrKeyNotConfigured is wrapped by the error of a value encrypted with a key
// the configuration does not list; the error names the key.
var ErrKeyNotConfigured = errors.New("encryption key not configured")

// aesgcmKey is one named AES-256-GCM key.
type aesgcmKey struct {
	name   string
	aead   cipher.AEAD
	prefix []byte // "k8s:enc:aesgcm:v1:<name>:"
}

// Transformer encrypts with the first provider and decrypts with any listed.
type Transformer struct {
	write      *aesgcmKey            // nil: the first provider is identity
	keys       map[string]*aesgcmKey // every aesgcm key, by name
	identity   bool                  // plaintext values are readable
	configured bool                  // from a configuration file
}

var _ storage.Transformer = (*Transformer)(nil)

// Unconfigured is the transformer of a resource without encryption: it
// stores plaintext and refuses encrypted values with an error naming their
// key, rather than handing out ciphertext as an object.
func Unconfigured() *Transformer {
	return &Transformer{identity: true, keys: map[string]*aesgcmKey{}}
}

// WriteKey names what new values are written with: "aesgcm key NAME" or
// "identity".
func (t *Transformer) WriteKey() string {
	if t.write == nil {
		return Identity
	}
	return AESGCM + " key " + t.write.name
}

// TransformToStorage encrypts data with the first provider's first key, bound
// to the etcd key; with identity first it returns data.
func (t *Transformer) TransformToStorage(data []byte, key string) ([]byte, error) {
	k := t.write
	if k == nil {
		return data, nil
	}
	nonceSize := k.aead.NonceSize()
	out := make([]byte, len(k.prefix)+nonceSize, len(k.prefix)+nonceSize+len(data)+k.aead.Overhead())
	copy(out, k.prefix)
	nonce := out[len(k.prefix):]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("making a nonce: %w", err)
	}
	return k.aead.Seal(out, nonce, data, []byte(key)), nil
}

// TransformFromStorage decrypts a value with the key its prefix names, or
// returns a plaintext value while identity is listed. It is stale unless it
// was written with the first provider's first key.
func (t *Transformer) TransformFromStorage(value []byte, key string) ([]byte, bool, error) {
	if !hasPrefix(value) {
		if !t.identity {
			return nil, false, errors.New("the stored value is not encrypted and the encryption configuration has no identity provider to read it (list `- identity: {}` last until every value is rewritten)")
		}
		return value, t.write != nil, nil
	}
	provider, version, name, ok := parsePrefix(value)
	if !ok {
		return nil, false, fmt.Errorf("the stored value starts with %q but has no provider, version and key name", prefix)
	}
	if provider != AESGCM || version != "v1" {
		return nil, false, fmt.Errorf("the stored value is encrypted by provider %q version %q, which Bosun does not support", provider, version)
	}
	k := t.keys[name]
	if k == nil {
		if !t.configured {
			return nil, false, fmt.Errorf("the stored value is encrypted with aesgcm key %q, but the apiserver has no --encryption-provider-config: %w", name, ErrKeyNotConfigured)
		}
		return nil, false, fmt.Errorf("the stored value is encrypted with aesgcm key %q, which the encryption configuration does not list: %w", name, ErrKeyNotConfigured)
	}
	sealed := value[len(k.prefix):]
	nonceSize := k.aead.NonceSize()
	if len(sealed) < nonceSize+k.aead.Overhead() {
		return nil, false, fmt.Errorf("the stored value encrypted with aesgcm key %q is truncated", name)
	}
	data, err := k.aead.Open(nil, sealed[:nonceSize], sealed[nonceSize:], []byte(key))
	if err != nil {
		return nil, false, fmt.Errorf("the stored value does not decrypt with aesgcm key %q: it was altered, stored under another etcd key, or the key's secret changed", name)
	}
	return data, k != t.write, nil
}

// parsePrefix splits "k8s:enc:<provider>:<version>:<name>:" off a value.
func parsePrefix(value []byte) (provider, version, name string, ok bool) {
	rest := value[len(prefix):]
	parts := make([]string, 0, 3)
	for range 3 {
		i := bytes.IndexByte(rest, ':')
		if i <= 0 {
			return "", "", "", false
		}
		parts = append(parts, string(rest[:i]))
		rest = rest[i+1:]
	}
	return parts[0], parts[1], parts[2], true
}
