package registry

import (
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
)

// selector is a parsed label and field selector.
type selector struct {
	labels labels.Selector
	fields []fieldRequirement
	// trigger is the value of an equality requirement on the kind's trigger
	// field (spec.nodeName for pods), for the watch cache's index.
	trigger string
}

type fieldRequirement struct {
	path   string
	get    func(protoreflect.Message) string
	equals bool
	value  string
}

// parseSelector parses a label selector ("app=web,tier in (a,b),!legacy") and
// a field selector ("spec.nodeName=n1,status.phase!=Running") for a kind. Any
// singular scalar field may be selected on by its JSON path.
func parseSelector(kind *api.Kind, labelSel, fieldSel string, triggerPath string) (*selector, error) {
	s := &selector{labels: labels.Everything()}
	if labelSel != "" {
		ls, err := labels.Parse(labelSel)
		if err != nil {
			return nil, apierrors.BadRequest("label_selector %q: %v", labelSel, err)
		}
		s.labels = ls
	}
	if fieldSel != "" {
		fs, err := fields.ParseSelector(fieldSel)
		if err != nil {
			return nil, apierrors.BadRequest("field_selector %q: %v", fieldSel, err)
		}
		for _, r := range fs.Requirements() {
			get, err := fieldGetter(kind.Message.Descriptor(), r.Field)
			if err != nil {
				return nil, apierrors.BadRequest("field_selector: %v", err)
			}
			req := fieldRequirement{path: r.Field, get: get, value: r.Value,
				equals: r.Operator == selection.Equals || r.Operator == selection.DoubleEquals}
			if req.equals && r.Field == triggerPath {
				s.trigger = r.Value
			}
			s.fields = append(s.fields, req)
		}
	}
	return s, nil
}

// empty reports whether the selector keeps everything.
func (s *selector) empty() bool { return s.labels.Empty() && len(s.fields) == 0 }

// matches reports whether obj passes the selector.
func (s *selector) matches(obj api.Object) bool {
	if !s.labels.Empty() && !s.labels.Matches(labels.Set(obj.GetMetadata().GetLabels())) {
		return false
	}
	if len(s.fields) == 0 {
		return true
	}
	msg := obj.ProtoReflect()
	for _, r := range s.fields {
		if (r.get(msg) == r.value) != r.equals {
			return false
		}
	}
	return true
}

// fieldGetter resolves a JSON field path such as "spec.nodeName" against a
// message descriptor and returns a function reading it as a string.
func fieldGetter(md protoreflect.MessageDescriptor, path string) (func(protoreflect.Message) string, error) {
	var chain []protoreflect.FieldDescriptor
	cur := md
	parts := strings.Split(path, ".")
	for i, p := range parts {
		fd := cur.Fields().ByJSONName(p)
		if fd == nil || fd.IsList() || fd.IsMap() {
			return nil, fmt.Errorf("field label %q is not supported for %s", path, md.Name())
		}
		chain = append(chain, fd)
		if fd.Kind() == protoreflect.MessageKind {
			if i == len(parts)-1 {
				return nil, fmt.Errorf("field label %q is not a scalar field of %s", path, md.Name())
			}
			cur = fd.Message()
		} else if i != len(parts)-1 {
			return nil, fmt.Errorf("field label %q is not supported for %s", path, md.Name())
		}
	}
	return func(m protoreflect.Message) string {
		for _, fd := range chain[:len(chain)-1] {
			if !m.Has(fd) {
				return zeroString(chain[len(chain)-1])
			}
			m = m.Get(fd).Message()
		}
		return scalarString(chain[len(chain)-1], m.Get(chain[len(chain)-1]))
	}, nil
}

func zeroString(fd protoreflect.FieldDescriptor) string {
	return scalarString(fd, fd.Default())
}

func scalarString(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return v.String()
	case protoreflect.BoolKind:
		return strconv.FormatBool(v.Bool())
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return strconv.Itoa(int(v.Enum()))
	case protoreflect.Int32Kind, protoreflect.Int64Kind, protoreflect.Sint32Kind, protoreflect.Sint64Kind,
		protoreflect.Sfixed32Kind, protoreflect.Sfixed64Kind:
		return strconv.FormatInt(v.Int(), 10)
	case protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.Fixed32Kind, protoreflect.Fixed64Kind:
		return strconv.FormatUint(v.Uint(), 10)
	default:
		return v.String()
	}
}
