package strictjson_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"phoneshop/edge/strictjson"
)

type address struct {
	Name    string `json:"name"`
	Country string `json:"country"`
}

type body struct {
	Quantity *int64   `json:"quantity"`
	Address  *address `json:"shipping_address"`
	Roles    []string `json:"roles"`
	OptIn    *bool    `json:"opt_in"`
}

func ptr[T any](v T) *T { return &v }

func TestDecode(t *testing.T) {
	accepted := []struct {
		name string
		in   string
		want body
	}{
		{"decode_exact_names", `{"quantity":3,"shipping_address":{"name":"Ann","country":"US"},"roles":["a"],"opt_in":true}`,
			body{Quantity: ptr(int64(3)), Address: &address{Name: "Ann", Country: "US"}, Roles: []string{"a"}, OptIn: ptr(true)}},
		{"decode_leaves_absent_fields_nil", `{}`, body{}},
		{"decode_null_member_is_absent", `{"quantity":null}`, body{}},
		{"decode_whitespace_around_the_value", " \r\n\t{\"quantity\":0} \n", body{Quantity: ptr(int64(0))}},
		{"decode_unicode_text", `{"shipping_address":{"name":"Zoë \u00e9"}}`, body{Address: &address{Name: "Zoë é"}}},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			var got body
			if err := strictjson.Decode("application/json; charset=utf-8", []byte(tc.in), &got); err != nil {
				t.Fatalf("Decode(%s) = %v, want nil", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Decode(%s) (-want +got):\n%s", tc.in, diff)
			}
		})
	}

	refused := []struct {
		name        string
		contentType string
		in          string
		wantMessage string
	}{
		{"refuse_another_content_type", "text/plain", `{}`, "Content-Type must be application/json"},
		{"refuse_an_empty_body", "", ``, "Content-Type must be application/json"},
		{"refuse_an_empty_json_body", "application/json", ``, "request body is empty"},
		{"refuse_a_blank_body", "application/json", " \n", "request body is empty"},
		{"refuse_a_name_in_another_case", "application/json", `{"QUANTITY":1}`, `unknown field "QUANTITY"`},
		{"refuse_a_name_in_mixed_case", "application/json", `{"Quantity":1}`, `unknown field "Quantity"`},
		{"refuse_a_nested_name_in_another_case", "application/json", `{"shipping_address":{"Name":"Ann"}}`,
			`unknown field "shipping_address.Name"`},
		{"refuse_an_unknown_field", "application/json", `{"quantity":1,"extra":2}`, `unknown field "extra"`},
		{"refuse_a_duplicate_field", "application/json", `{"quantity":1,"quantity":9}`, `field "quantity" appears more than once`},
		{"refuse_a_duplicate_nested_field", "application/json", `{"shipping_address":{"name":"a","name":"b"}}`,
			`field "shipping_address.name" appears more than once`},
		{"refuse_data_after_the_value", "application/json", `{"quantity":1} x`, "request body has data after the JSON value"},
		{"refuse_a_second_value", "application/json", `{"quantity":1}{}`, "request body has data after the JSON value"},
		{"refuse_a_truncated_value", "application/json", `{"quantity":1`, "malformed JSON: the request body ends inside the value"},
		{"refuse_a_trailing_comma", "application/json", `{"quantity":1,}`, "malformed JSON at byte 13"},
		{"refuse_a_byte_order_mark", "application/json", "\ufeff{}", "malformed JSON at byte 0"},
		{"refuse_invalid_utf8", "application/json", "{\"shipping_address\":{\"name\":\"\xff\"}}", "request body is not valid UTF-8"},
		{"refuse_an_array", "application/json", `[]`, "request body must be a JSON object"},
		{"refuse_a_string_for_an_integer", "application/json", `{"quantity":"1"}`, `field "quantity" must be an integer`},
		{"refuse_a_fraction_for_an_integer", "application/json", `{"quantity":1.5}`, `field "quantity" must be an integer`},
		{"refuse_an_integer_out_of_range", "application/json", `{"quantity":99999999999999999999}`, `field "quantity" is out of range`},
		{"refuse_a_number_for_a_string", "application/json", `{"shipping_address":{"name":1}}`, `field "shipping_address.name" must be a string`},
		{"refuse_a_string_for_a_bool", "application/json", `{"opt_in":"yes"}`, `field "opt_in" must be true or false`},
		{"refuse_a_string_for_an_object", "application/json", `{"shipping_address":"x"}`, `field "shipping_address" must be an object`},
		{"refuse_a_number_in_a_string_array", "application/json", `{"roles":[1]}`, `field "roles.0" must be a string`},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			var got body
			err := strictjson.Decode(tc.contentType, []byte(tc.in), &got)
			if err == nil || err.Error() != tc.wantMessage {
				t.Fatalf("Decode(%q) = %v, want %q", tc.in, err, tc.wantMessage)
			}
			// The message goes to the client as it is: no Go type, no package.
			for _, leak := range []string{"strictjson", "jsontext", "json:", "Go ", "int64"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("message %q names %q", err, leak)
				}
			}
		})
	}
}

func TestDecode_panics_on_a_target_that_is_not_a_pointer(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Decode into a struct value did not panic")
		}
	}()
	_ = strictjson.Decode("application/json", []byte(`{}`), body{})
}
