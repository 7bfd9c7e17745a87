package edge_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"

	"phoneshop/internal/shoptest"
)

type opsOrderBody struct {
	orderBody
	AccountID  string `json:"account_id"`
	Email      string `json:"email"`
	ParkedFrom string `json:"parked_from"`
	Attention  string `json:"attention"`
}

type opsOrderPage struct {
	Items         []opsOrderBody `json:"items"`
	NextPageToken string         `json:"next_page_token"`
}

// TestOpsOrders: ops list the orders of every account: the ones to ship oldest
// first, one account's by e-mail, page by page; shoppers may not.
func TestOpsOrders(t *testing.T) {
	h := shoptest.Start(t, 1)
	admin := h.Admin()
	ann, annEmail := h.Shopper()
	bob, bobEmail := h.Shopper()
	const sku = "google-pixel-8-128-obsidian"
	first := buy(t, h, ann, sku, 1, "ops-orders-1")
	second := buy(t, h, bob, sku, 1, "ops-orders-2")
	third := buy(t, h, ann, sku, 2, "ops-orders-3")
	shipped := buy(t, h, bob, sku, 1, "ops-orders-4")
	wantOK(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/ops/orders/" + shipped.ID + "/ship", Token: admin}), http.StatusOK, nil)

	list := func(t *testing.T, query url.Values) (ids []string, items []opsOrderBody) {
		t.Helper()
		query.Set("page_size", "2")
		for range 20 {
			var page opsOrderPage
			wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/ops/orders?" + query.Encode(), Token: admin}), http.StatusOK, &page)
			for _, o := range page.Items {
				ids = append(ids, o.ID)
				items = append(items, o)
			}
			if page.NextPageToken == "" {
				return ids, items
			}
			query.Set("page_token", page.NextPageToken)
		}
		t.Fatal("the list did not end within 20 pages")
		return nil, nil
	}

	t.Run("to_ship_oldest_first", func(t *testing.T) {
		ids, items := list(t, url.Values{"status": {"confirmed"}})
		if diff := cmp.Diff([]string{first.ID, second.ID, third.ID}, ids); diff != "" {
			t.Errorf("orders to ship (-want +got):\n%s", diff)
		}
		emails := map[string]string{first.ID: annEmail, second.ID: bobEmail, third.ID: annEmail}
		for _, o := range items {
			if o.Email != emails[o.ID] || o.Status != "confirmed" || o.AccountID == "" || len(o.Items) == 0 {
				t.Errorf("order %s = %+v; want a confirmed order of %s with its lines", o.ID, o, emails[o.ID])
			}
		}
	})
	t.Run("one_account_by_email_newest_first", func(t *testing.T) {
		ids, _ := list(t, url.Values{"email": {bobEmail}})
		if diff := cmp.Diff([]string{shipped.ID, second.ID}, ids); diff != "" {
			t.Errorf("bob's orders (-want +got):\n%s", diff)
		}
		if ids, _ := list(t, url.Values{"email": {"nobody-here@example.com"}}); len(ids) != 0 {
			t.Errorf("orders of an unknown address: %v, want none", ids)
		}
	})
	t.Run("parked_sagas_are_a_status_of_their_own", func(t *testing.T) {
		if ids, _ := list(t, url.Values{"status": {"needs_attention"}}); len(ids) != 0 {
			t.Errorf("parked sagas: %v, want none", ids)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		wantError(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/ops/orders", Token: ann}), http.StatusForbidden, "forbidden")
		wantError(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/ops/orders?status=rejected", Token: admin}), http.StatusBadRequest, "invalid_request")
		wantError(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/ops/orders?email=not-an-address", Token: admin}), http.StatusBadRequest, "invalid_request")
		wantError(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/ops/orders?page_token=garbage", Token: admin}), http.StatusBadRequest, "invalid_request")
		wantError(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/ops/orders/ord_000000000000000000000000/resume", Token: admin}), http.StatusNotFound, "not_found")
	})
	t.Run("resume_of_an_order_at_rest_answers_it", func(t *testing.T) {
		var o orderBody
		wantOK(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/ops/orders/" + first.ID + "/resume", Token: admin}), http.StatusOK, &o)
		if o.Status != "confirmed" {
			t.Errorf("resumed order is %q, want confirmed", o.Status)
		}
	})
}
