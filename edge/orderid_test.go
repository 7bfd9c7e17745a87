package edge_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"phoneshop/internal/shoptest"
)

// orderActivations is the number of order grains the cluster view reports active,
// summed over the members.
func orderActivations(t *testing.T, h *shoptest.Harness, admin string) int64 {
	t.Helper()
	var n int64
	for _, m := range readClusterView(t, h, admin).Members {
		if m.Status != "up" {
			t.Fatalf("member %s is %s: its activations are unknown", m.ID, m.Status)
		}
		n += m.Activations["order"]
	}
	return n
}

// grainCalls is the number of grain calls the edge made to grains of kind, every
// method and outcome together.
func grainCalls(t *testing.T, h *shoptest.Harness, kind string) float64 {
	t.Helper()
	r := do(t, h, shoptest.Request{Method: "GET", Path: "/metrics"})
	wantOK(t, r, http.StatusOK, nil)
	var n float64
	for line := range strings.SplitSeq(string(r.Body), "\n") {
		if strings.HasPrefix(line, "phoneshop_grain_calls_total{") && strings.Contains(line, `kind="`+kind+`"`) {
			f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			n += f
		}
	}
	return n
}

// TestOrderIDs checks that the edge answers 404 to an order id that names no order
// without calling a grain: an id of a shape the shop never mints ("ord_" and 24
// lower-case hex characters, order.ID) is refused on sight, and a well-formed one is
// looked up in the store first. Either would otherwise activate an order grain,
// which loads from the store and stays for the idle timeout, for nothing.
func TestOrderIDs(t *testing.T) {
	h := shoptest.Start(t, 1)
	admin := h.Admin()
	shopper, _ := h.Shopper()

	hex24 := strings.Repeat("0123456789abcdef", 2)[:24]
	junk := []string{
		"ord_zzz",
		"ord_",
		"ord_" + strings.ToUpper(hex24),
		"ord_" + hex24 + "0",
		"ord_" + hex24[:23],
		"ord_" + hex24[:23] + "g",
		"ORD_" + hex24,
		"order_" + hex24,
		"xord_" + hex24,
		"ord_" + hex24 + "%0A",
		"ord_" + hex24 + "%20",
		"ord_%20" + hex24[:23],
		"ord_" + strings.Repeat("a", 60),
	}
	// Every route that takes an order id, with the token allowed on it.
	routes := []struct {
		method, prefix, suffix, token string
	}{
		{"GET", "/api/v1/orders/", "", shopper},
		{"POST", "/api/v1/orders/", "/cancel", shopper},
		{"POST", "/api/v1/ops/orders/", "/ship", admin},
		{"POST", "/api/v1/ops/orders/", "/deliver", admin},
	}

	t.Run("an_order_activates_its_grain_when_asked", func(t *testing.T) {
		// The control: without it, activations that never moved would pass the
		// subtests below for the wrong reason.
		// A checkout of one SKU is born in its sale, without an order grain;
		// the cancel of the order it made activates the order's grain.
		o := buy(t, h, shopper, "google-pixel-8-128-obsidian", 1, "order-ids-control")
		before := orderActivations(t, h, admin)
		wantOK(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/orders/" + o.ID + "/cancel", Token: shopper}), http.StatusOK, nil)
		if after := orderActivations(t, h, admin); after != before+1 {
			t.Fatalf("order activations = %d after a cancel, want %d+1", after, before)
		}
	})

	t.Run("made_up_ids_of_the_minted_shape_404_without_a_grain", func(t *testing.T) {
		before, calls := orderActivations(t, h, admin), grainCalls(t, h, "order")
		for i := range 1000 {
			id := fmt.Sprintf("ord_%024x", rand.Uint64()) // 16 random hex digits after zeros: never minted
			r := routes[i%len(routes)]
			path := r.prefix + id + r.suffix
			if resp := do(t, h, shoptest.Request{Method: r.method, Path: path, Token: r.token}); resp.Status != http.StatusNotFound {
				t.Fatalf("%s %s: status %d, want 404; body %.200s", r.method, path, resp.Status, resp.Body)
			}
		}
		if after := orderActivations(t, h, admin); after != before {
			t.Errorf("order activations = %d after 1,000 made-up ids, want %d (unchanged)", after, before)
		}
		if after := grainCalls(t, h, "order"); after != calls {
			t.Errorf("order grain calls = %v after 1,000 made-up ids, want %v (none)", after, calls)
		}
	})

	t.Run("another_accounts_order_404", func(t *testing.T) {
		other, _ := h.Shopper()
		placed := buy(t, h, shopper, "google-pixel-8-128-obsidian", 1, "order-ids-theirs")
		for _, r := range routes[:2] {
			wantError(t, do(t, h, shoptest.Request{Method: r.method, Path: r.prefix + placed.ID + r.suffix, Token: other}),
				http.StatusNotFound, "not_found")
		}
		var got orderBody
		wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/orders/" + placed.ID, Token: shopper}), http.StatusOK, &got)
		if got.Status != "confirmed" {
			t.Errorf("the order is %q after another account's cancel, want confirmed", got.Status)
		}
	})

	t.Run("order_id_of_another_shape_404_without_a_grain", func(t *testing.T) {
		before := orderActivations(t, h, admin)
		for _, id := range junk {
			for _, r := range routes {
				path := r.prefix + id + r.suffix
				t.Run(r.method+" "+path, func(t *testing.T) {
					wantError(t, do(t, h, shoptest.Request{Method: r.method, Path: path, Token: r.token}),
						http.StatusNotFound, "not_found")
				})
			}
		}
		if after := orderActivations(t, h, admin); after != before {
			t.Errorf("order activations = %d after the junk ids, want %d (unchanged)", after, before)
		}
	})
}

// TestBodyMemberNamesMatchExactly sends, to every route that reads a body, a body
// that encoding/json would take (it matches names case-insensitively and lets a
// repeated name win) and checks the 400 and that nothing changed. It sits beside
// TestOrderIDs to share nothing but the file: both guard what the edge lets through
// to the grains.
func TestBodyMemberNamesMatchExactly(t *testing.T) {
	h := shoptest.Start(t, 1)
	admin := h.Admin()
	shopper, email := h.Shopper()
	const sku = "google-pixel-8-128-obsidian"
	putItem(t, h, shopper, sku, 1)
	cart := getCart(t, h, shopper)
	level := h.StockLevel(admin, sku)

	address := func(nameKey string) string {
		return `{"shipping_address":{"` + nameKey + `":"Ann Shopper","line1":"1 Main Street","city":"Springfield",` +
			`"postal_code":"12345","country":"US"}}`
	}
	tests := []struct {
		name, method, path, token, body string
	}{
		{"register_400_when_a_name_is_in_capitals", "POST", "/api/v1/accounts", "",
			`{"EMAIL":"exact-names@example.com","password":"a long enough password","name":"Ann"}`},
		{"register_400_when_a_name_repeats", "POST", "/api/v1/accounts", "",
			`{"email":"x@example.com","email":"exact-names@example.com","password":"a long enough password","name":"Ann"}`},
		{"login_400_when_a_name_is_capitalised", "POST", "/api/v1/sessions", "",
			`{"email":"` + email + `","Password":"a long enough password"}`},
		{"cart_put_400_when_quantity_is_in_capitals", "PUT", "/api/v1/cart/items/" + sku, shopper, `{"QUANTITY":2}`},
		{"cart_put_400_when_quantity_repeats", "PUT", "/api/v1/cart/items/" + sku, shopper, `{"quantity":1,"quantity":2}`},
		{"checkout_400_when_shipping_address_is_in_capitals", "POST", "/api/v1/orders", shopper,
			strings.Replace(address("name"), "shipping_address", "SHIPPING_ADDRESS", 1)},
		{"checkout_400_when_an_address_name_is_in_capitals", "POST", "/api/v1/orders", shopper, address("NAME")},
		{"restock_400_when_received_is_in_capitals", "PUT", "/api/v1/ops/inventory/" + sku, admin, `{"RECEIVED":5}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, h, shoptest.Request{Method: tc.method, Path: tc.path, Token: tc.token, Body: tc.body,
				Headers: map[string]string{"Idempotency-Key": "exact-names-" + tc.name}})
			wantError(t, r, http.StatusBadRequest, "invalid_request")
		})
	}

	t.Run("refused_bodies_changed_nothing", func(t *testing.T) {
		wantCartUnchanged(t, h, shopper, cart)
		wantLevelUnchanged(t, h, admin, level)
		wantNoOrders(t, h, shopper)
		// The e-mail is still free: neither refused registration created the account.
		wantOK(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/accounts",
			Body: map[string]string{"email": "exact-names@example.com", "password": "a long enough password", "name": "Ann"}}),
			http.StatusCreated, nil)
	})
}

// TestMadeUpCampaignIDs: a well-formed campaign id that names no campaign is 404 on
// every campaign route, found so in the store before any promo grain is called.
func TestMadeUpCampaignIDs(t *testing.T) {
	h := shoptest.Start(t, 1)
	admin := h.Admin()
	before := grainCalls(t, h, "promo")
	for i := range 200 {
		id := fmt.Sprintf("promo_%024x", rand.Uint64())
		req := []shoptest.Request{
			{Method: "GET", Path: "/api/v1/promos/" + id},
			{Method: "PATCH", Path: "/api/v1/promos/" + id, Body: map[string]any{"percent_off": 10}},
			{Method: "POST", Path: "/api/v1/promos/" + id + "/launch"},
			{Method: "POST", Path: "/api/v1/promos/" + id + "/pause"},
			{Method: "POST", Path: "/api/v1/promos/" + id + "/end"},
		}[i%5]
		req.Token = admin
		if r := do(t, h, req); r.Status != http.StatusNotFound {
			t.Fatalf("%s %s: status %d, want 404; body %.200s", req.Method, req.Path, r.Status, r.Body)
		}
	}
	if after := grainCalls(t, h, "promo"); after != before {
		t.Errorf("promo grain calls = %v after 200 made-up campaign ids, want %v (none)", after, before)
	}
}

// TestCampaignTextOnOneLine: a campaign's name and subject go into one-line places
// (a mail's Subject header): a control character in either is 400 on create and on
// edit, and changes nothing.
func TestCampaignTextOnOneLine(t *testing.T) {
	h := shoptest.Start(t, 1)
	admin := h.Admin()
	draft := createPromo(t, h, admin, campaign(10, "google-pixel-8-128-obsidian"))
	for _, field := range []string{"name", "email_subject"} {
		for _, bad := range []string{"Sale\r\nBcc: everyone@example.com", "Sale\nnow", "Sale\x00", "Sale\u2028now"} {
			body := campaign(10, "google-pixel-8-128-obsidian")
			body[field] = bad
			wantError(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/promos", Token: admin, Body: body}),
				http.StatusBadRequest, "invalid_request")
			wantError(t, do(t, h, shoptest.Request{Method: "PATCH", Path: "/api/v1/promos/" + draft.ID, Token: admin,
				Body: map[string]any{field: bad}}), http.StatusBadRequest, "invalid_request")
		}
	}
	if got := getPromo(t, h, admin, draft.ID); got.Name != "Test sale" {
		t.Errorf("the draft's name is %q after refused edits, want it unchanged", got.Name)
	}
}
