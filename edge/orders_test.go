package edge_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"phoneshop/internal/shoptest"
)

func TestOrders(t *testing.T) {
	h := shoptest.Start(t, 1)
	seed := loadSeed(t)
	pool := newSKUPool(seed)
	admin := h.Admin()

	t.Run("checkout_400_when_request_invalid", func(t *testing.T) {
		shopper, _ := h.Shopper()
		v := pool.stocked(t, 5)
		cart := putItem(t, h, shopper, v.SKU, 1)
		level := h.StockLevel(admin, v.SKU)
		const key = "rejected-key"
		for _, tc := range []struct {
			name    string
			key     string
			body    any
			headers map[string]string
		}{
			{"checkout_400_when_idempotency_key_missing", "", shoptest.Address(), nil},
			{"checkout_400_when_idempotency_key_has_129_chars", strings.Repeat("k", 129), shoptest.Address(), nil},
			{"checkout_400_when_shipping_address_missing", key, map[string]any{}, nil},
			{"checkout_400_when_shipping_address_null", key, `{"shipping_address": null}`, nil},
			{"checkout_400_when_country_not_alpha2", key, addressWith(map[string]string{"country": "usa"}), nil},
			{"checkout_400_when_city_missing", key, addressWith(map[string]string{"city": ""}), nil},
			{"checkout_400_when_name_blank", key, addressWith(map[string]string{"name": "   "}), nil},
			{"checkout_400_when_address_has_unknown_field", key, addressWith(map[string]string{"state": "IL"}), nil},
			{"checkout_400_when_json_malformed", key, `{"shipping_address": {`, nil},
			{"checkout_400_when_content_type_not_json", key, shoptest.Address(), map[string]string{"Content-Type": "text/plain"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				req := shoptest.Request{Method: "POST", Path: "/api/v1/orders", Token: shopper, Body: tc.body, Headers: map[string]string{}}
				if tc.key != "" {
					req.Headers["Idempotency-Key"] = tc.key
				}
				for k, v := range tc.headers {
					req.Headers[k] = v
				}
				wantError(t, do(t, h, req), http.StatusBadRequest, "invalid_request")
				wantCartUnchanged(t, h, shopper, cart)
				wantLevelUnchanged(t, h, admin, level)
				wantNoOrders(t, h, shopper)
			})
		}
		t.Run("checkout_201_with_key_the_refused_requests_used", func(t *testing.T) {
			o := placeOrder(t, h, shopper, key)
			if diff := cmp.Diff(cart.Items, o.Items); diff != "" {
				t.Errorf("order items (-cart +order):\n%s", diff)
			}
		})
	})

	t.Run("checkout_409_when_cart_empty", func(t *testing.T) {
		shopper, _ := h.Shopper()
		wantError(t, checkout(t, h, shopper, "empty-cart", shoptest.Address()), http.StatusConflict, "conflict")
		wantNoOrders(t, h, shopper)
		wantCartUnchanged(t, h, shopper, wantCart())
	})

	ann, _ := h.Shopper()
	bob, _ := h.Shopper()
	phoneA := pool.stocked(t, 10)
	phoneB := pool.stocked(t, 10)
	var first orderBody // ann's order of 2 phoneA + 1 second
	const firstKey = "ann-first-order"
	var phoneABefore, phoneBBefore shoptest.Level

	t.Run("checkout_201_confirms_order_and_takes_stock", func(t *testing.T) {
		putItem(t, h, ann, phoneA.SKU, 2)
		cart := putItem(t, h, ann, phoneB.SKU, 1)
		phoneABefore, phoneBBefore = h.StockLevel(admin, phoneA.SKU), h.StockLevel(admin, phoneB.SKU)
		started := time.Now()

		wantOK(t, checkout(t, h, ann, firstKey, shoptest.Address()), http.StatusCreated, &first)
		if first.ID == "" {
			t.Error("order has no id")
		}
		created, err := time.Parse(time.RFC3339Nano, first.CreatedAt)
		if err != nil || created.Before(started.Add(-time.Minute)) || created.After(time.Now().Add(time.Minute)) {
			t.Errorf("created_at = %q (%v), want about now", first.CreatedAt, err)
		}
		want := orderBody{ID: first.ID, Status: "confirmed", Items: []cartLine{wantLine(phoneA, 2), wantLine(phoneB, 1)},
			TotalCents: cart.TotalCents, Currency: "USD", ShippingAddress: shopperAddress, CreatedAt: first.CreatedAt}
		if diff := cmp.Diff(want, first); diff != "" {
			t.Errorf("order (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(wantCart(), getCart(t, h, ann)); diff != "" {
			t.Errorf("cart after checkout (-want +got):\n%s", diff)
		}
		for _, tc := range []struct {
			before shoptest.Level
			qty    int64
		}{{phoneABefore, 2}, {phoneBBefore, 1}} {
			want := tc.before
			want.Available -= tc.qty
			want.Sold += tc.qty
			if diff := cmp.Diff(want, h.StockLevel(admin, tc.before.SKU)); diff != "" {
				t.Errorf("stock after checkout (-want +got):\n%s", diff)
			}
		}
	})

	requireFirst := func(t *testing.T) {
		t.Helper()
		if first.ID == "" {
			t.Fatal("depends on checkout_201_confirms_order_and_takes_stock, which placed no order")
		}
	}

	t.Run("checkout_200_replays_same_key_same_body", func(t *testing.T) {
		requireFirst(t)
		phoneAAfter := h.StockLevel(admin, phoneA.SKU)
		var replay orderBody
		wantOK(t, checkout(t, h, ann, firstKey, shoptest.Address()), http.StatusOK, &replay)
		if diff := cmp.Diff(first, replay); diff != "" {
			t.Errorf("replayed order (-first +replay):\n%s", diff)
		}
		wantLevelUnchanged(t, h, admin, phoneAAfter)
		if got := listOrders(t, h, ann); len(got) != 1 {
			t.Errorf("orders after a replay: %v, want only %s", orderIDs(got), first.ID)
		}
	})

	t.Run("checkout_replay_keeps_cart_filled_since", func(t *testing.T) {
		requireFirst(t)
		cart := putItem(t, h, ann, phoneA.SKU, 1)
		phoneAAfter := h.StockLevel(admin, phoneA.SKU)
		var replay orderBody
		wantOK(t, checkout(t, h, ann, firstKey, shoptest.Address()), http.StatusOK, &replay)
		if replay.ID != first.ID {
			t.Errorf("replay id = %s, want %s", replay.ID, first.ID)
		}
		wantCartUnchanged(t, h, ann, cart)
		wantLevelUnchanged(t, h, admin, phoneAAfter)
		wantOK(t, do(t, h, shoptest.Request{Method: "DELETE", Path: "/api/v1/cart", Token: ann}), http.StatusNoContent, nil)
	})

	t.Run("checkout_422_when_same_key_different_address", func(t *testing.T) {
		requireFirst(t)
		phoneAAfter := h.StockLevel(admin, phoneA.SKU)
		for _, change := range []map[string]string{{"name": "Someone Else"}, {"line2": "Flat 2"}, {"country": "CA"}} {
			t.Run(fmt.Sprint(change), func(t *testing.T) {
				wantError(t, checkout(t, h, ann, firstKey, addressWith(change)), http.StatusUnprocessableEntity, "idempotency_mismatch")
			})
		}
		wantLevelUnchanged(t, h, admin, phoneAAfter)
		if diff := cmp.Diff(first, getOrder(t, h, ann, first.ID)); diff != "" {
			t.Errorf("order after mismatched replays (-first +now):\n%s", diff)
		}
	})

	t.Run("order_get_200", func(t *testing.T) {
		requireFirst(t)
		if diff := cmp.Diff(first, getOrder(t, h, ann, first.ID)); diff != "" {
			t.Errorf("order (-checkout +get):\n%s", diff)
		}
	})

	t.Run("order_404_for_another_shopper", func(t *testing.T) {
		requireFirst(t)
		phoneAAfter := h.StockLevel(admin, phoneA.SKU)
		wantError(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/orders/" + first.ID, Token: bob}), http.StatusNotFound, "not_found")
		wantError(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/orders/" + first.ID + "/cancel", Token: bob}), http.StatusNotFound, "not_found")
		if got := getOrder(t, h, ann, first.ID); got.Status != "confirmed" {
			t.Errorf("after another shopper's cancel the order is %q, want confirmed", got.Status)
		}
		wantLevelUnchanged(t, h, admin, phoneAAfter)
		wantNoOrders(t, h, bob)
	})

	t.Run("order_404_when_unknown", func(t *testing.T) {
		for _, id := range []string{"ord_000000000000000000000000", "no-such-order", "ord_" + strings.Repeat("0", 100)} {
			t.Run(id[:min(len(id), 30)], func(t *testing.T) {
				wantError(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/orders/" + id, Token: ann}), http.StatusNotFound, "not_found")
				wantError(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/orders/" + id + "/cancel", Token: ann}), http.StatusNotFound, "not_found")
			})
		}
	})

	t.Run("orders_401_without_token", func(t *testing.T) {
		for _, req := range []shoptest.Request{
			{Method: "GET", Path: "/api/v1/orders"},
			{Method: "POST", Path: "/api/v1/orders", Body: shoptest.Address(), Headers: map[string]string{"Idempotency-Key": "k"}},
			{Method: "GET", Path: "/api/v1/orders/" + first.ID},
			{Method: "POST", Path: "/api/v1/orders/" + first.ID + "/cancel"},
		} {
			t.Run(req.Method+"_"+req.Path, func(t *testing.T) {
				wantError(t, do(t, h, req), http.StatusUnauthorized, "unauthenticated")
			})
		}
	})

	t.Run("orders_list_newest_first_and_pages", func(t *testing.T) {
		shopper, _ := h.Shopper()
		v := pool.stocked(t, 10)
		var placed []string
		for i, key := range []string{"list-1", strings.Repeat("k", 128), "list-3"} {
			placed = append(placed, buy(t, h, shopper, v.SKU, int64(i+1), key).ID)
		}
		newestFirst := slices.Clone(placed)
		slices.Reverse(newestFirst)

		all := listOrders(t, h, shopper)
		if diff := cmp.Diff(newestFirst, orderIDs(all)); diff != "" {
			t.Errorf("orders (-newest first +got):\n%s", diff)
		}
		var walked []string
		token := ""
		for page := 0; page < 10; page++ {
			path := "/api/v1/orders?page_size=1"
			if token != "" {
				path += "&page_token=" + url.QueryEscape(token)
			}
			var p orderPage
			wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: path, Token: shopper}), http.StatusOK, &p)
			if len(p.Items) > 1 {
				t.Fatalf("page_size=1 gave %d orders", len(p.Items))
			}
			walked = append(walked, orderIDs(p.Items)...)
			if token = p.NextPageToken; token == "" {
				break
			}
		}
		if diff := cmp.Diff(newestFirst, walked); diff != "" {
			t.Errorf("orders walked one per page (-newest first +got):\n%s", diff)
		}
		for _, q := range []string{"page_size=0", "page_size=101", "page_size=x", "page_token=garbage!"} {
			t.Run("400_when_"+q, func(t *testing.T) {
				wantError(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/orders?" + q, Token: shopper}),
					http.StatusBadRequest, "invalid_request")
			})
		}
	})

	t.Run("checkout_409_out_of_stock_keeps_cart", func(t *testing.T) {
		shopper, _ := h.Shopper()
		scarce := pool.soldOut(t)
		h.SetStock(admin, scarce.SKU, 1)
		cart := putItem(t, h, shopper, scarce.SKU, 2)
		want := shoptest.Level{SKU: scarce.SKU, Available: 1, Received: 1}

		e := wantError(t, checkout(t, h, shopper, "too-many", shoptest.Address()), http.StatusConflict, "out_of_stock")
		if diff := cmp.Diff([]any{scarce.SKU}, e.Error.Details["skus"]); diff != "" {
			t.Errorf("details.skus (-want +got):\n%s", diff)
		}
		wantCartUnchanged(t, h, shopper, cart)
		wantLevelUnchanged(t, h, admin, want)
		wantNoOrders(t, h, shopper)

		// With a line that can be covered beside it, nothing is reserved either.
		plenty := pool.stocked(t, 5)
		plentyBefore := h.StockLevel(admin, plenty.SKU)
		cart = putItem(t, h, shopper, plenty.SKU, 1)
		e = wantError(t, checkout(t, h, shopper, "too-many-2", shoptest.Address()), http.StatusConflict, "out_of_stock")
		if diff := cmp.Diff([]any{scarce.SKU}, e.Error.Details["skus"]); diff != "" {
			t.Errorf("details.skus (-want +got):\n%s", diff)
		}
		wantCartUnchanged(t, h, shopper, cart)
		wantLevelUnchanged(t, h, admin, want)
		wantLevelUnchanged(t, h, admin, plentyBefore)
		wantNoOrders(t, h, shopper)

		// What is there can still be bought.
		putItem(t, h, shopper, plenty.SKU, 0)
		putItem(t, h, shopper, scarce.SKU, 1)
		placeOrder(t, h, shopper, "just-enough")
		if diff := cmp.Diff(shoptest.Level{SKU: scarce.SKU, Sold: 1, Received: 1}, h.StockLevel(admin, scarce.SKU)); diff != "" {
			t.Errorf("stock after buying the last unit (-want +got):\n%s", diff)
		}
	})

	t.Run("cancel_200_returns_stock", func(t *testing.T) {
		shopper, _ := h.Shopper()
		v := pool.stocked(t, 5)
		before := h.StockLevel(admin, v.SKU)
		o := buy(t, h, shopper, v.SKU, 2, "to-cancel")
		if l := h.StockLevel(admin, v.SKU); l.Sold != before.Sold+2 {
			t.Fatalf("sold after checkout = %d, want %d", l.Sold, before.Sold+2)
		}

		for _, name := range []string{"cancel_200_when_confirmed", "cancel_200_when_already_cancelled"} {
			t.Run(name, func(t *testing.T) {
				var got orderBody
				wantOK(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/orders/" + o.ID + "/cancel", Token: shopper}), http.StatusOK, &got)
				want := o
				want.Status = "cancelled"
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("cancelled order (-want +got):\n%s", diff)
				}
				// The stock is back where it was before the order, once.
				if diff := cmp.Diff(before, h.StockLevel(admin, v.SKU)); diff != "" {
					t.Errorf("stock after cancel (-before order +after cancel):\n%s", diff)
				}
			})
		}
		if got := getOrder(t, h, shopper, o.ID); got.Status != "cancelled" {
			t.Errorf("order read back is %q, want cancelled", got.Status)
		}
		if got := listOrders(t, h, shopper); len(got) != 1 || got[0].Status != "cancelled" {
			t.Errorf("listed orders = %+v, want the one cancelled order", got)
		}

		t.Run("ship_409_when_cancelled", func(t *testing.T) {
			wantError(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/ops/orders/" + o.ID + "/ship", Token: admin}),
				http.StatusConflict, "conflict")
			wantError(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/ops/orders/" + o.ID + "/deliver", Token: admin}),
				http.StatusConflict, "conflict")
			if got := getOrder(t, h, shopper, o.ID); got.Status != "cancelled" {
				t.Errorf("order is %q, want still cancelled", got.Status)
			}
			wantLevelUnchanged(t, h, admin, before)
		})
	})
}

var shopperAddress = addressBody{Name: "Ann Shopper", Line1: "1 Main Street", City: "Springfield", PostalCode: "12345", Country: "US"}

// addressWith is shoptest.Address with some fields changed (or removed, when "").
func addressWith(changes map[string]string) map[string]any {
	a := map[string]string{"name": "Ann Shopper", "line1": "1 Main Street", "city": "Springfield",
		"postal_code": "12345", "country": "US"}
	for k, v := range changes {
		if v == "" {
			delete(a, k)
		} else {
			a[k] = v
		}
	}
	return map[string]any{"shipping_address": a}
}
