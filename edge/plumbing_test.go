package edge_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"phoneshop/internal/shoptest"
)

func TestPlumbing(t *testing.T) {
	h := shoptest.Start(t, 1)
	seed := loadSeed(t)
	shopper, _ := h.Shopper()

	t.Run("healthz_200_when_alive", func(t *testing.T) {
		var got map[string]any
		wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/healthz"}), http.StatusOK, &got)
		if diff := cmp.Diff(map[string]any{"status": "ok"}, got); diff != "" {
			t.Errorf("healthz body (-want +got):\n%s", diff)
		}
	})

	t.Run("readyz_200_when_store_and_cluster_serve", func(t *testing.T) {
		var got map[string]any
		wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/readyz"}), http.StatusOK, &got)
		if diff := cmp.Diff(map[string]any{"status": "ok"}, got); diff != "" {
			t.Errorf("readyz body (-want +got):\n%s", diff)
		}
	})

	t.Run("openapi_json_describes_every_route", func(t *testing.T) {
		r := do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/openapi.json"})
		var doc struct {
			OpenAPI string                     `json:"openapi"`
			Paths   map[string]json.RawMessage `json:"paths"`
		}
		wantOK(t, r, http.StatusOK, &doc)
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type = %q, want application/json", ct)
		}
		if !strings.HasPrefix(doc.OpenAPI, "3.") {
			t.Errorf("openapi = %q, want a 3.x version", doc.OpenAPI)
		}
		for _, p := range []string{"/healthz", "/readyz", "/metrics", "/api/v1/accounts", "/api/v1/sessions",
			"/api/v1/sessions/current", "/api/v1/me", "/api/v1/phones", "/api/v1/phones/{id}", "/api/v1/brands",
			"/api/v1/cart", "/api/v1/cart/items/{sku}", "/api/v1/orders", "/api/v1/orders/{id}",
			"/api/v1/orders/{id}/cancel", "/api/v1/ops/inventory/{sku}", "/api/v1/ops/orders/{id}/ship",
			"/api/v1/ops/orders/{id}/deliver"} {
			if _, ok := doc.Paths[p]; !ok {
				t.Errorf("paths has no %s", p)
			}
		}
	})

	t.Run("unknown_route_404_not_found", func(t *testing.T) {
		for _, path := range []string{"/nope", "/api/v1/nope", "/api/v2/phones", "/api/v1/phones/google-pixel-8/extra"} {
			t.Run(strings.ReplaceAll(strings.Trim(path, "/"), "/", "_"), func(t *testing.T) {
				wantError(t, do(t, h, shoptest.Request{Method: "GET", Path: path}), http.StatusNotFound, "not_found")
			})
		}
	})

	// One request of each kind of answer: success, created, no content, and errors
	// raised by a handler, by auth, by the router and by the body limit.
	requests := []struct {
		name   string
		req    shoptest.Request
		status int
	}{
		{"healthz_200", shoptest.Request{Method: "GET", Path: "/healthz"}, http.StatusOK},
		{"phones_200", shoptest.Request{Method: "GET", Path: "/api/v1/phones"}, http.StatusOK},
		{"metrics_200", shoptest.Request{Method: "GET", Path: "/metrics"}, http.StatusOK},
		{"cart_clear_204", shoptest.Request{Method: "DELETE", Path: "/api/v1/cart", Token: shopper}, http.StatusNoContent},
		{"sessions_401", shoptest.Request{Method: "POST", Path: "/api/v1/sessions", Body: map[string]string{"email": "nobody@example.com", "password": "wrong password"}}, http.StatusUnauthorized},
		{"accounts_400", shoptest.Request{Method: "POST", Path: "/api/v1/accounts", Body: "{"}, http.StatusBadRequest},
		{"me_401", shoptest.Request{Method: "GET", Path: "/api/v1/me"}, http.StatusUnauthorized},
		{"ops_403", shoptest.Request{Method: "GET", Path: "/api/v1/ops/inventory/google-pixel-8-128-obsidian", Token: shopper}, http.StatusForbidden},
		{"route_404", shoptest.Request{Method: "GET", Path: "/no/such/route"}, http.StatusNotFound},
		{"body_413", shoptest.Request{Method: "POST", Path: "/api/v1/accounts", Body: oversizedBody()}, http.StatusRequestEntityTooLarge},
	}

	t.Run("request_id_on_every_response", func(t *testing.T) {
		seen := map[string]string{}
		for _, tc := range requests {
			t.Run(tc.name, func(t *testing.T) {
				r := do(t, h, tc.req)
				if r.Status != tc.status {
					t.Fatalf("status = %d, want %d; body %.200s", r.Status, tc.status, r.Body)
				}
				id := r.Header.Get("X-Request-Id")
				if id == "" {
					t.Fatal("no X-Request-Id")
				}
				if other, dup := seen[id]; dup {
					t.Errorf("X-Request-Id %q given to both %s and %s", id, other, tc.name)
				}
				seen[id] = tc.name
			})
		}
	})

	t.Run("request_id_echoed_when_sent", func(t *testing.T) {
		for i, tc := range requests {
			t.Run(tc.name, func(t *testing.T) {
				sent := fmt.Sprintf("client-chosen-id-%d", i)
				req := tc.req
				req.Headers = map[string]string{"X-Request-Id": sent}
				r := do(t, h, req)
				if r.Status != tc.status {
					t.Fatalf("status = %d, want %d; body %.200s", r.Status, tc.status, r.Body)
				}
				if got := r.Header.Get("X-Request-Id"); got != sent {
					t.Errorf("X-Request-Id = %q, want the sent %q", got, sent)
				}
			})
		}
	})

	t.Run("metrics_count_requests_grain_calls_and_orders", func(t *testing.T) {
		sku := seed.variant(t, "google-pixel-8-128-obsidian").SKU
		buy(t, h, shopper, sku, 1, "metrics-checkout")
		wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/phones/google-pixel-8"}), http.StatusOK, nil)
		do(t, h, shoptest.Request{Method: "GET", Path: "/no-such-route-4711"})

		r := do(t, h, shoptest.Request{Method: "GET", Path: "/metrics"})
		wantOK(t, r, http.StatusOK, nil)
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("Content-Type = %q, want Prometheus text (text/plain)", ct)
		}
		body := string(r.Body)
		for _, series := range []string{
			`phoneshop_http_requests_total{method="GET",route="/api/v1/phones/:id",status="200"}`,
			`phoneshop_http_requests_total{method="POST",route="/api/v1/orders",status="201"}`,
			`phoneshop_http_requests_total{method="PUT",route="/api/v1/cart/items/:sku",status="200"}`,
			`phoneshop_http_requests_total{method="GET",route="unmatched",status="404"}`,
			`phoneshop_grain_calls_total{kind="cart",method="Checkout",outcome="ok"}`,
			// A checkout of one SKU: its order is born in the sale.
			`phoneshop_grain_calls_total{kind="inventory",method="Sell",outcome="ok"}`,
		} {
			if v, ok := metricValue(t, body, series); !ok || v < 1 {
				t.Errorf("metrics: %s = %v (present %v), want >= 1", series, v, ok)
			}
		}
		// One checkout of one SKU: one durable round before its answer.
		if v, ok := metricValue(t, body, `phoneshop_checkout_durable_rounds_total{path="born"}`); !ok || v != 1 {
			t.Errorf(`metrics: phoneshop_checkout_durable_rounds_total{path="born"} = %v (present %v), want 1`, v, ok)
		}
		if v, ok := metricValue(t, body, `phoneshop_orders_total{outcome="confirmed"}`); !ok || v != 1 {
			t.Errorf(`metrics: phoneshop_orders_total{outcome="confirmed"} = %v (present %v), want 1`, v, ok)
		}
		// Route labels are patterns: raw paths would let any client grow the series.
		for _, leak := range []string{"google-pixel-8\"", "no-such-route-4711", sku} {
			if strings.Contains(body, leak) {
				t.Errorf("metrics carry a raw path fragment %q", leak)
			}
		}
	})
}

// metricValue reads the value of one series (name and labels exactly as exposed).
func metricValue(t *testing.T, body, series string) (float64, bool) {
	t.Helper()
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return f, true
		}
	}
	return 0, false
}
