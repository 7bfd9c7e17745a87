package edge_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"phoneshop/internal/openapitest"
	"phoneshop/internal/shoptest"
	"phoneshop/notify/queue"
)

const (
	mailStatusPath = "/api/v1/ops/mail"
	redrivePath    = "/api/v1/ops/mail/dead-letters/redrive"
)

// mailStatusBody is GET /api/v1/ops/mail.
type mailStatusBody struct {
	OutboxPending          int64   `json:"outbox_pending"`
	OutboxOldestAgeSeconds float64 `json:"outbox_oldest_age_seconds"`
	Queues                 []struct {
		Name                 string
		Ready, Unacked, Dead int64
	} `json:"queues"`
}

// TestMailOps: the ops view of the mail pipeline and its redrive answer in the
// shapes the served openapi.json gives them, for staff only, and refuse what is
// not a mail queue or a sensible limit. (The dead-letter journeys are in
// shop/mailops_test.go on the in-process queue, and cmd/phoneshop on RabbitMQ.)
func TestMailOps(t *testing.T) {
	h := shoptest.Start(t, 1)
	admin := h.Admin()
	shopper, _ := h.Shopper()
	doc := do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/openapi.json"}).Body

	t.Run("status_lists_every_mail_queue", func(t *testing.T) {
		r := do(t, h, shoptest.Request{Method: "GET", Path: mailStatusPath, Token: admin})
		var got mailStatusBody
		wantOK(t, r, http.StatusOK, &got)
		openapitest.Validate(t, doc, "MailStatus", r.Body)
		var names []string
		for _, q := range got.Queues {
			names = append(names, q.Name)
		}
		if diff := cmp.Diff(queue.Names(queue.MailBindings), names); diff != "" {
			t.Errorf("queues (-want +got):\n%s", diff)
		}
		if got.OutboxPending < 0 || got.OutboxOldestAgeSeconds < 0 {
			t.Errorf("outbox backlog %+v", got)
		}
	})

	t.Run("redrive_of_no_dead_letters_is_0", func(t *testing.T) {
		r := do(t, h, shoptest.Request{Method: "POST", Path: redrivePath, Token: admin,
			Body: map[string]any{"queue": "phoneshop.order.email", "limit": 10}})
		var got map[string]int
		wantOK(t, r, http.StatusOK, &got)
		openapitest.Validate(t, doc, "Redriven", r.Body)
		if diff := cmp.Diff(map[string]int{"redriven": 0}, got); diff != "" {
			t.Errorf("answer (-want +got):\n%s", diff)
		}
	})

	t.Run("redrive_400_for_a_bad_queue_or_limit", func(t *testing.T) {
		for name, body := range map[string]any{
			"unknown_queue":      map[string]any{"queue": "phoneshop.nope", "limit": 10},
			"dead_letter_queue":  map[string]any{"queue": "phoneshop.order.email.dead", "limit": 10},
			"no_queue":           map[string]any{"limit": 10},
			"queue_not_a_string": map[string]any{"queue": 7, "limit": 10},
			"no_limit":           map[string]any{"queue": "phoneshop.order.email"},
			"limit_0":            map[string]any{"queue": "phoneshop.order.email", "limit": 0},
			"limit_negative":     map[string]any{"queue": "phoneshop.order.email", "limit": -1},
			"limit_too_big":      map[string]any{"queue": "phoneshop.order.email", "limit": 10001},
			"limit_fraction":     map[string]any{"queue": "phoneshop.order.email", "limit": 1.5},
			"unknown_field":      map[string]any{"queue": "phoneshop.order.email", "limit": 1, "all": true},
			"not_json":           "{",
		} {
			t.Run(name, func(t *testing.T) {
				r := do(t, h, shoptest.Request{Method: "POST", Path: redrivePath, Token: admin, Body: body})
				wantError(t, r, http.StatusBadRequest, "invalid_request")
				openapitest.Validate(t, doc, "Error", r.Body)
			})
		}
		r := do(t, h, shoptest.Request{Method: "POST", Path: redrivePath, Token: admin,
			Body: map[string]any{"queue": "phoneshop.nope", "limit": 10}})
		var e struct {
			Error struct {
				Details struct {
					Queues []string `json:"queues"`
				} `json:"details"`
			} `json:"error"`
		}
		if err := json.Unmarshal(r.Body, &e); err != nil || !slices.Equal(e.Error.Details.Queues, queue.Names(queue.MailBindings)) {
			t.Errorf("details of a bad queue = %s (%v), want the mail queues", r.Body, err)
		}
	})

	t.Run("staff_only", func(t *testing.T) {
		for _, req := range []shoptest.Request{
			{Method: "GET", Path: mailStatusPath},
			{Method: "POST", Path: redrivePath, Body: map[string]any{"queue": "phoneshop.order.email", "limit": 10}},
		} {
			wantError(t, do(t, h, req), http.StatusUnauthorized, "unauthenticated")
			req.Token = shopper
			r := do(t, h, req)
			wantError(t, r, http.StatusForbidden, "forbidden")
			openapitest.Validate(t, doc, "Error", r.Body)
		}
	})

	t.Run("openapi_describes_both_routes", func(t *testing.T) {
		var d struct {
			Paths map[string]map[string]any `json:"paths"`
		}
		if err := json.Unmarshal(doc, &d); err != nil {
			t.Fatal(err)
		}
		if _, ok := d.Paths[mailStatusPath]["get"]; !ok {
			t.Errorf("openapi.json has no GET %s", mailStatusPath)
		}
		if _, ok := d.Paths[redrivePath]["post"]; !ok {
			t.Errorf("openapi.json has no POST %s", redrivePath)
		}
	})
}
