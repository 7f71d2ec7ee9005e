package manifest

import (
	"fmt"
	"strings"
)

// FieldError is one problem at one field of a document.
type FieldError struct {
	// Path is the field's path in the document, e.g.
	// "spec.template.spec.containers[0].image"; "" for the document itself.
	Path string
	// Message says what is wrong, e.g. "unknown field".
	Message string
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// FieldErrors are all the problems found in one document, in document order.
type FieldErrors []*FieldError

func (e FieldErrors) Error() string {
	msgs := make([]string, len(e))
	for i, fe := range e {
		msgs[i] = fe.Error()
	}
	return strings.Join(msgs, "; ")
}

// DocumentError is the failure to decode one document of a manifest.
type DocumentError struct {
	// Document is the 1-based position of the document among the non-empty
	// documents of the input.
	Document int
	// Item is the 0-based index in the items of a List document, or -1.
	Item int
	// Kind and Name identify the object when the document names them.
	Kind, Name string
	// Err is the cause: FieldErrors, or a problem with the document as a whole.
	Err error
}

func (e *DocumentError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "document %d", e.Document)
	if e.Item >= 0 {
		fmt.Fprintf(&b, ", items[%d]", e.Item)
	}
	switch {
	case e.Kind != "" && e.Name != "":
		fmt.Fprintf(&b, " (%s %q)", e.Kind, e.Name)
	case e.Kind != "":
		fmt.Fprintf(&b, " (%s)", e.Kind)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *DocumentError) Unwrap() error { return e.Err }
