package edge

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"phoneshop/grain/call"
	"phoneshop/protos/reasonpb"
)

func TestToAPIErrorOfGrainCalls(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"unanswered_call_is_unavailable", fmt.Errorf("%w: error request: member gone", call.ErrUnreachable), http.StatusServiceUnavailable, codeUnavailable},
		{"grain_unavailable_is_unavailable", reasonpb.ErrUnavailable("store down"), http.StatusServiceUnavailable, codeUnavailable},
		{"grain_out_of_stock_is_409", reasonpb.ErrOutOfStock("no units"), http.StatusConflict, codeOutOfStock},
		{"plain_error_is_internal", fmt.Errorf("boom"), http.StatusInternalServerError, codeInternal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ae, _ := toAPIError(tc.err)
			if ae.Status != tc.status || ae.Code != tc.code {
				t.Fatalf("= %d %s, want %d %s", ae.Status, ae.Code, tc.status, tc.code)
			}
			if strings.Contains(ae.Message, "member gone") || strings.Contains(ae.Message, "store down") || strings.Contains(ae.Message, "boom") {
				t.Fatalf("message leaks internals: %q", ae.Message)
			}
		})
	}
}

// TestLimitExceededCarriesWhatIsLeft: a grain's LIMIT_EXCEEDED is 409
// limit_exceeded with the campaign and the units left in the details; one that
// does not say what is left is a bug, answered 500 without its details.
func TestLimitExceededCarriesWhatIsLeft(t *testing.T) {
	ae, known := toAPIError(reasonpb.ErrLimitExceeded("over").WithMetadata(map[string]string{"promo_id": "promo_1", "remaining": "2"}))
	if !known || ae.Status != http.StatusConflict || ae.Code != codeLimitExceeded {
		t.Fatalf("= %d %s, want 409 %s", ae.Status, ae.Code, codeLimitExceeded)
	}
	if ae.Details["promo_id"] != "promo_1" || ae.Details["remaining"] != int64(2) {
		t.Fatalf("details = %v; want promo_id promo_1 and remaining 2", ae.Details)
	}
	for _, meta := range []map[string]string{nil, {"promo_id": "promo_1"}, {"remaining": "2"}, {"promo_id": "promo_1", "remaining": "x"}} {
		if ae, _ := toAPIError(reasonpb.ErrLimitExceeded("over").WithMetadata(meta)); ae.Status != http.StatusInternalServerError {
			t.Fatalf("metadata %v: %d %s; want 500", meta, ae.Status, ae.Code)
		}
	}
}

// TestErrorCodesAreInTheOpenAPI: every code the edge's error table can answer is
// one the served document lists.
func TestErrorCodesAreInTheOpenAPI(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas struct {
				Error struct {
					Properties struct {
						Error struct {
							Properties struct {
								Code struct {
									Enum []string `json:"enum"`
								} `json:"code"`
							} `json:"properties"`
						} `json:"error"`
					} `json:"properties"`
				} `json:"Error"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	listed := doc.Components.Schemas.Error.Properties.Error.Properties.Code.Enum
	codes := []string{codePayloadTooLarge, codeRateLimited, codeInternal}
	for _, m := range grainReasons {
		codes = append(codes, m.code)
	}
	for _, d := range domainErrors {
		codes = append(codes, d.code)
	}
	for _, code := range codes {
		if !slices.Contains(listed, code) {
			t.Errorf("the edge answers %q, which openapi.json's Error does not list (%v)", code, listed)
		}
	}
}
