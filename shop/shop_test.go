package shop_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"phoneshop/config"
	"phoneshop/internal/dbtest"
	"phoneshop/internal/shoptest"
)

// TestFlashSale: 200 shoppers with the hot SKU in their carts check out at once
// against 50 units, on one cluster member, under the race detector.
func TestFlashSale(t *testing.T) { flashSale(t, 1) }

// TestFlashSaleOnMariaDBAndRedis is the same sale on the production stores:
// MariaDB with group commit, Redis for hot reads.
func TestFlashSaleOnMariaDBAndRedis(t *testing.T) {
	flashSale(t, 1, func(c *config.Dev) {
		c.MySQLDSN = dbtest.MySQLDSN(t)
		c.RedisAddr, c.RedisPrefix = dbtest.Redis(t)
	})
}

// TestClusterFlashSale is the same sale on a shop of 3 cluster members, so carts,
// orders and the hot SKU live on different members.
func TestClusterFlashSale(t *testing.T) {
	shoptest.MultiMember(t)
	flashSale(t, 3)
}

func flashSale(t *testing.T, members int, options ...shoptest.Option) {
	const shoppers, units = 200, 50
	h := shoptest.Start(t, members, options...)
	admin := h.Admin()
	sku := shoptest.SoldOutSKUs(t, 1)[0]
	h.SetStock(admin, sku, units)

	// Fill every cart before the race starts.
	began := time.Now()
	tokens := make([]string, shoppers)
	var wg sync.WaitGroup
	errs := make(chan error, shoppers)
	for i := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			token, _, err := h.TryShopper()
			if err != nil {
				errs <- err
				return
			}
			r, err := h.TryDo(shoptest.Request{Method: "PUT", Path: "/api/v1/cart/items/" + sku, Token: token,
				Body: map[string]int{"quantity": 1}})
			if err != nil || r.Status != http.StatusOK {
				errs <- fmt.Errorf("fill cart: %v %d %s", err, r.Status, r.Body)
				return
			}
			tokens[i] = token
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	type result struct {
		status int
		code   string
		order  string
		token  string
	}
	t.Logf("%d shoppers registered, logged in and filled their carts in %s", shoppers, time.Since(began))
	results := make([]result, shoppers)
	start := make(chan struct{})
	for i, token := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := h.TryDo(shoptest.Request{Method: "POST", Path: "/api/v1/orders", Token: token,
				Headers: map[string]string{"Idempotency-Key": fmt.Sprintf("flash-%d", i)}, Body: shoptest.Address()})
			if err != nil {
				results[i] = result{status: -1, code: err.Error()}
				return
			}
			res := result{status: r.Status, code: r.ErrorCode(), token: token}
			if r.Status == http.StatusCreated {
				var o struct {
					ID string `json:"id"`
				}
				r.JSON(t, &o)
				res.order = o.ID
			}
			results[i] = res
		}()
	}
	began = time.Now()
	close(start)
	wg.Wait()
	t.Logf("%d concurrent checkouts answered in %s", shoppers, time.Since(began))

	counts := map[string]int{}
	for _, r := range results {
		counts[fmt.Sprintf("%d %s", r.status, r.code)]++
	}
	want := map[string]int{"201 ": units, "409 out_of_stock": shoppers - units}
	if diff := cmp.Diff(want, counts); diff != "" {
		t.Fatalf("checkout outcomes (-want +got):\n%s", diff)
	}
	l := h.StockLevel(admin, sku)
	if l.Available != 0 || l.Sold != units || l.Reserved != 0 || l.Received != units {
		t.Fatalf("stock after the sale = %+v, want 0 available, %d sold, 0 reserved", l, units)
	}
	// Every 201 is an order its shopper can read, confirmed.
	for _, r := range results {
		if r.order == "" {
			continue
		}
		got := h.Do(shoptest.Request{Method: "GET", Path: "/api/v1/orders/" + r.order, Token: r.token})
		if got.Status != http.StatusOK || got.Map(t)["status"] != "confirmed" {
			t.Fatalf("order %s: %d %s", r.order, got.Status, got.Body)
		}
	}
}

// TestRestartKeepsEverything: accounts, carts, orders and stock are exactly as they
// were after the process stops and starts again on the same data directory.
func TestRestartKeepsEverything(t *testing.T) {
	h := shoptest.Start(t, 1)
	admin := h.Admin()
	sku := shoptest.SoldOutSKUs(t, 1)[0]
	h.SetStock(admin, sku, 10)

	buyer, buyerEmail := h.Shopper()
	put := func(token string, qty int) {
		t.Helper()
		r := h.Do(shoptest.Request{Method: "PUT", Path: "/api/v1/cart/items/" + sku, Token: token, Body: map[string]int{"quantity": qty}})
		if r.Status != http.StatusOK {
			t.Fatalf("cart: %d %s", r.Status, r.Body)
		}
	}
	put(buyer, 3)
	placed := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/orders", Token: buyer,
		Headers: map[string]string{"Idempotency-Key": "restart-1"}, Body: shoptest.Address()})
	if placed.Status != http.StatusCreated {
		t.Fatalf("checkout: %d %s", placed.Status, placed.Body)
	}
	browser, browserEmail := h.Shopper()
	put(browser, 2)

	snapshot := func(buyer, browser string) map[string]any {
		t.Helper()
		get := func(path, token string) any {
			r := h.Do(shoptest.Request{Method: "GET", Path: path, Token: token})
			if r.Status != http.StatusOK {
				t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
			}
			var v any
			r.JSON(t, &v)
			return v
		}
		return map[string]any{
			"buyer_me":      get("/api/v1/me", buyer),
			"buyer_orders":  get("/api/v1/orders", buyer),
			"buyer_cart":    get("/api/v1/cart", buyer),
			"browser_cart":  get("/api/v1/cart", browser),
			"browser_me":    get("/api/v1/me", browser),
			"stock":         h.StockLevel(admin, sku),
			"phone_listing": get("/api/v1/phones?page_size=100", ""),
		}
	}
	before := snapshot(buyer, browser)

	h.Restart()

	// Sessions survive the restart, and so do the accounts behind them.
	if r := h.Do(shoptest.Request{Method: "GET", Path: "/api/v1/me", Token: buyer}); r.Status != http.StatusOK {
		t.Fatalf("session lost across restart: %d %s", r.Status, r.Body)
	}
	var err error
	if buyer, err = h.TryLogin(buyerEmail, "a long enough password"); err != nil {
		t.Fatal(err)
	}
	if browser, err = h.TryLogin(browserEmail, "a long enough password"); err != nil {
		t.Fatal(err)
	}
	after := snapshot(buyer, browser)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Fatalf("state changed across restart (-before +after):\n%s", diff)
	}
	if l := after["stock"].(shoptest.Level); l.Sold != 3 || l.Available != 7 {
		t.Fatalf("stock after restart = %+v, want 3 sold and 7 available", l)
	}
}
