package storetest

import (
	"context"
	"database/sql"
	"maps"
	"testing"

	"google.golang.org/protobuf/proto"

	"phoneshop/actors/inventory"
	"phoneshop/persistence/sqlstore"
	"phoneshop/protos/inventorypb"
)

// PreLedgerSnapshots checks migration 8 on one engine. migrateTo(v) migrates db up
// to version v (0: all); open opens the store on the same database once db is
// migrated. Inventory snapshots written before the sales ledger had a table carry
// their sales inside: the migration moves them to the ledger (a ledger row already
// there wins) and leaves the rest of each snapshot, and its version, as it was.
func PreLedgerSnapshots(t *testing.T, db *sql.DB, migrateTo func(ctx context.Context, version int64) error, open func() *sqlstore.Store) {
	ctx := context.Background()
	if err := migrateTo(ctx, 7); err != nil {
		t.Fatal(err)
	}
	encode := func(st *inventorypb.InventoryState) []byte {
		b, err := proto.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	old := encode(&inventorypb.InventoryState{Received: 20, Available: 12, Sold: 8,
		Sales: map[string]int64{"ord_a": 1, "ord_b": 2, "ord_c": 5}})
	current := encode(&inventorypb.InventoryState{Received: 5, Available: 4, Sold: 1})
	for _, stmt := range []struct {
		q    string
		args []any
	}{
		{`INSERT INTO grain_snapshots (kind, id, version, state, updated_at) VALUES ('inventory', 'sku-old', 3, ?, 0)`, []any{old}},
		{`INSERT INTO grain_snapshots (kind, id, version, state, updated_at) VALUES ('inventory', 'sku-current', 2, ?, 0)`, []any{current}},
		// Written after the snapshot by a release with the ledger: it wins.
		{`INSERT INTO inventory_sales (sku, order_id, quantity) VALUES ('sku-old', 'ord_c', 4)`, nil},
		{`INSERT INTO inventory_sales (sku, order_id, quantity) VALUES ('sku-current', 'ord_x', 1)`, nil},
	} {
		if _, err := db.ExecContext(ctx, stmt.q, stmt.args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := migrateTo(ctx, 0); err != nil {
		t.Fatal(err)
	}
	s := open()

	sales, err := saleUnits(ctx, s, "sku-old")
	if want := map[string]int64{"ord_a": 1, "ord_b": 2, "ord_c": 4}; err != nil || !maps.Equal(sales, want) {
		t.Fatalf("ledger of sku-old = %v, %v; want %v (the snapshot's sales, the ledger's row winning)", sales, err, want)
	}
	snap, err := s.LoadInventory(ctx, "sku-old")
	if err != nil || snap.Version != 3 {
		t.Fatalf("sku-old = v%d, %v; want v3", snap.Version, err)
	}
	if moved, _, err := inventory.SplitSnapshotSales(snap.State); err != nil || moved != nil {
		t.Fatalf("sku-old's snapshot still carries sales %v (%v)", moved, err)
	}
	var st inventorypb.InventoryState
	if err := proto.Unmarshal(snap.State, &st); err != nil || st.Received != 20 || st.Available != 12 || st.Sold != 8 {
		t.Fatalf("sku-old's snapshot = %v, %v; want its counters as they were", &st, err)
	}
	snap, err = s.LoadInventory(ctx, "sku-current")
	if err != nil || snap.Version != 2 || !proto.Equal(decode(t, snap.State), decode(t, current)) {
		t.Fatalf("sku-current = v%d %v; want it untouched", snap.Version, err)
	}
	if sales, err := saleUnits(ctx, s, "sku-current"); err != nil || !maps.Equal(sales, map[string]int64{"ord_x": 1}) {
		t.Fatalf("ledger of sku-current = %v, %v; want it untouched", sales, err)
	}
}

func decode(t *testing.T, state []byte) *inventorypb.InventoryState {
	t.Helper()
	var st inventorypb.InventoryState
	if err := proto.Unmarshal(state, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}
