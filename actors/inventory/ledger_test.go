package inventory_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster"

	"phoneshop/actors/inventory"
	"phoneshop/cluster/member"
	"phoneshop/internal/shoptest"
	"phoneshop/persistence/sqlite"
	"phoneshop/protos/inventorypb"
	"phoneshop/protos/reasonpb"
)

// countingStore counts what the grain reads of the ledgers: the sales an
// activation loads, and the single sales and receipts it looks up.
type countingStore struct {
	inventory.Store
	salesLoaded, saleLookups, receiptLookups atomic.Int64
}

func (s *countingStore) InventorySales(ctx context.Context, sku string, since time.Time) (map[string]inventory.Sale, error) {
	sales, err := s.Store.InventorySales(ctx, sku, since)
	s.salesLoaded.Add(int64(len(sales)))
	return sales, err
}

func (s *countingStore) InventorySale(ctx context.Context, sku, orderID string) (inventory.Sale, bool, error) {
	s.saleLookups.Add(1)
	return s.Store.InventorySale(ctx, sku, orderID)
}

func (s *countingStore) InventoryReceipt(ctx context.Context, sku, requestID string) (inventory.Receipt, bool, error) {
	s.receiptLookups.Add(1)
	return s.Store.InventoryReceipt(ctx, sku, requestID)
}

// clock is a settable time source for the grains.
type clock struct{ at atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.at.Store(t.UnixNano()); return c }

func (c *clock) now() time.Time          { return time.Unix(0, c.at.Load()) }
func (c *clock) advance(d time.Duration) { c.at.Add(int64(d)) }

// ledgerMember is one member whose inventory grains run on a counting SQLite
// store and a settable clock.
type ledgerMember struct {
	m     *member.Member
	store *countingStore
	clock *clock
}

func startLedgerMember(t *testing.T) *ledgerMember {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	lm := &ledgerMember{store: &countingStore{Store: db}, clock: newClock(time.Now())}
	lm.m, err = member.StartMember(member.Config{Host: "127.0.0.1", NewProvider: member.NewInMemoryProvider(member.NewInMemoryAgent()),
		IdleTimeout: time.Minute, RequestTimeout: 5 * time.Second, Logger: shoptest.Logger()},
		member.Deps{Inventory: inventory.Deps{Store: lm.store, ReservationTTL: func() time.Duration { return time.Minute },
			Now: lm.clock.now, StoreTimeout: 5 * time.Second, GroupCommit: true, Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lm.m.Stop)
	return lm
}

func (lm *ledgerMember) client(sku string) *inventorypb.InventoryGrainClient {
	return inventorypb.GetInventoryGrainClient(lm.m.Cluster(), sku)
}

// reactivate stops the activation of sku and waits until the cluster forgot it,
// so that the next call activates it again from the store; it returns the sales
// that activation loaded.
func (lm *ledgerMember) reactivate(t *testing.T, sku string) int64 {
	t.Helper()
	c := lm.m.Cluster()
	pid := c.Get(sku, inventory.KindName)
	if pid == nil {
		t.Fatalf("no activation of %s", sku)
	}
	if err := lm.m.System().Root.PoisonFuture(pid).Wait(); err != nil {
		t.Fatalf("poison %s: %v", sku, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.GetClusterKind(inventory.KindName).Count() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the activation of %s is still there", sku)
		}
		time.Sleep(10 * time.Millisecond)
	}
	before := lm.store.salesLoaded.Load()
	if _, err := lm.client(sku).Level(&inventorypb.LevelRequest{}, opt()); err != nil {
		t.Fatal(err)
	}
	return lm.store.salesLoaded.Load() - before
}

func opt() cluster.GrainCallOption { return cluster.WithTimeout(10 * time.Second) }

// sell sells one unit to each of n new orders, created now.
func (lm *ledgerMember) sell(t *testing.T, inv *inventorypb.InventoryGrainClient, prefix string, n int) []string {
	t.Helper()
	created := lm.clock.now().UnixMilli()
	var orders []string
	for i := range n {
		order := fmt.Sprintf("%s-%d", prefix, i)
		if _, err := inv.Reserve(&inventorypb.ReserveRequest{OrderId: order, Quantity: 1, OrderCreatedUnixMs: created}, opt()); err != nil {
			t.Fatal(err)
		}
		if _, err := inv.Commit(&inventorypb.CommitRequest{OrderId: order, OrderCreatedUnixMs: created}, opt()); err != nil {
			t.Fatal(err)
		}
		orders = append(orders, order)
	}
	return orders
}

// TestActivationLoadsTheRecentSalesOnly: an activation loads the sales of the
// last LedgerWindow, however many the SKU made before (counted in rows, not
// timed), and a new order's commands need no lookup. An order older than that
// is looked up when a command names it: its retried reservation and commit sell
// nothing twice, and its cancel returns its units once.
func TestActivationLoadsTheRecentSalesOnly(t *testing.T) {
	lm := startLedgerMember(t)
	inv := lm.client("sku-l")
	if _, err := inv.Receive(&inventorypb.ReceiveRequest{RequestId: "d1", Quantity: 1000}, opt()); err != nil {
		t.Fatal(err)
	}
	var loaded []int64
	var old []string
	for day := range 3 {
		old = append(old, lm.sell(t, inv, fmt.Sprintf("day%d", day), 40)...)
		lm.clock.advance(24 * time.Hour)
		loaded = append(loaded, lm.reactivate(t, "sku-l"))
	}
	for day, n := range loaded {
		if n != 0 {
			t.Fatalf("the activation after day %d loaded %d sales of the %d the SKU made before the window; want none", day, n, 40*(day+1))
		}
	}
	recent := lm.sell(t, inv, "now", 5)
	if n := lm.reactivate(t, "sku-l"); n != 5 {
		t.Fatalf("the activation loaded %d sales; want the 5 of the window (of %d made)", n, 125)
	}
	if n := lm.store.saleLookups.Load(); n != 0 {
		t.Fatalf("%d lookups for orders created within the window; want none", n)
	}

	level := func() *inventorypb.StockLevel {
		t.Helper()
		l, err := inv.Level(&inventorypb.LevelRequest{}, opt())
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	before := level()
	if before.Sold != 125 || before.Available != 875 {
		t.Fatalf("level = %v; want 125 sold", before)
	}
	// A saga's retry of an old order: nothing is sold twice.
	orderCreated := lm.clock.now().Add(-72 * time.Hour).UnixMilli()
	if _, err := inv.Reserve(&inventorypb.ReserveRequest{OrderId: old[0], Quantity: 1, OrderCreatedUnixMs: orderCreated}, opt()); err != nil {
		t.Fatal(err)
	}
	if _, err := inv.Commit(&inventorypb.CommitRequest{OrderId: old[0], OrderCreatedUnixMs: orderCreated}, opt()); err != nil {
		t.Fatal(err)
	}
	if l := level(); l.Sold != 125 || l.Reserved != 0 {
		t.Fatalf("after a retried reservation and commit of an old order: %v; want nothing more sold or held", l)
	}
	// A cancel of an old order, twice, and of an order of unknown age.
	for range 2 {
		if _, err := inv.Return(&inventorypb.ReturnRequest{OrderId: old[1], OrderCreatedUnixMs: orderCreated}, opt()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := inv.Return(&inventorypb.ReturnRequest{OrderId: old[2]}, opt()); err != nil {
		t.Fatal(err)
	}
	if l := level(); l.Sold != 123 || l.Available != 877 {
		t.Fatalf("after returning two old orders (one twice): %v; want 123 sold", l)
	}
	// The returns are durable, and an activation after them knows.
	lm.reactivate(t, "sku-l")
	if _, err := inv.Return(&inventorypb.ReturnRequest{OrderId: old[1], OrderCreatedUnixMs: orderCreated}, opt()); err != nil {
		t.Fatal(err)
	}
	if _, err := inv.Return(&inventorypb.ReturnRequest{OrderId: recent[0], OrderCreatedUnixMs: lm.clock.now().UnixMilli()}, opt()); err != nil {
		t.Fatal(err)
	}
	if l := level(); l.Sold != 122 || l.Available != 878 {
		t.Fatalf("after a third return of an old order and the return of a recent one: %v; want 122 sold", l)
	}
	if n := lm.store.saleLookups.Load(); n < 4 {
		t.Fatalf("%d lookups; the commands on old orders must have looked their sales up", n)
	}
}

// TestRestockKeyAddsOnceForEver: a delivery's request id (a restock's
// Idempotency-Key) adds its units once, however many other deliveries came
// between and across activations; with another quantity it is refused.
func TestRestockKeyAddsOnceForEver(t *testing.T) {
	lm := startLedgerMember(t)
	inv := lm.client("sku-r")
	receive := func(id string, qty int64) (*inventorypb.StockLevel, error) {
		return inv.Receive(&inventorypb.ReceiveRequest{RequestId: id, Quantity: qty}, opt())
	}
	if _, err := receive("receipt-key:truck-1", 5); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := receive(fmt.Sprintf("receipt-key:other-%d", i), 1); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string) {
		t.Helper()
		l, err := receive("receipt-key:truck-1", 5)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if l.Received != 105 {
			t.Fatalf("%s: received %d; want 105 (truck-1's 5 once, and 100 others)", when, l.Received)
		}
		if _, err := receive("receipt-key:truck-1", 6); !reasonpb.IsIdempotencyMismatch(err) {
			t.Fatalf("%s: truck-1 again with another quantity: %v; want idempotency mismatch", when, err)
		}
	}
	check("after 100 other deliveries")
	lm.reactivate(t, "sku-r")
	check("after a new activation")
	if n := lm.store.receiptLookups.Load(); n < 2 {
		t.Fatalf("%d receipt lookups; truck-1, long out of the window in memory, must have been looked up", n)
	}
}
