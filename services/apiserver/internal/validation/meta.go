package validation

import (
	"fmt"
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
)

// Size limits, as in Kubernetes.
const (
	// MaxObjectBytes is the largest encoded (protobuf) size of a stored object.
	// etcd's default request limit is 1.5 MiB, and an object must fit in one.
	MaxObjectBytes = 1536 * 1024
	// MaxAnnotationsBytes is the largest total size of an object's annotation
	// keys and values.
	MaxAnnotationsBytes = 256 * 1024
	// MaxDataBytes is the largest total size of a ConfigMap's or Secret's keys
	// and values.
	MaxDataBytes = 1024 * 1024
)

// NameFunc checks an object name and returns what is wrong with it. With
// prefix true it checks a metadata.generateName prefix, to which the server
// appends random characters, so a trailing "-" is fine.
type NameFunc func(name string, prefix bool) []string

// NameIsDNSSubdomain is the NameFunc of kinds whose names are DNS-1123
// subdomains (most kinds).
func NameIsDNSSubdomain(name string, prefix bool) []string {
	if prefix {
		name = maskTrailingDash(name)
	}
	return validation.IsDNS1123Subdomain(name)
}

// NameIsDNSLabel is the NameFunc of kinds whose names are DNS-1123 labels
// (Namespace and Service, whose names become DNS names).
func NameIsDNSLabel(name string, prefix bool) []string {
	if prefix {
		name = maskTrailingDash(name)
	}
	return validation.IsDNS1123Label(name)
}

func maskTrailingDash(name string) string {
	if len(name) > 1 && name[len(name)-1] == '-' {
		return name[:len(name)-1] + "a"
	}
	return name
}

// ValidateObjectMeta checks the metadata of an object being created or
// updated: name (or generateName) syntax, namespace presence, labels,
// annotations, finalizers and owner references. namespaced says whether the
// kind lives in a namespace; fldPath is normally field.NewPath("metadata").
func ValidateObjectMeta(meta *metav1.ObjectMeta, namespaced bool, nameFn NameFunc, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if meta == nil {
		return append(errs, field.Required(fldPath, ""))
	}
	if meta.GenerateName != "" {
		for _, msg := range nameFn(meta.GenerateName, true) {
			errs = append(errs, field.Invalid(fldPath.Child("generateName"), meta.GenerateName, msg))
		}
	}
	if meta.Name == "" {
		if meta.GenerateName == "" {
			errs = append(errs, field.Required(fldPath.Child("name"), "name or generateName is required"))
		}
	} else {
		for _, msg := range nameFn(meta.Name, false) {
			errs = append(errs, field.Invalid(fldPath.Child("name"), meta.Name, msg))
		}
	}
	switch {
	case namespaced && meta.Namespace == "":
		errs = append(errs, field.Required(fldPath.Child("namespace"), ""))
	case namespaced:
		for _, msg := range validation.IsDNS1123Label(meta.Namespace) {
			errs = append(errs, field.Invalid(fldPath.Child("namespace"), meta.Namespace, msg))
		}
	case meta.Namespace != "":
		errs = append(errs, field.Forbidden(fldPath.Child("namespace"), "not allowed on this type"))
	}
	if meta.Generation < 0 {
		errs = append(errs, field.Invalid(fldPath.Child("generation"), meta.Generation, "must be greater than or equal to 0"))
	}
	errs = append(errs, ValidateLabels(meta.Labels, fldPath.Child("labels"))...)
	errs = append(errs, ValidateAnnotations(meta.Annotations, fldPath.Child("annotations"))...)
	errs = append(errs, validateOwnerReferences(meta.OwnerReferences, fldPath.Child("ownerReferences"))...)
	for i, f := range meta.Finalizers {
		errs = append(errs, validateQualifiedName(f, fldPath.Child("finalizers").Index(i))...)
	}
	return errs
}

// ValidateObjectMetaUpdate checks what may not change in metadata between the
// stored object (old) and its update: name, namespace, uid and creation time.
func ValidateObjectMetaUpdate(meta, old *metav1.ObjectMeta, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if meta == nil || old == nil {
		return errs
	}
	errs = append(errs, immutable(meta.Name, old.Name, fldPath.Child("name"))...)
	errs = append(errs, immutable(meta.Namespace, old.Namespace, fldPath.Child("namespace"))...)
	if old.Uid != "" {
		errs = append(errs, immutable(meta.Uid, old.Uid, fldPath.Child("uid"))...)
	}
	if old.CreationTimestamp != nil && !proto.Equal(meta.CreationTimestamp, old.CreationTimestamp) {
		errs = append(errs, field.Invalid(fldPath.Child("creationTimestamp"), meta.CreationTimestamp.AsTime().String(), fieldImmutable))
	}
	if old.DeletionTimestamp != nil && meta.DeletionTimestamp == nil {
		errs = append(errs, field.Forbidden(fldPath.Child("deletionTimestamp"), "may not be removed once set"))
	}
	return errs
}

// ValidateLabels checks that every key of labels is a qualified name and
// every value a valid label value. Label maps, node selectors and service
// selectors all follow these rules. Errors are reported on fldPath itself,
// naming the bad key or value, as Kubernetes does.
func ValidateLabels(labels map[string]string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, k := range sortedKeys(labels) {
		errs = append(errs, validateQualifiedName(k, fldPath)...)
		errs = append(errs, validateLabelValue(labels[k], fldPath)...)
	}
	return errs
}

// ValidateAnnotations checks that every annotation key is a qualified name
// and that keys and values together stay within MaxAnnotationsBytes.
func ValidateAnnotations(annotations map[string]string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	total := 0
	for _, k := range sortedKeys(annotations) {
		errs = append(errs, validateQualifiedName(k, fldPath)...)
		total += len(k) + len(annotations[k])
	}
	if total > MaxAnnotationsBytes {
		errs = append(errs, field.TooLong(fldPath, "", MaxAnnotationsBytes))
	}
	return errs
}

// ValidateLabelSelector checks a label selector's syntax: matchLabels as
// labels, and each matchExpressions entry a qualified key with operator In or
// NotIn (with values) or Exists or DoesNotExist (without). A nil selector is
// valid here; callers that need one say so themselves.
func ValidateLabelSelector(sel *metav1.LabelSelector, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if sel == nil {
		return errs
	}
	errs = append(errs, ValidateLabels(sel.MatchLabels, fldPath.Child("matchLabels"))...)
	for i, req := range sel.MatchExpressions {
		p := fldPath.Child("matchExpressions").Index(i)
		if req == nil {
			errs = append(errs, field.Required(p, ""))
			continue
		}
		switch req.Operator {
		case "In", "NotIn":
			if len(req.Values) == 0 {
				errs = append(errs, field.Required(p.Child("values"), "must be specified when `operator` is 'In' or 'NotIn'"))
			}
		case "Exists", "DoesNotExist":
			if len(req.Values) > 0 {
				errs = append(errs, field.Forbidden(p.Child("values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
			}
		case "":
			errs = append(errs, field.Required(p.Child("operator"), ""))
		default:
			errs = append(errs, field.NotSupported(p.Child("operator"), req.Operator, []string{"In", "NotIn", "Exists", "DoesNotExist"}))
		}
		if req.Key == "" {
			errs = append(errs, field.Required(p.Child("key"), ""))
		} else {
			errs = append(errs, validateQualifiedName(req.Key, p.Child("key"))...)
		}
		for j, v := range req.Values {
			errs = append(errs, validateLabelValue(v, p.Child("values").Index(j))...)
		}
	}
	return errs
}

// selectorMatches reports whether sel selects an object with these labels.
// It assumes sel has passed ValidateLabelSelector.
func selectorMatches(sel *metav1.LabelSelector, labels map[string]string) bool {
	for k, v := range sel.GetMatchLabels() {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, req := range sel.GetMatchExpressions() {
		v, ok := labels[req.GetKey()]
		switch req.GetOperator() {
		case "In":
			if !ok || !slices.Contains(req.GetValues(), v) {
				return false
			}
		case "NotIn":
			if ok && slices.Contains(req.GetValues(), v) {
				return false
			}
		case "Exists":
			if !ok {
				return false
			}
		case "DoesNotExist":
			if ok {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func selectorIsEmpty(sel *metav1.LabelSelector) bool {
	return len(sel.GetMatchLabels()) == 0 && len(sel.GetMatchExpressions()) == 0
}

func validateOwnerReferences(refs []*metav1.OwnerReference, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	controllers := 0
	for i, r := range refs {
		p := fldPath.Index(i)
		if r == nil {
			errs = append(errs, field.Required(p, ""))
			continue
		}
		if r.ApiVersion == "" {
			errs = append(errs, field.Required(p.Child("apiVersion"), "apiVersion must not be empty"))
		}
		if r.Kind == "" {
			errs = append(errs, field.Required(p.Child("kind"), "kind must not be empty"))
		}
		if r.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), "name must not be empty"))
		}
		if r.Uid == "" {
			errs = append(errs, field.Required(p.Child("uid"), "uid must not be empty"))
		}
		if r.Controller != nil && *r.Controller {
			controllers++
			if controllers > 1 {
				errs = append(errs, field.Invalid(p.Child("controller"), true, "only one reference can have controller set to true"))
			}
		}
	}
	return errs
}

// ValidateObjectSize checks that obj encodes to at most MaxObjectBytes. The
// error names the top-level field (metadata, spec, status, data...) that
// takes the most room, since that is where the user has to cut; the message
// gives the limit.
func ValidateObjectSize(obj api.Object) field.ErrorList {
	if obj == nil {
		return nil
	}
	size := proto.Size(obj)
	if size <= MaxObjectBytes {
		return nil
	}
	m := obj.ProtoReflect()
	largest, largestSize := "metadata", -1
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		one := m.Type().New()
		one.Set(fd, v)
		if s := proto.Size(one.Interface()); s > largestSize {
			largest, largestSize = fd.JSONName(), s
		}
		return true
	})
	return field.ErrorList{field.TooLong(field.NewPath(largest), "", MaxObjectBytes)}
}

// Small shared checks.

const fieldImmutable = "field is immutable"

func immutable[T comparable](v, old T, fldPath *field.Path) field.ErrorList {
	if v != old {
		return field.ErrorList{field.Invalid(fldPath, v, fieldImmutable)}
	}
	return nil
}

func validateQualifiedName(v string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range content.IsLabelKey(v) {
		errs = append(errs, field.Invalid(fldPath, v, msg))
	}
	return errs
}

func validateLabelValue(v string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range content.IsLabelValue(v) {
		errs = append(errs, field.Invalid(fldPath, v, msg))
	}
	return errs
}

func validateDNSLabel(v string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Label(v) {
		errs = append(errs, field.Invalid(fldPath, v, msg))
	}
	return errs
}

func validateDNSSubdomain(v string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Subdomain(v) {
		errs = append(errs, field.Invalid(fldPath, v, msg))
	}
	return errs
}

// validateRequiredName checks a reference to another object by name.
func validateRequiredName(v string, fldPath *field.Path) field.ErrorList {
	if v == "" {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	return validateDNSSubdomain(v, fldPath)
}

func validateIP(v string, fldPath *field.Path) field.ErrorList {
	return validation.IsValidIP(fldPath, v)
}

func validateNonNegative[T int32 | int64](v T, fldPath *field.Path) field.ErrorList {
	if v < 0 {
		return field.ErrorList{field.Invalid(fldPath, v, "must be greater than or equal to 0")}
	}
	return nil
}

func validateNonNegativePtr[T int32 | int64](v *T, fldPath *field.Path) field.ErrorList {
	if v == nil {
		return nil
	}
	return validateNonNegative(*v, fldPath)
}

func validatePositive[T int32 | int64](v T, fldPath *field.Path) field.ErrorList {
	if v <= 0 {
		return field.ErrorList{field.Invalid(fldPath, v, "must be greater than 0")}
	}
	return nil
}

// validateEnum checks a string against its allowed values; "" is accepted
// when allowEmpty (the field has a default), and is Required otherwise.
func validateEnum(v string, fldPath *field.Path, allowEmpty bool, allowed ...string) field.ErrorList {
	if v == "" {
		if allowEmpty {
			return nil
		}
		return field.ErrorList{field.Required(fldPath, fmt.Sprintf("supported values: %q", allowed))}
	}
	if slices.Contains(allowed, v) {
		return nil
	}
	return field.ErrorList{field.NotSupported(fldPath, v, allowed)}
}

func validateConditionStatus(v string, fldPath *field.Path) field.ErrorList {
	return validateEnum(v, fldPath, false, "True", "False", "Unknown")
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
