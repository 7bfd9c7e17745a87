package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"phoneshop/actors/inventory"
	"phoneshop/actors/order"
	"phoneshop/actors/snapshot"
	"phoneshop/catalog"
	"phoneshop/notify/outbox"
	"phoneshop/persistence/sqlstore"
)

// Batches: a group-commit batch of many grains' writes is written whole, each
// snapshot with every row it carries (order rows, events, sales, stock levels);
// and a batch in which a fence refuses one write fails that write alone, while
// every other write of the batch, and its rows, still lands.
func Batches(t *testing.T, open Open) {
	ctx := context.Background()
	var mu sync.Mutex
	var batches []sqlstore.Batch
	s := open(t)
	// One committer that waits for the batch to fill: every write below goes out
	// in the same transaction.
	s.EnableGroupCommit(sqlstore.GroupCommit{MaxWrites: 256, MaxWait: 300 * time.Millisecond, Committers: 1,
		Observe: func(b sqlstore.Batch) {
			mu.Lock()
			defer mu.Unlock()
			batches = append(batches, b)
		}})
	taken := func() []sqlstore.Batch {
		mu.Lock()
		defer mu.Unlock()
		out := batches
		batches = nil
		return out
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	const n = 12
	var phones []catalog.Phone
	for i := range n {
		sku := fmt.Sprintf("bsku-%d", i)
		phones = append(phones, catalog.Phone{ID: "p-" + sku, Brand: "B", Model: "M", Name: "B M", Category: "c", ReleaseYear: 2024,
			Variants: []catalog.Variant{{SKU: sku, PhoneID: "p-" + sku, StorageGB: 128, Color: "Black", PriceCents: 100}}})
	}
	if _, err := s.SeedCatalog(ctx, phones); err != nil {
		t.Fatal(err)
	}

	// round runs one batch: for every i an order (new, or moved on from version
	// 1), a sale of sku i to it, and a cart; stale names writes that carry the
	// wrong version and must be refused.
	round := func(t *testing.T, r int, stale map[string]bool) map[string]error {
		t.Helper()
		var wg sync.WaitGroup
		var emu sync.Mutex
		errs := map[string]error{}
		do := func(name string, f func() error) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := f()
				emu.Lock()
				errs[name] = err
				emu.Unlock()
			}()
		}
		version := func(name string, v int64) int64 {
			if stale[name] {
				return v + 7
			}
			return v
		}
		for i := range n {
			id := fmt.Sprintf("ord_b%d", i)
			status := []order.Status{order.StatusCommitting, order.StatusConfirmed}[r]
			do("order "+id, func() error {
				o := order.Order{ID: id, AccountID: "acc_batch", Status: status, CreatedAt: now.Add(time.Duration(i) * time.Second), UpdatedAt: now}
				state, err := order.Encode(&o)
				if err != nil {
					return err
				}
				var events []outbox.Event
				if status == order.StatusConfirmed {
					e, err := outbox.New(outbox.OrderConfirmed, id, map[string]string{"order_id": id}, now)
					if err != nil {
						return err
					}
					events = append(events, e)
				}
				return s.SaveOrder(ctx, version("order "+id, int64(r)), state,
					order.Row{ID: id, AccountID: "acc_batch", Status: status, TotalCents: 100, CreatedAt: o.CreatedAt, UpdatedAt: now}, events)
			})
			sku := fmt.Sprintf("bsku-%d", i)
			do("inventory "+sku, func() error {
				it := &inventory.Item{}
				if _, err := it.Receive("delivery", 10); err != nil {
					return err
				}
				level := it.Level()
				sales := it.TakeChange()
				if r == 1 {
					if _, err := it.Reserve(id, 3, now, time.Minute); err != nil {
						return err
					}
					if _, err := it.Commit(id, now); err != nil {
						return err
					}
					level, sales = it.Level(), it.TakeChange()
				}
				return s.SaveInventory(ctx, sku, version("inventory "+sku, int64(r)), encodeItem(t, it), level, sales)
			})
			cart := fmt.Sprintf("acc_cart%d", i)
			do("cart "+cart, func() error {
				return s.SaveCart(ctx, cart, version("cart "+cart, int64(r)), []byte(fmt.Sprintf("round %d", r)))
			})
		}
		wg.Wait()
		return errs
	}

	t.Run("many_grains_in_one_batch_are_written_whole_with_their_rows", func(t *testing.T) {
		for name, err := range round(t, 0, nil) {
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		got := taken()
		if len(got) != 1 || got[0].Writes != 3*n || got[0].Split {
			t.Fatalf("batches = %+v; want one batch of all %d writes, written whole", got, 3*n)
		}
		unfinished, err := s.UnfinishedOrders(ctx)
		if err != nil || len(unfinished) != n {
			t.Fatalf("unfinished orders = %v, %v; want the %d committing orders of the batch", unfinished, err, n)
		}
		vs, err := s.VariantsBySKU(ctx, []string{"bsku-0", fmt.Sprintf("bsku-%d", n-1)})
		if err != nil || vs["bsku-0"].Available != 10 || vs[fmt.Sprintf("bsku-%d", n-1)].Available != 10 {
			t.Fatalf("stock levels = %+v, %v; want 10 available each", vs, err)
		}
	})

	t.Run("a_fenced_write_fails_alone_and_the_rest_of_its_batch_lands", func(t *testing.T) {
		stale := map[string]bool{"order ord_b3": true, "inventory bsku-5": true, "cart acc_cart7": true}
		for name, err := range round(t, 1, stale) {
			switch {
			case stale[name] && !errors.Is(err, snapshot.ErrStale):
				t.Fatalf("%s carried the wrong version: err = %v, want ErrStale", name, err)
			case !stale[name] && err != nil:
				t.Fatalf("%s: %v", name, err)
			}
		}
		got := taken()
		if len(got) != 1 || got[0].Writes != 3*n || !got[0].Split {
			t.Fatalf("batches = %+v; want one batch of %d writes, split by its fenced writes", got, 3*n)
		}
		page, err := s.ListOrders(ctx, "acc_batch", 100, nil)
		if err != nil {
			t.Fatal(err)
		}
		var confirmed []string
		for _, o := range page.Orders {
			confirmed = append(confirmed, o.ID)
		}
		if len(confirmed) != n-1 || slices.Contains(confirmed, "ord_b3") {
			t.Fatalf("confirmed orders = %v; want every order of the batch but the fenced ord_b3", confirmed)
		}
		events, err := s.UnpublishedEvents(ctx, 100)
		if err != nil || len(events) != n-1 {
			t.Fatalf("events = %d, %v; want one per confirmed order (%d)", len(events), err, n-1)
		}
		for i := range n {
			sku := fmt.Sprintf("bsku-%d", i)
			sales, err := saleUnits(ctx, s, sku)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]int64{fmt.Sprintf("ord_b%d", i): 3}
			if i == 5 {
				want = map[string]int64{}
			}
			if fmt.Sprint(sales) != fmt.Sprint(want) {
				t.Fatalf("sales of %s = %v, want %v", sku, sales, want)
			}
			cart, err := s.LoadCart(ctx, fmt.Sprintf("acc_cart%d", i))
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]string{true: "round 0", false: "round 1"}[i == 7]; string(cart.State) != want {
				t.Fatalf("cart %d = %q, want %q", i, cart.State, want)
			}
		}
	})

	t.Run("loads_side_by_side_each_get_their_own_snapshot", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 2*n)
		for i := range 2 * n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("acc_cart%d", i) // carts n.. were never written
				snap, err := s.LoadCart(ctx, id)
				switch {
				case err != nil:
					errs <- err
				case i >= n && (snap.Version != 0 || snap.State != nil):
					errs <- fmt.Errorf("%s was never written, loaded v%d %q", id, snap.Version, snap.State)
				case i < n && (snap.Version == 0 || !strings.HasPrefix(string(snap.State), "round ")):
					errs <- fmt.Errorf("%s loaded v%d %q", id, snap.Version, snap.State)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}
