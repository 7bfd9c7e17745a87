package edge_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"phoneshop/account"
	"phoneshop/internal/shoptest"
)

func TestOps(t *testing.T) {
	h := shoptest.Start(t, 1)
	seed := loadSeed(t)
	pool := newSKUPool(seed)
	admin := h.Admin()
	shopper, _ := h.Shopper()
	inventory := "/api/v1/ops/inventory/"

	t.Run("ops_401_without_token", func(t *testing.T) {
		for _, req := range []shoptest.Request{
			{Method: "GET", Path: inventory + "google-pixel-8-128-obsidian"},
			{Method: "PUT", Path: inventory + "google-pixel-8-128-obsidian", Body: map[string]int{"received": 5}},
			{Method: "POST", Path: "/api/v1/ops/orders/ord_000000000000000000000000/ship"},
			{Method: "POST", Path: "/api/v1/ops/orders/ord_000000000000000000000000/deliver"},
		} {
			t.Run(req.Method+"_"+req.Path, func(t *testing.T) {
				wantError(t, do(t, h, req), http.StatusUnauthorized, "unauthenticated")
			})
		}
	})

	t.Run("ops_403_for_shopper", func(t *testing.T) {
		v := pool.stocked(t, 1)
		before := h.StockLevel(admin, v.SKU)
		for _, req := range []shoptest.Request{
			{Method: "GET", Path: inventory + v.SKU, Token: shopper},
			{Method: "PUT", Path: inventory + v.SKU, Token: shopper, Body: map[string]int{"received": 5}},
			{Method: "POST", Path: "/api/v1/ops/orders/ord_000000000000000000000000/ship", Token: shopper},
			{Method: "POST", Path: "/api/v1/ops/orders/ord_000000000000000000000000/deliver", Token: shopper},
		} {
			t.Run(req.Method+"_"+req.Path, func(t *testing.T) {
				wantError(t, do(t, h, req), http.StatusForbidden, "forbidden")
				wantLevelUnchanged(t, h, admin, before)
			})
		}
	})

	t.Run("ops_role_may_use_inventory", func(t *testing.T) {
		ctx := context.Background()
		if _, err := h.Shop.Accounts.Register(ctx, "ops@example.com", "ops password 1", "Ops", account.RoleOps); err != nil {
			t.Fatal(err)
		}
		token, err := h.TryLogin("ops@example.com", "ops password 1")
		if err != nil {
			t.Fatal(err)
		}
		v := pool.stocked(t, 1)
		wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: inventory + v.SKU, Token: token}), http.StatusOK, nil)
	})

	t.Run("inventory_get_level", func(t *testing.T) {
		v := pool.stocked(t, 1)
		var got shoptest.Level
		wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: inventory + v.SKU, Token: admin}), http.StatusOK, &got)
		want := shoptest.Level{SKU: v.SKU, Available: v.InitialStock, Received: v.InitialStock}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("level (-seed +got):\n%s", diff)
		}
	})

	t.Run("inventory_get_level_of_never_stocked_sku", func(t *testing.T) {
		v := pool.soldOut(t)
		var got shoptest.Level
		wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: inventory + v.SKU, Token: admin}), http.StatusOK, &got)
		if diff := cmp.Diff(shoptest.Level{SKU: v.SKU}, got); diff != "" {
			t.Errorf("level (-want +got):\n%s", diff)
		}
	})

	receive := func(t *testing.T, sku string, body any) shoptest.Response {
		t.Helper()
		return do(t, h, shoptest.Request{Method: "PUT", Path: inventory + sku, Token: admin, Body: body})
	}

	t.Run("inventory_put_received_5_adds_to_available", func(t *testing.T) {
		v := pool.stocked(t, 1)
		before := h.StockLevel(admin, v.SKU)
		want := before
		want.Available += 5
		want.Received += 5
		var got shoptest.Level
		wantOK(t, receive(t, v.SKU, map[string]int{"received": 5}), http.StatusOK, &got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("level returned (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want, h.StockLevel(admin, v.SKU)); diff != "" {
			t.Errorf("level read back (-want +got):\n%s", diff)
		}
		// A second delivery adds again: deliveries are not merged.
		want.Available += 5
		want.Received += 5
		wantOK(t, receive(t, v.SKU, map[string]int{"received": 5}), http.StatusOK, &got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("level after a second delivery (-want +got):\n%s", diff)
		}
	})

	t.Run("inventory_put_with_same_request_id_is_two_deliveries", func(t *testing.T) {
		v := pool.stocked(t, 1)
		before := h.StockLevel(admin, v.SKU)
		for range 2 {
			r := do(t, h, shoptest.Request{Method: "PUT", Path: inventory + v.SKU, Token: admin,
				Body: map[string]int{"received": 3}, Headers: map[string]string{"X-Request-Id": "trace-reused"}})
			wantOK(t, r, http.StatusOK, nil)
		}
		if got := h.StockLevel(admin, v.SKU); got.Received != before.Received+6 {
			t.Errorf("received = %d, want %d: X-Request-Id traces, it does not deduplicate", got.Received, before.Received+6)
		}
	})

	t.Run("inventory_put_with_same_idempotency_key_counts_once", func(t *testing.T) {
		v := pool.stocked(t, 1)
		before := h.StockLevel(admin, v.SKU)
		for range 2 {
			r := do(t, h, shoptest.Request{Method: "PUT", Path: inventory + v.SKU, Token: admin,
				Body: map[string]int{"received": 4}, Headers: map[string]string{"Idempotency-Key": "delivery-note-77"}})
			wantOK(t, r, http.StatusOK, nil)
		}
		if got := h.StockLevel(admin, v.SKU); got.Received != before.Received+4 {
			t.Errorf("received = %d, want %d: a resent delivery counts once", got.Received, before.Received+4)
		}
		r := do(t, h, shoptest.Request{Method: "PUT", Path: inventory + v.SKU, Token: admin,
			Body: map[string]int{"received": 4}, Headers: map[string]string{"Idempotency-Key": strings.Repeat("k", 129)}})
		wantError(t, r, http.StatusBadRequest, "invalid_request")
		if got := h.StockLevel(admin, v.SKU); got.Received != before.Received+4 {
			t.Errorf("received = %d after a refused request, want %d", got.Received, before.Received+4)
		}
	})

	t.Run("inventory_put_received_1000000_accepted", func(t *testing.T) {
		v := pool.stocked(t, 1)
		before := h.StockLevel(admin, v.SKU)
		var got shoptest.Level
		wantOK(t, receive(t, v.SKU, map[string]int{"received": 1_000_000}), http.StatusOK, &got)
		if got.Received != before.Received+1_000_000 || got.Available != before.Available+1_000_000 {
			t.Errorf("level = %+v, want 1000000 more than %+v", got, before)
		}
	})

	t.Run("inventory_put_400_when_received_invalid", func(t *testing.T) {
		v := pool.stocked(t, 1)
		before := h.StockLevel(admin, v.SKU)
		for _, tc := range []struct {
			name string
			body any
		}{
			{"received_0", `{"received": 0}`},
			{"received_negative", `{"received": -1}`},
			{"received_missing", `{}`},
			{"received_above_1000000", `{"received": 1000001}`},
			{"received_fractional", `{"received": 1.5}`},
			{"received_a_string", `{"received": "5"}`},
			{"unknown_field", `{"received": 5, "sold": 1}`},
			{"json_malformed", `{"received": `},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantError(t, receive(t, v.SKU, tc.body), http.StatusBadRequest, "invalid_request")
				wantLevelUnchanged(t, h, admin, before)
			})
		}
	})

	t.Run("inventory_404_when_sku_unknown", func(t *testing.T) {
		wantError(t, do(t, h, shoptest.Request{Method: "GET", Path: inventory + "no-such-sku", Token: admin}), http.StatusNotFound, "not_found")
		wantError(t, receive(t, "no-such-sku", map[string]int{"received": 5}), http.StatusNotFound, "not_found")
	})

	// The order lifecycle as operators drive it.
	v := pool.stocked(t, 5)
	order := buy(t, h, shopper, v.SKU, 1, "ops-lifecycle")
	sold := h.StockLevel(admin, v.SKU)
	opsOrder := func(t *testing.T, id, action string) shoptest.Response {
		t.Helper()
		return do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/ops/orders/" + id + "/" + action, Token: admin})
	}
	wantStatus := func(t *testing.T, r shoptest.Response, status string) {
		t.Helper()
		var got orderBody
		wantOK(t, r, http.StatusOK, &got)
		want := order
		want.Status = status
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("order (-want +got):\n%s", diff)
		}
		if got := getOrder(t, h, shopper, order.ID); got.Status != status {
			t.Errorf("shopper reads status %q, want %q", got.Status, status)
		}
	}

	t.Run("deliver_409_when_order_only_confirmed", func(t *testing.T) {
		wantError(t, opsOrder(t, order.ID, "deliver"), http.StatusConflict, "conflict")
		if got := getOrder(t, h, shopper, order.ID); got.Status != "confirmed" {
			t.Errorf("order is %q, want still confirmed", got.Status)
		}
	})

	t.Run("ship_200_marks_confirmed_order_shipped", func(t *testing.T) {
		wantStatus(t, opsOrder(t, order.ID, "ship"), "shipped")
	})

	t.Run("cancel_409_when_shipped", func(t *testing.T) {
		wantError(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/orders/" + order.ID + "/cancel", Token: shopper}),
			http.StatusConflict, "conflict")
		if got := getOrder(t, h, shopper, order.ID); got.Status != "shipped" {
			t.Errorf("order is %q, want still shipped", got.Status)
		}
		wantLevelUnchanged(t, h, admin, sold)
	})

	t.Run("deliver_200_marks_shipped_order_delivered", func(t *testing.T) {
		wantStatus(t, opsOrder(t, order.ID, "deliver"), "delivered")
	})

	t.Run("ship_409_when_delivered", func(t *testing.T) {
		wantError(t, opsOrder(t, order.ID, "ship"), http.StatusConflict, "conflict")
		wantError(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/orders/" + order.ID + "/cancel", Token: shopper}),
			http.StatusConflict, "conflict")
		wantLevelUnchanged(t, h, admin, sold)
	})

	t.Run("ship_404_when_order_unknown", func(t *testing.T) {
		for _, id := range []string{"ord_000000000000000000000000", "no-such-order"} {
			for _, action := range []string{"ship", "deliver"} {
				t.Run(action+"_"+id, func(t *testing.T) {
					wantError(t, opsOrder(t, id, action), http.StatusNotFound, "not_found")
				})
			}
		}
	})
}
