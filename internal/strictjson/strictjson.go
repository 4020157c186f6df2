// Package strictjson decodes request bodies the way the admin API reads
// them: one JSON object, no unknown fields, nothing after it. Its refusals
// say what is wrong in words a caller can act on. It lives apart from
// internal/web so that a CRM provider, which receives a bind request's body
// as is, refuses it in the same words as every other API call.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/switchboard/switchboard/internal/fault"
)

// Code is the code of every refusal Decode returns.
const Code = "invalid_json"

// Decode reads data into v strictly. A refusal is a *fault.Error of kind
// Malformed with Code.
func Decode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &fault.Error{Kind: fault.Malformed, Code: Code, Message: problem(err), Err: err}
	}
	if dec.More() {
		return fault.New(fault.Malformed, Code, "request body: unexpected data after the JSON object")
	}
	return nil
}

// problem turns a decoding error into a sentence for the caller,
// instead of Go's (`invalid character 'y' in literal true`).
func problem(err error) string {
	const takes = "this API takes a JSON object with Content-Type: application/json, e.g. -d '{\"name\":\"Sales\"}'"
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "the body is empty: " + takes
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON body ends too early: " + takes
	case errors.As(err, &syn):
		return fmt.Sprintf("the body is not JSON (at byte %d): %s; form fields are not accepted", syn.Offset, takes)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return "the body must be " + kind(typ.Type) + ": " + takes
		}
		return fmt.Sprintf("field %q must be %s", typ.Field, kind(typ.Type))
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "unknown field " + f
	}
	return "the body is not valid JSON: " + takes
}

func kind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "a JSON object"
}
