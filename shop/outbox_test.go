package shop_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"phoneshop/actors/order"
	"phoneshop/internal/shoptest"
	"phoneshop/notify/outbox"
)

// TestOutboxHoldsEachFactOnce: orders confirmed, cancelled and shipped, and a
// campaign launched, paused and launched again, leave exactly one event per fact in
// the outbox, each written with the grain's snapshot (the mail pipeline publishes
// from there).
func TestOutboxHoldsEachFactOnce(t *testing.T) {
	h := shoptest.Start(t, 1)
	admin := h.Admin()
	sku := shoptest.SoldOutSKUs(t, 1)[0]
	h.SetStock(admin, sku, 10)
	token, _ := h.Shopper()
	buy := func(key string) string {
		t.Helper()
		h.Do(shoptest.Request{Method: "PUT", Path: "/api/v1/cart/items/" + sku, Token: token, Body: map[string]int{"quantity": 1}})
		r := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/orders", Token: token,
			Headers: map[string]string{"Idempotency-Key": key}, Body: shoptest.Address()})
		if r.Status != http.StatusCreated {
			t.Fatalf("checkout: %d %s", r.Status, r.Body)
		}
		return r.Map(t)["id"].(string)
	}
	shipped, cancelled := buy("shipped"), buy("cancelled")
	// A retried checkout replays the order: no second event.
	if r := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/orders", Token: token,
		Headers: map[string]string{"Idempotency-Key": "shipped"}, Body: shoptest.Address()}); r.Status != http.StatusOK {
		t.Fatalf("replay: %d %s", r.Status, r.Body)
	}
	for _, step := range []struct{ path, token string }{
		{"/api/v1/ops/orders/" + shipped + "/ship", admin},
		{"/api/v1/ops/orders/" + shipped + "/ship", admin}, // again: no second event
		{"/api/v1/orders/" + cancelled + "/cancel", token},
		{"/api/v1/orders/" + cancelled + "/cancel", token},
	} {
		if r := h.Do(shoptest.Request{Method: "POST", Path: step.path, Token: step.token}); r.Status != http.StatusOK {
			t.Fatalf("%s: %d %s", step.path, r.Status, r.Body)
		}
	}
	camp := startCampaign(t, h, admin, map[string]any{"name": "Once", "percent_off": 10, "skus": []string{sku},
		"starts_at": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339),
		"ends_at":   time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	for _, move := range []string{"pause", "launch"} {
		if r := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/promos/" + camp.ID + "/" + move, Token: admin}); r.Status != http.StatusOK {
			t.Fatalf("%s: %d %s", move, r.Status, r.Body)
		}
	}

	events, err := h.Shop.Store.UnpublishedEvents(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range events {
		got[e.ID] = e.RoutingKey
	}
	want := map[string]string{
		outbox.ID(outbox.OrderConfirmed, shipped):   outbox.OrderConfirmed,
		outbox.ID(outbox.OrderShipped, shipped):     outbox.OrderShipped,
		outbox.ID(outbox.OrderConfirmed, cancelled): outbox.OrderConfirmed,
		outbox.ID(outbox.OrderCancelled, cancelled): outbox.OrderCancelled,
		outbox.ID(outbox.PromoActivated, camp.ID):   outbox.PromoActivated,
	}
	if diff := cmp.Diff(want, got); diff != "" || len(events) != len(want) {
		t.Fatalf("outbox (-want +got):\n%s\n(%d rows)", diff, len(events))
	}
	// An order's event carries what its e-mail needs, as it was then.
	for _, e := range events {
		if e.ID != outbox.ID(outbox.OrderShipped, shipped) {
			continue
		}
		var p order.EventPayload
		if err := json.Unmarshal(e.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if p.OrderID != shipped || p.Status != "shipped" || len(p.Lines) != 1 || p.Lines[0].SKU != sku ||
			p.TotalCents != p.SubtotalCents-p.DiscountCents || p.ShippingAddress.Country != "US" {
			t.Errorf("shipped event payload = %+v", p)
		}
	}
}
