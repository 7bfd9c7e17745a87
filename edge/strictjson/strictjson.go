// Package strictjson decodes a request body the way the API promises: JSON only,
// member names exactly as documented, no unknown or repeated members, nothing after
// the value, and errors that say what was wrong.
//
// It decodes with the JSON v2 semantics of github.com/go-json-experiment/json (the
// proposal behind encoding/json/v2) rather than encoding/json, whose names match
// case-insensitively ({"QUANTITY":1} sets quantity) and whose later duplicate silently
// wins ({"quantity":1,"quantity":9}): a body that means something other than what
// it says would pass validation and be acted on.
package strictjson

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// ErrContentType is returned when the request is not JSON.
var ErrContentType = errors.New("Content-Type must be application/json")

// Decode reads body into v, which must be a non-nil pointer. contentType is the
// request's Content-Type header. Every error's text can be shown to the client as it
// is.
func Decode(contentType string, body []byte, v any) error {
	if !strings.HasPrefix(strings.ToLower(contentType), "application/json") {
		return ErrContentType
	}
	if rv := reflect.ValueOf(v); rv.Kind() != reflect.Pointer || rv.IsNil() {
		// A caller's bug, not the client's: reported as a 400 it would be blamed
		// on every request.
		panic(fmt.Sprintf("strictjson: Decode into %T, want a non-nil pointer", v))
	}
	if len(bytes.Trim(body, " \t\r\n")) == 0 {
		return errors.New("request body is empty")
	}
	// Checked up front so that the answer names the problem rather than a byte
	// where the decoder gave up.
	if !utf8.Valid(body) {
		return errors.New("request body is not valid UTF-8")
	}
	// Case-sensitive names and rejected duplicates are v2's defaults; unknown
	// members must be asked for.
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	if err := json.UnmarshalDecode(dec, v, json.RejectUnknownMembers(true)); err != nil {
		return errors.New(describe(err))
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		return errors.New("request body has data after the JSON value")
	}
	return nil
}

// describe words a decoding error for the client: where and what, never the Go
// types behind it.
func describe(err error) string {
	var syntax *jsontext.SyntacticError
	var semantic *json.SemanticError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: the request body ends inside the value"
	case errors.As(err, &syntax) && errors.Is(err, jsontext.ErrDuplicateName):
		return fmt.Sprintf("field %q appears more than once", fieldPath(syntax.JSONPointer))
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d", syntax.ByteOffset)
	case errors.As(err, &semantic) && errors.Is(err, json.ErrUnknownName):
		return fmt.Sprintf("unknown field %q", fieldPath(semantic.JSONPointer))
	case errors.As(err, &semantic) && semantic.JSONPointer == "":
		return "request body must be a JSON object"
	case errors.As(err, &semantic) && errors.Is(err, strconv.ErrRange):
		return fmt.Sprintf("field %q is out of range", fieldPath(semantic.JSONPointer))
	case errors.As(err, &semantic):
		return fmt.Sprintf("field %q must be %s", fieldPath(semantic.JSONPointer), jsonKindOf(semantic.GoType))
	default:
		return "malformed JSON"
	}
}

// fieldPath names a member as the API's messages do (shipping_address.name).
func fieldPath(p jsontext.Pointer) string {
	var parts []string
	for tok := range p.Tokens() {
		parts = append(parts, tok)
	}
	return strings.Join(parts, ".")
}

// jsonKindOf says which JSON value a Go type takes.
func jsonKindOf(t reflect.Type) string {
	if t == nil {
		return "of another type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	default:
		return "of another type"
	}
}
