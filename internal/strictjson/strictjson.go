// Package strictjson decodes a request body the way the API promises: JSON only, no
// unknown fields, nothing after the value, and errors that say what was wrong.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrContentType is returned when the request is not JSON.
var ErrContentType = errors.New("Content-Type must be application/json")

// Decode reads body into v. contentType is the request's Content-Type header. Every
// error's text can be shown to the client as it is.
func Decode(contentType string, body []byte, v any) error {
	if !strings.HasPrefix(strings.ToLower(contentType), "application/json") {
		return ErrContentType
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New(describe(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("request body has data after the JSON value")
	}
	return nil
}

func describe(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "request body is empty"
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q must be %s", typ.Field, typ.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	default:
		return "malformed JSON"
	}
}
