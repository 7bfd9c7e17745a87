package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"phoneshop/actors/inventory"
	"phoneshop/actors/promo"
	"phoneshop/actors/snapshot"
	"phoneshop/persistence/sqlstore"
)

// t0Ledger is the time the ledger contracts sell and grant at.
var t0Ledger = time.Date(2026, 11, 27, 18, 0, 0, 0, time.UTC)

// Ledgers: the rows beside the snapshots that grains keep only in part in memory.
// A SKU's sales and a campaign's grants are read from a time on (the recent ones
// an activation loads) or one order at a time (an older one a command names);
// receipts and accounts' units one at a time. Each is written by the snapshot
// write that makes it true, fenced with it, and a batch of group commit writes
// them with one statement per table.
func Ledgers(t *testing.T, open Open) {
	ctx := context.Background()

	t.Run("sales_are_read_from_a_time_on_or_one_order_at_a_time", func(t *testing.T) {
		s := open(t)
		lv := inventory.Level{}
		change := inventory.LedgerChange{Added: map[string]inventory.Sale{
			// Stored before sales had times: the epoch's start.
			"o-legacy": {Quantity: 1, At: time.UnixMicro(0).UTC()},
			"o-old":    {Quantity: 2, At: t0Ledger.Add(-time.Hour)},
			"o-edge":   {Quantity: 3, At: t0Ledger.Add(-inventory.LedgerWindow)},
			"o-new":    {Quantity: 4, At: t0Ledger},
		}}
		if err := s.SaveInventory(ctx, "sku-w", 0, []byte("v1"), lv, change); err != nil {
			t.Fatal(err)
		}
		recent, err := s.InventorySales(ctx, "sku-w", t0Ledger.Add(-inventory.LedgerWindow))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]inventory.Sale{"o-edge": change.Added["o-edge"], "o-new": change.Added["o-new"]}
		if diff := cmp.Diff(want, recent); diff != "" {
			t.Fatalf("sales since the window began (-want +got):\n%s", diff)
		}
		all, err := s.InventorySales(ctx, "sku-w", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(change.Added, all); diff != "" {
			t.Fatalf("every sale (-want +got):\n%s", diff)
		}
		for order, want := range change.Added {
			got, found, err := s.InventorySale(ctx, "sku-w", order)
			if err != nil || !found || got != want {
				t.Fatalf("sale of %s = %+v, %v, %v; want %+v", order, got, found, err, want)
			}
		}
		if got, found, err := s.InventorySale(ctx, "sku-w", "o-never"); err != nil || found {
			t.Fatalf("sale of an order that bought nothing = %+v, %v, %v; want none", got, found, err)
		}
		if err := s.SaveInventory(ctx, "sku-w", 1, []byte("v2"), lv, inventory.LedgerChange{Returned: []string{"o-old"}}); err != nil {
			t.Fatal(err)
		}
		if _, found, err := s.InventorySale(ctx, "sku-w", "o-old"); err != nil || found {
			t.Fatalf("a returned sale is still found (%v)", err)
		}
	})

	t.Run("receipts_are_kept_for_ever_and_a_stored_one_is_left_as_it_is", func(t *testing.T) {
		s := open(t)
		lv := inventory.Level{}
		first := inventory.LedgerChange{Receipts: []inventory.Receipt{{RequestID: "receipt-key:k1", Quantity: 5}, {RequestID: "receipt:legacy"}}}
		if err := s.SaveInventory(ctx, "sku-r", 0, []byte("v1"), lv, first); err != nil {
			t.Fatal(err)
		}
		// A fenced write stores none of its receipts.
		stale := inventory.LedgerChange{Receipts: []inventory.Receipt{{RequestID: "receipt-key:stale", Quantity: 1}}}
		if err := s.SaveInventory(ctx, "sku-r", 0, []byte("again"), lv, stale); !errors.Is(err, snapshot.ErrStale) {
			t.Fatalf("a second first write: %v, want ErrStale", err)
		}
		// A write that carries a stored receipt again (an item loaded from a
		// snapshot of a release that kept receipts only there) leaves it as it is.
		again := inventory.LedgerChange{Receipts: []inventory.Receipt{{RequestID: "receipt-key:k1", Quantity: 9}, {RequestID: "receipt-key:k2", Quantity: 2}}}
		if err := s.SaveInventory(ctx, "sku-r", 1, []byte("v2"), lv, again); err != nil {
			t.Fatal(err)
		}
		for id, want := range map[string]int64{"receipt-key:k1": 5, "receipt:legacy": 0, "receipt-key:k2": 2} {
			r, found, err := s.InventoryReceipt(ctx, "sku-r", id)
			if err != nil || !found || r != (inventory.Receipt{RequestID: id, Quantity: want}) {
				t.Fatalf("receipt %s = %+v, %v, %v; want %d units", id, r, found, err, want)
			}
		}
		for _, id := range []string{"receipt-key:stale", "receipt-key:never"} {
			if r, found, err := s.InventoryReceipt(ctx, "sku-r", id); err != nil || found {
				t.Fatalf("receipt %s = %+v, %v, %v; want none", id, r, found, err)
			}
		}
		// Receipts belong to their SKU.
		if _, found, err := s.InventoryReceipt(ctx, "sku-other", "receipt-key:k1"); err != nil || found {
			t.Fatalf("another SKU's receipt found (%v)", err)
		}
	})

	t.Run("grants_and_customers_are_read_one_at_a_time_and_fenced", func(t *testing.T) {
		s := open(t)
		l := promo.Listing{Snapshot: promo.Snapshot{ID: "promo_l", Stage: "launched", Spec: promo.Spec{Name: "Limited", PercentOff: 10,
			SKUs: []string{"sku-1"}, StartsAt: t0Ledger.Add(-time.Hour), EndsAt: t0Ledger.Add(time.Hour), MaxUnitsPerCustomer: 2}},
			CreatedAt: t0Ledger, UpdatedAt: t0Ledger}
		first := promo.GrantsChange{
			Added: map[string]promo.Grant{
				"ord_old": {Units: 1, AccountID: "acc_a", At: t0Ledger.Add(-time.Hour)},
				"ord_new": {Units: 1, AccountID: "acc_a", At: t0Ledger},
				"ord_b":   {Units: 2, AccountID: "acc_b", At: t0Ledger},
			},
			Customers: map[string]int64{"acc_a": 2, "acc_b": 2},
		}
		if err := s.SavePromo(ctx, 0, []byte("v1"), l, first, nil); err != nil {
			t.Fatal(err)
		}
		recent, err := s.PromoGrants(ctx, "promo_l", t0Ledger.Add(-promo.LedgerWindow))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]promo.Grant{"ord_new": first.Added["ord_new"], "ord_b": first.Added["ord_b"]}
		if diff := cmp.Diff(want, recent); diff != "" {
			t.Fatalf("grants since the window began (-want +got):\n%s", diff)
		}
		if g, found, err := s.PromoGrant(ctx, "promo_l", "ord_old"); err != nil || !found || g != first.Added["ord_old"] {
			t.Fatalf("grant of ord_old = %+v, %v, %v", g, found, err)
		}
		if _, found, err := s.PromoGrant(ctx, "promo_l", "ord_never"); err != nil || found {
			t.Fatalf("grant of an order that holds none found (%v)", err)
		}
		// The account's units are written whole by the write that changes them;
		// a fenced write changes none of them.
		second := promo.GrantsChange{Returned: []string{"ord_old"}, Customers: map[string]int64{"acc_a": 1}}
		if err := s.SavePromo(ctx, 1, []byte("v2"), l, second, nil); err != nil {
			t.Fatal(err)
		}
		stale := promo.GrantsChange{Customers: map[string]int64{"acc_a": 0, "acc_c": 5}}
		if err := s.SavePromo(ctx, 1, []byte("stale"), l, stale, nil); !errors.Is(err, snapshot.ErrStale) {
			t.Fatalf("a stale write: %v, want ErrStale", err)
		}
		for account, want := range map[string]int64{"acc_a": 1, "acc_b": 2, "acc_c": 0, "acc_never": 0} {
			if got, err := s.PromoCustomerUnits(ctx, "promo_l", account); err != nil || got != want {
				t.Fatalf("units of %s = %d, %v; want %d", account, got, err, want)
			}
		}
		if got, err := s.PromoCustomerUnits(ctx, "promo_other", "acc_a"); err != nil || got != 0 {
			t.Fatalf("units of acc_a at another campaign = %d, %v; want 0", got, err)
		}
		listed, found, err := s.PromoListing(ctx, "promo_l")
		if err != nil || !found || listed.MaxUnitsPerCustomer != 2 {
			t.Fatalf("listing = %+v, %v, %v; want max_units_per_customer 2", listed, found, err)
		}
	})

	t.Run("a_batch_writes_every_ledger_of_its_writes", func(t *testing.T) {
		s := open(t)
		var mu sync.Mutex
		var batches []sqlstore.Batch
		const n = 8
		// One committer that waits until the batch holds every write below (the
		// wait ends as soon as it does): they go out in one transaction, every
		// table's rows in one statement.
		s.EnableGroupCommit(sqlstore.GroupCommit{MaxWrites: 2 * n, MaxWait: time.Minute, Committers: 1,
			Observe: func(b sqlstore.Batch) {
				mu.Lock()
				defer mu.Unlock()
				batches = append(batches, b)
			}})
		var wg sync.WaitGroup
		errs := make(chan error, 2*n)
		for i := range n {
			wg.Go(func() {
				sku := fmt.Sprintf("sku-b%d", i)
				errs <- s.SaveInventory(ctx, sku, 0, []byte("x"), inventory.Level{}, inventory.LedgerChange{
					Added:    map[string]inventory.Sale{"ord_x": {Quantity: 1, At: t0Ledger}},
					Receipts: []inventory.Receipt{{RequestID: "receipt-key:d", Quantity: int64(i + 1)}}})
			})
			wg.Go(func() {
				id := fmt.Sprintf("promo_b%d", i)
				l := promo.Listing{Snapshot: promo.Snapshot{ID: id, Stage: "draft", Spec: promo.Spec{Name: id, PercentOff: 5,
					SKUs: []string{"sku-1"}, StartsAt: t0Ledger, EndsAt: t0Ledger.Add(time.Hour)}}, CreatedAt: t0Ledger, UpdatedAt: t0Ledger}
				errs <- s.SavePromo(ctx, 0, []byte("x"), l, promo.GrantsChange{
					Added:     map[string]promo.Grant{"ord_x": {Units: 1, AccountID: "acc_x", At: t0Ledger}},
					Customers: map[string]int64{"acc_x": int64(i + 1)}}, nil)
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		mu.Lock()
		got := batches
		mu.Unlock()
		if len(got) != 1 || got[0].Writes != 2*n || got[0].Split {
			t.Fatalf("batches = %+v; want the %d writes in one whole batch", got, 2*n)
		}
		for i := range n {
			if r, found, err := s.InventoryReceipt(ctx, fmt.Sprintf("sku-b%d", i), "receipt-key:d"); err != nil || !found || r.Quantity != int64(i+1) {
				t.Fatalf("receipt of sku-b%d = %+v, %v, %v", i, r, found, err)
			}
			if units, err := s.PromoCustomerUnits(ctx, fmt.Sprintf("promo_b%d", i), "acc_x"); err != nil || units != int64(i+1) {
				t.Fatalf("units of acc_x at promo_b%d = %d, %v", i, units, err)
			}
		}
	})
}

// saleUnits reads every sale of sku: order -> units.
func saleUnits(ctx context.Context, s *sqlstore.Store, sku string) (map[string]int64, error) {
	sales, err := s.InventorySales(ctx, sku, time.Time{})
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(sales))
	for id, sale := range sales {
		out[id] = sale.Quantity
	}
	return out, nil
}

// soldAt is sales of units (order -> units) made at at.
func soldAt(at time.Time, units map[string]int64) map[string]inventory.Sale {
	out := make(map[string]inventory.Sale, len(units))
	for id, u := range units {
		out[id] = inventory.Sale{Quantity: u, At: at}
	}
	return out
}

// grantUnits reads every grant of a campaign: order -> units.
func grantUnits(ctx context.Context, s *sqlstore.Store, id string) (map[string]int64, error) {
	grants, err := s.PromoGrants(ctx, id, time.Time{})
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(grants))
	for order, g := range grants {
		out[order] = g.Units
	}
	return out, nil
}

// grantedAt is grants of units (order -> units) to no account made at at.
func grantedAt(at time.Time, units map[string]int64) map[string]promo.Grant {
	out := make(map[string]promo.Grant, len(units))
	for id, u := range units {
		out[id] = promo.Grant{Units: u, At: at}
	}
	return out
}
