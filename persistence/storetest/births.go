package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"phoneshop/actors/inventory"
	"phoneshop/actors/order"
	"phoneshop/actors/snapshot"
	"phoneshop/notify/outbox"
	"phoneshop/persistence/sqlstore"
)

// Births: an order born in its sale (inventory.LedgerChange.Born) is written by
// the inventory's write, in its transaction: the order's first snapshot, its
// listing row and its order.confirmed event with the sale, all or nothing. A born
// order whose snapshot is there already fences the whole write off, and leaves
// nothing of it; in a group-commit batch it fails that write alone.
func Births(t *testing.T, open Open) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	born := func(t *testing.T, id string, qty int64) []byte {
		t.Helper()
		o := &order.Order{}
		if _, err := o.Place(id, "acc_born", "hash-"+id, "EUR", []order.Line{{SKU: "sku-born", Name: "Phone", Quantity: qty, UnitPriceCents: 100}},
			order.Address{Name: "A", Line1: "L", City: "C", PostalCode: "1", Country: "DE"}, nil, 3, now); err != nil {
			t.Fatal(err)
		}
		o.Status = order.StatusConfirmed
		state, err := order.Encode(o)
		if err != nil {
			t.Fatal(err)
		}
		return state
	}
	sale := func(ids ...string) inventory.LedgerChange {
		c := inventory.LedgerChange{Added: map[string]inventory.Sale{}, Born: map[string][]byte{}}
		for _, id := range ids {
			c.Added[id] = inventory.Sale{Quantity: 2, At: now}
			c.Born[id] = nil // filled by the caller
		}
		return c
	}

	t.Run("the_order_is_written_with_its_sale", func(t *testing.T) {
		s := open(t)
		change := sale("ord_born1")
		change.Born["ord_born1"] = born(t, "ord_born1", 2)
		if err := s.SaveInventory(ctx, "sku-born", 0, []byte("v1"), inventory.Level{Sold: 2, Received: 2}, change); err != nil {
			t.Fatal(err)
		}
		snap, err := s.LoadOrder(ctx, "ord_born1")
		if err != nil || snap.Version != 1 || string(snap.State) != string(change.Born["ord_born1"]) {
			t.Fatalf("born order's snapshot: v%d, %v", snap.Version, err)
		}
		o, err := s.OrderByID(ctx, "ord_born1")
		if err != nil || o == nil || o.Status != order.StatusConfirmed || o.AccountID != "acc_born" || o.CartRevision != 3 {
			t.Fatalf("born order's row: %+v, %v", o, err)
		}
		if _, found, err := s.InventorySale(ctx, "sku-born", "ord_born1"); err != nil || !found {
			t.Fatalf("the sale: found %v, %v", found, err)
		}
		events, err := s.UnpublishedEvents(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != 1 || events[0].ID != outbox.ID(outbox.OrderConfirmed, "ord_born1") {
			t.Fatalf("events: %+v, want the order's order.confirmed", events)
		}
	})

	t.Run("an_order_there_already_fences_the_write_off_whole", func(t *testing.T) {
		s := open(t)
		if err := s.SaveOrder(ctx, 0, []byte("saga"), order.Row{ID: "ord_taken", AccountID: "acc_born", Status: order.StatusCommitting,
			CreatedAt: now, UpdatedAt: now}, nil); err != nil {
			t.Fatal(err)
		}
		change := sale("ord_taken")
		change.Born["ord_taken"] = born(t, "ord_taken", 2)
		err := s.SaveInventory(ctx, "sku-born", 0, []byte("v1"), inventory.Level{Sold: 2, Received: 2}, change)
		if !errors.Is(err, snapshot.ErrStale) {
			t.Fatalf("err = %v, want ErrStale", err)
		}
		if snap, err := s.LoadInventory(ctx, "sku-born"); err != nil || snap.Version != 0 {
			t.Fatalf("the inventory's snapshot: v%d, %v; want none", snap.Version, err)
		}
		if _, found, err := s.InventorySale(ctx, "sku-born", "ord_taken"); err != nil || found {
			t.Fatalf("the sale: found %v, %v; want none", found, err)
		}
		if snap, err := s.LoadOrder(ctx, "ord_taken"); err != nil || snap.Version != 1 || string(snap.State) != "saga" {
			t.Fatalf("the order there before: v%d %q, %v", snap.Version, snap.State, err)
		}
	})

	t.Run("in_a_batch_a_fenced_birth_fails_its_write_alone", func(t *testing.T) {
		s := open(t)
		var mu sync.Mutex
		var batches []sqlstore.Batch
		s.EnableGroupCommit(sqlstore.GroupCommit{MaxWrites: 64, MaxWait: 300 * time.Millisecond, Committers: 1,
			Observe: func(b sqlstore.Batch) { mu.Lock(); batches = append(batches, b); mu.Unlock() }})
		if err := s.SaveOrder(ctx, 0, []byte("saga"), order.Row{ID: "ord_b1", AccountID: "acc_born", Status: order.StatusCommitting,
			CreatedAt: now, UpdatedAt: now}, nil); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		batches = nil
		mu.Unlock()
		errs := make([]error, 4)
		var wg sync.WaitGroup
		for i := range errs {
			id := fmt.Sprintf("ord_b%d", i)
			sku := fmt.Sprintf("sku-b%d", i)
			wg.Go(func() {
				change := sale(id)
				change.Born[id] = born(t, id, 2)
				errs[i] = s.SaveInventory(ctx, sku, 0, []byte("v1"), inventory.Level{Sold: 2, Received: 2}, change)
			})
		}
		wg.Wait()
		for i, err := range errs {
			id, sku := fmt.Sprintf("ord_b%d", i), fmt.Sprintf("sku-b%d", i)
			_, sold, serr := s.InventorySale(ctx, sku, id)
			snap, lerr := s.LoadOrder(ctx, id)
			if serr != nil || lerr != nil {
				t.Fatal(serr, lerr)
			}
			if i == 1 {
				if !errors.Is(err, snapshot.ErrStale) || sold || string(snap.State) != "saga" {
					t.Fatalf("the write meeting an order there: err %v, sold %v, order %q", err, sold, snap.State)
				}
				if inv, err := s.LoadInventory(ctx, sku); err != nil || inv.Version != 0 {
					t.Fatalf("the fenced write's inventory snapshot: v%d, %v; want none", inv.Version, err)
				}
				continue
			}
			if err != nil || !sold || snap.Version != 1 || string(snap.State) == "saga" {
				t.Fatalf("write %d: err %v, sold %v, order v%d", i, err, sold, snap.Version)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		writes := 0
		for _, b := range batches {
			writes += b.Writes
		}
		if writes != len(errs) {
			t.Fatalf("batches %+v: %d writes, want %d", batches, writes, len(errs))
		}
	})
}
