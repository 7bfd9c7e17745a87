package edge_test

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"phoneshop/internal/shoptest"
)

// limitBody is what the API says of a campaign's limit per customer.
type limitBody struct {
	ID                  string `json:"id"`
	MaxUnitsPerCustomer *int64 `json:"max_units_per_customer"`
	Stats               struct {
		DiscountedUnits int64 `json:"discounted_units"`
		Orders          int64 `json:"orders"`
	} `json:"stats"`
}

type limitCartLine struct {
	SKU                 string `json:"sku"`
	Quantity            int64  `json:"quantity"`
	DiscountCents       int64  `json:"discount_cents"`
	PromoID             string `json:"promo_id"`
	MaxUnitsPerCustomer *int64 `json:"max_units_per_customer"`
}

type limitCart struct {
	Items []limitCartLine `json:"items"`
}

type limitRefusal struct {
	Error struct {
		Code    string `json:"code"`
		Details struct {
			PromoID   string `json:"promo_id"`
			Remaining *int64 `json:"remaining"`
		} `json:"details"`
	} `json:"error"`
}

// TestLimitPerCustomer: a campaign's max_units_per_customer is set, shown and
// changed through the API (400 outside 1-100), shown on the cart lines it
// discounts, and holds across an account's checkouts: one that would go over is
// 409 limit_exceeded with the campaign and the units left, reserving nothing and
// keeping the cart; a cancelled order gives its units back. Every answer conforms
// to the served OpenAPI document.
func TestLimitPerCustomer(t *testing.T) {
	h := shoptest.Start(t, 1)
	admin := h.Admin()
	schemas := servedSchemas(t, h)
	sku := shoptest.SoldOutSKUs(t, 1)[0]
	h.SetStock(admin, sku, 50)

	body := campaign(20, sku)
	for _, bad := range []any{0, 101, -1, 2.5, "3"} {
		body["max_units_per_customer"] = bad
		wantError(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/promos", Token: admin, Body: body}),
			http.StatusBadRequest, "invalid_request")
	}
	body["max_units_per_customer"] = 100
	r := do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/promos", Token: admin, Body: body})
	var p limitBody
	wantOK(t, r, http.StatusCreated, &p)
	conforms(t, schemas, "Promo", r.Body)
	if p.MaxUnitsPerCustomer == nil || *p.MaxUnitsPerCustomer != 100 {
		t.Fatalf("created with max_units_per_customer %v, want 100", p.MaxUnitsPerCustomer)
	}
	id := p.ID
	patch := func(v any) shoptest.Response {
		return do(t, h, shoptest.Request{Method: "PATCH", Path: "/api/v1/promos/" + id, Token: admin,
			Body: map[string]any{"max_units_per_customer": v}})
	}
	wantError(t, patch(101), http.StatusBadRequest, "invalid_request")
	p = limitBody{} // an absent member leaves a decoded pointer as it was
	wantOK(t, patch(nil), http.StatusOK, &p)
	if p.MaxUnitsPerCustomer != nil {
		t.Fatalf("after a patch to null: max_units_per_customer %d, want none", *p.MaxUnitsPerCustomer)
	}
	r = patch(3)
	wantOK(t, r, http.StatusOK, &p)
	conforms(t, schemas, "Promo", r.Body)
	movePromo(t, h, admin, p.ID, "launch")
	r = do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/promos/" + p.ID, Token: admin})
	wantOK(t, r, http.StatusOK, &p)
	conforms(t, schemas, "Promo", r.Body)
	if p.MaxUnitsPerCustomer == nil || *p.MaxUnitsPerCustomer != 3 {
		t.Fatalf("get: max_units_per_customer %v, want 3", p.MaxUnitsPerCustomer)
	}
	wantError(t, patch(5), http.StatusConflict, "conflict") // launched: no longer a draft

	shopper, _ := h.Shopper()
	cartOf := func() (limitCart, []byte) {
		t.Helper()
		r := do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/cart", Token: shopper})
		var c limitCart
		wantOK(t, r, http.StatusOK, &c)
		return c, r.Body
	}
	putItem(t, h, shopper, sku, 2)
	eventually(t, "the cart shows the campaign", func() bool { c, _ := cartOf(); return c.Items[0].PromoID == p.ID })
	c, raw := cartOf()
	conforms(t, schemas, "Cart", raw)
	if l := c.Items[0]; l.MaxUnitsPerCustomer == nil || *l.MaxUnitsPerCustomer != 3 || l.DiscountCents == 0 {
		t.Fatalf("cart line = %+v; want the discount and max_units_per_customer 3", l)
	}
	first := placeOrder(t, h, shopper, "limit-1")

	overLimit := func(key string, wantRemaining int64) {
		t.Helper()
		putItem(t, h, shopper, sku, 2)
		before, level := getCart(t, h, shopper), h.StockLevel(admin, sku)
		r := checkout(t, h, shopper, key, shoptest.Address())
		wantError(t, r, http.StatusConflict, "limit_exceeded")
		conforms(t, schemas, "Error", r.Body)
		var e limitRefusal
		r.JSON(t, &e)
		if e.Error.Details.PromoID != p.ID || e.Error.Details.Remaining == nil || *e.Error.Details.Remaining != wantRemaining {
			t.Fatalf("details = %+v; want promo_id %s, remaining %d", e.Error.Details, p.ID, wantRemaining)
		}
		wantCartUnchanged(t, h, shopper, before)
		wantLevelUnchanged(t, h, admin, level)
		// The same key again is refused again: nothing was kept of it.
		wantError(t, checkout(t, h, shopper, key, shoptest.Address()), http.StatusConflict, "limit_exceeded")
	}
	overLimit("limit-2", 1)
	putItem(t, h, shopper, sku, 1)
	placeOrder(t, h, shopper, "limit-3")
	overLimit("limit-4", 0)

	// Another account has an allowance of its own.
	other, _ := h.Shopper()
	buy(t, h, other, sku, 3, "other-1")

	// A cancel gives the units back: the refused checkout goes through now.
	wantOK(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/orders/" + first.ID + "/cancel", Token: shopper}), http.StatusOK, nil)
	var placed pricedOrder
	wantOK(t, checkout(t, h, shopper, "limit-4", shoptest.Address()), http.StatusCreated, &placed)
	if placed.DiscountCents == 0 {
		t.Fatalf("the order after the cancel has no discount: %+v", placed)
	}
	if promoOf(t, placed) != p.ID {
		t.Fatalf("the order after the cancel is discounted by %s, want %s", promoOf(t, placed), p.ID)
	}
	wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/promos/" + p.ID, Token: admin}), http.StatusOK, &p)
	if diff := cmp.Diff(struct{ Units, Orders int64 }{3 + 3, 3}, struct{ Units, Orders int64 }{p.Stats.DiscountedUnits, p.Stats.Orders}); diff != "" {
		t.Fatalf("campaign stats (-want +got):\n%s", diff)
	}
	if l := h.StockLevel(admin, sku); l.Reserved != 0 || l.Sold != 6 {
		t.Fatalf("stock = %+v; want 6 sold (3 to each account), none reserved", l)
	}
}

// promoOf is the campaign of an order's discounted line.
func promoOf(t *testing.T, o pricedOrder) string {
	t.Helper()
	for _, l := range o.Items {
		if l.PromoID != "" {
			return l.PromoID
		}
	}
	t.Fatalf("order %s has no discounted line", o.ID)
	return ""
}
