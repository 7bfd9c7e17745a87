// Tests of the HTTP edge against API.md: each top-level test starts one whole shop
// (shoptest: SQLite in a temp dir, the cluster, the edge on loopback) and drives it
// over HTTP only. Every refusal is checked for its status and error code and, where
// the request must change nothing, for the cart, the stock and the order list.
package edge_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

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

// oversizedBody is a 1 MB JSON body, far over the default 64 KiB limit.
// oversizedBody is a sign-up over the shipped body limit (64 KiB) and under twice
// it, where the server still reads a body to answer its 413 (beyond, it resets the
// connection: TestBodyBufferIsBounded).
func oversizedBody() string {
	return `{"email":"big@example.com","password":"a long enough password","name":"` + strings.Repeat("x", 100<<10) + `"}`
}
