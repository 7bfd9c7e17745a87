package inventory_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	"google.golang.org/protobuf/proto"

	"phoneshop/actors/inventory"
	"phoneshop/cluster/member"
	"phoneshop/fault"
	"phoneshop/internal/shoptest"
	"phoneshop/persistence/sqlite"
	"phoneshop/persistence/sqlstore"
	"phoneshop/protos/inventorypb"
	"phoneshop/protos/reasonpb"
)

// failingStore fails every write while failing is set.
type failingStore struct {
	inventory.Store
	failing atomic.Bool
	writes  atomic.Int64
}

func (s *failingStore) SaveInventory(ctx context.Context, sku string, v int64, state []byte, l inventory.Level, sales inventory.LedgerChange) error {
	s.writes.Add(1)
	if s.failing.Load() {
		time.Sleep(20 * time.Millisecond) // let commands pile up behind the write
		// An outage, as the store adapters report one: a retry may succeed.
		return fault.Unavailable(errors.New("disk on fire"))
	}
	return s.Store.SaveInventory(ctx, sku, v, state, l, sales)
}

// TestFailedWriteAnswersNoCommandAndReloads: when a write fails, no command that
// depended on it is answered with success, and the grain goes on from what is
// durable, with group commit and without.
func TestFailedWriteAnswersNoCommandAndReloads(t *testing.T) {
	for _, groupCommit := range []bool{true, false} {
		t.Run(fmt.Sprintf("group_commit_%v", groupCommit), func(t *testing.T) {
			db, store, inv := startFailing(t, groupCommit)
			opt := cluster.WithTimeout(10 * time.Second)
			if _, err := inv.Receive(&inventorypb.ReceiveRequest{RequestId: "d1", Quantity: 10}, opt); err != nil {
				t.Fatal(err)
			}
			// Holds need no write: they are answered while every write fails.
			store.failing.Store(true)
			for i := range 20 {
				_, err := inv.Reserve(&inventorypb.ReserveRequest{OrderId: fmt.Sprintf("o%d", i), Quantity: 1}, opt)
				if want := i < 10; (err == nil) != want {
					t.Fatalf("reserve o%d: %v; want it answered at once (ok for the first 10, out of stock after)", i, err)
				}
			}
			if n := store.writes.Load(); n != 1 {
				t.Fatalf("%d writes after the receipt and 20 reservations; want only the receipt's", n)
			}
			var wg sync.WaitGroup
			var succeeded, unavailable atomic.Int64
			for i := range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := inv.Commit(&inventorypb.CommitRequest{OrderId: fmt.Sprintf("o%d", i)}, opt)
					switch {
					case err == nil:
						succeeded.Add(1)
					case reasonpb.IsUnavailable(err), reasonpb.IsNotFound(err):
						// unavailable: its write failed; not found: it ran after
						// the reload, which dropped the holds.
						unavailable.Add(1)
					default:
						t.Errorf("commit: %v", err)
					}
				}()
			}
			wg.Wait()
			if succeeded.Load() != 0 || unavailable.Load() != 10 {
				t.Fatalf("while writes fail: %d sales succeeded, %d failed; want 0 and 10", succeeded.Load(), unavailable.Load())
			}

			store.failing.Store(false)
			l, err := inv.Level(&inventorypb.LevelRequest{}, opt)
			if err != nil {
				t.Fatal(err)
			}
			if l.Available != 10 || l.Reserved != 0 || l.Sold != 0 || l.Received != 10 {
				t.Fatalf("after the failed writes: %v; want the durable 10 available, nothing reserved or sold", l)
			}
			if _, err := inv.Reserve(&inventorypb.ReserveRequest{OrderId: "o-after", Quantity: 3}, opt); err != nil {
				t.Fatalf("reserve after recovery: %v", err)
			}
			if _, err := inv.Commit(&inventorypb.CommitRequest{OrderId: "o-after"}, opt); err != nil {
				t.Fatalf("commit after recovery: %v", err)
			}
			snap, err := db.LoadInventory(context.Background(), "sku-f")
			if err != nil || snap.Version != 2 {
				t.Fatalf("durable snapshot = v%d, %v; want v2 (receipt, then one sale)", snap.Version, err)
			}
			sales, err := db.InventorySales(context.Background(), "sku-f", time.Time{})
			if err != nil || len(sales) != 1 || sales["o-after"].Quantity != 3 {
				t.Fatalf("sales = %v, %v; want o-after's 3 units alone", sales, err)
			}
		})
	}
}

// TestAHoldLostInACrashSellsNothingTwice: a reservation is answered before it is
// durable. When the grain loses its in-memory state (here a failed write makes it
// reload what is durable, as a new activation after a crash does), the hold is
// gone: the units are available again, the order's commit finds its reservation
// missing, and the stock sold stays within what was received.
func TestAHoldLostInACrashSellsNothingTwice(t *testing.T) {
	db, store, inv := startFailing(t, true)
	opt := cluster.WithTimeout(10 * time.Second)
	if _, err := inv.Receive(&inventorypb.ReceiveRequest{RequestId: "d1", Quantity: 2}, opt); err != nil {
		t.Fatal(err)
	}
	if _, err := inv.Reserve(&inventorypb.ReserveRequest{OrderId: "a", Quantity: 2}, opt); err != nil {
		t.Fatal(err)
	}
	store.failing.Store(true)
	if _, err := inv.Receive(&inventorypb.ReceiveRequest{RequestId: "d2", Quantity: 1}, opt); !reasonpb.IsUnavailable(err) {
		t.Fatalf("receipt while writes fail: %v; want unavailable", err)
	}
	store.failing.Store(false)

	l, err := inv.Level(&inventorypb.LevelRequest{}, opt)
	if err != nil || l.Available != 2 || l.Reserved != 0 {
		t.Fatalf("level after the reload = %v, %v; want the 2 units available again (the hold was never written)", l, err)
	}
	if _, err := inv.Commit(&inventorypb.CommitRequest{OrderId: "a"}, opt); !reasonpb.IsNotFound(err) {
		t.Fatalf("commit of the lost hold: %v; want not found (the saga reserves again)", err)
	}
	if _, err := inv.Reserve(&inventorypb.ReserveRequest{OrderId: "b", Quantity: 2}, opt); err != nil {
		t.Fatal(err)
	}
	if _, err := inv.Commit(&inventorypb.CommitRequest{OrderId: "b"}, opt); err != nil {
		t.Fatal(err)
	}
	// Order a's saga reserves again: nothing is left for it.
	if _, err := inv.Reserve(&inventorypb.ReserveRequest{OrderId: "a", Quantity: 2}, opt); !reasonpb.IsOutOfStock(err) {
		t.Fatalf("reserve again after b bought the units: %v; want out of stock", err)
	}
	sales, err := db.InventorySales(context.Background(), "sku-f", time.Time{})
	if err != nil || len(sales) != 1 || sales["b"].Quantity != 2 {
		t.Fatalf("sales = %v, %v; want b's 2 units alone", sales, err)
	}
}

// startFailing starts a member on a new SQLite store that fails on demand, and
// returns the store, its failing front and the client of the grain sku-f.
func startFailing(t *testing.T, groupCommit bool) (*sqlstore.Store, *failingStore, *inventorypb.InventoryGrainClient) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store := &failingStore{Store: db}
	return db, store, startMember(t, store, groupCommit, "sku-f")
}

// startMember starts a member whose inventory grains use store, and returns the
// client of the grain sku.
func startMember(t *testing.T, store inventory.Store, groupCommit bool, sku string) *inventorypb.InventoryGrainClient {
	t.Helper()
	m, err := member.StartMember(member.Config{Host: "127.0.0.1", NewProvider: member.NewInMemoryProvider(member.NewInMemoryAgent()),
		IdleTimeout: time.Minute, RequestTimeout: 5 * time.Second, Logger: shoptest.Logger()},
		member.Deps{Inventory: inventory.Deps{Store: store, ReservationTTL: func() time.Duration { return time.Minute },
			Now: time.Now, StoreTimeout: 5 * time.Second, GroupCommit: groupCommit, Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return inventorypb.GetInventoryGrainClient(m.Cluster(), sku)
}

// TestSnapshotWithSalesInsideIsRefused: the stores' migration 8 moves the sales of
// pre-ledger snapshots to the ledger (storetest.PreLedgerSnapshots). A snapshot that
// still carries them would sell units its ledger does not know of: the grain
// refuses to load it rather than read half of it.
func TestSnapshotWithSalesInsideIsRefused(t *testing.T) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	old := &inventorypb.InventoryState{Received: 10, Available: 7, Sold: 3, Sales: map[string]int64{"ord_a": 1, "ord_b": 2}}
	state, err := proto.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SaveInventory(context.Background(), "sku-old", 0, state, inventory.Level{Available: 7, Sold: 3, Received: 10}, inventory.LedgerChange{}); err != nil {
		t.Fatal(err)
	}
	inv := startMember(t, db, true, "sku-old")
	if l, err := inv.Return(&inventorypb.ReturnRequest{OrderId: "ord_b"}, cluster.WithTimeout(10*time.Second)); err == nil {
		t.Fatalf("return from a snapshot with its sales inside = %v; want an error", l)
	}
	if ledger, err := db.InventorySales(context.Background(), "sku-old", time.Time{}); err != nil || len(ledger) != 0 {
		t.Fatalf("ledger = %v, %v; want nothing written", ledger, err)
	}
}
