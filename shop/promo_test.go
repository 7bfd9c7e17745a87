package shop_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"phoneshop/config"
	"phoneshop/internal/dbtest"
	"phoneshop/internal/shoptest"
)

// TestCappedCampaign: 200 shoppers race for a campaign capped at 50 discounted
// units, on one member under the race detector.
func TestCappedCampaign(t *testing.T) { cappedCampaign(t, 1) }

// TestClusterCappedCampaign is the same race on 3 members: carts, orders, the SKU
// and the campaign live on different members.
func TestClusterCappedCampaign(t *testing.T) {
	shoptest.MultiMember(t)
	cappedCampaign(t, 3)
}

type campaignView struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Stats  struct {
		DiscountedUnits int64 `json:"discounted_units"`
		Orders          int64 `json:"orders"`
	} `json:"stats"`
}

func startCampaign(t *testing.T, h *shoptest.Harness, admin string, body map[string]any) campaignView {
	t.Helper()
	var c campaignView
	r := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/promos", Token: admin, Body: body})
	if r.Status != http.StatusCreated {
		t.Fatalf("create campaign: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &c)
	if r := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/promos/" + c.ID + "/launch", Token: admin}); r.Status != http.StatusOK {
		t.Fatalf("launch: %d %s", r.Status, r.Body)
	} else {
		r.JSON(t, &c)
	}
	return c
}

func campaignOf(t *testing.T, h *shoptest.Harness, admin, id string) campaignView {
	t.Helper()
	var c campaignView
	r := h.Do(shoptest.Request{Method: "GET", Path: "/api/v1/promos/" + id, Token: admin})
	if r.Status != http.StatusOK {
		t.Fatalf("get campaign: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &c)
	return c
}

func cappedCampaign(t *testing.T, members int, options ...shoptest.Option) {
	const shoppers, units, capped, percent = 200, 500, 50, 20
	h := shoptest.Start(t, members, options...)
	admin := h.Admin()
	sku := shoptest.SoldOutSKUs(t, 1)[0]
	h.SetStock(admin, sku, units) // stock is not the limit here: the cap is
	camp := startCampaign(t, h, admin, map[string]any{"name": "Capped", "percent_off": percent, "skus": []string{sku},
		"starts_at": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339),
		"ends_at":   time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "max_discounted_units": capped})

	type shopper struct {
		token        string
		expected     bool  // sends expected_total_cents
		shown, list  int64 // the total its cart showed, and the list total
		status       int
		code         string
		order        string
		discount     int64
		changedTotal any
	}
	all := make([]*shopper, shoppers)
	var wg sync.WaitGroup
	errs := make(chan error, shoppers)
	for i := range all {
		wg.Go(func() {
			token, _, err := h.TryShopper()
			if err != nil {
				errs <- err
				return
			}
			r, err := h.DoPolitely(shoptest.Request{Method: "PUT", Path: "/api/v1/cart/items/" + sku, Token: token,
				Body: map[string]int{"quantity": 1}})
			if err != nil || r.Status != http.StatusOK {
				errs <- fmt.Errorf("fill cart: %v %d %s", err, r.Status, r.Body)
				return
			}
			all[i] = &shopper{token: token, expected: i%2 == 0}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Every cart shows the discount before the race (the campaign views refresh
	// every second).
	deadline := time.Now().Add(5 * time.Second)
	for _, s := range all {
		for {
			var c struct{ SubtotalCents, DiscountCents, TotalCents int64 }
			r := h.Do(shoptest.Request{Method: "GET", Path: "/api/v1/cart", Token: s.token})
			var body struct {
				SubtotalCents int64 `json:"subtotal_cents"`
				DiscountCents int64 `json:"discount_cents"`
				TotalCents    int64 `json:"total_cents"`
			}
			r.JSON(t, &body)
			c.SubtotalCents, c.DiscountCents, c.TotalCents = body.SubtotalCents, body.DiscountCents, body.TotalCents
			if c.DiscountCents > 0 {
				s.shown, s.list = c.TotalCents, c.SubtotalCents
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no cart shows the campaign within 5 s: %s", r.Body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	start := make(chan struct{})
	for i, s := range all {
		wg.Go(func() {
			<-start
			body := shoptest.Address()
			if s.expected {
				body["expected_total_cents"] = s.shown
			}
			r, err := h.DoPolitely(shoptest.Request{Method: "POST", Path: "/api/v1/orders", Token: s.token,
				Headers: map[string]string{"Idempotency-Key": fmt.Sprintf("capped-%d", i)}, Body: body})
			if err != nil {
				s.status, s.code = -1, err.Error()
				return
			}
			s.status, s.code = r.Status, r.ErrorCode()
			switch r.Status {
			case http.StatusCreated:
				var o struct {
					ID            string `json:"id"`
					DiscountCents int64  `json:"discount_cents"`
				}
				r.JSON(t, &o)
				s.order, s.discount = o.ID, o.DiscountCents
			case http.StatusConflict:
				var e struct {
					Error struct {
						Details map[string]any `json:"details"`
					} `json:"error"`
				}
				r.JSON(t, &e)
				s.changedTotal = e.Error.Details["total_cents"]
			}
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	t.Logf("%d concurrent checkouts against a cap of %d answered in %s", shoppers, capped, time.Since(began))

	var discounted, sold int64
	var discountedOrder *shopper
	outcomes := map[string]int{}
	for _, s := range all {
		outcomes[fmt.Sprintf("%d %s", s.status, s.code)]++
		switch {
		case s.status == http.StatusCreated:
			sold++
			if s.discount > 0 {
				discounted++
				discountedOrder = s
				if s.discount != s.list-s.shown {
					t.Errorf("order %s discount %d, the cart showed %d", s.order, s.discount, s.list-s.shown)
				}
			} else if s.expected {
				t.Errorf("order %s placed at list price for a shopper who expected %d", s.order, s.shown)
			}
		case s.status == http.StatusConflict && s.code == "price_changed":
			if !s.expected {
				t.Errorf("price_changed for a shopper who sent no expected total")
			}
			if s.changedTotal != float64(s.list) {
				t.Errorf("price_changed details.total_cents = %v, want the list total %d", s.changedTotal, s.list)
			}
		default:
			t.Errorf("checkout answered %d %s", s.status, s.code)
		}
	}
	t.Logf("outcomes: %v", outcomes)
	if discounted != capped {
		t.Fatalf("%d units sold at the discount, want exactly the cap %d", discounted, capped)
	}
	if st := campaignOf(t, h, admin, camp.ID).Stats; st.DiscountedUnits != capped || st.Orders != capped {
		t.Fatalf("stats = %+v, want %d units in %d orders", st, capped, capped)
	}
	l := h.StockLevel(admin, sku)
	if l.Sold != sold || l.Reserved != 0 || l.Available != units-sold {
		t.Fatalf("stock = %+v, want %d sold, none reserved", l, sold)
	}
	for _, s := range all {
		if s.order == "" {
			continue
		}
		got := h.Do(shoptest.Request{Method: "GET", Path: "/api/v1/orders/" + s.order, Token: s.token})
		if got.Status != http.StatusOK || got.Map(t)["status"] != "confirmed" {
			t.Fatalf("order %s: %d %s", s.order, got.Status, got.Body)
		}
	}

	// A cancelled order gives its unit back to the cap.
	if r := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/orders/" + discountedOrder.order + "/cancel", Token: discountedOrder.token}); r.Status != http.StatusOK {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	if st := campaignOf(t, h, admin, camp.ID).Stats; st.DiscountedUnits != capped-1 || st.Orders != capped-1 {
		t.Fatalf("stats after a cancel = %+v, want %d", st, capped-1)
	}
}

// TestCampaignsSurviveARestart on SQLite, and on MariaDB with Redis.
func TestCampaignsSurviveARestart(t *testing.T) { campaignsSurviveARestart(t) }

func TestCampaignsSurviveARestartOnMariaDB(t *testing.T) {
	campaignsSurviveARestart(t, func(c *config.Dev) {
		c.MySQLDSN = dbtest.MySQLDSN(t)
		c.RedisAddr, c.RedisPrefix = dbtest.Redis(t)
	})
}

// campaignsSurviveARestart: statuses and counters are as before the restart, and a
// campaign whose end passed while the shop was down reads ended (and is listed so).
func campaignsSurviveARestart(t *testing.T, options ...shoptest.Option) {
	h := shoptest.Start(t, 1, options...)
	admin := h.Admin()
	skus := shoptest.SoldOutSKUs(t, 2)
	h.SetStock(admin, skus[0], 10)
	at := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(time.RFC3339) }
	body := func(ends time.Duration) map[string]any {
		return map[string]any{"name": "Kept", "percent_off": 10, "skus": []string{skus[0]},
			"starts_at": at(-time.Minute), "ends_at": at(ends)}
	}
	active := startCampaign(t, h, admin, body(time.Hour))
	paused := startCampaign(t, h, admin, body(time.Hour))
	if r := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/promos/" + paused.ID + "/pause", Token: admin}); r.Status != http.StatusOK {
		t.Fatalf("pause: %d %s", r.Status, r.Body)
	}
	var draft campaignView
	h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/promos", Token: admin, Body: body(time.Hour)}).JSON(t, &draft)

	// One order at the active campaign's discount.
	token, _ := h.Shopper()
	h.Do(shoptest.Request{Method: "PUT", Path: "/api/v1/cart/items/" + skus[0], Token: token, Body: map[string]int{"quantity": 2}})
	deadline := time.Now().Add(5 * time.Second)
	for h.Do(shoptest.Request{Method: "GET", Path: "/api/v1/cart", Token: token}).Map(t)["discount_cents"].(float64) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the cart shows no discount within 5 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/orders", Token: token,
		Headers: map[string]string{"Idempotency-Key": "kept"}, Body: shoptest.Address()}); r.Status != http.StatusCreated {
		t.Fatalf("checkout: %d %s", r.Status, r.Body)
	}
	// RFC 3339 in whole seconds: the campaign ends at the start of a second 2-3 s away.
	ending := startCampaign(t, h, admin, body(3*time.Second))
	before := map[string]campaignView{}
	for _, id := range []string{active.ID, paused.ID, draft.ID} {
		before[id] = campaignOf(t, h, admin, id)
	}
	if s := campaignOf(t, h, admin, ending.ID).Status; s != "active" {
		t.Fatalf("ending campaign before the restart: %s", s)
	}

	h.Stop()
	time.Sleep(4 * time.Second) // the ending campaign's end passes while the shop is down
	h.Restart()

	for id, want := range before {
		if got := campaignOf(t, h, admin, id); got != want {
			t.Errorf("campaign %s after the restart = %+v, was %+v", id, got, want)
		}
	}
	if got := before[active.ID]; got.Status != "active" || got.Stats.DiscountedUnits != 2 || got.Stats.Orders != 1 {
		t.Errorf("active campaign before the restart = %+v", got)
	}
	if s := campaignOf(t, h, admin, ending.ID).Status; s != "ended" {
		t.Errorf("campaign whose end passed while the shop was down reads %s, want ended", s)
	}
	var ended struct {
		Items []campaignView `json:"items"`
	}
	h.Do(shoptest.Request{Method: "GET", Path: "/api/v1/promos?status=ended", Token: admin}).JSON(t, &ended)
	if len(ended.Items) != 1 || ended.Items[0].ID != ending.ID {
		t.Errorf("ended campaigns listed = %+v", ended.Items)
	}
}
