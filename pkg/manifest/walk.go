package manifest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	metav1 "bosun.dev/gen/bosun/meta/v1"
)

// Full names of the messages with a scalar manifest form.
const (
	timestampName   protoreflect.FullName = "google.protobuf.Timestamp"
	intOrStringName protoreflect.FullName = "bosun.meta.v1.IntOrString"
)

// maxErrors bounds the problems reported for one document.
const maxErrors = 20

// decoder walks a generic JSON value (as encoding/json decodes it with
// UseNumber) into a message, collecting every problem with its path.
type decoder struct {
	errs FieldErrors
}

func (d *decoder) fail(path, format string, args ...any) {
	if len(d.errs) < maxErrors {
		d.errs = append(d.errs, &FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
	}
}

// message decodes obj into m. At the top of a document, apiVersion and kind
// are accepted and not stored.
func (d *decoder) message(path string, m protoreflect.Message, v any, top bool) {
	obj, ok := v.(map[string]any)
	if !ok {
		d.fail(path, "expected an object, got %s", describe(v))
		return
	}
	fields := m.Descriptor().Fields()
	byJSON := make(map[string]protoreflect.FieldDescriptor, fields.Len())
	for i := 0; i < fields.Len(); i++ {
		byJSON[fields.Get(i).JSONName()] = fields.Get(i)
	}
	// Two members of one oneof are an error, not last-one-wins.
	oneofs := m.Descriptor().Oneofs()
	skip := map[string]bool{}
	for i := 0; i < oneofs.Len(); i++ {
		od := oneofs.Get(i)
		if od.IsSynthetic() {
			continue
		}
		var set []string
		for j := 0; j < od.Fields().Len(); j++ {
			name := od.Fields().Get(j).JSONName()
			if obj[name] != nil {
				set = append(set, name)
			}
		}
		if len(set) > 1 {
			d.fail(path, "%s and %s are both set, but only one %s may be given", strings.Join(set[:len(set)-1], ", "), set[len(set)-1], od.Name())
			for _, name := range set[1:] {
				skip[name] = true
			}
		}
	}
	for _, key := range sortedKeys(obj) {
		if top && (key == "apiVersion" || key == "kind") {
			continue
		}
		fd, ok := byJSON[key]
		if !ok {
			d.fail(join(path, key), "unknown field")
			continue
		}
		if skip[key] {
			continue
		}
		d.field(join(path, key), m, fd, obj[key])
	}
}

func (d *decoder) field(path string, m protoreflect.Message, fd protoreflect.FieldDescriptor, v any) {
	if v == nil {
		return // null means unset
	}
	quantity := isQuantity(fd)
	switch {
	case fd.IsMap():
		obj, ok := v.(map[string]any)
		if !ok {
			d.fail(path, "expected an object, got %s", describe(v))
			return
		}
		mp := m.Mutable(fd).Map()
		for _, key := range sortedKeys(obj) {
			elemPath := path + "[" + key + "]"
			k, ok := d.mapKey(elemPath, fd.MapKey(), key)
			if !ok {
				continue
			}
			ev := obj[key]
			if ev == nil {
				// As encoding/json does for map[string]string: null is the zero value.
				if fd.MapValue().Kind() == protoreflect.MessageKind {
					mp.Set(k, protoreflect.ValueOfMessage(mp.NewValue().Message()))
				} else {
					mp.Set(k, fd.MapValue().Default())
				}
				continue
			}
			if val, ok := d.single(elemPath, fd.MapValue(), quantity, ev, mp.NewValue); ok {
				mp.Set(k, val)
			}
		}
	case fd.IsList():
		arr, ok := v.([]any)
		if !ok {
			d.fail(path, "expected an array, got %s", describe(v))
			return
		}
		list := m.Mutable(fd).List()
		for i, ev := range arr {
			elemPath := path + "[" + strconv.Itoa(i) + "]"
			if ev == nil {
				d.fail(elemPath, "expected %s, got null", expected(fd, quantity))
				continue
			}
			if val, ok := d.single(elemPath, fd, quantity, ev, list.NewElement); ok {
				list.Append(val)
			}
		}
	default:
		newMsg := func() protoreflect.Value { return m.NewField(fd) }
		if val, ok := d.single(path, fd, quantity, v, newMsg); ok {
			m.Set(fd, val)
		}
	}
}

func (d *decoder) mapKey(path string, fd protoreflect.FieldDescriptor, key string) (protoreflect.MapKey, bool) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(key).MapKey(), true
	case protoreflect.BoolKind:
		b, err := strconv.ParseBool(key)
		if err != nil {
			d.fail(path, "expected a boolean key")
			return protoreflect.MapKey{}, false
		}
		return protoreflect.ValueOfBool(b).MapKey(), true
	default:
		val, err := parseInteger(fd, key)
		if err != nil {
			d.fail(path, "expected an integer key, got %q", key)
			return protoreflect.MapKey{}, false
		}
		return val.MapKey(), true
	}
}

// single decodes one non-null value of fd's kind (an element, for a list or
// map). newValue gives a fresh message for message kinds.
func (d *decoder) single(path string, fd protoreflect.FieldDescriptor, quantity bool, v any, newValue func() protoreflect.Value) (protoreflect.Value, bool) {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		switch fd.Message().FullName() {
		case timestampName:
			return d.timestamp(path, newValue().Message(), v)
		case intOrStringName:
			return d.intOrString(path, newValue().Message(), v)
		}
		msg := newValue().Message()
		d.message(path, msg, v, false)
		return protoreflect.ValueOfMessage(msg), true
	case protoreflect.StringKind:
		switch s := v.(type) {
		case string:
			return protoreflect.ValueOfString(s), true
		case json.Number:
			if quantity {
				return protoreflect.ValueOfString(s.String()), true
			}
		}
		if quantity {
			d.fail(path, "expected a quantity (a string or a number), got %s", describe(v))
		} else {
			d.fail(path, "expected a string, got %s", describe(v))
		}
	case protoreflect.BytesKind:
		s, ok := v.(string)
		if !ok {
			d.fail(path, "expected base64 data, got %s", describe(v))
			break
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			d.fail(path, "expected base64 data, got %s: %v", describe(v), err)
			break
		}
		return protoreflect.ValueOfBytes(b), true
	case protoreflect.BoolKind:
		if b, ok := v.(bool); ok {
			return protoreflect.ValueOfBool(b), true
		}
		d.fail(path, "expected a boolean, got %s", describe(v))
	case protoreflect.EnumKind:
		return d.enum(path, fd, v)
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		n, ok := v.(json.Number)
		if !ok {
			d.fail(path, "expected a number, got %s", describe(v))
			break
		}
		f, err := strconv.ParseFloat(n.String(), 64)
		if err != nil || math.IsInf(f, 0) {
			d.fail(path, "expected a number, got %s", describe(v))
			break
		}
		if fd.Kind() == protoreflect.FloatKind {
			return protoreflect.ValueOfFloat32(float32(f)), true
		}
		return protoreflect.ValueOfFloat64(f), true
	default:
		var text string
		switch n := v.(type) {
		case json.Number:
			text = n.String()
		case string:
			text = n
		default:
			d.fail(path, "expected an integer, got %s", describe(v))
			return protoreflect.Value{}, false
		}
		val, err := parseInteger(fd, text)
		if err != nil {
			d.fail(path, "expected an integer, got %s%s", describe(v), rangeNote(err, fd.Kind().String()))
			return protoreflect.Value{}, false
		}
		return val, true
	}
	return protoreflect.Value{}, false
}

// parseInteger parses text as an integer of fd's kind.
func parseInteger(fd protoreflect.FieldDescriptor, text string) (protoreflect.Value, error) {
	switch fd.Kind() {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		i, err := strconv.ParseInt(text, 10, 32)
		return protoreflect.ValueOfInt32(int32(i)), err
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		u, err := strconv.ParseUint(text, 10, 32)
		return protoreflect.ValueOfUint32(uint32(u)), err
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		u, err := strconv.ParseUint(text, 10, 64)
		return protoreflect.ValueOfUint64(u), err
	default:
		i, err := strconv.ParseInt(text, 10, 64)
		return protoreflect.ValueOfInt64(i), err
	}
}

// rangeNote explains a parse failure that was only a matter of range.
func rangeNote(err error, kind string) string {
	if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
		return " (out of range for " + kind + ")"
	}
	return ""
}

func (d *decoder) enum(path string, fd protoreflect.FieldDescriptor, v any) (protoreflect.Value, bool) {
	values := fd.Enum().Values()
	switch e := v.(type) {
	case string:
		if ev := values.ByName(protoreflect.Name(e)); ev != nil {
			return protoreflect.ValueOfEnum(ev.Number()), true
		}
		var names []string
		for i := 0; i < values.Len(); i++ {
			names = append(names, string(values.Get(i).Name()))
		}
		d.fail(path, "unsupported value %q: supported values: %s", e, strings.Join(names, ", "))
	case json.Number:
		n, err := strconv.ParseInt(e.String(), 10, 32)
		if err == nil && values.ByNumber(protoreflect.EnumNumber(n)) != nil {
			return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n)), true
		}
		d.fail(path, "unsupported value %s", e)
	default:
		d.fail(path, "expected one of the names of %s, got %s", fd.Enum().Name(), describe(v))
	}
	return protoreflect.Value{}, false
}

func (d *decoder) timestamp(path string, msg protoreflect.Message, v any) (protoreflect.Value, bool) {
	s, ok := v.(string)
	if !ok {
		d.fail(path, "expected an RFC 3339 timestamp, got %s", describe(v))
		return protoreflect.Value{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		d.fail(path, "expected an RFC 3339 timestamp, got %s", describe(v))
		return protoreflect.Value{}, false
	}
	ts := timestamppb.New(t)
	if err := ts.CheckValid(); err != nil {
		d.fail(path, "timestamp %q is out of range", s)
		return protoreflect.Value{}, false
	}
	proto.Merge(msg.Interface(), ts)
	return protoreflect.ValueOfMessage(msg), true
}

func (d *decoder) intOrString(path string, msg protoreflect.Message, v any) (protoreflect.Value, bool) {
	ios := &metav1.IntOrString{}
	switch x := v.(type) {
	case string:
		ios.StrVal = x
	case json.Number:
		n, err := strconv.ParseInt(x.String(), 10, 32)
		if err != nil {
			d.fail(path, "expected an integer or a string, got %s%s", describe(v), rangeNote(err, "int32"))
			return protoreflect.Value{}, false
		}
		ios.IntVal = int32(n)
	default:
		d.fail(path, "expected an integer or a string, got %s", describe(v))
		return protoreflect.Value{}, false
	}
	proto.Merge(msg.Interface(), ios)
	return protoreflect.ValueOfMessage(msg), true
}

func isQuantity(fd protoreflect.FieldDescriptor) bool {
	opts := fd.Options()
	if opts == nil {
		return false
	}
	q, _ := proto.GetExtension(opts, metav1.E_Quantity).(bool)
	return q
}

// expected names what a field's elements must be, for messages about null.
func expected(fd protoreflect.FieldDescriptor, quantity bool) string {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		switch fd.Message().FullName() {
		case timestampName:
			return "an RFC 3339 timestamp"
		case intOrStringName:
			return "an integer or a string"
		}
		return "an object"
	case protoreflect.StringKind:
		if quantity {
			return "a quantity"
		}
		return "a string"
	case protoreflect.BytesKind:
		return "base64 data"
	case protoreflect.BoolKind:
		return "a boolean"
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return "a number"
	case protoreflect.EnumKind:
		return "a name"
	default:
		return "an integer"
	}
}

// describe names a JSON value's type, and its value when short, for errors.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if len(x) > 40 {
			x = x[:40] + "..."
		}
		return fmt.Sprintf("string %q", x)
	case json.Number:
		return "number " + x.String()
	case bool:
		return fmt.Sprintf("bool %t", x)
	case map[string]any:
		return "object"
	case []any:
		return "array"
	default:
		return fmt.Sprintf("%T", v)
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// fieldsOf lists a message's fields in declaration order.
func fieldsOf(md protoreflect.MessageDescriptor) []protoreflect.FieldDescriptor {
	out := make([]protoreflect.FieldDescriptor, md.Fields().Len())
	for i := range out {
		out[i] = md.Fields().Get(i)
	}
	return out
}
