package manifest

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"
)

// FuzzDecode checks that Decode never panics and that whatever it accepts
// encodes and decodes back to equal objects.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: a, labels: {x: \"1\"}}\nspec: {containers: [{name: c, resources: {limits: {cpu: 0.5}}}]}\n"))
	f.Add([]byte(`{"apiVersion":"v1","kind":"Secret","data":{"k":"AAEC"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := Decode(data)
		if err != nil {
			return
		}
		y, err := MarshalYAML(objs...)
		if err != nil {
			t.Fatalf("MarshalYAML of decoded objects: %v", err)
		}
		back, err := Decode(y)
		if err != nil {
			t.Fatalf("decoding our YAML: %v\n%s", err, y)
		}
		j, err := MarshalJSON(objs...)
		if err != nil {
			t.Fatalf("MarshalJSON of decoded objects: %v", err)
		}
		backJSON, err := Decode(j)
		if err != nil {
			t.Fatalf("decoding our JSON: %v\n%s", err, j)
		}
		if len(back) != len(objs) || len(backJSON) != len(objs) {
			t.Fatalf("got %d (yaml) and %d (json) objects back, want %d", len(back), len(backJSON), len(objs))
		}
		for i := range objs {
			if !proto.Equal(objs[i], back[i]) {
				t.Fatalf("object %d changed in a YAML round trip:\n%v\n%v\n%s", i, objs[i], back[i], y)
			}
			if !proto.Equal(objs[i], backJSON[i]) {
				t.Fatalf("object %d changed in a JSON round trip:\n%v\n%v\n%s", i, objs[i], backJSON[i], j)
			}
		}
	})
}
