package edge_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"phoneshop/internal/shoptest"
)

func TestCart(t *testing.T) {
	h := shoptest.Start(t, 1)
	seed := loadSeed(t)
	maxQty := h.Config.Settings.MaxLineQuantity
	pixel := seed.variant(t, "google-pixel-8-128-obsidian")
	iphone := seed.variant(t, seed.byID["apple-iphone-16"].Variants[0].SKU)
	ann, _ := h.Shopper()
	bob, _ := h.Shopper()

	t.Run("cart_401_without_token", func(t *testing.T) {
		for _, req := range []shoptest.Request{
			{Method: "GET", Path: "/api/v1/cart"},
			{Method: "DELETE", Path: "/api/v1/cart"},
			{Method: "PUT", Path: "/api/v1/cart/items/" + pixel.SKU, Body: map[string]int{"quantity": 1}},
			{Method: "DELETE", Path: "/api/v1/cart/items/" + pixel.SKU},
		} {
			t.Run(req.Method+"_"+strings.TrimPrefix(req.Path, "/api/v1/"), func(t *testing.T) {
				wantError(t, do(t, h, req), http.StatusUnauthorized, "unauthenticated")
				req.Token = "garbage-token"
				wantError(t, do(t, h, req), http.StatusUnauthorized, "unauthenticated")
			})
		}
	})

	t.Run("get_empty_cart", func(t *testing.T) {
		r := do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/cart", Token: ann})
		var got cartBody
		wantOK(t, r, http.StatusOK, &got)
		// An empty list, not null, and every amount present as a zero.
		want := map[string]any{"items": []any{}, "subtotal_cents": 0.0, "discount_cents": 0.0, "total_cents": 0.0, "currency": "USD"}
		if diff := cmp.Diff(want, r.Map(t)); diff != "" {
			t.Errorf("empty cart (-want +got):\n%s", diff)
		}
	})

	t.Run("put_quantity_2_adds_priced_line", func(t *testing.T) {
		got := putItem(t, h, ann, pixel.SKU, 2)
		want := cartBody{Items: []cartLine{{SKU: "google-pixel-8-128-obsidian", PhoneID: "google-pixel-8",
			Name: "Google Pixel 8 128 GB Obsidian", Quantity: 2, UnitPriceCents: 69900, LineTotalCents: 139800}},
			SubtotalCents: 139800, TotalCents: 139800, Currency: "USD"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("cart (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want, getCart(t, h, ann)); diff != "" {
			t.Errorf("cart read back (-want +got):\n%s", diff)
		}
	})

	t.Run("put_quantity_3_replaces_line", func(t *testing.T) {
		want := wantCart(wantLine(pixel, 3))
		if diff := cmp.Diff(want, putItem(t, h, ann, pixel.SKU, 3)); diff != "" {
			t.Errorf("cart (-want +got):\n%s", diff)
		}
	})

	t.Run("put_second_sku_adds_line_and_sums", func(t *testing.T) {
		want := wantCart(wantLine(pixel, 3), wantLine(iphone, 1))
		if diff := cmp.Diff(want, putItem(t, h, ann, iphone.SKU, 1)); diff != "" {
			t.Errorf("cart (-want +got):\n%s", diff)
		}
	})

	t.Run("put_max_quantity_accepted", func(t *testing.T) {
		want := wantCart(wantLine(pixel, 3), wantLine(iphone, maxQty))
		if diff := cmp.Diff(want, putItem(t, h, ann, iphone.SKU, maxQty)); diff != "" {
			t.Errorf("cart (-want +got):\n%s", diff)
		}
	})

	path := "/api/v1/cart/items/" + pixel.SKU
	for _, tc := range []struct {
		name    string
		body    any
		headers map[string]string
	}{
		{"put_400_when_quantity_above_max", fmt.Sprintf(`{"quantity": %d}`, maxQty+1), nil},
		{"put_400_when_quantity_negative", `{"quantity": -1}`, nil},
		{"put_400_when_quantity_fractional", `{"quantity": 1.5}`, nil},
		{"put_400_when_quantity_is_a_string", `{"quantity": "3"}`, nil},
		{"put_400_when_quantity_overflows", `{"quantity": 1e30}`, nil},
		{"put_400_when_quantity_null", `{"quantity": null}`, nil},
		{"put_400_when_quantity_missing", `{}`, nil},
		{"put_400_when_body_has_unknown_field", `{"quantity": 1, "price_cents": 1}`, nil},
		{"put_400_when_json_malformed", `{"quantity": `, nil},
		{"put_400_when_garbage_follows_json", `{"quantity": 1} x`, nil},
		{"put_400_when_body_empty", ``, nil},
		{"put_400_when_content_type_not_json", `{"quantity": 1}`, map[string]string{"Content-Type": "text/plain"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := getCart(t, h, ann)
			e := wantError(t, do(t, h, shoptest.Request{Method: "PUT", Path: path, Token: ann, Body: tc.body, Headers: tc.headers}),
				http.StatusBadRequest, "invalid_request")
			if tc.name == "put_400_when_quantity_above_max" {
				if got := e.Error.Details["max_quantity"]; got != float64(maxQty) {
					t.Errorf("details.max_quantity = %v, want %d", got, maxQty)
				}
			}
			wantCartUnchanged(t, h, ann, before)
		})
	}

	t.Run("put_404_when_sku_unknown", func(t *testing.T) {
		before := getCart(t, h, ann)
		wantError(t, do(t, h, shoptest.Request{Method: "PUT", Path: "/api/v1/cart/items/no-such-sku", Token: ann,
			Body: map[string]int{"quantity": 1}}), http.StatusNotFound, "not_found")
		wantCartUnchanged(t, h, ann, before)
	})

	t.Run("put_0_removes_line", func(t *testing.T) {
		want := wantCart(wantLine(iphone, maxQty))
		if diff := cmp.Diff(want, putItem(t, h, ann, pixel.SKU, 0)); diff != "" {
			t.Errorf("cart (-want +got):\n%s", diff)
		}
	})

	t.Run("delete_item_200_returns_cart", func(t *testing.T) {
		putItem(t, h, ann, pixel.SKU, 1)
		var got cartBody
		wantOK(t, do(t, h, shoptest.Request{Method: "DELETE", Path: "/api/v1/cart/items/" + iphone.SKU, Token: ann}), http.StatusOK, &got)
		want := wantCart(wantLine(pixel, 1))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("cart (-want +got):\n%s", diff)
		}
		wantCartUnchanged(t, h, ann, want)
	})

	t.Run("delete_item_200_when_line_absent_changes_nothing", func(t *testing.T) {
		before := getCart(t, h, ann)
		var got cartBody
		wantOK(t, do(t, h, shoptest.Request{Method: "DELETE", Path: "/api/v1/cart/items/" + iphone.SKU, Token: ann}), http.StatusOK, &got)
		if diff := cmp.Diff(before, got); diff != "" {
			t.Errorf("cart (-before +after):\n%s", diff)
		}
	})

	t.Run("delete_item_404_when_sku_unknown", func(t *testing.T) {
		before := getCart(t, h, ann)
		wantError(t, do(t, h, shoptest.Request{Method: "DELETE", Path: "/api/v1/cart/items/no-such-sku", Token: ann}),
			http.StatusNotFound, "not_found")
		wantCartUnchanged(t, h, ann, before)
	})

	t.Run("delete_cart_204_then_empty", func(t *testing.T) {
		putItem(t, h, ann, iphone.SKU, 2)
		r := do(t, h, shoptest.Request{Method: "DELETE", Path: "/api/v1/cart", Token: ann})
		wantOK(t, r, http.StatusNoContent, nil)
		if len(r.Body) != 0 {
			t.Errorf("204 with a body: %s", r.Body)
		}
		if diff := cmp.Diff(wantCart(), getCart(t, h, ann)); diff != "" {
			t.Errorf("cart after clear (-want +got):\n%s", diff)
		}
	})

	t.Run("shoppers_do_not_see_each_others_carts", func(t *testing.T) {
		putItem(t, h, ann, pixel.SKU, 1)
		putItem(t, h, bob, iphone.SKU, 2)
		if diff := cmp.Diff(wantCart(wantLine(pixel, 1)), getCart(t, h, ann)); diff != "" {
			t.Errorf("ann's cart (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(wantCart(wantLine(iphone, 2)), getCart(t, h, bob)); diff != "" {
			t.Errorf("bob's cart (-want +got):\n%s", diff)
		}
		wantOK(t, do(t, h, shoptest.Request{Method: "DELETE", Path: "/api/v1/cart", Token: bob}), http.StatusNoContent, nil)
		if diff := cmp.Diff(wantCart(wantLine(pixel, 1)), getCart(t, h, ann)); diff != "" {
			t.Errorf("ann's cart after bob cleared his (-want +got):\n%s", diff)
		}
	})
}
