// Package openapitest checks answers against the schemas of the OpenAPI document
// the edge serves (edge/openapi.json): a test that reads an answer from a running
// shop validates it with the schema the document names for it, so the served
// description cannot drift from what the shop sends.
//
// The document is OpenAPI 3.0, whose schema objects are a dialect of JSON Schema
// draft 4 (what it adds, such as nullable and example, is not checked).
package openapitest

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// docURL names the document inside the compiler; nothing is fetched.
const docURL = "file:///phoneshop/openapi.json"

// Validate fails the test unless body (JSON) is valid against the schema named
// schema in doc's components (doc: the served openapi.json).
func Validate(t testing.TB, doc []byte, schema string, body []byte) {
	t.Helper()
	parsed, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	if err := c.AddResource(docURL, parsed); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	sch, err := c.Compile(docURL + "#/components/schemas/" + schema)
	if err != nil {
		t.Fatalf("schema %s of openapi.json: %v", schema, err)
	}
	value, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("answer %.200s is not JSON: %v", body, err)
	}
	if err := sch.Validate(value); err != nil {
		var pretty bytes.Buffer
		_ = json.Indent(&pretty, body, "", "  ")
		t.Errorf("answer does not match schema %s of openapi.json: %v\n%s", schema, err, pretty.String())
	}
}
