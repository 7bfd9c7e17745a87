// Tests of the HTTP edge against API.md: each top-level test starts one whole shop
// (shoptest: SQLite in a temp dir, the cluster, the edge on loopback) and drives it
// over HTTP only. Every refusal is checked for its status and error code and, where
// the request must change nothing, for the cart, the stock and the order list.
package edge_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"phoneshop/account"
	"phoneshop/catalog"
	"phoneshop/internal/shoptest"
)

// --- the response shapes of API.md ---

type errorBody struct {
	Error struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Details map[string]any `json:"details"`
	} `json:"error"`
}

type accountBody struct {
	ID    string   `json:"id"`
	Email string   `json:"email"`
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
}

type sessionBody struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expires_at"`
}

type phoneSummary struct {
	ID             string `json:"id"`
	Brand          string `json:"brand"`
	Model          string `json:"model"`
	Name           string `json:"name"`
	ReleaseYear    int    `json:"release_year"`
	FromPriceCents int64  `json:"from_price_cents"`
	Currency       string `json:"currency"`
	ImageURL       string `json:"image_url"`
	StockState     string `json:"stock_state"`
}

type phonePage struct {
	Items         []phoneSummary `json:"items"`
	NextPageToken string         `json:"next_page_token"`
}

type variantBody struct {
	SKU        string `json:"sku"`
	StorageGB  int    `json:"storage_gb"`
	Color      string `json:"color"`
	PriceCents int64  `json:"price_cents"`
	Currency   string `json:"currency"`
	StockState string `json:"stock_state"`
}

type phoneDetail struct {
	ID             string        `json:"id"`
	Brand          string        `json:"brand"`
	Model          string        `json:"model"`
	Name           string        `json:"name"`
	ReleaseYear    int           `json:"release_year"`
	FromPriceCents int64         `json:"from_price_cents"`
	Currency       string        `json:"currency"`
	ImageURL       string        `json:"image_url"`
	StockState     string        `json:"stock_state"`
	Specs          catalog.Specs `json:"specs"`
	Variants       []variantBody `json:"variants"`
}

type brandBody struct {
	Name       string `json:"name"`
	PhoneCount int    `json:"phone_count"`
}

type cartLine struct {
	SKU            string `json:"sku"`
	PhoneID        string `json:"phone_id"`
	Name           string `json:"name"`
	Quantity       int64  `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
	LineTotalCents int64  `json:"line_total_cents"`
}

type cartBody struct {
	Items         []cartLine `json:"items"`
	SubtotalCents int64      `json:"subtotal_cents"`
	DiscountCents int64      `json:"discount_cents"`
	TotalCents    int64      `json:"total_cents"`
	Currency      string     `json:"currency"`
}

type addressBody struct {
	Name       string `json:"name"`
	Line1      string `json:"line1"`
	Line2      string `json:"line2"`
	City       string `json:"city"`
	PostalCode string `json:"postal_code"`
	Country    string `json:"country"`
}

type orderBody struct {
	ID              string      `json:"id"`
	Status          string      `json:"status"`
	Items           []cartLine  `json:"items"`
	TotalCents      int64       `json:"total_cents"`
	Currency        string      `json:"currency"`
	ShippingAddress addressBody `json:"shipping_address"`
	CreatedAt       string      `json:"created_at"`
}

type orderPage struct {
	Items         []orderBody `json:"items"`
	NextPageToken string      `json:"next_page_token"`
}

// --- HTTP helpers ---

// do sends req, failing the calling (sub)test on a transport error.
func do(t *testing.T, h *shoptest.Harness, req shoptest.Request) shoptest.Response {
	t.Helper()
	r, err := h.TryDo(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.Path, err)
	}
	return r
}

// wantOK checks a success's status and decodes its body into v (unless v is nil).
func wantOK(t *testing.T, r shoptest.Response, status int, v any) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body %s", r.Status, status, r.Body)
	}
	if v != nil {
		if err := json.Unmarshal(r.Body, v); err != nil {
			t.Fatalf("decode %s: %v", r.Body, err)
		}
	}
}

// wantError checks an error response: status, API error code, a message, JSON.
func wantError(t *testing.T, r shoptest.Response, status int, code string) errorBody {
	t.Helper()
	if r.Status != status || r.ErrorCode() != code {
		t.Fatalf("got %d %q, want %d %q; body %s", r.Status, r.ErrorCode(), status, code, r.Body)
	}
	var e errorBody
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("error body is not JSON: %s", r.Body)
	}
	if e.Error.Message == "" {
		t.Errorf("error %q has no message: %s", code, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type = %q, want application/json", ct)
	}
	return e
}

func getCart(t *testing.T, h *shoptest.Harness, token string) cartBody {
	t.Helper()
	var c cartBody
	wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/cart", Token: token}), http.StatusOK, &c)
	return c
}

func putItem(t *testing.T, h *shoptest.Harness, token, sku string, qty int64) cartBody {
	t.Helper()
	var c cartBody
	wantOK(t, do(t, h, shoptest.Request{Method: "PUT", Path: "/api/v1/cart/items/" + sku, Token: token,
		Body: map[string]int64{"quantity": qty}}), http.StatusOK, &c)
	return c
}

func checkout(t *testing.T, h *shoptest.Harness, token, key string, body any) shoptest.Response {
	t.Helper()
	req := shoptest.Request{Method: "POST", Path: "/api/v1/orders", Token: token, Body: body}
	if key != "" {
		req.Headers = map[string]string{"Idempotency-Key": key}
	}
	return do(t, h, req)
}

// placeOrder checks out the caller's cart and requires a confirmed order.
func placeOrder(t *testing.T, h *shoptest.Harness, token, key string) orderBody {
	t.Helper()
	var o orderBody
	wantOK(t, checkout(t, h, token, key, shoptest.Address()), http.StatusCreated, &o)
	if o.Status != "confirmed" {
		t.Fatalf("order status = %q, want confirmed", o.Status)
	}
	return o
}

// buy puts qty of sku in the (empty) cart of token and checks out.
func buy(t *testing.T, h *shoptest.Harness, token, sku string, qty int64, key string) orderBody {
	t.Helper()
	putItem(t, h, token, sku, qty)
	return placeOrder(t, h, token, key)
}

func listOrders(t *testing.T, h *shoptest.Harness, token string) []orderBody {
	t.Helper()
	var p orderPage
	wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/orders?page_size=100", Token: token}), http.StatusOK, &p)
	return p.Items
}

func getOrder(t *testing.T, h *shoptest.Harness, token, id string) orderBody {
	t.Helper()
	var o orderBody
	wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/orders/" + id, Token: token}), http.StatusOK, &o)
	return o
}

func orderIDs(os []orderBody) []string {
	ids := make([]string, len(os))
	for i, o := range os {
		ids[i] = o.ID
	}
	return ids
}

// wantCartUnchanged fails when the cart of token differs from before.
func wantCartUnchanged(t *testing.T, h *shoptest.Harness, token string, before cartBody) {
	t.Helper()
	if diff := cmp.Diff(before, getCart(t, h, token)); diff != "" {
		t.Errorf("cart changed by a refused request (-before +after):\n%s", diff)
	}
}

// wantLevelUnchanged fails when the stock level of sku differs from before.
func wantLevelUnchanged(t *testing.T, h *shoptest.Harness, admin string, before shoptest.Level) {
	t.Helper()
	if diff := cmp.Diff(before, h.StockLevel(admin, before.SKU)); diff != "" {
		t.Errorf("stock of %s changed by a refused request (-before +after):\n%s", before.SKU, diff)
	}
}

// wantNoOrders fails when the account of token has any order.
func wantNoOrders(t *testing.T, h *shoptest.Harness, token string) {
	t.Helper()
	if got := listOrders(t, h, token); len(got) != 0 {
		t.Errorf("orders listed after a refused checkout: %v", orderIDs(got))
	}
}

// --- the seed catalog, the source of the expected answers ---

type seedCatalog struct {
	phones   []catalog.Phone
	byID     map[string]catalog.Phone
	variants []catalog.Variant // in seed order, PhoneName set
	bySKU    map[string]catalog.Variant
}

func loadSeed(t *testing.T) seedCatalog {
	t.Helper()
	phones, err := catalog.Seed()
	if err != nil {
		t.Fatal(err)
	}
	s := seedCatalog{phones: phones, byID: map[string]catalog.Phone{}, bySKU: map[string]catalog.Variant{}}
	for _, p := range phones {
		s.byID[p.ID] = p
		for _, v := range p.Variants {
			v.PhoneName = p.Name
			s.variants = append(s.variants, v)
			s.bySKU[v.SKU] = v
		}
	}
	return s
}

func (s seedCatalog) variant(t *testing.T, sku string) catalog.Variant {
	t.Helper()
	v, ok := s.bySKU[sku]
	if !ok {
		t.Fatalf("sku %s is not in the seed", sku)
	}
	return v
}

// ids returns the ids of the seed phones keep accepts, sorted.
func (s seedCatalog) ids(keep func(catalog.Phone) bool) []string {
	ids := []string{}
	for _, p := range s.phones {
		if keep(p) {
			ids = append(ids, p.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// stockState is what API.md promises a shopper sees for available units.
func stockState(available, lowStockThreshold int64) string {
	switch {
	case available <= 0:
		return "out_of_stock"
	case available <= lowStockThreshold:
		return "low_stock"
	default:
		return "in_stock"
	}
}

func maxInitialStock(p catalog.Phone) int64 {
	var best int64
	for _, v := range p.Variants {
		best = max(best, v.InitialStock)
	}
	return best
}

// wantSummary is a seed phone as a search lists it before anything was sold.
func wantSummary(p catalog.Phone, low int64) phoneSummary {
	return phoneSummary{ID: p.ID, Brand: p.Brand, Model: p.Model, Name: p.Name, ReleaseYear: p.ReleaseYear,
		FromPriceCents: p.FromPriceCents(), Currency: "USD", ImageURL: p.ImageURL,
		StockState: stockState(maxInitialStock(p), low)}
}

// skuPool hands out seed SKUs no other subtest of the same shop uses, so that the
// stock assertions of one subtest are not disturbed by another.
type skuPool struct {
	seed seedCatalog
	used map[string]bool
}

func newSKUPool(seed seedCatalog) *skuPool { return &skuPool{seed: seed, used: map[string]bool{}} }

// stocked returns an unused SKU with at least min units of initial stock.
func (p *skuPool) stocked(t *testing.T, min int64) catalog.Variant {
	t.Helper()
	for _, v := range p.seed.variants {
		if !p.used[v.SKU] && v.InitialStock >= min {
			p.used[v.SKU] = true
			return v
		}
	}
	t.Fatalf("no unused seed SKU with %d units", min)
	return catalog.Variant{}
}

// soldOut returns an unused SKU that starts with no stock, so a test controls its level.
func (p *skuPool) soldOut(t *testing.T) catalog.Variant {
	t.Helper()
	for _, v := range p.seed.variants {
		if !p.used[v.SKU] && v.InitialStock == 0 {
			p.used[v.SKU] = true
			return v
		}
	}
	t.Fatal("no unused seed SKU without stock")
	return catalog.Variant{}
}

func wantLine(v catalog.Variant, qty int64) cartLine {
	return cartLine{SKU: v.SKU, PhoneID: v.PhoneID, Name: v.DisplayName(), Quantity: qty,
		UnitPriceCents: v.PriceCents, LineTotalCents: v.PriceCents * qty}
}

func wantCart(lines ...cartLine) cartBody {
	c := cartBody{Items: []cartLine{}, Currency: "USD"}
	for _, l := range lines {
		c.Items = append(c.Items, l)
		c.SubtotalCents += l.LineTotalCents
	}
	c.TotalCents = c.SubtotalCents
	return c
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

// ===================================================================================

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
			`phoneshop_grain_calls_total{kind="order",method="Place",outcome="ok"}`,
		} {
			if v, ok := metricValue(t, body, series); !ok || v < 1 {
				t.Errorf("metrics: %s = %v (present %v), want >= 1", series, v, ok)
			}
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

// oversizedBody is a 1 MB JSON body, far over the default 64 KiB limit.
func oversizedBody() string {
	return `{"email":"big@example.com","password":"a long enough password","name":"` + strings.Repeat("x", 1<<20) + `"}`
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

// ===================================================================================

func TestAccounts(t *testing.T) {
	h := shoptest.Start(t, 1)
	const password = "a long enough password"
	register := func(t *testing.T, body any, headers map[string]string) shoptest.Response {
		t.Helper()
		return do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/accounts", Body: body, Headers: headers})
	}
	login := func(t *testing.T, email, pw string) shoptest.Response {
		t.Helper()
		return do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/sessions",
			Body: map[string]string{"email": email, "password": pw}})
	}

	var ann accountBody // registered by the first subtest
	t.Run("register_201_with_shopper_role", func(t *testing.T) {
		r := register(t, map[string]string{"email": "ann@example.com", "password": password, "name": "Ann"}, nil)
		wantOK(t, r, http.StatusCreated, &ann)
		if ann.ID == "" {
			t.Error("account has no id")
		}
		want := accountBody{ID: ann.ID, Email: "ann@example.com", Name: "Ann", Roles: []string{"shopper"}}
		if diff := cmp.Diff(want, ann); diff != "" {
			t.Errorf("account (-want +got):\n%s", diff)
		}
	})

	t.Run("register_201_when_password_has_10_chars", func(t *testing.T) {
		r := register(t, map[string]string{"email": "ten@example.com", "password": "0123456789", "name": "Ten"}, nil)
		var a accountBody
		wantOK(t, r, http.StatusCreated, &a)
		wantOK(t, login(t, "ten@example.com", "0123456789"), http.StatusCreated, nil)
	})

	t.Run("register_409_when_email_taken", func(t *testing.T) {
		for _, email := range []string{"ann@example.com", "ANN@Example.COM"} {
			t.Run(email, func(t *testing.T) {
				r := register(t, map[string]string{"email": email, "password": "another password", "name": "Impostor"}, nil)
				wantError(t, r, http.StatusConflict, "conflict")
				// The first account keeps its password.
				wantError(t, login(t, "ann@example.com", "another password"), http.StatusUnauthorized, "unauthenticated")
				wantOK(t, login(t, "ann@example.com", password), http.StatusCreated, nil)
			})
		}
	})

	valid := func(email string) map[string]any {
		return map[string]any{"email": email, "password": password, "name": "Bob"}
	}
	badRegistrations := []struct {
		name    string
		email   string // must not exist afterwards
		body    any
		headers map[string]string
		status  int
		code    string
	}{
		{"register_400_when_email_malformed", "not-an-email", valid("not-an-email"), nil, 400, "invalid_request"},
		{"register_400_when_email_has_no_domain", "bob@", valid("bob@"), nil, 400, "invalid_request"},
		{"register_400_when_email_has_display_name", "bob1@example.com", valid("Bob <bob1@example.com>"), nil, 400, "invalid_request"},
		{"register_400_when_password_has_9_chars", "bob2@example.com",
			map[string]any{"email": "bob2@example.com", "password": "123456789", "name": "Bob"}, nil, 400, "invalid_request"},
		{"register_400_when_email_missing", "", map[string]any{"password": password, "name": "Bob"}, nil, 400, "invalid_request"},
		{"register_400_when_password_missing", "bob3@example.com", map[string]any{"email": "bob3@example.com", "name": "Bob"}, nil, 400, "invalid_request"},
		{"register_400_when_name_missing", "bob4@example.com", map[string]any{"email": "bob4@example.com", "password": password}, nil, 400, "invalid_request"},
		{"register_400_when_name_blank", "bob5@example.com", map[string]any{"email": "bob5@example.com", "password": password, "name": "   "}, nil, 400, "invalid_request"},
		{"register_400_when_email_not_a_string", "", map[string]any{"email": 42, "password": password, "name": "Bob"}, nil, 400, "invalid_request"},
		{"register_400_when_body_has_unknown_field", "bob6@example.com",
			map[string]any{"email": "bob6@example.com", "password": password, "name": "Bob", "roles": []string{"admin"}}, nil, 400, "invalid_request"},
		{"register_400_when_json_malformed", "bob7@example.com", `{"email":"bob7@example.com","password":`, nil, 400, "invalid_request"},
		{"register_400_when_garbage_follows_json", "bob8@example.com",
			`{"email":"bob8@example.com","password":"a long enough password","name":"Bob"} x`, nil, 400, "invalid_request"},
		{"register_400_when_second_json_value_follows", "bob9@example.com",
			`{"email":"bob9@example.com","password":"a long enough password","name":"Bob"}{}`, nil, 400, "invalid_request"},
		{"register_400_when_body_empty", "", "", nil, 400, "invalid_request"},
		{"register_400_when_content_type_not_json", "bob10@example.com", valid("bob10@example.com"),
			map[string]string{"Content-Type": "text/plain"}, 400, "invalid_request"},
		{"register_413_when_body_is_1MB", "big@example.com", oversizedBody(), nil, 413, "payload_too_large"},
	}
	for _, tc := range badRegistrations {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, register(t, tc.body, tc.headers), tc.status, tc.code)
			if tc.email != "" {
				// Nothing was created: the address cannot log in.
				wantError(t, login(t, tc.email, password), http.StatusUnauthorized, "unauthenticated")
			}
		})
	}

	var token string
	t.Run("login_201_with_token_and_expiry", func(t *testing.T) {
		var s sessionBody
		wantOK(t, login(t, "ann@example.com", password), http.StatusCreated, &s)
		if s.Token == "" {
			t.Fatal("no token")
		}
		exp, err := time.Parse(time.RFC3339, s.ExpiresAt)
		if err != nil {
			t.Fatalf("expires_at %q: %v", s.ExpiresAt, err)
		}
		if now := time.Now(); !exp.After(now) || exp.After(now.Add(h.Config.SessionTTL+time.Minute)) {
			t.Errorf("expires_at = %s, want within the session TTL %s from now", exp, h.Config.SessionTTL)
		}
		token = s.Token
	})

	t.Run("login_201_when_email_case_differs", func(t *testing.T) {
		wantOK(t, login(t, "Ann@EXAMPLE.com", password), http.StatusCreated, nil)
	})

	badLogins := []struct {
		name string
		body any
		want int
		code string
	}{
		{"login_401_when_password_wrong", map[string]string{"email": "ann@example.com", "password": "wrong password!"}, 401, "unauthenticated"},
		{"login_401_when_email_unknown", map[string]string{"email": "nobody@example.com", "password": password}, 401, "unauthenticated"},
		{"login_400_when_password_missing", map[string]string{"email": "ann@example.com"}, 400, "invalid_request"},
		{"login_400_when_body_has_unknown_field", map[string]string{"email": "ann@example.com", "password": password, "otp": "1"}, 400, "invalid_request"},
	}
	for _, tc := range badLogins {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/sessions", Body: tc.body})
			wantError(t, r, tc.want, tc.code)
			if strings.Contains(string(r.Body), `"token"`) {
				t.Errorf("a refused login returned a token: %s", r.Body)
			}
		})
	}

	t.Run("me_200_with_token", func(t *testing.T) {
		if token == "" {
			t.Fatal("depends on login_201_with_token_and_expiry, which gave no token")
		}
		var me accountBody
		wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/me", Token: token}), http.StatusOK, &me)
		if diff := cmp.Diff(ann, me); diff != "" {
			t.Errorf("me (-registered +me):\n%s", diff)
		}
	})

	for _, tc := range []struct {
		name   string
		header string
	}{
		{"me_401_without_token", ""},
		{"me_401_with_garbage_token", "Bearer garbage-token"},
		{"me_401_with_empty_bearer", "Bearer "},
		{"me_401_with_other_scheme", "Basic " + base64.StdEncoding.EncodeToString([]byte("ann@example.com:"+password))},
		{"me_401_with_overlong_token", "Bearer " + strings.Repeat("a", 200)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := shoptest.Request{Method: "GET", Path: "/api/v1/me"}
			if tc.header != "" {
				req.Headers = map[string]string{"Authorization": tc.header}
			}
			wantError(t, do(t, h, req), http.StatusUnauthorized, "unauthenticated")
		})
	}

	t.Run("logout_204_then_token_401", func(t *testing.T) {
		var s sessionBody
		wantOK(t, login(t, "ann@example.com", password), http.StatusCreated, &s)
		wantOK(t, do(t, h, shoptest.Request{Method: "DELETE", Path: "/api/v1/sessions/current", Token: s.Token}), http.StatusNoContent, nil)
		wantError(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/me", Token: s.Token}), http.StatusUnauthorized, "unauthenticated")
		wantError(t, do(t, h, shoptest.Request{Method: "DELETE", Path: "/api/v1/sessions/current", Token: s.Token}), http.StatusUnauthorized, "unauthenticated")
		wantError(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/cart", Token: s.Token}), http.StatusUnauthorized, "unauthenticated")
		// Only that session ended: the account's other session still works.
		if token != "" {
			wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/me", Token: token}), http.StatusOK, nil)
		}
	})

	t.Run("logout_401_without_token", func(t *testing.T) {
		wantError(t, do(t, h, shoptest.Request{Method: "DELETE", Path: "/api/v1/sessions/current"}), http.StatusUnauthorized, "unauthenticated")
	})
}

// ===================================================================================

func TestCatalog(t *testing.T) {
	h := shoptest.Start(t, 1)
	seed := loadSeed(t)
	low := h.Config.Shop.LowStockThreshold

	search := func(t *testing.T, q url.Values) shoptest.Response {
		t.Helper()
		return do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/phones?" + q.Encode()})
	}
	// searchAll walks every page of q and checks the paging on the way.
	searchAll := func(t *testing.T, q url.Values) []phoneSummary {
		t.Helper()
		size := catalog.DefaultPageSize
		if raw := q.Get("page_size"); raw != "" {
			size, _ = strconv.Atoi(raw)
		}
		var all []phoneSummary
		token := ""
		for range len(seed.phones) + 2 {
			pq := url.Values{}
			for k, v := range q {
				pq[k] = v
			}
			if token != "" {
				pq.Set("page_token", token)
			}
			var p phonePage
			wantOK(t, search(t, pq), http.StatusOK, &p)
			if p.Items == nil {
				t.Fatal("items is null, want a list")
			}
			if len(p.Items) > size || (p.NextPageToken != "" && len(p.Items) != size) {
				t.Fatalf("page of %d items with next_page_token %q, page_size %d", len(p.Items), p.NextPageToken, size)
			}
			all = append(all, p.Items...)
			if p.NextPageToken == "" {
				return all
			}
			token = p.NextPageToken
		}
		t.Fatalf("paging of %v does not end", q)
		return nil
	}
	sortedIDs := func(items []phoneSummary) []string {
		ids := make([]string, len(items))
		for i, p := range items {
			ids[i] = p.ID
		}
		slices.Sort(ids)
		return ids
	}

	t.Run("list_default_page_of_20_with_next_page_token", func(t *testing.T) {
		var p phonePage
		wantOK(t, search(t, nil), http.StatusOK, &p)
		if len(p.Items) != 20 || p.NextPageToken == "" {
			t.Fatalf("got %d items, next_page_token %q; want 20 and a token (seed has %d phones)", len(p.Items), p.NextPageToken, len(seed.phones))
		}
		for _, got := range p.Items {
			if diff := cmp.Diff(wantSummary(seed.byID[got.ID], low), got); diff != "" {
				t.Errorf("item %s (-seed +got):\n%s", got.ID, diff)
			}
		}
	})

	t.Run("list_walk_visits_every_phone_once", func(t *testing.T) {
		for _, sort := range []string{"", "name", "price", "-price", "-release_year"} {
			for _, size := range []string{"", "1", "7", "46", "47", "100"} {
				t.Run(fmt.Sprintf("sort=%s,page_size=%s", sort, size), func(t *testing.T) {
					q := url.Values{}
					if sort != "" {
						q.Set("sort", sort)
					}
					if size != "" {
						q.Set("page_size", size)
					}
					all := searchAll(t, q)
					if len(all) != len(seed.phones) {
						t.Errorf("walked %d phones, seed has %d", len(all), len(seed.phones))
					}
					seen := map[string]int{}
					for i, got := range all {
						seen[got.ID]++
						if diff := cmp.Diff(wantSummary(seed.byID[got.ID], low), got); diff != "" {
							t.Errorf("item %s (-seed +got):\n%s", got.ID, diff)
						}
						if i > 0 && !inOrder(sort, all[i-1], got) {
							t.Errorf("sort %q: %s (%d, %d, %q) before %s (%d, %d, %q)", sort,
								all[i-1].ID, all[i-1].FromPriceCents, all[i-1].ReleaseYear, all[i-1].Name,
								got.ID, got.FromPriceCents, got.ReleaseYear, got.Name)
						}
					}
					for id, n := range seen {
						if n != 1 {
							t.Errorf("phone %s listed %d times", id, n)
						}
					}
				})
			}
		}
	})

	t.Run("list_400_when_page_size_invalid", func(t *testing.T) {
		for _, size := range []string{"0", "101", "abc", "-1", "1.5"} {
			t.Run("page_size="+size, func(t *testing.T) {
				wantError(t, search(t, url.Values{"page_size": {size}}), http.StatusBadRequest, "invalid_request")
			})
		}
	})

	matchWords := func(words ...string) func(catalog.Phone) bool {
		return func(p catalog.Phone) bool {
			text := strings.ToLower(p.Brand + " " + p.Model + " " + p.Name)
			for _, w := range words {
				if !strings.Contains(text, w) {
					return false
				}
			}
			return true
		}
	}
	hasVariant := func(keep func(catalog.Variant) bool) func(catalog.Phone) bool {
		return func(p catalog.Phone) bool { return slices.ContainsFunc(p.Variants, keep) }
	}
	filters := []struct {
		name  string
		query url.Values
		want  func(catalog.Phone) bool
		check func(t *testing.T, got phoneSummary) // per item, optional
	}{
		{"q_pixel_only_google_phones", url.Values{"q": {"pixel"}}, matchWords("pixel"),
			func(t *testing.T, got phoneSummary) {
				if got.Brand != "Google" {
					t.Errorf("q=pixel listed %s of %s", got.ID, got.Brand)
				}
			}},
		{"q_two_words_must_both_match", url.Values{"q": {"galaxy fold"}}, matchWords("galaxy", "fold"), nil},
		{"q_two_words_in_any_order", url.Values{"q": {"fold pixel"}}, matchWords("pixel", "fold"), nil},
		{"q_is_case_insensitive", url.Values{"q": {"PiXeL FOLD"}}, matchWords("pixel", "fold"), nil},
		{"q_without_match_lists_nothing", url.Values{"q": {"zzzz"}}, matchWords("zzzz"), nil},
		{"brand_lists_only_that_brand", url.Values{"brand": {"Samsung"}}, func(p catalog.Phone) bool { return p.Brand == "Samsung" }, nil},
		{"max_price_keeps_phones_with_a_variant_at_most", url.Values{"max_price_cents": {"30000"}},
			hasVariant(func(v catalog.Variant) bool { return v.PriceCents <= 30000 }),
			func(t *testing.T, got phoneSummary) {
				if got.FromPriceCents > 30000 {
					t.Errorf("%s from_price_cents %d above max 30000", got.ID, got.FromPriceCents)
				}
			}},
		{"min_price_keeps_phones_with_a_variant_at_least", url.Values{"min_price_cents": {"150000"}},
			hasVariant(func(v catalog.Variant) bool { return v.PriceCents >= 150000 }), nil},
		{"price_range_keeps_phones_with_a_variant_inside", url.Values{"min_price_cents": {"50000"}, "max_price_cents": {"70000"}},
			hasVariant(func(v catalog.Variant) bool { return v.PriceCents >= 50000 && v.PriceCents <= 70000 }), nil},
		{"price_range_of_one_price", url.Values{"min_price_cents": {"79900"}, "max_price_cents": {"79900"}},
			hasVariant(func(v catalog.Variant) bool { return v.PriceCents == 79900 }), nil},
		{"storage_gb_keeps_phones_with_that_storage", url.Values{"storage_gb": {"1024"}},
			hasVariant(func(v catalog.Variant) bool { return v.StorageGB == 1024 }), nil},
		{"five_g_false_only_4g_phones", url.Values{"five_g": {"false"}}, func(p catalog.Phone) bool { return !p.Specs.FiveG },
			func(t *testing.T, got phoneSummary) {
				var d phoneDetail
				wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/phones/" + got.ID}), http.StatusOK, &d)
				if d.Specs.FiveG {
					t.Errorf("five_g=false listed %s whose specs.five_g is true", got.ID)
				}
			}},
		{"five_g_true_only_5g_phones", url.Values{"five_g": {"true"}}, func(p catalog.Phone) bool { return p.Specs.FiveG }, nil},
		{"filters_combine", url.Values{"brand": {"Motorola"}, "five_g": {"false"}},
			func(p catalog.Phone) bool { return p.Brand == "Motorola" && !p.Specs.FiveG }, nil},
		{"in_stock_true_keeps_phones_with_stock", url.Values{"in_stock": {"true"}}, func(p catalog.Phone) bool { return maxInitialStock(p) > 0 }, nil},
	}
	for _, tc := range filters {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{"page_size": {"100"}}
			for k, v := range tc.query {
				q[k] = v
			}
			got := searchAll(t, q)
			want := seed.ids(tc.want)
			if diff := cmp.Diff(want, sortedIDs(got)); diff != "" {
				t.Errorf("%v (-seed +got):\n%s", tc.query, diff)
			}
			if tc.name != "q_without_match_lists_nothing" && len(want) == 0 {
				t.Fatalf("test data: no seed phone matches %v", tc.query)
			}
			if tc.name != "in_stock_true_keeps_phones_with_stock" && len(want) == len(seed.phones) {
				t.Fatalf("test data: every seed phone matches %v, the filter is not exercised", tc.query)
			}
			if tc.check != nil {
				for _, item := range got {
					tc.check(t, item)
				}
			}
		})
	}

	t.Run("sorts_are_ordered", func(t *testing.T) {
		for _, sort := range []string{"price", "-price", "name", "-release_year"} {
			t.Run(sort, func(t *testing.T) {
				var p phonePage
				wantOK(t, search(t, url.Values{"sort": {sort}, "page_size": {"100"}}), http.StatusOK, &p)
				if len(p.Items) != len(seed.phones) {
					t.Fatalf("got %d phones, want %d", len(p.Items), len(seed.phones))
				}
				for i := 1; i < len(p.Items); i++ {
					if !inOrder(sort, p.Items[i-1], p.Items[i]) {
						t.Errorf("%s before %s", p.Items[i-1].ID, p.Items[i].ID)
					}
				}
			})
		}
	})

	t.Run("search_400_when_query_invalid", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			query url.Values
		}{
			{"min_price_above_max_price", url.Values{"min_price_cents": {"70000"}, "max_price_cents": {"50000"}}},
			{"min_price_not_integer", url.Values{"min_price_cents": {"cheap"}}},
			{"max_price_negative", url.Values{"max_price_cents": {"-1"}}},
			{"storage_gb_not_integer", url.Values{"storage_gb": {"lots"}}},
			{"five_g_not_bool", url.Values{"five_g": {"maybe"}}},
			{"in_stock_not_bool", url.Values{"in_stock": {"yes"}}},
			{"sort_unknown", url.Values{"sort": {"popularity"}}},
			{"sort_unknown_direction", url.Values{"sort": {"-name"}}},
			{"q_too_many_words", url.Values{"q": {"a b c d e f g h i"}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantError(t, search(t, tc.query), http.StatusBadRequest, "invalid_request")
			})
		}
	})

	t.Run("page_token_400_when_used_with_another_query", func(t *testing.T) {
		first := func(t *testing.T, q url.Values) string {
			t.Helper()
			var p phonePage
			wantOK(t, search(t, q), http.StatusOK, &p)
			if p.NextPageToken == "" {
				t.Fatalf("%v gave no next_page_token", q)
			}
			return p.NextPageToken
		}
		for _, tc := range []struct {
			name      string
			from, use url.Values
		}{
			{"other_brand", url.Values{"brand": {"Samsung"}, "page_size": {"2"}}, url.Values{"brand": {"Apple"}, "page_size": {"2"}}},
			{"filter_added", url.Values{"page_size": {"2"}}, url.Values{"five_g": {"false"}, "page_size": {"2"}}},
			{"other_sort", url.Values{"sort": {"price"}, "page_size": {"2"}}, url.Values{"sort": {"name"}, "page_size": {"2"}}},
			{"other_words", url.Values{"q": {"galaxy"}, "page_size": {"2"}}, url.Values{"q": {"pixel"}, "page_size": {"2"}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				use := url.Values{"page_token": {first(t, tc.from)}}
				for k, v := range tc.use {
					use[k] = v
				}
				wantError(t, search(t, use), http.StatusBadRequest, "invalid_request")
			})
		}
	})

	t.Run("page_token_400_when_garbage", func(t *testing.T) {
		for _, token := range []string{"garbage!", "bm90IGpzb24", base64.RawURLEncoding.EncodeToString([]byte(`{}`))} {
			t.Run(token, func(t *testing.T) {
				wantError(t, search(t, url.Values{"page_token": {token}}), http.StatusBadRequest, "invalid_request")
			})
		}
	})

	t.Run("phone_detail_has_specs_and_variants", func(t *testing.T) {
		for _, id := range []string{"google-pixel-8", "apple-iphone-16-pro", "motorola-moto-g-power-2022"} {
			t.Run(id, func(t *testing.T) {
				p := seed.byID[id]
				want := phoneDetail{ID: p.ID, Brand: p.Brand, Model: p.Model, Name: p.Name, ReleaseYear: p.ReleaseYear,
					FromPriceCents: p.FromPriceCents(), Currency: "USD", ImageURL: p.ImageURL,
					StockState: stockState(maxInitialStock(p), low), Specs: p.Specs}
				for _, v := range p.Variants {
					want.Variants = append(want.Variants, variantBody{SKU: v.SKU, StorageGB: v.StorageGB, Color: v.Color,
						PriceCents: v.PriceCents, Currency: "USD", StockState: stockState(v.InitialStock, low)})
				}
				var got phoneDetail
				wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/phones/" + id}), http.StatusOK, &got)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("phone (-seed +got):\n%s", diff)
				}
			})
		}
	})

	t.Run("phone_404_when_unknown", func(t *testing.T) {
		for _, id := range []string{"no-such-phone", strings.Repeat("x", 200)} {
			t.Run(id[:min(len(id), 20)], func(t *testing.T) {
				wantError(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/phones/" + id}), http.StatusNotFound, "not_found")
			})
		}
	})

	t.Run("brands_counts_match_seed", func(t *testing.T) {
		counts := map[string]int{}
		for _, p := range seed.phones {
			counts[p.Brand]++
		}
		want := []brandBody{}
		for name, n := range counts {
			want = append(want, brandBody{Name: name, PhoneCount: n})
		}
		slices.SortFunc(want, func(a, b brandBody) int { return strings.Compare(a.Name, b.Name) })
		var got struct {
			Items []brandBody `json:"items"`
		}
		wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/brands"}), http.StatusOK, &got)
		if diff := cmp.Diff(want, got.Items); diff != "" {
			t.Errorf("brands (-seed +got):\n%s", diff)
		}
	})

	// Last: it sells a phone out, which changes what the subtests above expect.
	t.Run("in_stock_true_excludes_sold_out_phone", func(t *testing.T) {
		admin := h.Admin()
		shopper, _ := h.Shopper()
		target := leastStockedPhone(seed)
		inStock := url.Values{"in_stock": {"true"}, "page_size": {"100"}}
		if !slices.Contains(sortedIDs(searchAll(t, inStock)), target.ID) {
			t.Fatalf("%s not listed in stock before the sell-out", target.ID)
		}

		// Buy every unit, a cart of at most MaxLineQuantity per line at a time.
		remaining := map[string]int64{}
		for _, v := range target.Variants {
			remaining[v.SKU] = h.StockLevel(admin, v.SKU).Available
		}
		for n := 0; ; n++ {
			filled := false
			for _, v := range target.Variants {
				if qty := min(remaining[v.SKU], h.Config.Shop.MaxLineQuantity); qty > 0 {
					putItem(t, h, shopper, v.SKU, qty)
					remaining[v.SKU] -= qty
					filled = true
				}
			}
			if !filled {
				break
			}
			placeOrder(t, h, shopper, fmt.Sprintf("sell-out-%d", n))
		}
		for _, v := range target.Variants {
			if l := h.StockLevel(admin, v.SKU); l.Available != 0 {
				t.Fatalf("%s still has %d available after the sell-out", v.SKU, l.Available)
			}
		}

		// API.md allows the catalog's stock view to lag by a moment.
		deadline := time.Now().Add(5 * time.Second)
		for slices.Contains(sortedIDs(searchAll(t, inStock)), target.ID) {
			if time.Now().After(deadline) {
				t.Fatalf("in_stock=true still lists sold-out %s", target.ID)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !slices.Contains(sortedIDs(searchAll(t, url.Values{"page_size": {"100"}})), target.ID) {
			t.Errorf("without in_stock, sold-out %s is no longer listed", target.ID)
		}
		var d phoneDetail
		wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/phones/" + target.ID}), http.StatusOK, &d)
		if d.StockState != "out_of_stock" {
			t.Errorf("sold-out phone stock_state = %q, want out_of_stock", d.StockState)
		}
		for _, v := range d.Variants {
			if v.StockState != "out_of_stock" {
				t.Errorf("sold-out variant %s stock_state = %q, want out_of_stock", v.SKU, v.StockState)
			}
		}
	})
}

// inOrder reports whether a may come before b under sort (API.md's sort names).
func inOrder(sort string, a, b phoneSummary) bool {
	switch sort {
	case "price":
		return a.FromPriceCents <= b.FromPriceCents
	case "-price":
		return a.FromPriceCents >= b.FromPriceCents
	case "-release_year":
		return a.ReleaseYear >= b.ReleaseYear
	default:
		return a.Name <= b.Name
	}
}

// leastStockedPhone is the seed phone with the fewest units, the cheapest to sell out.
func leastStockedPhone(seed seedCatalog) catalog.Phone {
	var best catalog.Phone
	bestUnits := int64(-1)
	for _, p := range seed.phones {
		var units int64
		for _, v := range p.Variants {
			units += v.InitialStock
		}
		if units > 0 && (bestUnits < 0 || units < bestUnits) {
			best, bestUnits = p, units
		}
	}
	return best
}

// ===================================================================================

func TestCart(t *testing.T) {
	h := shoptest.Start(t, 1)
	seed := loadSeed(t)
	maxQty := h.Config.Shop.MaxLineQuantity
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

// ===================================================================================

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

// ===================================================================================

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
