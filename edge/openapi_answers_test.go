package edge_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"phoneshop/internal/shoptest"
)

// servedSchemas reads the OpenAPI document the edge serves and returns its
// component schemas, for checking answers against them (conforms).
func servedSchemas(t *testing.T, h *shoptest.Harness) map[string]any {
	t.Helper()
	var doc struct {
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/openapi.json"}), http.StatusOK, &doc)
	return doc.Components.Schemas
}

// conforms fails t unless body, a JSON answer, is what the served document's
// schema says: every member documented (unless the schema allows more), the
// required ones present, types, enums, patterns and bounds kept. It checks the
// parts of OpenAPI 3.0 the document uses.
func conforms(t *testing.T, schemas map[string]any, schema string, body []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("answer is not JSON: %s", body)
	}
	s, ok := schemas[schema]
	if !ok {
		t.Fatalf("openapi.json has no schema %s", schema)
	}
	if problems := check(schemas, s.(map[string]any), v, schema); len(problems) > 0 {
		sort.Strings(problems)
		t.Fatalf("the answer does not conform to %s:\n  %s\nanswer: %s", schema, strings.Join(problems, "\n  "), body)
	}
}

func check(schemas map[string]any, s map[string]any, v any, at string) []string {
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		target, ok := schemas[name].(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: unresolved $ref %s", at, ref)}
		}
		return check(schemas, target, v, at)
	}
	if v == nil {
		if s["nullable"] == true {
			return nil
		}
		return []string{at + ": null where the schema does not allow it"}
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, at+": "+fmt.Sprintf(format, args...)) }
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, v) {
		bad("%v is not one of %v", v, enum)
	}
	switch s["type"] {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			bad("%T, want an object", v)
			break
		}
		props, _ := s["properties"].(map[string]any)
		for _, r := range asStrings(s["required"]) {
			if _, ok := obj[r]; !ok {
				bad("required member %q missing", r)
			}
		}
		for name, member := range obj {
			p, documented := props[name].(map[string]any)
			if !documented {
				if s["additionalProperties"] != true {
					bad("member %q is not documented", name)
				}
				continue
			}
			problems = append(problems, check(schemas, p, member, at+"."+name)...)
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			bad("%T, want an array", v)
			break
		}
		items, _ := s["items"].(map[string]any)
		for i, item := range arr {
			if items != nil {
				problems = append(problems, check(schemas, items, item, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			bad("%T, want a string", v)
			break
		}
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(str) {
			bad("%q does not match %s", str, p)
		}
	case "integer", "number":
		n, ok := v.(float64)
		if !ok {
			bad("%T, want a number", v)
			break
		}
		if s["type"] == "integer" && n != math.Trunc(n) {
			bad("%v is not an integer", n)
		}
		if lo, ok := s["minimum"].(float64); ok && n < lo {
			bad("%v below the minimum %v", n, lo)
		}
		if hi, ok := s["maximum"].(float64); ok && n > hi {
			bad("%v above the maximum %v", n, hi)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			bad("%T, want a boolean", v)
		}
	}
	return problems
}

func asStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
