package main_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"phoneshop/internal/dbtest"
	"phoneshop/internal/shoptest"
)

// TestKill9DuringCheckoutLoseNothing runs the real binary against MariaDB (and
// Redis), with carts of one SKU (orders born in their sale) and of two (the
// saga), kills it
// with SIGKILL in the middle of a checkout load, and starts it again on the same
// database: every order that got a 201 exists with its lines, every SKU satisfies
// available + reserved + sold = received, the units sold are exactly those of the
// confirmed orders, reservations of checkouts that never completed expire back
// to available (or were never written: a hold is not durable), and the cart of
// every acknowledged checkout is empty.
func TestKill9DuringCheckoutLoseNothing(t *testing.T) {
	dsn := dbtest.MySQLDSN(t)
	redisAddr, redisPrefix := dbtest.Redis(t)
	procs := newShopProcesses(t)
	p := procs.add("shop", "dev", append([]string{
		"PHONESHOP_MYSQL_DSN=" + dsn,
		"PHONESHOP_REDIS_ADDR=" + redisAddr,
		"PHONESHOP_REDIS_PREFIX=" + redisPrefix,
		"PHONESHOP_DATA_DIR=" + t.TempDir(),
		"PHONESHOP_ADMIN_EMAIL=admin@example.com",
		"PHONESHOP_ADMIN_PASSWORD=admin password 1",
		"PHONESHOP_RESERVATION_TTL=3s",
		"PHONESHOP_PASSWORD_MEMORY_KIB=64",
		"PHONESHOP_PASSWORD_ITERATIONS=1",
		"PHONESHOP_LOG_LEVEL=warn",
	}, liftedRateLimits...), httpPort)
	procs.launch(60*time.Second, p)
	h := &shoptest.Harness{T: t, URL: p.URL, Client: &http.Client{Timeout: 15 * time.Second}}
	admin, err := h.TryLogin("admin@example.com", "admin password 1")
	if err != nil {
		t.Fatal(err)
	}

	// Three SKUs: two scarce ones the shoppers fight over, one plentiful.
	skus := shoptest.SoldOutSKUs(t, 3)
	for i, sku := range skus {
		h.SetStock(admin, sku, []int64{25, 40, 500}[i])
	}
	const shoppers = 80
	type shopper struct {
		token string
		lines map[string]int
	}
	all := make([]shopper, shoppers)
	for i := range all {
		token, _ := h.Shopper()
		// A third of the carts hold one SKU: their orders are born in the
		// sale's write (one durable round); the others run the saga.
		lines := map[string]int{skus[i%2]: 1 + i%2}
		if i%3 != 0 {
			lines[skus[2]] = 1
		}
		for sku, q := range lines {
			r := h.Do(shoptest.Request{Method: "PUT", Path: "/api/v1/cart/items/" + sku, Token: token, Body: map[string]int{"quantity": q}})
			if r.Status != http.StatusOK {
				t.Fatalf("cart: %d %s", r.Status, r.Body)
			}
		}
		all[i] = shopper{token: token, lines: lines}
	}

	// The load: every shopper checks out (retrying on transport errors, as a client
	// would, with the same key); the process dies after the first 201s.
	type acked struct {
		shopper int
		order   string
	}
	var mu sync.Mutex
	var acks []acked
	firstAcks := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for i := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := h.TryDo(shoptest.Request{Method: "POST", Path: "/api/v1/orders", Token: all[i].token,
				Headers: map[string]string{"Idempotency-Key": fmt.Sprintf("crash-%d", i)}, Body: shoptest.Address()})
			if err != nil || r.Status != http.StatusCreated {
				return // killed mid-request, or out of stock: no promise was made
			}
			var o struct {
				ID string `json:"id"`
			}
			r.JSON(t, &o)
			mu.Lock()
			acks = append(acks, acked{shopper: i, order: o.ID})
			if len(acks) >= 5 {
				once.Do(func() { close(firstAcks) })
			}
			mu.Unlock()
		}()
	}
	select {
	case <-firstAcks:
	case <-time.After(60 * time.Second):
		t.Fatal("no checkout succeeded within 60s")
	}
	p.Kill9()
	wg.Wait()
	mu.Lock()
	acked201 := append([]acked(nil), acks...)
	mu.Unlock()
	t.Logf("killed with SIGKILL after %d checkouts were acknowledged (of %d attempted)", len(acked201), shoppers)

	p.Start() // on the same address, which the harness h knows
	p.waitReady(60 * time.Second)

	// Every acknowledged order exists, confirmed, with its lines.
	for _, a := range acked201 {
		r := h.Do(shoptest.Request{Method: "GET", Path: "/api/v1/orders/" + a.order, Token: all[a.shopper].token})
		if r.Status != http.StatusOK {
			t.Fatalf("acknowledged order %s lost after the crash: %d %s", a.order, r.Status, r.Body)
		}
		var o struct {
			Status string `json:"status"`
			Items  []struct {
				SKU      string `json:"sku"`
				Quantity int    `json:"quantity"`
			} `json:"items"`
		}
		r.JSON(t, &o)
		if o.Status != "confirmed" || len(o.Items) != len(all[a.shopper].lines) {
			t.Fatalf("acknowledged order %s after the crash: %s", a.order, r.Body)
		}
		for _, it := range o.Items {
			if all[a.shopper].lines[it.SKU] != it.Quantity {
				t.Fatalf("order %s line %s: quantity %d, cart had %d", a.order, it.SKU, it.Quantity, all[a.shopper].lines[it.SKU])
			}
		}
	}

	// The cart of every acknowledged checkout is empty. Its emptying is written
	// after the 201 (actors/cart), so the kill may have lost it: the cart then finds
	// the confirmed order placed from its revision and empties itself again.
	for _, a := range acked201 {
		r := h.Do(shoptest.Request{Method: "GET", Path: "/api/v1/cart", Token: all[a.shopper].token})
		var c struct {
			Items []struct {
				SKU string `json:"sku"`
			} `json:"items"`
		}
		r.JSON(t, &c)
		if r.Status != http.StatusOK || len(c.Items) != 0 {
			t.Fatalf("cart of acknowledged order %s after the crash: %d %s; want empty", a.order, r.Status, r.Body)
		}
	}

	// Units sold are exactly those of the confirmed orders (those acknowledged, and
	// those whose saga the restart finished), and reservations expire.
	deadline := time.Now().Add(30 * time.Second)
	for {
		soldByOrders := map[string]int64{}
		for _, s := range all {
			r := h.Do(shoptest.Request{Method: "GET", Path: "/api/v1/orders?page_size=100", Token: s.token})
			var list struct {
				Items []struct {
					Status string `json:"status"`
					Items  []struct {
						SKU      string `json:"sku"`
						Quantity int64  `json:"quantity"`
					} `json:"items"`
				} `json:"items"`
			}
			r.JSON(t, &list)
			for _, o := range list.Items {
				if o.Status == "confirmed" {
					for _, it := range o.Items {
						soldByOrders[it.SKU] += it.Quantity
					}
				}
			}
		}
		settled := true
		for _, sku := range skus {
			l := h.StockLevel(admin, sku) // fails the test if conservation is broken
			if l.Sold != soldByOrders[sku] {
				settled = false
				if time.Now().After(deadline) {
					t.Fatalf("%s: %d sold, but confirmed orders hold %d", sku, l.Sold, soldByOrders[sku])
				}
			}
			if l.Reserved != 0 {
				settled = false
				if time.Now().After(deadline) {
					t.Fatalf("%s: %d units still reserved 30s after the restart (reservation TTL 3s)", sku, l.Reserved)
				}
			}
		}
		if settled {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	// The harness restarts a process that exits on its own, as a supervisor
	// would; but the only exit here is the kill.
	requireNoExits(t, []*shopProcess{p})
}
