package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const stockJSON = `{"sku":"apple-iphone-16-128-black","available":40,"reserved":2,"sold":8,"received":50}`

func TestStockGet_shows_the_level(t *testing.T) {
	shop := newFakeShop(t)
	shop.answer("GET /api/v1/ops/inventory/{sku}", http.StatusOK, stockJSON)
	c := newCLI(t, shop)
	r := c.mustSucceed("stock", "get", "apple-iphone-16-128-black")
	if req := shop.only(t); req.Path != "/api/v1/ops/inventory/apple-iphone-16-128-black" {
		t.Errorf("path %q", req.Path)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("stdout:\n%s", r.stdout)
	}
	if diff := cmp.Diff([]string{"SKU", "AVAILABLE", "RESERVED", "SOLD", "RECEIVED"}, strings.Fields(lines[0])); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"apple-iphone-16-128-black", "40", "2", "8", "50"}, strings.Fields(lines[1])); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	if r := c.mustSucceed("-o", "json", "stock", "get", "apple-iphone-16-128-black"); r.stdout != pretty(t, stockJSON) {
		t.Errorf("json stdout:\n%s", r.stdout)
	}
}

func TestStockReceive_sends_a_new_idempotency_key_each_run(t *testing.T) {
	shop := newFakeShop(t)
	shop.answer("PUT /api/v1/ops/inventory/{sku}", http.StatusOK, stockJSON)
	c := newCLI(t, shop)
	c.mustSucceed("stock", "receive", "apple-iphone-16-128-black", "10")
	r := c.mustSucceed("-o", "json", "stock", "receive", "apple-iphone-16-128-black", "10")
	if r.stdout != pretty(t, stockJSON) {
		t.Errorf("json stdout:\n%s", r.stdout)
	}

	got := shop.got()
	keyPattern := regexp.MustCompile(`^shopctl-[0-9a-f]{32}$`)
	for _, req := range got {
		if req.Method != "PUT" || req.Path != "/api/v1/ops/inventory/apple-iphone-16-128-black" {
			t.Errorf("sent %s %s", req.Method, req.Path)
		}
		if diff := cmp.Diff(map[string]any{"received": 10.0}, decode(t, req.Body)); diff != "" {
			t.Errorf("body (-want +got):\n%s", diff)
		}
		if key := req.Header.Get("Idempotency-Key"); !keyPattern.MatchString(key) {
			t.Errorf("Idempotency-Key %q", key)
		}
	}
	if got[0].Header.Get("Idempotency-Key") == got[1].Header.Get("Idempotency-Key") {
		t.Error("two deliveries shared a key")
	}
}

func TestStockReceive_sends_the_key_given(t *testing.T) {
	shop := newFakeShop(t)
	shop.answer("PUT /api/v1/ops/inventory/{sku}", http.StatusOK, stockJSON)
	newCLI(t, shop).mustSucceed("stock", "receive", "apple-iphone-16-128-black", "10", "--key", "delivery-0042")
	if key := shop.only(t).Header.Get("Idempotency-Key"); key != "delivery-0042" {
		t.Errorf("Idempotency-Key %q", key)
	}
}

func TestStockReceive_prints_the_key_only_when_the_outcome_is_unknown(t *testing.T) {
	tests := []struct {
		status   int
		body     string
		wantHint bool
	}{
		{http.StatusServiceUnavailable, `{"error":{"code":"unavailable","message":"busy"}}`, true},
		{http.StatusBadRequest, `{"error":{"code":"invalid_request","message":"received must be an integer from 1 to 1000000"}}`, false},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			shop := newFakeShop(t)
			shop.answer("PUT /api/v1/ops/inventory/{sku}", tt.status, tt.body, "Retry-After", "2")
			r := newCLI(t, shop).run("stock", "receive", "apple-iphone-16-128-black", "10", "--key", "delivery-0042")
			if r.code != exitError {
				t.Fatalf("exit %d", r.code)
			}
			if got := strings.Contains(r.stderr, "--key delivery-0042"); got != tt.wantHint {
				t.Errorf("hint printed %v, want %v: %q", got, tt.wantHint, r.stderr)
			}
		})
	}
}

const orderJSON = `{"id":"ord_0123456789abcdef01234567","status":"shipped","items":[{"sku":"apple-iphone-16-128-black","quantity":2}],"total_cents":159800,"currency":"USD","shipping_address":{"name":"Ann Shopper","line1":"1 Main Street","city":"Springfield","postal_code":"12345","country":"US"},"created_at":"2026-11-27T10:00:00Z","updated_at":"2026-11-27T11:00:00Z"}`

func TestOrderShipAndDeliver_post_to_their_paths(t *testing.T) {
	for _, move := range []string{"ship", "deliver"} {
		t.Run(move, func(t *testing.T) {
			shop := newFakeShop(t)
			path := "/api/v1/ops/orders/ord_0123456789abcdef01234567/" + move
			shop.answer("POST "+path, http.StatusOK, orderJSON)
			c := newCLI(t, shop)
			r := c.mustSucceed("order", move, "ord_0123456789abcdef01234567")
			if req := shop.only(t); req.Method != "POST" || req.Path != path {
				t.Errorf("sent %s %s", req.Method, req.Path)
			}
			for _, want := range []string{"ord_0123456789abcdef01234567", "shipped", "1598.00 USD", "Ann Shopper, Springfield US"} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("table lacks %q:\n%s", want, r.stdout)
				}
			}
			if r := c.mustSucceed("-o", "json", "order", move, "ord_0123456789abcdef01234567"); r.stdout != pretty(t, orderJSON) {
				t.Errorf("json stdout:\n%s", r.stdout)
			}
		})
	}
}

func TestOrderShip_unknown_order_exits_1_not_found(t *testing.T) {
	shop := newFakeShop(t)
	shop.answer("POST /api/v1/ops/orders/{id}/ship", http.StatusNotFound, `{"error":{"code":"not_found","message":"order not found"}}`)
	r := newCLI(t, shop).run("order", "ship", "ord_nope")
	if r.code != exitError || r.stderr != "error: not_found: order not found\n" {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

const clusterJSON = `{"members":[
 {"id":"m1","address":"127.0.0.1:7001","kinds":["cart","inventory","order"],"activations":{"cart":12,"inventory":3,"order":0},"status":"up","goroutines":40},
 {"id":"m2","address":"127.0.0.1:7002","kinds":["cart","inventory","order"],"status":"unreachable"}],
 "totals":{"cart":12,"inventory":3,"order":0},"health":{"store":"up"}}`

func TestOpsClusterTable_shows_members_with_activations_per_kind(t *testing.T) {
	shop := newFakeShop(t)
	shop.answer("GET /api/v1/ops/cluster", http.StatusOK, clusterJSON)
	c := newCLI(t, shop)
	r := c.mustSucceed("cluster")
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		rows = append(rows, strings.Fields(line))
	}
	want := [][]string{
		{"MEMBER", "ADDRESS", "STATUS", "KINDS", "CART", "INVENTORY", "ORDER"},
		{"m1", "127.0.0.1:7001", "up", "cart,inventory,order", "12", "3", "0"},
		{"m2", "127.0.0.1:7002", "unreachable", "cart,inventory,order", "-", "-", "-"},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
	if r := c.mustSucceed("-o", "json", "cluster"); r.stdout != pretty(t, clusterJSON) {
		t.Errorf("json stdout:\n%s", r.stdout)
	}
}
