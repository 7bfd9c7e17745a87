package edge

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"phoneshop/notify/queue"
)

// TestMailQueuesErrors: an unknown queue is the client's mistake; a broker that
// does not answer is 503 with Retry-After, never a 500.
func TestMailQueuesErrors(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("%w: phoneshop.nope", queue.ErrUnknownQueue), http.StatusBadRequest, codeInvalidRequest},
		{errors.New("rabbitmq: broker unavailable: dial tcp 127.0.0.1:5672: connect: connection refused"), http.StatusServiceUnavailable, codeUnavailable},
	} {
		ae, known := toAPIError(mailQueuesError(tc.err))
		if !known || ae.Status != tc.status || ae.Code != tc.code {
			t.Errorf("%v: %d %s (known %v), want %d %s", tc.err, ae.Status, ae.Code, known, tc.status, tc.code)
		}
	}
}
