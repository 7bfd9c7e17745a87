package edge

import (
	"fmt"
	"net/http"
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
