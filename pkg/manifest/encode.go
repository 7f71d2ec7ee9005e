package manifest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"time"

	"go.yaml.in/yaml/v2"
	"google.golang.org/protobuf/reflect/protoreflect"

	"bosun.dev/pkg/api"
)

// Encode returns obj in the Kubernetes shape as generic JSON values
// (map[string]any, []any, string, int64, uint64, float64, bool): apiVersion,
// kind, then the message's fields by their JSON names, unset ones omitted.
func Encode(obj api.Object) (map[string]any, error) {
	om, err := encodeObject(obj)
	if err != nil {
		return nil, err
	}
	return om.plain(), nil
}

// MarshalYAML writes objects as YAML documents separated by "---", keys in
// the order kubectl users expect: apiVersion, kind, metadata, then the
// fields in their declaration order. No objects write nothing.
func MarshalYAML(objs ...api.Object) ([]byte, error) {
	var buf bytes.Buffer
	for i, obj := range objs {
		om, err := encodeObject(obj)
		if err != nil {
			return nil, err
		}
		out, err := marshalYAML(om)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(out)
	}
	return buf.Bytes(), nil
}

// MarshalJSON writes one object as an indented JSON object, and any other
// number of objects as {"apiVersion":"v1","kind":"List","items":[...]}.
func MarshalJSON(objs ...api.Object) ([]byte, error) {
	var v any
	if len(objs) == 1 {
		om, err := encodeObject(objs[0])
		if err != nil {
			return nil, err
		}
		v = om
	} else {
		items := make([]any, len(objs))
		for i, obj := range objs {
			om, err := encodeObject(obj)
			if err != nil {
				return nil, err
			}
			items[i] = om
		}
		v = orderedMap{{"apiVersion", "v1"}, {"kind", "List"}, {"items", items}}
	}
	out, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// mergeKey is the YAML 1.1 merge key. yaml.v2 writes a "<<" map key plain,
// which then reads back as a merge; such keys are written under a stand-in
// that cannot come from decoded text (it is not UTF-8, so yaml.v2 writes it
// as !!binary) and then replaced by the quoted key.
const (
	mergeKey        = "<<"
	mergeKeyStandIn = "\xff<<"
)

var mergeKeyLine = regexp.MustCompile(`(?m)^(\s*(?:- )?)!!binary /zw8:`)

func marshalYAML(om orderedMap) ([]byte, error) {
	hasMerge := false
	out, err := yaml.Marshal(om.yaml(&hasMerge))
	if err != nil || !hasMerge {
		return out, err
	}
	return mergeKeyLine.ReplaceAll(out, []byte(`${1}"<<":`)), nil
}

// orderedMap is a JSON object whose keys keep their order when written.
type orderedMap []member

type member struct {
	key   string
	value any
}

// MarshalJSON writes the members in order.
func (m orderedMap) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, mb := range m {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := json.Marshal(mb.key)
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		v, err := json.Marshal(mb.value)
		if err != nil {
			return nil, err
		}
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// yaml converts the tree to yaml.MapSlice, which keeps key order, and notes
// whether a "<<" key had to be replaced by its stand-in.
func (m orderedMap) yaml(hasMerge *bool) yaml.MapSlice {
	out := make(yaml.MapSlice, len(m))
	for i, mb := range m {
		key := mb.key
		if key == mergeKey {
			key, *hasMerge = mergeKeyStandIn, true
		}
		out[i] = yaml.MapItem{Key: key, Value: toYAML(mb.value, hasMerge)}
	}
	return out
}

func toYAML(v any, hasMerge *bool) any {
	switch x := v.(type) {
	case orderedMap:
		return x.yaml(hasMerge)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toYAML(e, hasMerge)
		}
		return out
	default:
		return v
	}
}

// plain converts the tree to map[string]any.
func (m orderedMap) plain() map[string]any {
	out := make(map[string]any, len(m))
	for _, mb := range m {
		out[mb.key] = toPlain(mb.value)
	}
	return out
}

func toPlain(v any) any {
	switch x := v.(type) {
	case orderedMap:
		return x.plain()
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toPlain(e)
		}
		return out
	default:
		return v
	}
}

func encodeObject(obj api.Object) (orderedMap, error) {
	if obj == nil {
		return nil, fmt.Errorf("cannot encode a nil object")
	}
	k, err := api.KindOf(obj)
	if err != nil {
		return nil, err
	}
	om := orderedMap{{"apiVersion", k.APIVersion()}, {"kind", k.Kind}}
	body, err := encodeMessage("", obj.ProtoReflect())
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", k.Kind, obj.GetMetadata().GetName(), err)
	}
	return append(om, body...), nil
}

func encodeMessage(path string, m protoreflect.Message) (orderedMap, error) {
	om := orderedMap{}
	for _, fd := range fieldsOf(m.Descriptor()) {
		if !m.Has(fd) {
			continue
		}
		p := join(path, fd.JSONName())
		v, err := encodeField(p, fd, m.Get(fd))
		if err != nil {
			return nil, err
		}
		om = append(om, member{fd.JSONName(), v})
	}
	return om, nil
}

func encodeField(path string, fd protoreflect.FieldDescriptor, v protoreflect.Value) (any, error) {
	switch {
	case fd.IsMap():
		mp := v.Map()
		keys := make([]protoreflect.MapKey, 0, mp.Len())
		mp.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
			keys = append(keys, k)
			return true
		})
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		om := make(orderedMap, 0, len(keys))
		for _, k := range keys {
			ev, err := encodeSingle(path+"["+k.String()+"]", fd.MapValue(), mp.Get(k))
			if err != nil {
				return nil, err
			}
			om = append(om, member{k.String(), ev})
		}
		return om, nil
	case fd.IsList():
		list := v.List()
		out := make([]any, list.Len())
		for i := range out {
			ev, err := encodeSingle(path+"["+strconv.Itoa(i)+"]", fd, list.Get(i))
			if err != nil {
				return nil, err
			}
			out[i] = ev
		}
		return out, nil
	default:
		return encodeSingle(path, fd, v)
	}
}

func encodeSingle(path string, fd protoreflect.FieldDescriptor, v protoreflect.Value) (any, error) {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		m := v.Message()
		switch fd.Message().FullName() {
		case timestampName:
			fields := m.Descriptor().Fields()
			secs := m.Get(fields.ByName("seconds")).Int()
			nanos := m.Get(fields.ByName("nanos")).Int()
			if nanos < 0 || nanos >= 1e9 {
				return nil, fmt.Errorf("%s: invalid timestamp: nanos %d out of range", path, nanos)
			}
			t := time.Unix(secs, nanos).UTC()
			if t.Year() < 1 || t.Year() > 9999 {
				return nil, fmt.Errorf("%s: invalid timestamp: year %d out of range", path, t.Year())
			}
			return t.Format(time.RFC3339Nano), nil
		case intOrStringName:
			fields := m.Descriptor().Fields()
			if s := m.Get(fields.ByName("str_val")).String(); s != "" {
				return s, nil
			}
			return m.Get(fields.ByName("int_val")).Int(), nil
		}
		return encodeMessage(path, m)
	case protoreflect.StringKind:
		return v.String(), nil
	case protoreflect.BytesKind:
		return base64.StdEncoding.EncodeToString(v.Bytes()), nil
	case protoreflect.BoolKind:
		return v.Bool(), nil
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name()), nil
		}
		return int64(v.Enum()), nil
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return v.Float(), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return v.Uint(), nil
	default:
		return v.Int(), nil
	}
}
