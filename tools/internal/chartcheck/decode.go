package chartcheck

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Object is one decoded manifest.
type Object struct {
	// Source is the template that rendered it ("bosun/charts/apiserver/templates/service.yaml"),
	// from helm's "# Source:" comment; "" when there is none.
	Source string
	// Index counts the non-empty documents of the render from 1.
	Index int
	GVK   schema.GroupVersionKind
	// Object is the typed Kubernetes object (*appsv1.Deployment, ...).
	Object runtime.Object
	// Meta is Object's metadata.
	Meta metav1.Object
}

// String names the object the way error messages do.
func (o Object) String() string {
	s := fmt.Sprintf("%s %q", o.GVK.Kind, o.Meta.GetName())
	if o.Source != "" {
		s += " (" + o.Source + ")"
	}
	return s
}

// Scheme knows the Kubernetes kinds a chart may render: the groups that
// hold workloads, their configuration, access control and scheduling.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, policyv1.AddToScheme,
		rbacv1.AddToScheme, networkingv1.AddToScheme, coordinationv1.AddToScheme,
		schedulingv1.AddToScheme, autoscalingv2.AddToScheme, storagev1.AddToScheme,
		admissionregistrationv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err) // the groups above register without conflict
		}
	}
	return s
}

var sourceComment = regexp.MustCompile(`(?m)^# Source: (.+)$`)

// Decode reads every document of rendered (multi-document YAML, as
// `helm template` prints it) into its Kubernetes type with strict decoding:
// an unknown field, a duplicate key, a value of the wrong type, an unknown
// apiVersion/kind or a document without them is an error naming the
// document. Every document is tried; the errors are joined.
func Decode(s *runtime.Scheme, rendered []byte) ([]Object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(rendered)))
	var (
		objs  []Object
		errs  []error
		index int
	)
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return objs, fmt.Errorf("splitting documents: %w", err)
		}
		source := ""
		if m := sourceComment.FindSubmatch(doc); m != nil {
			source = strings.TrimSpace(string(m[1]))
		}
		if isEmpty(doc) {
			continue
		}
		index++
		obj, err := decodeDocument(s, doc)
		if err != nil {
			where := fmt.Sprintf("document %d", index)
			if source != "" {
				where += " (" + source + ")"
			}
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		obj.Source, obj.Index = source, index
		objs = append(objs, obj)
	}
	return objs, errors.Join(errs...)
}

// isEmpty reports whether doc holds only comments and blank lines.
func isEmpty(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && line != "---" && !strings.HasPrefix(line, "#") {
			return false
		}
	}
	return true
}

func decodeDocument(s *runtime.Scheme, doc []byte) (Object, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return Object{}, fmt.Errorf("not a YAML object: %w", err)
	}
	if tm.APIVersion == "" || tm.Kind == "" {
		return Object{}, fmt.Errorf("apiVersion and kind are required (got apiVersion %q, kind %q)", tm.APIVersion, tm.Kind)
	}
	gv, err := schema.ParseGroupVersion(tm.APIVersion)
	if err != nil {
		return Object{}, fmt.Errorf("apiVersion %q: %w", tm.APIVersion, err)
	}
	gvk := gv.WithKind(tm.Kind)
	obj, err := s.New(gvk)
	if err != nil {
		return Object{}, fmt.Errorf("no Kubernetes kind %s in apiVersion %s is known", tm.Kind, tm.APIVersion)
	}
	js, err := yaml.YAMLToJSONStrict(doc) // refuses duplicate keys
	if err != nil {
		return Object{}, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	strict, err := kjson.UnmarshalStrict(js, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return Object{}, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	if len(strict) > 0 {
		return Object{}, fmt.Errorf("%s: %w", tm.Kind, errors.Join(strict...))
	}
	meta, ok := obj.(metav1.Object)
	if !ok {
		return Object{}, fmt.Errorf("%s has no object metadata", tm.Kind)
	}
	return Object{GVK: gvk, Object: obj, Meta: meta}, nil
}
