package manifest

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"bosun.dev/pkg/api"
)

// filler populates messages with random values that a manifest can express:
// one member per oneof, IntOrString with one side set, timestamps in range.
type filler struct {
	rnd   *rand.Rand
	depth int
}

// strings that YAML would read as something else unless quoted.
var trickyStrings = []string{
	"", "yes", "no", "on", "true", "null", "~", "0755", "1e3", "0x1F", "3.0", "-",
	"- item", "a: b", "#comment", "multi\nline\n", " leading space", "trailing ",
	"quote\"s", "tab\there", "unicode ✓", "<<", "&anchor", "*alias", "!tag", "%", "@", "`",
	"{a}", "[a]", "2024-05-01", "12:30", ".inf", "NaN", "\x00ctl\x1f",
}

func (f *filler) str() string {
	if f.rnd.IntN(3) == 0 {
		return trickyStrings[f.rnd.IntN(len(trickyStrings))]
	}
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789-./ "
	b := make([]byte, 1+f.rnd.IntN(12))
	for i := range b {
		b[i] = letters[f.rnd.IntN(len(letters))]
	}
	return string(b)
}

func (f *filler) message(m protoreflect.Message) {
	md := m.Descriptor()
	switch md.FullName() {
	case timestampName:
		m.Set(md.Fields().ByName("seconds"), protoreflect.ValueOfInt64(f.rnd.Int64N(4_000_000_000)))
		if f.rnd.IntN(2) == 0 {
			m.Set(md.Fields().ByName("nanos"), protoreflect.ValueOfInt32(f.rnd.Int32N(1e9)))
		}
		return
	case intOrStringName:
		if f.rnd.IntN(2) == 0 {
			m.Set(md.Fields().ByName("int_val"), protoreflect.ValueOfInt32(f.rnd.Int32()-f.rnd.Int32()))
		} else {
			m.Set(md.Fields().ByName("str_val"), protoreflect.ValueOfString(f.str()))
		}
		return
	}
	if f.depth > 12 {
		return
	}
	f.depth++
	defer func() { f.depth-- }()
	oneofDone := map[protoreflect.FullName]bool{}
	for _, fd := range fieldsOf(md) {
		if f.rnd.IntN(4) == 0 {
			continue // leave some fields unset
		}
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			if oneofDone[od.FullName()] {
				continue
			}
			oneofDone[od.FullName()] = true
		}
		switch {
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for range f.rnd.IntN(3) {
				mp.Set(protoreflect.ValueOfString(f.str()).MapKey(), f.value(fd.MapValue(), mp.NewValue))
			}
		case fd.IsList():
			list := m.Mutable(fd).List()
			for range f.rnd.IntN(3) {
				list.Append(f.value(fd, list.NewElement))
			}
		default:
			m.Set(fd, f.value(fd, func() protoreflect.Value { return m.NewField(fd) }))
		}
	}
}

func (f *filler) value(fd protoreflect.FieldDescriptor, newValue func() protoreflect.Value) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.MessageKind:
		v := newValue()
		f.message(v.Message())
		return v
	case protoreflect.StringKind:
		if isQuantity(fd) && f.rnd.IntN(2) == 0 {
			return protoreflect.ValueOfString([]string{"1", "250m", "64Mi", "0.5", "1e3", "1Gi"}[f.rnd.IntN(6)])
		}
		return protoreflect.ValueOfString(f.str())
	case protoreflect.BytesKind:
		b := make([]byte, f.rnd.IntN(20))
		for i := range b {
			b[i] = byte(f.rnd.IntN(256))
		}
		return protoreflect.ValueOfBytes(b)
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(f.rnd.IntN(2) == 0)
	case protoreflect.Int32Kind:
		return protoreflect.ValueOfInt32(f.rnd.Int32() - f.rnd.Int32())
	case protoreflect.Int64Kind:
		return protoreflect.ValueOfInt64(f.rnd.Int64() - f.rnd.Int64())
	case protoreflect.EnumKind:
		return protoreflect.ValueOfEnum(fd.Enum().Values().Get(f.rnd.IntN(fd.Enum().Values().Len())).Number())
	}
	panic(fmt.Sprintf("filler: no values for %s (%s)", fd.FullName(), fd.Kind()))
}

// TestRoundTripProperty checks Decode(Marshal(x)) == x for random objects of
// every kind, through both YAML and JSON.
func TestRoundTripProperty(t *testing.T) {
	const perKind = 40
	for _, k := range api.Kinds() {
		t.Run(k.Kind, func(t *testing.T) {
			for seed := range uint64(perKind) {
				obj := k.New()
				f := &filler{rnd: rand.New(rand.NewPCG(seed, uint64(len(k.Kind))))}
				f.message(obj.ProtoReflect())
				for _, format := range []struct {
					name    string
					marshal func(...api.Object) ([]byte, error)
				}{{"yaml", MarshalYAML}, {"json", MarshalJSON}} {
					out, err := format.marshal(obj)
					if err != nil {
						t.Fatalf("seed %d: %s: %v", seed, format.name, err)
					}
					back, err := Decode(out)
					if err != nil {
						t.Fatalf("seed %d: decoding our %s: %v\n%s", seed, format.name, err, out)
					}
					if len(back) != 1 || !proto.Equal(obj, back[0]) {
						t.Fatalf("seed %d: %s round trip changed the object:\nwant %v\n got %v\n%s", seed, format.name, obj, back, out)
					}
				}
			}
		})
	}
}

// TestMarshalSeveral checks the multi-object forms: YAML documents and a JSON List.
func TestMarshalSeveral(t *testing.T) {
	objs, err := Decode(readTestdata(t, "configmap-secret-namespace.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	y, err := MarshalYAML(objs...)
	if err != nil {
		t.Fatal(err)
	}
	j, err := MarshalJSON(objs...)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string][]byte{"yaml": y, "json": j} {
		back, err := Decode(out)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(back) != len(objs) {
			t.Fatalf("%s: %d objects back, want %d", name, len(back), len(objs))
		}
		for i := range objs {
			if !proto.Equal(objs[i], back[i]) {
				t.Errorf("%s: object %d differs", name, i)
			}
		}
	}
	if want := "{\n    \"apiVersion\": \"v1\",\n    \"kind\": \"List\",\n    \"items\": ["; string(j[:len(want)]) != want {
		t.Errorf("JSON list starts %q, want %q", j[:len(want)], want)
	}
}
