package manifest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"bosun.dev/pkg/api"
)

// Decode reads every object of a manifest: multi-document YAML (documents
// separated by "---", empty ones skipped) or JSON (one object after another).
// A document of kind List (apiVersion v1) contributes its items. Each object
// names its kind with apiVersion and kind; the rest of it is decoded strictly
// (see the package comment). The first document that fails stops decoding
// with a *DocumentError.
func Decode(data []byte) ([]api.Object, error) {
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, err
	}
	var out []api.Object
	for _, d := range docs {
		objs, err := decodeDocument(d)
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}

// DecodeInto decodes a manifest holding exactly one object into obj. When the
// document names apiVersion and kind they must be obj's.
func DecodeInto(data []byte, obj api.Object) error {
	k, err := api.KindOf(obj)
	if err != nil {
		return err
	}
	docs, err := splitDocuments(data)
	if err != nil {
		return err
	}
	if len(docs) != 1 {
		return fmt.Errorf("expected one %s document, found %d", k.Kind, len(docs))
	}
	d := docs[0]
	derr := &DocumentError{Document: d.index, Item: -1, Kind: k.Kind}
	top, ok := d.value.(map[string]any)
	if !ok {
		derr.Err = fmt.Errorf("expected an object, got %s", describe(d.value))
		return derr
	}
	derr.Name = nameOf(top)
	av, hasAV := top["apiVersion"]
	kd, hasKind := top["kind"]
	if hasAV || hasKind {
		if av != k.APIVersion() || kd != k.Kind {
			derr.Err = fmt.Errorf("expected apiVersion %q and kind %q, got %s and %s", k.APIVersion(), k.Kind, describe(av), describe(kd))
			return derr
		}
	}
	proto := obj.ProtoReflect()
	for _, fd := range fieldsOf(proto.Descriptor()) {
		proto.Clear(fd)
	}
	var dec decoder
	dec.message("", proto, top, true)
	if len(dec.errs) > 0 {
		derr.Err = dec.errs
		return derr
	}
	return nil
}

// document is one non-empty document of the input, as a generic JSON value.
type document struct {
	index int // 1-based among non-empty documents
	value any
}

// splitDocuments parses the input into JSON values, one per non-empty
// document. Input starting with '{' that parses as a stream of JSON values is
// JSON; anything else is YAML.
func splitDocuments(data []byte) ([]document, error) {
	if docs, ok := jsonDocuments(data); ok {
		return docs, nil
	}
	var docs []document
	for _, chunk := range yamlChunks(data) {
		js, err := yaml.YAMLToJSONStrict(chunk.text)
		if err != nil {
			return nil, &DocumentError{Document: len(docs) + 1, Item: -1, Err: yamlError(err, chunk.line)}
		}
		v, err := parseJSON(js)
		if err != nil {
			return nil, &DocumentError{Document: len(docs) + 1, Item: -1, Err: err}
		}
		if v == nil {
			continue
		}
		docs = append(docs, document{index: len(docs) + 1, value: v})
	}
	return docs, nil
}

func jsonDocuments(data []byte) ([]document, bool) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var docs []document
	for {
		var v any
		err := dec.Decode(&v)
		if err == io.EOF {
			return docs, true
		}
		if err != nil {
			return nil, false // let the YAML parser report it, with a line
		}
		if v != nil {
			docs = append(docs, document{index: len(docs) + 1, value: v})
		}
	}
}

func parseJSON(js []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid document: %w", err)
	}
	return v, nil
}

type yamlChunk struct {
	text []byte
	line int // 1-based line of the input where the chunk starts
}

var (
	separator   = regexp.MustCompile(`^---(\s|$)`)
	documentEnd = regexp.MustCompile(`^\.\.\.\s*$`)
)

// yamlChunks splits YAML at "---" lines, keeping track of where each chunk
// starts so that errors can name lines of the whole input.
func yamlChunks(data []byte) []yamlChunk {
	var chunks []yamlChunk
	cur := yamlChunk{line: 1}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), len(data)+1)
	sc.Split(scanLinesKeepEOL)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Bytes()
		if separator.Match(text) {
			chunks = append(chunks, cur)
			// Keep what follows the separator on its line (normally nothing
			// or a comment) so that line numbers stay aligned.
			cur = yamlChunk{line: line, text: append([]byte(nil), text[3:]...)}
			continue
		}
		if documentEnd.Match(text) {
			cur.text = append(cur.text, '\n') // keep line numbers aligned
			continue
		}
		cur.text = append(cur.text, text...)
	}
	return append(chunks, cur)
}

func scanLinesKeepEOL(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i+1], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// yamlError turns a YAML parser error into one that names lines of the whole
// input rather than of the chunk.
func yamlError(err error, startLine int) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "error converting YAML to JSON: ")
	msg = strings.TrimPrefix(msg, "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	msg = strings.Join(strings.Fields(msg), " ")
	msg = yamlLine.ReplaceAllStringFunc(msg, func(s string) string {
		n, convErr := strconv.Atoi(strings.TrimPrefix(s, "line "))
		if convErr != nil {
			return s
		}
		return "line " + strconv.Itoa(n+startLine-1)
	})
	return errors.New("invalid YAML: " + msg)
}

// decodeDocument turns one document into objects: one, or a List's items.
func decodeDocument(d document) ([]api.Object, error) {
	top, ok := d.value.(map[string]any)
	if !ok {
		return nil, &DocumentError{Document: d.index, Item: -1, Err: fmt.Errorf("expected an object, got %s", describe(d.value))}
	}
	if top["kind"] == "List" && (top["apiVersion"] == "v1" || top["apiVersion"] == nil) {
		return decodeList(d.index, top)
	}
	obj, err := decodeObject(top)
	if err != nil {
		err.Document, err.Item = d.index, -1
		return nil, err
	}
	return []api.Object{obj}, nil
}

func decodeList(index int, top map[string]any) ([]api.Object, error) {
	derr := &DocumentError{Document: index, Item: -1, Kind: "List"}
	var errs FieldErrors
	for _, key := range sortedKeys(top) {
		switch key {
		case "apiVersion", "kind", "metadata":
		case "items":
		default:
			errs = append(errs, &FieldError{Path: key, Message: "unknown field"})
		}
	}
	if len(errs) > 0 {
		derr.Err = errs
		return nil, derr
	}
	items, ok := top["items"].([]any)
	if !ok && top["items"] != nil {
		derr.Err = FieldErrors{{Path: "items", Message: "expected an array, got " + describe(top["items"])}}
		return nil, derr
	}
	out := make([]api.Object, 0, len(items))
	for i, item := range items {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, &DocumentError{Document: index, Item: i, Err: fmt.Errorf("expected an object, got %s", describe(item))}
		}
		obj, err := decodeObject(m)
		if err != nil {
			err.Document, err.Item = index, i
			return nil, err
		}
		out = append(out, obj)
	}
	return out, nil
}

func decodeObject(top map[string]any) (api.Object, *DocumentError) {
	derr := &DocumentError{Name: nameOf(top)}
	if k, ok := top["kind"].(string); ok {
		derr.Kind = k
	}
	for _, f := range []string{"apiVersion", "kind"} {
		v, ok := top[f]
		if !ok || v == nil || v == "" {
			derr.Err = fmt.Errorf("missing %s", f)
			return nil, derr
		}
		if _, ok := v.(string); !ok {
			derr.Err = FieldErrors{{Path: f, Message: "expected a string, got " + describe(v)}}
			return nil, derr
		}
	}
	kind, err := api.ForAPIVersionKind(top["apiVersion"].(string), top["kind"].(string))
	if err != nil {
		derr.Err = err
		return nil, derr
	}
	obj := kind.New()
	var dec decoder
	dec.message("", obj.ProtoReflect(), top, true)
	if len(dec.errs) > 0 {
		derr.Err = dec.errs
		return nil, derr
	}
	return obj, nil
}

func nameOf(top map[string]any) string {
	md, _ := top["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	return name
}
