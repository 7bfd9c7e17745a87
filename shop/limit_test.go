package shop_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster"

	"phoneshop/actors/order"
	"phoneshop/actors/promo"
	"phoneshop/internal/shoptest"
	"phoneshop/protos/orderpb"
	"phoneshop/protos/reasonpb"
)

// TestLimitPerCustomerRace: the races of limitPerCustomerRace on one member,
// under the race detector.
func TestLimitPerCustomerRace(t *testing.T) { limitPerCustomerRace(t, 1) }

// TestClusterLimitPerCustomerRace is the same on 3 members: the account's cart,
// its orders, the SKU and the campaign live on different members.
func TestClusterLimitPerCustomerRace(t *testing.T) {
	shoptest.MultiMember(t)
	limitPerCustomerRace(t, 3)
}

// limitPerCustomerRace: one account's orders race for a campaign with a limit per
// customer, never buy more units at its discount than the limit, and every order
// over it is refused with nothing left reserved.
//
// First 200 orders placed at the account's order grains at once, spread over the
// members (the cart grain answers one checkout of an account at a time, so this
// is where orders of one account truly race): the campaign grants exactly the
// limit, refuses every other order with LIMIT_EXCEEDED naming the campaign and
// the units left, and nothing stays reserved. Then 200 checkouts of the same
// account through the API at once, each refilling the cart first: each is 201,
// 409 limit_exceeded (the cart kept), or 409 conflict (another checkout emptied
// the cart in between), and none is discounted past the limit. A cancel gives
// the units back.
func limitPerCustomerRace(t *testing.T, members int) {
	const racers, limit, stock, percent = 200, 7, 500, 25
	h := shoptest.Start(t, members)
	admin := h.Admin()
	sku := shoptest.SoldOutSKUs(t, 1)[0]
	h.SetStock(admin, sku, stock)
	camp := startCampaign(t, h, admin, map[string]any{"name": "Limited", "percent_off": percent, "skus": []string{sku},
		"starts_at": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339),
		"ends_at":   time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "max_units_per_customer": limit})
	token, _ := h.Shopper()
	var me struct {
		ID string `json:"id"`
	}
	h.Do(shoptest.Request{Method: "GET", Path: "/api/v1/me", Token: token}).JSON(t, &me)
	variants, err := h.Shop.Catalog.Variants(context.Background(), []string{sku})
	if err != nil {
		t.Fatal(err)
	}
	v := variants[sku]

	// --- 1: orders of one account racing at their order grains ---
	place := func(i int, units int64) (*orderpb.OrderView, error) {
		id := order.ID(me.ID, fmt.Sprintf("race-%d", i))
		c := h.Shop.Members[i%members].Cluster()
		return orderpb.GetOrderGrainClient(c, id).Place(&orderpb.PlaceRequest{AccountId: me.ID, RequestHash: "race",
			Currency: "USD", ShippingAddress: &orderpb.Address{Name: "Ann", Line1: "1 Main St", City: "X", PostalCode: "1", Country: "US"},
			Lines: []*orderpb.OrderLine{{Sku: sku, PhoneId: v.PhoneID, Name: v.DisplayName(), Quantity: units, UnitPriceCents: v.PriceCents,
				DiscountCents: units * promo.UnitDiscount(v.PriceCents, percent), PromoId: camp.ID}}},
			cluster.WithTimeout(30*time.Second))
	}
	unitsOf := func(i int) int64 { return 1 + int64(i%4/3) } // every fourth order takes 2
	var mu sync.Mutex
	var granted int64
	var refusals, placed int
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			view, err := place(i, unitsOf(i))
			mu.Lock()
			defer mu.Unlock()
			var answered *cluster.GrainErrorResponse
			switch {
			case err == nil && view.Order.Status == "confirmed":
				granted += unitsOf(i)
				placed++
			case reasonpb.IsLimitExceeded(err) && errors.As(err, &answered):
				refusals++
				left, perr := strconv.ParseInt(answered.Metadata["remaining"], 10, 64)
				if answered.Metadata["promo_id"] != camp.ID || perr != nil || left < 0 || left >= unitsOf(i) {
					t.Errorf("order %d of %d units refused with %v; want the campaign and fewer units left than asked", i, unitsOf(i), answered.Metadata)
				}
			default:
				t.Errorf("order %d: %v, %v", i, view, err)
			}
		})
	}
	wg.Wait()
	t.Logf("%d orders of one account on %d members: %d confirmed (%d units), %d refused over the limit", racers, members, placed, granted, refusals)
	if granted > limit || granted < limit-1 {
		t.Fatalf("%d units granted to one account; want the limit %d (or one less: a 2-unit order cannot take the last one)", granted, limit)
	}
	if l := h.StockLevel(admin, sku); l.Reserved != 0 || l.Sold != granted {
		t.Fatalf("stock after the race = %+v; want %d sold, nothing reserved", l, granted)
	}
	// One unit more if one is left, then no more at all.
	if granted < limit {
		if view, err := place(racers, 1); err != nil || view.Order.Status != "confirmed" {
			t.Fatalf("the last unit: %v, %v", view, err)
		}
		granted++
	}
	if _, err := place(racers+1, 1); !reasonpb.IsLimitExceeded(err) {
		t.Fatalf("an order at the limit: %v; want LIMIT_EXCEEDED", err)
	}

	// --- 2: checkouts of the same account through the API, at once ---
	if st := campaignOf(t, h, admin, camp.ID).Stats; st.DiscountedUnits != limit {
		t.Fatalf("campaign stats = %+v, want %d units", st, limit)
	}
	// The cart prices from the live campaigns, which every process reads once a
	// second: the checkouts start once the cart shows the campaign and its limit.
	h.Do(shoptest.Request{Method: "PUT", Path: "/api/v1/cart/items/" + sku, Token: token, Body: map[string]int{"quantity": 1}})
	deadline := time.Now().Add(5 * time.Second)
	for {
		var c struct {
			Items []struct {
				PromoID             string `json:"promo_id"`
				MaxUnitsPerCustomer int64  `json:"max_units_per_customer"`
			} `json:"items"`
		}
		h.Do(shoptest.Request{Method: "GET", Path: "/api/v1/cart", Token: token}).JSON(t, &c)
		if len(c.Items) == 1 && c.Items[0].PromoID == camp.ID && c.Items[0].MaxUnitsPerCustomer == limit {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cart does not show the campaign within 5 s: %+v", c.Items)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A cancel gives the account 1 or 2 units back: that many checkouts of one
	// unit may go through, and no more.
	var cancelled string
	var back int64
	for i := range racers {
		id := order.ID(me.ID, fmt.Sprintf("race-%d", i))
		r := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/orders/" + id + "/cancel", Token: token})
		if r.Status == http.StatusOK {
			cancelled, back = id, unitsOf(i)
			break
		}
	}
	if cancelled == "" {
		t.Fatal("no confirmed order to cancel")
	}
	codes := map[string]int{}
	var discounted int64
	for i := range racers {
		wg.Go(func() {
			r, err := h.DoPolitely(shoptest.Request{Method: "PUT", Path: "/api/v1/cart/items/" + sku, Token: token,
				Body: map[string]int{"quantity": 1}})
			if err != nil || r.Status != http.StatusOK {
				t.Errorf("fill the cart: %v %d %s", err, r.Status, r.Body)
				return
			}
			r, err = h.DoPolitely(shoptest.Request{Method: "POST", Path: "/api/v1/orders", Token: token,
				Headers: map[string]string{"Idempotency-Key": fmt.Sprintf("http-%d", i)}, Body: shoptest.Address()})
			if err != nil {
				t.Errorf("checkout: %v", err)
				return
			}
			var body struct {
				DiscountCents int64 `json:"discount_cents"`
				Error         struct {
					Details struct {
						PromoID   string `json:"promo_id"`
						Remaining *int64 `json:"remaining"`
					} `json:"details"`
				} `json:"error"`
			}
			r.JSON(t, &body)
			mu.Lock()
			defer mu.Unlock()
			codes[fmt.Sprintf("%d %s", r.Status, r.ErrorCode())]++
			switch {
			case r.Status == http.StatusCreated && body.DiscountCents > 0:
				discounted++
			case r.Status == http.StatusConflict && r.ErrorCode() == "limit_exceeded":
				if d := body.Error.Details; d.PromoID != camp.ID || d.Remaining == nil || *d.Remaining != 0 {
					t.Errorf("limit_exceeded details = %+v; want the campaign and 0 units left", d)
				}
			case r.Status == http.StatusConflict && r.ErrorCode() == "conflict":
				// the cart was emptied by another checkout between this one's fill and its checkout
			default:
				t.Errorf("checkout answered %d %s", r.Status, r.Body)
			}
		})
	}
	wg.Wait()
	t.Logf("%d checkouts of one account through the API: %v", racers, codes)
	if discounted > back {
		t.Fatalf("%d checkouts discounted after a cancel gave back %d units", discounted, back)
	}
	if l := h.StockLevel(admin, sku); l.Reserved != 0 || l.Sold != limit-back+discounted {
		t.Fatalf("stock after the checkouts = %+v; want %d sold, nothing reserved", l, limit-back+discounted)
	}
	// Whatever the race left unbought is still there, and no more: the account
	// ends at the limit exactly.
	for i := 0; ; i++ {
		h.Do(shoptest.Request{Method: "PUT", Path: "/api/v1/cart/items/" + sku, Token: token, Body: map[string]int{"quantity": 1}})
		r := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/orders", Token: token,
			Headers: map[string]string{"Idempotency-Key": fmt.Sprintf("after-%d", i)}, Body: shoptest.Address()})
		if r.Status == http.StatusConflict && r.ErrorCode() == "limit_exceeded" {
			break
		}
		if r.Status != http.StatusCreated || i == limit {
			t.Fatalf("checkout %d after the race: %d %s", i, r.Status, r.Body)
		}
		discounted++
	}
	if discounted != back {
		t.Fatalf("%d units bought after the cancel gave back %d", discounted, back)
	}
	if st := campaignOf(t, h, admin, camp.ID).Stats; st.DiscountedUnits != limit {
		t.Fatalf("campaign stats at the end = %+v, want %d units", st, limit)
	}
	if l := h.StockLevel(admin, sku); l.Reserved != 0 || l.Sold != limit {
		t.Fatalf("stock at the end = %+v; want %d sold, nothing reserved", l, limit)
	}
	var c struct {
		Items []struct {
			Quantity int64 `json:"quantity"`
		} `json:"items"`
	}
	h.Do(shoptest.Request{Method: "GET", Path: "/api/v1/cart", Token: token}).JSON(t, &c)
	if len(c.Items) != 1 || c.Items[0].Quantity != 1 {
		t.Fatalf("the cart of the refused checkout = %+v; want it kept", c.Items)
	}
}
