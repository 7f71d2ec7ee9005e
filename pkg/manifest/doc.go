// Package manifest converts between Kubernetes-shaped manifests (YAML or JSON
// with apiVersion, kind, metadata and spec) and Bosun's protobuf objects.
//
// Decode is strict: it walks each document against the kind's message
// descriptor, so an unknown field, a value of the wrong type or two members of
// a oneof are errors that name the document and the field's full path:
//
//	document 2 (Deployment "web"): spec.template.spec.containers[0].imagePullPolicyy: unknown field
//
// Encode writes the shape kubectl prints: apiVersion and kind first, unset
// fields omitted, int64 as JSON numbers, IntOrString as a bare scalar,
// quantities as strings, timestamps in RFC 3339 and bytes in base64. What
// Encode writes, Decode reads back to an equal object.
package manifest
