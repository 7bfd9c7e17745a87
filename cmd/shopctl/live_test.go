package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"phoneshop/internal/shoptest"
)

// The live tests run shopctl's run against a real dev shop (SQLite, an in-memory
// cluster member, the edge on a loopback port): the fake shop of the other tests
// checks what shopctl sends, these check that the shop agrees.

// shopperPassword is the password of every shoptest.Shopper account.
const shopperPassword = "a long enough password"

// liveCLI is a shopctl pointed at the harness's shop with token (may be empty).
func liveCLI(t *testing.T, h *shoptest.Harness, token string) *cli {
	t.Helper()
	c := newCLI(t, nil)
	c.env["SHOPCTL_URL"] = h.URL
	if token != "" {
		c.env["SHOPCTL_TOKEN"] = token
	}
	return c
}

// jsonOf runs shopctl with -o json, expects success and decodes stdout into v.
func (c *cli) jsonOf(v any, args ...string) {
	c.t.Helper()
	r := c.mustSucceed(append([]string{"-o", "json"}, args...)...)
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		c.t.Fatalf("shopctl %v printed no JSON: %v\n%s", args, err, r.stdout)
	}
}

func TestLiveCampaignWalk(t *testing.T) {
	h := shoptest.Start(t, 1)
	admin := liveCLI(t, h, h.Admin())
	_, email := h.Shopper()

	// An admin makes the shopper a marketer, by e-mail.
	var acc account
	admin.jsonOf(&acc, "account", "grant", email, "marketing")
	if !slices.Contains(acc.Roles, "marketing") || !slices.Contains(acc.Roles, "shopper") {
		t.Fatalf("roles after grant: %v", acc.Roles)
	}
	admin.jsonOf(&acc, "account", "get", email)
	if !slices.Contains(acc.Roles, "marketing") {
		t.Fatalf("account get after grant: %v", acc.Roles)
	}

	// The marketer logs in through shopctl; later commands use the saved login.
	marketer := newCLI(t, nil)
	marketer.env["SHOPCTL_PASSWORD"] = shopperPassword
	login := marketer.mustSucceed("--url", h.URL, "login", "--email", email)
	assertMode(t, marketer.env["SHOPCTL_CONFIG"], 0o600)
	saved, err := marketer.app().loadLogin()
	if err != nil || saved == nil || saved.Token == "" {
		t.Fatalf("saved login %+v, %v", saved, err)
	}
	if strings.Contains(login.stdout+login.stderr, saved.Token) {
		t.Fatal("login printed the token")
	}

	brand := firstBrand(t, h)
	var p promo
	marketer.jsonOf(&p, "promo", "create", "--name", "Live week", "--percent-off", "20", "--brand", brand,
		"--starts-at", "now", "--ends-at", "+2h", "--email-subject", "20% off "+brand, "--email-body", "Hello")
	if p.Status != "draft" || !strings.HasPrefix(p.ID, "promo_") || !slices.Equal(p.Brands, []string{brand}) {
		t.Fatalf("created %+v", p)
	}

	var page struct {
		Items []promo `json:"items"`
	}
	marketer.jsonOf(&page, "promo", "list", "--status", "draft")
	if !slices.ContainsFunc(page.Items, func(q promo) bool { return q.ID == p.ID }) {
		t.Errorf("promo list --status draft lacks %s: %+v", p.ID, page.Items)
	}
	if r := marketer.mustSucceed("promo", "list", "--all"); !strings.Contains(r.stdout, p.ID) || !strings.Contains(r.stdout, "Live week") {
		t.Errorf("promo list table:\n%s", r.stdout)
	}

	var got promo
	marketer.jsonOf(&got, "promo", "get", p.ID)
	if got.ID != p.ID || got.Name != "Live week" || got.PercentOff != 20 {
		t.Errorf("promo get: %+v", got)
	}
	marketer.jsonOf(&got, "promo", "edit", p.ID, "--percent-off", "25", "--max-units", "10", "--max-per-customer", "2")
	if got.PercentOff != 25 || got.MaxDiscountedUnits == nil || *got.MaxDiscountedUnits != 10 || got.Name != "Live week" ||
		got.MaxUnitsPerCustomer == nil || *got.MaxUnitsPerCustomer != 2 {
		t.Errorf("promo edit: %+v", got)
	}
	if r := marketer.run("promo", "edit", p.ID, "--max-per-customer", "101"); r.code != exitError || !strings.Contains(r.stderr, "max_units_per_customer") {
		t.Errorf("--max-per-customer 101: exit %d, stderr %q; want the shop's refusal", r.code, r.stderr)
	}
	if r := marketer.mustSucceed("promo", "get", p.ID); !strings.Contains(r.stdout, "MAX PER CUSTOMER") {
		t.Errorf("promo get shows no limit per customer:\n%s", r.stdout)
	}

	marketer.jsonOf(&got, "promo", "launch", p.ID)
	if got.Status != "active" {
		t.Fatalf("status after launch %q, want active (it starts now)", got.Status)
	}
	waitActive(t, h, p.ID, true)

	// Editing a launched campaign is a conflict: exit 1 with the code.
	if r := marketer.run("promo", "edit", p.ID, "--name", "Too late"); r.code != exitError || !strings.Contains(r.stderr, "error: conflict:") {
		t.Errorf("edit after launch: exit %d, stderr %q", r.code, r.stderr)
	}

	marketer.jsonOf(&got, "promo", "pause", p.ID)
	if got.Status != "paused" {
		t.Errorf("status after pause %q", got.Status)
	}
	waitActive(t, h, p.ID, false)
	marketer.jsonOf(&got, "promo", "end", p.ID)
	if got.Status != "ended" {
		t.Errorf("status after end %q", got.Status)
	}
	if r := marketer.run("promo", "launch", p.ID); r.code != exitError || !strings.Contains(r.stderr, "error: conflict:") {
		t.Errorf("launch after end: exit %d, stderr %q", r.code, r.stderr)
	}

	// A shopper without the role is refused; then the marketer logs out.
	shopperToken, _ := h.Shopper()
	if r := liveCLI(t, h, shopperToken).run("promo", "list"); r.code != exitError || !strings.Contains(r.stderr, "error: forbidden:") {
		t.Errorf("shopper promo list: exit %d, stderr %q", r.code, r.stderr)
	}
	marketer.mustSucceed("logout")
	if r := h.Do(shoptest.Request{Method: "GET", Path: "/api/v1/me", Token: saved.Token}); r.Status != http.StatusUnauthorized {
		t.Errorf("the token still works after logout: %d", r.Status)
	}
}

func TestLiveOps(t *testing.T) {
	h := shoptest.Start(t, 1)
	ops := liveCLI(t, h, h.Admin())
	sku := shoptest.SoldOutSKUs(t, 1)[0]

	var level stockLevel
	ops.jsonOf(&level, "stock", "get", sku)
	before := level.Received
	ops.jsonOf(&level, "stock", "receive", sku, "5", "--key", "live-delivery-1")
	if level.Received != before+5 {
		t.Errorf("received %d after receiving 5 onto %d", level.Received, before)
	}
	// The same delivery again, by its key, adds nothing.
	ops.jsonOf(&level, "stock", "receive", sku, "5", "--key", "live-delivery-1")
	if level.Received != before+5 {
		t.Errorf("received %d after repeating the delivery, want %d", level.Received, before+5)
	}
	if r := ops.mustSucceed("stock", "get", sku); !strings.Contains(r.stdout, sku) {
		t.Errorf("stock get table:\n%s", r.stdout)
	}

	r := ops.mustSucceed("cluster")
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) < 2 || !strings.HasPrefix(lines[0], "MEMBER") || !strings.Contains(r.stdout, " up ") {
		t.Errorf("cluster table:\n%s", r.stdout)
	}

	r = ops.run("order", "ship", "ord_000000000000000000000000")
	if r.code != exitError || !strings.HasPrefix(r.stderr, "error: not_found:") {
		t.Errorf("ship an unknown order: exit %d, stderr %q", r.code, r.stderr)
	}

	var mail mailStatus
	ops.jsonOf(&mail, "mail", "status")
	if len(mail.Queues) != 4 {
		t.Errorf("mail status: %+v, want the four mail queues", mail)
	}
	if r := ops.mustSucceed("mail", "status"); !strings.Contains(r.stdout, "phoneshop.order.email") {
		t.Errorf("mail status table:\n%s", r.stdout)
	}
	if r := ops.mustSucceed("mail", "redrive", "--queue", "phoneshop.order.email"); r.stdout != "0 dead letters of phoneshop.order.email sent back\n" {
		t.Errorf("redrive of no dead letters: %q", r.stdout)
	}
	r = ops.run("mail", "redrive", "--queue", "orders")
	if r.code != exitError || !strings.HasPrefix(r.stderr, "error: invalid_request:") {
		t.Errorf("redrive of a queue that is not a mail queue: exit %d, stderr %q", r.code, r.stderr)
	}
}

// firstBrand is a brand of the catalog, asked of the shop.
func firstBrand(t *testing.T, h *shoptest.Harness) string {
	t.Helper()
	var brands struct {
		Items []struct {
			Name string `json:"name"`
		} `json:"items"`
	}
	h.Do(shoptest.Request{Method: "GET", Path: "/api/v1/brands"}).JSON(t, &brands)
	if len(brands.Items) == 0 {
		t.Fatal("the catalog has no brands")
	}
	return brands.Items[0].Name
}

// waitActive waits until the public list of active campaigns has (or lacks) id.
// Prices may follow a campaign's moves by a moment, so the list may too.
func waitActive(t *testing.T, h *shoptest.Harness, id string, want bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var active struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
		}
		resp := h.Do(shoptest.Request{Method: "GET", Path: "/api/v1/promos/active"})
		if resp.Status == http.StatusOK {
			resp.JSON(t, &active)
		}
		listed := false
		for _, p := range active.Items {
			listed = listed || p.ID == id
		}
		if listed == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/api/v1/promos/active: %d %s; want %s listed=%v", resp.Status, resp.Body, id, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLiveTables runs every command in table mode against a real shop, with the
// moves a table cannot show checked through the API: a real order shipped and
// delivered, a role revoked, a cap removed.
func TestLiveTables(t *testing.T) {
	h := shoptest.Start(t, 1)
	adminToken := h.Admin()
	admin := liveCLI(t, h, adminToken)
	shopperToken, email := h.Shopper()
	brand := firstBrand(t, h)

	// wantTable runs args and requires a table whose header has every column.
	wantTable := func(c *cli, columns []string, args ...string) string {
		t.Helper()
		r := c.mustSucceed(args...)
		header := strings.SplitN(r.stdout, "\n", 2)[0]
		for _, col := range columns {
			if !strings.Contains(r.stdout, col) {
				t.Errorf("shopctl %v: no %q in\n%s", args, col, r.stdout)
			}
		}
		if strings.HasPrefix(strings.TrimSpace(r.stdout), "{") {
			t.Errorf("shopctl %v printed JSON in table mode (header %q)", args, header)
		}
		return r.stdout
	}

	wantTable(admin, []string{"ID", "EMAIL", "ROLES", "marketing"}, "account", "grant", email, "marketing", "ops")
	out := wantTable(admin, []string{"ID", "EMAIL", "ROLES"}, "account", "revoke", email, "ops")
	if strings.Contains(out, "ops") {
		t.Errorf("ops still shown after revoke:\n%s", out)
	}
	wantTable(admin, []string{email}, "account", "get", email)

	marketer := liveCLI(t, h, "")
	marketer.env["SHOPCTL_PASSWORD"] = shopperPassword
	marketer.mustSucceed("--url", h.URL, "login", "--email", email)
	out = wantTable(marketer, []string{"ID", "STATUS", "draft"}, "promo", "create", "--name", "Tables", "--percent-off", "10",
		"--brand", brand, "--starts-at", "now", "--ends-at", "+2h", "--max-units", "5")
	var id string
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "promo_") {
			id = f
			break
		}
	}
	if id == "" {
		t.Fatalf("no campaign id in\n%s", out)
	}
	wantTable(marketer, []string{"ID", "NAME", "STATUS", id}, "promo", "list")
	wantTable(marketer, []string{"UNITS", "0/5"}, "promo", "get", id)
	out = wantTable(marketer, []string{"UNITS"}, "promo", "edit", id, "--no-cap")
	if strings.Contains(out, "0/5") {
		t.Errorf("--no-cap kept the cap:\n%s", out)
	}
	wantTable(marketer, []string{"active"}, "promo", "launch", id)
	wantTable(marketer, []string{"paused"}, "promo", "pause", id)
	wantTable(marketer, []string{"ended"}, "promo", "end", id)

	// A real order, shipped and delivered by ops.
	sku := shoptest.SoldOutSKUs(t, 1)[0]
	h.SetStock(adminToken, sku, 1)
	wantTable(admin, []string{sku}, "stock", "get", sku)
	wantTable(admin, []string{sku}, "stock", "receive", sku, "1")
	h.Do(shoptest.Request{Method: "PUT", Path: "/api/v1/cart/items/" + sku, Token: shopperToken, Body: map[string]int{"quantity": 1}})
	r := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/orders", Token: shopperToken,
		Headers: map[string]string{"Idempotency-Key": "tables"}, Body: shoptest.Address()})
	if r.Status != http.StatusCreated {
		t.Fatalf("checkout: %d %s", r.Status, r.Body)
	}
	order := r.Map(t)["id"].(string)
	wantTable(admin, []string{order, "shipped"}, "order", "ship", order)
	wantTable(admin, []string{order, "delivered"}, "order", "deliver", order)
	wantTable(admin, []string{"MEMBER"}, "cluster")

	// Usage errors exit 2 and change nothing.
	if r := marketer.run("promo", "create", "--name", "x"); r.code != exitUsage {
		t.Errorf("create without the required flags: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := marketer.run("promo", "edit", id, "--max-units", "3", "--no-cap"); r.code != exitUsage {
		t.Errorf("--max-units with --no-cap: exit %d, stderr %q", r.code, r.stderr)
	}
}
