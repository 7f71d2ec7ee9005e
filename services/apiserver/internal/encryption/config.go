// Package encryption encrypts Secrets at rest: it reads the apiserver's
// --encryption-provider-config (a Kubernetes EncryptionConfiguration limited
// to the secrets resource and the aesgcm and identity providers) and turns it
// into a storage.Transformer.
//
// The first provider writes; every provider listed reads. An encrypted value
// is the prefix "k8s:enc:aesgcm:v1:<key name>:", a random 12-byte nonce, and
// the AES-256-GCM sealed object authenticated with its etcd key, so a value
// copied to another key does not decrypt. Values without the prefix are
// plaintext and read only while the identity provider is listed.
//
// A key is rotated by adding a new key first, restarting the apiservers (each
// rewrites the Secrets not under the first key, see storage.Store.Rewrite),
// then removing the old key.
package encryption

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// The configuration file's apiVersion and kind.
const (
	APIVersion = "apiserver.config.k8s.io/v1"
	Kind       = "EncryptionConfiguration"
)

// Resources that can be encrypted.
const Secrets = "secrets"

// Provider names.
const (
	AESGCM   = "aesgcm"
	Identity = "identity"
)

// KeySize is the length of an aesgcm key: AES-256.
const KeySize = 32

// Config is a parsed encryption configuration: a transformer per resource.
type Config struct {
	resources map[string]*Transformer
}

// LoadFile reads and checks an encryption configuration file.
func LoadFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Transformer returns the transformer of a resource ("secrets"). A resource
// the configuration does not list is stored as plaintext (Unconfigured).
func (c *Config) Transformer(resource string) *Transformer {
	if c != nil {
		if t, ok := c.resources[resource]; ok {
			return t
		}
	}
	return Unconfigured()
}

// Parse checks an encryption configuration (YAML or JSON) strictly. Every
// problem is reported with the path of its field, for example
// `resources[0].providers[0].aesgcm.keys[1].secret: Invalid value: ...: must be 32 bytes`.
func Parse(data []byte) (*Config, error) {
	var top any
	if err := yaml.UnmarshalStrict(data, &top); err != nil {
		return nil, fmt.Errorf("not a YAML or JSON encryption configuration: %w", err)
	}
	if _, ok := top.(map[string]any); !ok {
		return nil, errors.New("the file must be a mapping with apiVersion, kind and resources")
	}
	p := parser{names: map[string]*field.Path{}}
	cfg := p.config(top)
	if len(p.errs) > 0 {
		return nil, p.errs.ToAggregate()
	}
	return cfg, nil
}

type parser struct {
	errs  field.ErrorList
	names map[string]*field.Path // key names seen, for duplicates across providers
}

// object checks that v is a mapping with only the allowed fields.
func (p *parser) object(v any, path *field.Path, allowed ...string) (map[string]any, bool) {
	if v == nil {
		return map[string]any{}, true
	}
	m, ok := v.(map[string]any)
	if !ok {
		p.errs = append(p.errs, field.TypeInvalid(path, field.OmitValueType{}, "must be a mapping"))
		return nil, false
	}
	for k := range m {
		found := false
		for _, a := range allowed {
			found = found || k == a
		}
		if !found {
			detail := "unknown field"
			if len(allowed) > 0 {
				detail += "; the fields here are " + strings.Join(allowed, ", ")
			}
			p.errs = append(p.errs, field.Forbidden(path.Child(k), detail))
		}
	}
	return m, true
}

func (p *parser) list(v any, path *field.Path) []any {
	if v == nil {
		return nil
	}
	l, ok := v.([]any)
	if !ok {
		p.errs = append(p.errs, field.TypeInvalid(path, field.OmitValueType{}, "must be a list"))
	}
	return l
}

func (p *parser) str(v any, path *field.Path) string {
	if v == nil {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		p.errs = append(p.errs, field.TypeInvalid(path, field.OmitValueType{}, "must be a string"))
	}
	return s
}

func (p *parser) config(v any) *Config {
	top, _ := p.object(v, nil, "apiVersion", "kind", "resources")
	if av := p.str(top["apiVersion"], field.NewPath("apiVersion")); av != APIVersion {
		p.errs = append(p.errs, field.NotSupported(field.NewPath("apiVersion"), av, []string{APIVersion}))
	}
	if k := p.str(top["kind"], field.NewPath("kind")); k != Kind {
		p.errs = append(p.errs, field.NotSupported(field.NewPath("kind"), k, []string{Kind}))
	}
	cfg := &Config{resources: map[string]*Transformer{}}
	resPath := field.NewPath("resources")
	entries := p.list(top["resources"], resPath)
	if len(entries) == 0 {
		p.errs = append(p.errs, field.Required(resPath, "list the secrets resource and its providers"))
	}
	for i, e := range entries {
		path := resPath.Index(i)
		entry, ok := p.object(e, path, "resources", "providers")
		if !ok {
			continue
		}
		t := p.providers(entry["providers"], path.Child("providers"))
		names := p.list(entry["resources"], path.Child("resources"))
		if len(names) == 0 {
			p.errs = append(p.errs, field.Required(path.Child("resources"), "name the resources these providers encrypt: secrets"))
		}
		for j, n := range names {
			rp := path.Child("resources").Index(j)
			name := p.str(n, rp)
			switch {
			case name != Secrets:
				p.errs = append(p.errs, field.NotSupported(rp, name, []string{Secrets}))
			case cfg.resources[name] != nil:
				p.errs = append(p.errs, field.Duplicate(rp, name))
			case t != nil:
				cfg.resources[name] = t
			}
		}
	}
	return cfg
}

// providers parses one resource entry's providers into its transformer.
func (p *parser) providers(v any, path *field.Path) *Transformer {
	items := p.list(v, path)
	if len(items) == 0 {
		p.errs = append(p.errs, field.Required(path, "list at least one provider: aesgcm or identity"))
		return nil
	}
	t := &Transformer{keys: map[string]*aesgcmKey{}, configured: true}
	nerr := len(p.errs)
	for i, item := range items {
		ip := path.Index(i)
		m, ok := item.(map[string]any)
		if !ok || len(m) != 1 {
			p.errs = append(p.errs, field.Invalid(ip, field.OmitValueType{}, "each provider is a mapping with exactly one of aesgcm or identity"))
			continue
		}
		for name, body := range m {
			switch name {
			case AESGCM:
				keys := p.aesgcm(body, ip.Child(AESGCM))
				for _, k := range keys {
					t.keys[k.name] = k
				}
				if i == 0 && len(keys) > 0 {
					t.write = keys[0]
				}
			case Identity:
				if _, ok := p.object(body, ip.Child(Identity)); !ok {
					continue
				}
				if t.identity {
					p.errs = append(p.errs, field.Duplicate(ip.Child(Identity), field.OmitValueType{}))
				}
				t.identity = true
			default:
				p.errs = append(p.errs, field.NotSupported(ip, name, []string{AESGCM, Identity}))
			}
		}
	}
	if len(p.errs) > nerr {
		return nil
	}
	return t
}

func (p *parser) aesgcm(v any, path *field.Path) []*aesgcmKey {
	body, ok := p.object(v, path, "keys")
	if !ok {
		return nil
	}
	kp := path.Child("keys")
	items := p.list(body["keys"], kp)
	if len(items) == 0 {
		p.errs = append(p.errs, field.Required(kp, "list at least one key with a name and a base64 secret of 32 bytes"))
	}
	var out []*aesgcmKey
	for i, item := range items {
		ip := kp.Index(i)
		m, ok := p.object(item, ip, "name", "secret")
		if !ok {
			continue
		}
		name := p.str(m["name"], ip.Child("name"))
		switch {
		case name == "":
			p.errs = append(p.errs, field.Required(ip.Child("name"), "every key needs a name; it is stored with each value the key encrypts"))
		case strings.ContainsAny(name, ": \t\n"):
			p.errs = append(p.errs, field.Invalid(ip.Child("name"), name, "must not contain ':' or white space"))
		case p.names[name] != nil:
			p.errs = append(p.errs, field.Invalid(ip.Child("name"), name, "duplicate key name: "+p.names[name].String()+" has it already; each key needs its own name"))
		default:
			p.names[name] = ip
		}
		sp := ip.Child("secret")
		secret := p.str(m["secret"], sp)
		if secret == "" {
			p.errs = append(p.errs, field.Required(sp, "a base64-encoded 32-byte key, e.g. from `head -c 32 /dev/urandom | base64`"))
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(secret)
		if err != nil {
			p.errs = append(p.errs, field.Invalid(sp, field.OmitValueType{}, "not valid base64: "+err.Error()))
			continue
		}
		if len(raw) != KeySize {
			p.errs = append(p.errs, field.Invalid(sp, field.OmitValueType{}, fmt.Sprintf("must be %d bytes once base64-decoded, not %d", KeySize, len(raw))))
			continue
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			p.errs = append(p.errs, field.Invalid(sp, field.OmitValueType{}, err.Error()))
			continue
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			p.errs = append(p.errs, field.Invalid(sp, field.OmitValueType{}, err.Error()))
			continue
		}
		out = append(out, &aesgcmKey{name: name, aead: aead, prefix: []byte(prefix + AESGCM + ":v1:" + name + ":")})
	}
	return out
}

// hasPrefix reports whether value starts with the encrypted-value prefix.
func hasPrefix(value []byte) bool { return bytes.HasPrefix(value, []byte(prefix)) }
