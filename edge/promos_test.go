package edge_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"phoneshop/actors/promo"
	"phoneshop/internal/shoptest"
)

// --- the campaign shapes of API.md ---

type promoBody struct {
	ID                 string   `json:"id"`
	Name               string   `json:"name"`
	PercentOff         int      `json:"percent_off"`
	Brands             []string `json:"brands"`
	SKUs               []string `json:"skus"`
	StartsAt           string   `json:"starts_at"`
	EndsAt             string   `json:"ends_at"`
	MaxDiscountedUnits *int64   `json:"max_discounted_units"`
	EmailSubject       string   `json:"email_subject"`
	EmailBody          string   `json:"email_body"`
	Status             string   `json:"status"`
	Stats              struct {
		Recipients      int64 `json:"recipients"`
		Sent            int64 `json:"sent"`
		Failed          int64 `json:"failed"`
		DiscountedUnits int64 `json:"discounted_units"`
		Orders          int64 `json:"orders"`
	} `json:"stats"`
}

type pricedLine struct {
	SKU            string `json:"sku"`
	Quantity       int64  `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
	LineTotalCents int64  `json:"line_total_cents"`
	DiscountCents  int64  `json:"discount_cents"`
	PromoID        string `json:"promo_id"`
}

type pricedCart struct {
	Items         []pricedLine `json:"items"`
	SubtotalCents int64        `json:"subtotal_cents"`
	DiscountCents int64        `json:"discount_cents"`
	TotalCents    int64        `json:"total_cents"`
}

type pricedOrder struct {
	ID            string       `json:"id"`
	Status        string       `json:"status"`
	Items         []pricedLine `json:"items"`
	SubtotalCents int64        `json:"subtotal_cents"`
	DiscountCents int64        `json:"discount_cents"`
	TotalCents    int64        `json:"total_cents"`
}

type saleVariant struct {
	SKU            string `json:"sku"`
	PriceCents     int64  `json:"price_cents"`
	SalePriceCents *int64 `json:"sale_price_cents"`
	PromoID        string `json:"promo_id"`
}

type salePhone struct {
	ID                 string        `json:"id"`
	FromSalePriceCents *int64        `json:"from_sale_price_cents"`
	Variants           []saleVariant `json:"variants"`
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// campaign is a valid create body for the skus, running from a minute ago for a day.
func campaign(percent int, skus ...string) map[string]any {
	return map[string]any{"name": "Test sale", "percent_off": percent, "skus": skus,
		"starts_at": rfc(time.Now().Add(-time.Minute)), "ends_at": rfc(time.Now().Add(24 * time.Hour)),
		"email_subject": "Sale", "email_body": "Phones for less"}
}

func createPromo(t *testing.T, h *shoptest.Harness, token string, body map[string]any) promoBody {
	t.Helper()
	var p promoBody
	wantOK(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/promos", Token: token, Body: body}), http.StatusCreated, &p)
	return p
}

func movePromo(t *testing.T, h *shoptest.Harness, token, id, move string) promoBody {
	t.Helper()
	var p promoBody
	wantOK(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/promos/" + id + "/" + move, Token: token}), http.StatusOK, &p)
	return p
}

func getPromo(t *testing.T, h *shoptest.Harness, token, id string) promoBody {
	t.Helper()
	var p promoBody
	wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/promos/" + id, Token: token}), http.StatusOK, &p)
	return p
}

func pricedCartOf(t *testing.T, h *shoptest.Harness, token string) pricedCart {
	t.Helper()
	var c pricedCart
	wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/cart", Token: token}), http.StatusOK, &c)
	return c
}

func phoneOf(t *testing.T, h *shoptest.Harness, id string) salePhone {
	t.Helper()
	var p salePhone
	wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/phones/" + id}), http.StatusOK, &p)
	return p
}

// eventually polls f until it holds (campaign views refresh every second).
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// marketer makes a shopper a marketer through the staff API and returns its token.
func marketer(t *testing.T, h *shoptest.Harness, admin string) string {
	t.Helper()
	token, email := h.Shopper()
	var a accountBody
	wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/ops/accounts?email=" + email, Token: admin}), http.StatusOK, &a)
	wantOK(t, do(t, h, shoptest.Request{Method: "PUT", Path: "/api/v1/ops/accounts/" + a.ID + "/roles", Token: admin,
		Body: map[string]any{"roles": []string{"marketing"}}}), http.StatusOK, &a)
	if !strings.Contains(strings.Join(a.Roles, ","), "marketing") {
		t.Fatalf("roles after grant = %v", a.Roles)
	}
	return token
}

// TestPromos runs on one member: several in one process race inside protoactor-go
// under the race detector (TestClusterCappedCampaign covers campaigns across members).
func TestPromos(t *testing.T) {
	h := shoptest.Start(t, 1)
	admin := h.Admin()
	seed := loadSeed(t)
	pool := newSKUPool(seed)
	mk := marketer(t, h, admin)
	shopper, _ := h.Shopper()

	t.Run("roles_401_403_404", func(t *testing.T) {
		wantError(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/promos"}), http.StatusUnauthorized, "unauthenticated")
		wantError(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/promos", Token: shopper}), http.StatusForbidden, "forbidden")
		wantError(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/promos", Token: shopper, Body: campaign(10, "x")}), http.StatusForbidden, "forbidden")
		for _, path := range []string{"/api/v1/promos/promo_000000000000000000000000", "/api/v1/promos/nope"} {
			wantError(t, do(t, h, shoptest.Request{Method: "GET", Path: path, Token: mk}), http.StatusNotFound, "not_found")
			wantError(t, do(t, h, shoptest.Request{Method: "POST", Path: path + "/launch", Token: mk}), http.StatusNotFound, "not_found")
		}
		wantError(t, do(t, h, shoptest.Request{Method: "PUT", Path: "/api/v1/ops/accounts/acc_000000000000000000000000/roles",
			Token: mk, Body: map[string]any{"roles": []string{"admin"}}}), http.StatusForbidden, "forbidden")
		wantError(t, do(t, h, shoptest.Request{Method: "PUT", Path: "/api/v1/ops/accounts/acc_000000000000000000000000/roles",
			Token: admin, Body: map[string]any{"roles": []string{"ops"}}}), http.StatusNotFound, "not_found")
		wantError(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/ops/accounts?email=nobody@example.com", Token: admin}),
			http.StatusNotFound, "not_found")
	})

	t.Run("create_400_on_bad_input_and_changes_nothing", func(t *testing.T) {
		sku := seed.variants[0].SKU
		past, future := rfc(time.Now().Add(-time.Hour)), rfc(time.Now().Add(time.Hour))
		with := func(k string, v any) map[string]any {
			b := campaign(10, sku)
			if v == nil {
				delete(b, k)
			} else {
				b[k] = v
			}
			return b
		}
		for name, body := range map[string]any{
			"no_name":          with("name", nil),
			"empty_name":       with("name", "  "),
			"long_name":        with("name", strings.Repeat("n", 101)),
			"percent_0":        with("percent_off", 0),
			"percent_91":       with("percent_off", 91),
			"percent_fraction": with("percent_off", 10.5),
			"percent_string":   with("percent_off", "10"),
			"no_targets":       with("skus", []string{}),
			"bad_starts_at":    with("starts_at", "tomorrow"),
			"ends_before":      with("ends_at", past),
			"ends_in_past":     map[string]any{"name": "n", "percent_off": 5, "skus": []string{sku}, "starts_at": rfc(time.Now().Add(-2 * time.Hour)), "ends_at": past},
			"ends_at_starts":   map[string]any{"name": "n", "percent_off": 5, "skus": []string{sku}, "starts_at": future, "ends_at": future},
			"cap_0":            with("max_discounted_units", 0),
			"cap_negative":     with("max_discounted_units", -5),
			"cap_fraction":     with("max_discounted_units", 5.5),
			"cap_string":       with("max_discounted_units", "5"),
			"skus_not_a_list":  with("skus", "a-sku"),
			"empty_sku":        with("skus", []string{""}),
			"long_subject":     with("email_subject", strings.Repeat("s", 201)),
			"long_body":        with("email_body", strings.Repeat("b", 20001)),
			"too_many_targets": with("skus", make([]string, 501)),
			"no_percent":       with("percent_off", nil),
			"no_ends_at":       with("ends_at", nil),
			"array_body":       []any{},
			"unknown_field":    with("discount", 5),
			"wrong_case_field": with("Name", "x"),
			"not_json":         "{",
		} {
			t.Run(name, func(t *testing.T) {
				wantError(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/promos", Token: mk, Body: body}), http.StatusBadRequest, "invalid_request")
			})
		}
		t.Run("unknown_brands_and_skus_in_details", func(t *testing.T) {
			b := campaign(10, sku, "no-such-sku")
			b["brands"] = []string{"Apple", "Nokla"}
			e := wantError(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/promos", Token: mk, Body: b}), http.StatusBadRequest, "invalid_request")
			if fmt.Sprint(e.Error.Details["unknown_brands"]) != "[Nokla]" || fmt.Sprint(e.Error.Details["unknown_skus"]) != "[no-such-sku]" {
				t.Errorf("details = %v", e.Error.Details)
			}
		})
		var page struct{ Items []promoBody }
		wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/promos", Token: mk}), http.StatusOK, &page)
		if len(page.Items) != 0 {
			t.Errorf("refused creates made campaigns: %+v", page.Items)
		}
	})

	t.Run("edit_400_on_bad_input_and_changes_nothing", func(t *testing.T) {
		p := createPromo(t, h, mk, campaign(10, seed.variants[2].SKU))
		for name, body := range map[string]any{
			"empty":         map[string]any{},
			"percent_95":    map[string]any{"percent_off": 95},
			"bad_time":      map[string]any{"ends_at": "soon"},
			"ends_in_past":  map[string]any{"ends_at": rfc(time.Now().Add(-time.Hour))},
			"no_targets":    map[string]any{"skus": []string{}},
			"unknown_sku":   map[string]any{"skus": []string{"no-such-sku"}},
			"unknown_field": map[string]any{"status": "active"},
			"long_name":     map[string]any{"name": strings.Repeat("n", 101)},
			"cap_0":         map[string]any{"max_discounted_units": 0},
		} {
			t.Run(name, func(t *testing.T) {
				wantError(t, do(t, h, shoptest.Request{Method: "PATCH", Path: "/api/v1/promos/" + p.ID, Token: mk, Body: body}), http.StatusBadRequest, "invalid_request")
			})
		}
		if got := getPromo(t, h, mk, p.ID); got.PercentOff != 10 || got.Name != p.Name || fmt.Sprint(got.SKUs) != fmt.Sprint(p.SKUs) {
			t.Errorf("refused edits changed the campaign: %+v", got)
		}
		// A cap is set by a number and removed by null; an absent member keeps it.
		var capped promoBody
		wantOK(t, do(t, h, shoptest.Request{Method: "PATCH", Path: "/api/v1/promos/" + p.ID, Token: mk,
			Body: map[string]any{"max_discounted_units": 7}}), http.StatusOK, &capped)
		wantOK(t, do(t, h, shoptest.Request{Method: "PATCH", Path: "/api/v1/promos/" + p.ID, Token: mk,
			Body: map[string]any{"name": "Renamed"}}), http.StatusOK, &capped)
		if capped.MaxDiscountedUnits == nil || *capped.MaxDiscountedUnits != 7 || capped.Name != "Renamed" {
			t.Errorf("after setting a cap and renaming: %+v", capped)
		}
		capped = promoBody{}
		wantOK(t, do(t, h, shoptest.Request{Method: "PATCH", Path: "/api/v1/promos/" + p.ID, Token: mk,
			Body: map[string]any{"max_discounted_units": nil}}), http.StatusOK, &capped)
		if capped.MaxDiscountedUnits != nil {
			t.Errorf("null did not remove the cap: %d", *capped.MaxDiscountedUnits)
		}
		wantError(t, do(t, h, shoptest.Request{Method: "PATCH", Path: "/api/v1/promos/promo_000000000000000000000000", Token: mk,
			Body: map[string]any{"name": "x"}}), http.StatusNotFound, "not_found")
		movePromo(t, h, mk, p.ID, "end")
	})

	t.Run("list_pages_newest_first", func(t *testing.T) {
		var ids []string
		for range 3 {
			ids = append(ids, createPromo(t, h, mk, campaign(5, seed.variants[3].SKU)).ID)
		}
		var seen []string
		token := ""
		for pages := 0; ; pages++ {
			var page struct {
				Items         []promoBody `json:"items"`
				NextPageToken string      `json:"next_page_token"`
			}
			wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/promos?status=draft&page_size=2&page_token=" + token, Token: mk}), http.StatusOK, &page)
			for _, p := range page.Items {
				if p.Status != "draft" {
					t.Errorf("?status=draft listed a %s campaign", p.Status)
				}
				seen = append(seen, p.ID)
			}
			if token = page.NextPageToken; token == "" || pages > 10 {
				break
			}
		}
		if len(seen) < 3 || fmt.Sprint(seen[:3]) != fmt.Sprint([]string{ids[2], ids[1], ids[0]}) {
			t.Errorf("drafts listed %v, want the newest %v first", seen, []string{ids[2], ids[1], ids[0]})
		}
		wantError(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/promos?page_token=garbage", Token: mk}), http.StatusBadRequest, "invalid_request")
		for _, id := range ids {
			movePromo(t, h, mk, id, "end")
		}
	})

	t.Run("status_moves", func(t *testing.T) {
		sku := seed.variants[1].SKU
		body := campaign(10, sku)
		body["starts_at"] = rfc(time.Now().Add(time.Hour))
		p := createPromo(t, h, mk, body)
		if p.Status != "draft" || !promoIDPattern(p.ID) || p.Stats.DiscountedUnits != 0 {
			t.Fatalf("created = %+v", p)
		}
		wantError(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/promos/" + p.ID + "/pause", Token: mk}), http.StatusConflict, "conflict")
		var edited promoBody
		wantOK(t, do(t, h, shoptest.Request{Method: "PATCH", Path: "/api/v1/promos/" + p.ID, Token: mk,
			Body: map[string]any{"percent_off": 15, "brands": []string{"apple"}}}), http.StatusOK, &edited)
		if edited.PercentOff != 15 || fmt.Sprint(edited.Brands) != "[Apple]" || edited.Name != "Test sale" {
			t.Errorf("edited = %+v", edited)
		}
		if s := movePromo(t, h, mk, p.ID, "launch").Status; s != "scheduled" {
			t.Errorf("launch before starts_at: %s", s)
		}
		wantError(t, do(t, h, shoptest.Request{Method: "PATCH", Path: "/api/v1/promos/" + p.ID, Token: mk,
			Body: map[string]any{"percent_off": 20}}), http.StatusConflict, "conflict")
		if s := movePromo(t, h, mk, p.ID, "pause").Status; s != "paused" {
			t.Errorf("pause: %s", s)
		}
		if s := movePromo(t, h, mk, p.ID, "end").Status; s != "ended" {
			t.Errorf("end: %s", s)
		}
		for _, move := range []string{"launch", "pause"} {
			wantError(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/promos/" + p.ID + "/" + move, Token: mk}), http.StatusConflict, "conflict")
		}
		var ended struct{ Items []promoBody }
		wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/promos?status=ended", Token: mk}), http.StatusOK, &ended)
		if len(ended.Items) == 0 || ended.Items[0].ID != p.ID {
			t.Errorf("ended list does not start with the campaign just ended: %+v", ended.Items)
		}
		wantError(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/promos?status=gone", Token: mk}), http.StatusBadRequest, "invalid_request")
	})

	t.Run("pause_mid_cart_and_an_order_keeps_its_discount", func(t *testing.T) {
		v := pool.stocked(t, 5)
		phone := seed.byID[v.PhoneID]
		p := createPromo(t, h, mk, campaign(15, v.SKU))
		if s := movePromo(t, h, mk, p.ID, "launch").Status; s != "active" {
			t.Fatalf("launch: %s", s)
		}
		unit := promo.UnitDiscount(v.PriceCents, 15)
		eventually(t, "the catalog shows the sale", func() bool {
			for _, pv := range phoneOf(t, h, phone.ID).Variants {
				if pv.SKU == v.SKU {
					return pv.SalePriceCents != nil && *pv.SalePriceCents == v.PriceCents-unit && pv.PromoID == p.ID
				}
			}
			return false
		})
		if ph := phoneOf(t, h, phone.ID); ph.FromSalePriceCents == nil || *ph.FromSalePriceCents > v.PriceCents-unit {
			t.Errorf("from_sale_price_cents = %v", ph.FromSalePriceCents)
		}
		var active struct{ Items []struct{ ID string } }
		wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/promos/active"}), http.StatusOK, &active)
		if len(active.Items) != 1 || active.Items[0].ID != p.ID {
			t.Errorf("active = %+v", active.Items)
		}

		buyer, _ := h.Shopper()
		putItem(t, h, buyer, v.SKU, 2)
		c := pricedCartOf(t, h, buyer)
		if c.DiscountCents != 2*unit || c.Items[0].PromoID != p.ID || c.TotalCents != c.SubtotalCents-c.DiscountCents {
			t.Fatalf("cart = %+v", c)
		}
		var o pricedOrder
		body := shoptest.Address()
		body["expected_total_cents"] = c.TotalCents
		wantOK(t, checkout(t, h, buyer, "promo-1", body), http.StatusCreated, &o)
		if o.DiscountCents != 2*unit || o.TotalCents != 2*v.PriceCents-2*unit || o.Items[0].PromoID != p.ID ||
			o.Items[0].UnitPriceCents != v.PriceCents || o.SubtotalCents != 2*v.PriceCents {
			t.Fatalf("order = %+v", o)
		}
		if st := getPromo(t, h, mk, p.ID).Stats; st.DiscountedUnits != 2 || st.Orders != 1 {
			t.Errorf("stats = %+v", st)
		}

		other, _ := h.Shopper()
		putItem(t, h, other, v.SKU, 1)
		movePromo(t, h, mk, p.ID, "pause")
		eventually(t, "the cart loses the discount", func() bool { return pricedCartOf(t, h, other).DiscountCents == 0 })
		if got := getOrder(t, h, buyer, o.ID); got.TotalCents != o.TotalCents {
			t.Errorf("order re-priced: %d, was %d", got.TotalCents, o.TotalCents)
		}
		if ph := phoneOf(t, h, phone.ID); ph.FromSalePriceCents != nil {
			t.Errorf("paused campaign still shows in the catalog: %v", *ph.FromSalePriceCents)
		}

		// A shopper who saw the sale price and checks out after the pause is told.
		before := h.StockLevel(admin, v.SKU)
		body = shoptest.Address()
		body["expected_total_cents"] = v.PriceCents - unit
		e := wantError(t, checkout(t, h, other, "promo-2", body), http.StatusConflict, "price_changed")
		if e.Error.Details["total_cents"] != float64(v.PriceCents) {
			t.Errorf("details = %v, want total_cents %d", e.Error.Details, v.PriceCents)
		}
		wantLevelUnchanged(t, h, admin, before)
		if c := pricedCartOf(t, h, other); len(c.Items) != 1 {
			t.Errorf("cart not kept: %+v", c)
		}

		// Cancelling gives the units back to the campaign.
		wantOK(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/orders/" + o.ID + "/cancel", Token: buyer}), http.StatusOK, nil)
		if st := getPromo(t, h, mk, p.ID).Stats; st.DiscountedUnits != 0 || st.Orders != 0 {
			t.Errorf("stats after cancel = %+v", st)
		}
	})

	t.Run("best_campaign_wins_and_never_stacks", func(t *testing.T) {
		v := pool.stocked(t, 2)
		brand := seed.byID[v.PhoneID].Brand
		bySKU := createPromo(t, h, mk, campaign(10, v.SKU))
		byBrand := campaign(20)
		byBrand["skus"], byBrand["brands"] = []string{}, []string{brand}
		brandWide := createPromo(t, h, mk, byBrand)
		movePromo(t, h, mk, bySKU.ID, "launch")
		movePromo(t, h, mk, brandWide.ID, "launch")
		buyer, _ := h.Shopper()
		putItem(t, h, buyer, v.SKU, 1)
		eventually(t, "the brand campaign prices the line", func() bool {
			c := pricedCartOf(t, h, buyer)
			return len(c.Items) == 1 && c.Items[0].PromoID == brandWide.ID && c.DiscountCents == promo.UnitDiscount(v.PriceCents, 20)
		})
		movePromo(t, h, mk, brandWide.ID, "end")
		movePromo(t, h, mk, bySKU.ID, "end")
		eventually(t, "ended campaigns price nothing", func() bool { return pricedCartOf(t, h, buyer).DiscountCents == 0 })
	})

	t.Run("consent_and_staff", func(t *testing.T) {
		var a accountBody
		token, _ := h.Shopper()
		var me struct {
			PromoEmails *bool `json:"promo_emails"`
		}
		wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/me", Token: token}), http.StatusOK, &me)
		if me.PromoEmails == nil || *me.PromoEmails {
			t.Errorf("a new shopper's promo_emails = %v, want false", me.PromoEmails)
		}
		var prefs map[string]any
		wantOK(t, do(t, h, shoptest.Request{Method: "PUT", Path: "/api/v1/me/preferences", Token: token,
			Body: map[string]any{"promo_emails": true}}), http.StatusOK, &prefs)
		if prefs["promo_emails"] != true {
			t.Errorf("preferences = %v", prefs)
		}
		wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/me", Token: token}), http.StatusOK, &me)
		if !*me.PromoEmails {
			t.Error("opt-in not shown by /me")
		}
		for _, bad := range []any{map[string]any{}, map[string]any{"promo_emails": "yes"}, map[string]any{"promo_emails": true, "x": 1}} {
			wantError(t, do(t, h, shoptest.Request{Method: "PUT", Path: "/api/v1/me/preferences", Token: token, Body: bad}), http.StatusBadRequest, "invalid_request")
		}
		email := fmt.Sprintf("optin%d@example.com", time.Now().UnixNano())
		wantOK(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/accounts",
			Body: map[string]any{"email": email, "password": "a long enough password", "name": "Opt In", "promo_emails": true}}), http.StatusCreated, &a)
		wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/ops/accounts?email=" + email, Token: admin}), http.StatusOK, &a)
		wantError(t, do(t, h, shoptest.Request{Method: "PUT", Path: "/api/v1/ops/accounts/" + a.ID + "/roles", Token: admin,
			Body: map[string]any{"roles": []string{"cashier"}}}), http.StatusBadRequest, "invalid_request")
		wantError(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/ops/accounts?email=" + email, Token: token}), http.StatusForbidden, "forbidden")
		var self accountBody
		wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/me", Token: admin}), http.StatusOK, &self)
		wantError(t, do(t, h, shoptest.Request{Method: "PUT", Path: "/api/v1/ops/accounts/" + self.ID + "/roles", Token: admin,
			Body: map[string]any{"roles": []string{"ops"}}}), http.StatusConflict, "conflict")
		// A role taken away stops working.
		wantOK(t, do(t, h, shoptest.Request{Method: "PUT", Path: "/api/v1/ops/accounts/" + a.ID + "/roles", Token: admin,
			Body: map[string]any{"roles": []string{"marketing"}}}), http.StatusOK, nil)
		tok, err := h.TryLogin(email, "a long enough password")
		if err != nil {
			t.Fatal(err)
		}
		wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/promos", Token: tok}), http.StatusOK, nil)
		wantOK(t, do(t, h, shoptest.Request{Method: "PUT", Path: "/api/v1/ops/accounts/" + a.ID + "/roles", Token: admin,
			Body: map[string]any{"roles": []string{}}}), http.StatusOK, nil)
		wantError(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/promos", Token: tok}), http.StatusForbidden, "forbidden")
	})
}

func promoIDPattern(id string) bool {
	return len(id) == len("promo_")+24 && strings.HasPrefix(id, "promo_")
}
