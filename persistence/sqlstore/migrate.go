package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/pressly/goose/v3"

	"phoneshop/actors/inventory"
)

// GoMigrations are the migrations written in Go, the same for every engine: the
// adapters hand them to goose (goose.WithGoMigrations), which runs them in version
// order among their SQL files.
func GoMigrations() []*goose.Migration {
	return []*goose.Migration{
		// Down leaves the sales in the ledger, where every release since migration 2 reads them.
		goose.NewGoMigration(8, &goose.GoFunc{RunTx: moveSnapshotSales}, nil),
	}
}

// moveSnapshotSales is migration 8: inventory snapshots written before migration 2
// gave the sales ledger a table carry their sales inside them. They move to the
// ledger (a row already there wins: it is the newer), and the snapshot is written
// again without them, at the same version. The grains then read the ledger alone.
func moveSnapshotSales(ctx context.Context, tx *sql.Tx) error {
	type legacy struct {
		sku   string
		sales map[string]int64
		rest  []byte
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, state FROM grain_snapshots WHERE kind = ?`, kindInventory)
	if err != nil {
		return err
	}
	var found []legacy
	for rows.Next() {
		var sku string
		var state []byte
		if err := rows.Scan(&sku, &state); err != nil {
			rows.Close()
			return err
		}
		sales, rest, err := inventory.SplitSnapshotSales(state)
		if err != nil {
			rows.Close()
			return fmt.Errorf("inventory %s: %w", sku, err)
		}
		if sales != nil {
			found = append(found, legacy{sku, sales, rest})
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	for _, l := range found {
		ledger, err := tx.QueryContext(ctx, `SELECT order_id FROM inventory_sales WHERE sku = ?`, l.sku)
		if err != nil {
			return err
		}
		for ledger.Next() {
			var id string
			if err := ledger.Scan(&id); err != nil {
				ledger.Close()
				return err
			}
			delete(l.sales, id)
		}
		if err := ledger.Close(); err != nil {
			return err
		}
		for id, q := range l.sales {
			if _, err := tx.ExecContext(ctx, `INSERT INTO inventory_sales (sku, order_id, quantity) VALUES (?, ?, ?)`, l.sku, id, q); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE grain_snapshots SET state = ?, updated_at = ? WHERE kind = ? AND id = ?`,
			l.rest, time.Now().UnixMicro(), kindInventory, l.sku); err != nil {
			return err
		}
	}
	return nil
}
