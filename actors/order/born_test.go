package order_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"phoneshop/actors/order"
	"phoneshop/cluster/member"
	"phoneshop/protos/cartpb"
	"phoneshop/protos/orderpb"
	"phoneshop/protos/reasonpb"
)

// bornInSale lets the harness's carts place orders of one SKU born in their sale.
func bornInSale(d *member.Deps) { d.Cart.BornInSale = true }

var bornAddr = &orderpb.Address{Name: "Ann", Line1: "1 Main St", City: "Springfield", PostalCode: "12345", Country: "US"}

// stored reads an order from the store alone.
func (h *sagaHarness) stored(t *testing.T, id string) (*order.Order, int64) {
	t.Helper()
	snap, err := h.db.LoadOrder(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	o, err := order.Decode(snap.State)
	if err != nil {
		t.Fatal(err)
	}
	return o, snap.Version
}

// TestAOneSKUCheckoutIsBornInItsSale: a cart of one SKU is sold and its order
// stored, confirmed, by the inventory's write alone: no order grain runs and no
// order save is made. The order's grain finds it in the store afterwards: a
// replay of the checkout is answered as one, and a cancel returns the units.
func TestAOneSKUCheckoutIsBornInItsSale(t *testing.T) {
	h := startSaga(t, bornInSale)
	h.stocked(t, "sku-1", 10)
	shopper := cartpb.GetCartGrainClient(h.c, "acc-1")
	if _, err := shopper.SetLine(&cartpb.SetLineRequest{Sku: "sku-1", Quantity: 2}, opt); err != nil {
		t.Fatal(err)
	}
	id := order.ID("acc-1", "k-born")
	checkout := &cartpb.CheckoutRequest{OrderId: id, RequestHash: "h", ShippingAddress: bornAddr}
	view, err := shopper.Checkout(checkout, opt)
	if err != nil || view.Order.Status != string(order.StatusConfirmed) || view.Replayed {
		t.Fatalf("checkout = %v, %v; want a new confirmed order", view, err)
	}
	if _, saved := h.deadlines.of("order"); saved {
		t.Fatal("the order was saved by an order grain; want it written by the sale alone")
	}
	if n := h.c.GetClusterKind(order.KindName).Count(); n != 0 {
		t.Fatalf("%d order grains active; want none", n)
	}
	o, version := h.stored(t, id)
	if version != 1 || o.Status != order.StatusConfirmed || len(o.Lines) != 1 || o.Lines[0].Quantity != 2 || o.CartRevision == 0 {
		t.Fatalf("stored order v%d: %+v", version, o)
	}
	if l := h.level(t, "sku-1"); l.Available != 8 || l.Sold != 2 || l.Reserved != 0 {
		t.Fatalf("level = %v; want 8 available, 2 sold", l)
	}
	if c, err := shopper.Get(&cartpb.GetCartRequest{}, opt); err != nil || len(c.Lines) != 0 {
		t.Fatalf("cart after the checkout = %v, %v; want empty", c, err)
	}

	// The same checkout again: the order's grain, loading it from the store,
	// answers a replay; nothing more is sold.
	view, err = shopper.Checkout(checkout, opt)
	if err != nil || !view.Replayed || view.Order.Status != string(order.StatusConfirmed) {
		t.Fatalf("replayed checkout = %v, %v; want the order, replayed", view, err)
	}
	if l := h.level(t, "sku-1"); l.Sold != 2 {
		t.Fatalf("level after the replay = %v; want 2 sold", l)
	}
	// Same key, another cart: a mismatch, not a second order.
	if _, err := shopper.SetLine(&cartpb.SetLineRequest{Sku: "sku-1", Quantity: 1}, opt); err != nil {
		t.Fatal(err)
	}
	if _, err := shopper.Checkout(&cartpb.CheckoutRequest{OrderId: id, RequestHash: "other", ShippingAddress: bornAddr}, opt); !reasonpb.IsIdempotencyMismatch(err) {
		t.Fatalf("the key again with another request = %v; want reason IDEMPOTENCY_MISMATCH", err)
	}
	if _, err := orderpb.GetOrderGrainClient(h.c, id).Cancel(&orderpb.OrderCommand{AccountId: "acc-1"}, opt); err != nil {
		t.Fatal(err)
	}
	h.waitStored(t, id, order.StatusCancelled)
	if l := h.level(t, "sku-1"); l.Available != 10 || l.Sold != 0 {
		t.Fatalf("level after the cancel = %v; want all 10 back", l)
	}
}

// TestABornOrderWhoseWriteFailsIsNotPlaced: when the write that would sell the
// units fails, neither the sale nor the order exists, the shopper is told to
// retry, and the retry under the same key places the order once.
func TestABornOrderWhoseWriteFailsIsNotPlaced(t *testing.T) {
	h := startSaga(t, bornInSale)
	h.stocked(t, "sku-1", 10)
	shopper := cartpb.GetCartGrainClient(h.c, "acc-1")
	if _, err := shopper.SetLine(&cartpb.SetLineRequest{Sku: "sku-1", Quantity: 3}, opt); err != nil {
		t.Fatal(err)
	}
	h.stock.refuseCommits.Store(1)
	id := order.ID("acc-1", "k-failed")
	checkout := &cartpb.CheckoutRequest{OrderId: id, RequestHash: "h", ShippingAddress: bornAddr}
	if _, err := shopper.Checkout(checkout, opt); !reasonpb.IsUnavailable(err) {
		t.Fatalf("checkout whose write fails = %v; want reason UNAVAILABLE", err)
	}
	if _, version := h.stored(t, id); version != 0 {
		t.Fatalf("order stored at v%d after its sale's write failed; want none", version)
	}
	if l := h.level(t, "sku-1"); l.Available != 10 || l.Sold != 0 {
		t.Fatalf("level after the failed write = %v; want nothing sold", l)
	}
	if c, err := shopper.Get(&cartpb.GetCartRequest{}, opt); err != nil || len(c.Lines) != 1 {
		t.Fatalf("cart after the failed checkout = %v, %v; want its line kept", c, err)
	}
	view, err := shopper.Checkout(checkout, opt)
	if err != nil || view.Order.Status != string(order.StatusConfirmed) {
		t.Fatalf("retried checkout = %v, %v; want confirmed", view, err)
	}
	if l := h.level(t, "sku-1"); l.Available != 7 || l.Sold != 3 {
		t.Fatalf("level after the retry = %v; want 3 sold once", l)
	}
}

// TestABornOrderOutOfStockIsNotWritten: a sale that finds too few units is
// refused as the saga refuses it, naming the SKU, and nothing is stored.
func TestABornOrderOutOfStockIsNotWritten(t *testing.T) {
	h := startSaga(t, bornInSale)
	h.stocked(t, "sku-1", 1)
	shopper := cartpb.GetCartGrainClient(h.c, "acc-1")
	if _, err := shopper.SetLine(&cartpb.SetLineRequest{Sku: "sku-1", Quantity: 2}, opt); err != nil {
		t.Fatal(err)
	}
	id := order.ID("acc-1", "k-short")
	_, err := shopper.Checkout(&cartpb.CheckoutRequest{OrderId: id, RequestHash: "h", ShippingAddress: bornAddr}, opt)
	if !reasonpb.IsOutOfStock(err) {
		t.Fatalf("checkout of 2 with 1 left = %v; want reason OUT_OF_STOCK", err)
	}
	if _, version := h.stored(t, id); version != 0 {
		t.Fatalf("refused order stored at v%d; want none", version)
	}
	if l := h.level(t, "sku-1"); l.Available != 1 || l.Sold != 0 {
		t.Fatalf("level = %v; want the unit still there", l)
	}
}

// TestRoundsAreCounted: the durable rounds a confirmed checkout waited for are
// told per path: one for an order born in its sale; for the saga, its
// "committing", each SKU's sale and its "confirmed", one after another.
func TestRoundsAreCounted(t *testing.T) {
	var mu sync.Mutex
	rounds := map[string][]int{}
	count := func(path string, n int) {
		mu.Lock()
		defer mu.Unlock()
		rounds[path] = append(rounds[path], n)
	}
	h := startSaga(t, bornInSale, func(d *member.Deps) { d.Cart.Rounds, d.Order.Rounds = count, count })
	h.stocked(t, "sku-1", 10)
	h.stocked(t, "sku-2", 10)
	shopper := cartpb.GetCartGrainClient(h.c, "acc-1")
	checkout := func(key string, skus ...string) {
		t.Helper()
		for _, sku := range skus {
			if _, err := shopper.SetLine(&cartpb.SetLineRequest{Sku: sku, Quantity: 1}, opt); err != nil {
				t.Fatal(err)
			}
		}
		view, err := shopper.Checkout(&cartpb.CheckoutRequest{OrderId: order.ID("acc-1", key), RequestHash: key, ShippingAddress: bornAddr}, opt)
		if err != nil || view.Order.Status != string(order.StatusConfirmed) {
			t.Fatalf("checkout %s = %v, %v", key, view, err)
		}
	}
	checkout("one", "sku-1")
	checkout("two", "sku-1", "sku-2")
	mu.Lock()
	defer mu.Unlock()
	if want := map[string][]int{"born": {1}, "saga": {4}}; fmt.Sprint(rounds) != fmt.Sprint(want) {
		t.Fatalf("rounds = %v, want %v", rounds, want)
	}
}
