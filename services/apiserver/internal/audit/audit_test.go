package audit

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
)

func TestParsePolicy(t *testing.T) {
	p, err := ParsePolicy("default=None, Pod=Request,Event=Metadata")
	if err != nil {
		t.Fatal(err)
	}
	for kind, want := range map[string]Level{"Pod": LevelRequest, "Event": LevelMetadata, "Node": LevelNone} {
		if got := p.LevelOf(kind); got != want {
			t.Errorf("%s: %s, want %s", kind, got, want)
		}
	}
	if p, _ := ParsePolicy("Request"); p.LevelOf("Secret") != LevelMetadata || p.LevelOf("ConfigMap") != LevelRequest {
		t.Errorf("Request for all: Secret %s, ConfigMap %s", p.LevelOf("Secret"), p.LevelOf("ConfigMap"))
	}
	if p, _ := ParsePolicy(""); p.LevelOf("Pod") != LevelMetadata {
		t.Errorf("empty policy: %s", p.LevelOf("Pod"))
	}
	for _, bad := range []struct{ in, want string }{
		{"default=Everything", `level "Everything" of "default"`},
		{"Pod=request", `level "request" of "Pod"`},
		{"=Request", "empty kind"},
	} {
		if _, err := ParsePolicy(bad.in); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: err %v, want %q", bad.in, err, bad.want)
		}
	}
}

func TestLogNeverWritesSecretData(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, Policy{Default: LevelRequest, Kinds: map[string]Level{"Event": LevelNone}})
	secret := &corev1.Secret{Metadata: &metav1.ObjectMeta{Name: "db"}, Data: map[string][]byte{"pw": []byte("hunter2")}, StringData: map[string]string{"pw2": "swordfish"}}
	if err := l.Log(Event{User: "u", Verb: "create", Kind: "Secret", Name: "db", Code: "OK"}, &corev1.CreateSecretRequest{Secret: secret}); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{Metadata: &metav1.ObjectMeta{Name: "cm"}, Data: map[string]string{"k": "visible"}}
	if err := l.Log(Event{User: "u", Verb: "create", Kind: "ConfigMap", Name: "cm", Code: "OK"}, &corev1.CreateConfigMapRequest{ConfigMap: cm}); err != nil {
		t.Fatal(err)
	}
	if err := l.Log(Event{User: "u", Verb: "create", Kind: "Event", Code: "OK"}, nil); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, "hunter2") || strings.Contains(out, "aHVudGVyMg") || strings.Contains(out, "swordfish") {
		t.Fatalf("secret data in the audit log:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2 (Event is None):\n%s", len(lines), out)
	}
	var e Event
	if err := json.Unmarshal([]byte(lines[1]), &e); err != nil || e.Kind != "ConfigMap" || !strings.Contains(string(e.Request), "visible") {
		t.Fatalf("ConfigMap line at Request level: %+v %v", e, err)
	}
}
