package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"strings"

	"phoneshop/notify/outbox"
)

// A row is one row that a snapshot write makes true beside its snapshot, in the
// same transaction: a query view (an order's listing row, a stock level, a
// campaign's listing), a ledger row, an event. A write carries its rows as data,
// not as statements, so that a batch of many grains' writes goes to the database
// as one multi-row statement per table instead of one statement per row: on two
// shared cores, statements (parsing, round trips, syscalls) are what a flash sale
// spends the database's CPU on, not fsyncs.
type row struct {
	table *table
	args  []any
}

// A table is how rows of one kind are written: head, then one tuple per row joined
// by sep, then tail. A batch runs its tables in rank order, so a ledger's deletes
// come before its inserts (an order returned and sold again in one write).
type table struct {
	rank                   int
	head, tuple, sep, tail string
	width                  int // arguments per row
}

// maxStatementArgs bounds one statement's arguments (SQLite allows 32,766; MySQL's
// packet holds far more), so a large batch is cut into a few statements.
const maxStatementArgs = 16_000

// tables are the row kinds a snapshot write carries, with the dialect's upsert and
// ignore-duplicate clauses.
type tables struct {
	salesDelete, salesInsert, receiptInsert *table
	grantsDelete, grantsInsert, customers   *table
	stockLevel, order, promo                *table
	event                                   *table
}

func newTables(d Dialect) tables {
	insert := func(rank int, name string, cols []string, tail string) *table {
		return &table{rank: rank, head: "INSERT INTO " + name + " (" + strings.Join(cols, ", ") + ") VALUES ",
			tuple: "(" + strings.Repeat("?, ", len(cols)-1) + "?)", sep: ", ", tail: tail, width: len(cols)}
	}
	remove := func(rank int, l ledger) *table {
		return &table{rank: rank, head: "DELETE FROM " + l.table + " WHERE ", tuple: "(" + l.owner + " = ? AND order_id = ?)",
			sep: " OR ", width: 2}
	}
	promoCols := []string{"id", "name", "stage", "percent_off", "brands", "skus", "starts_at", "ends_at", "max_discounted_units",
		"email_subject", "email_body", "activated", "discounted_units", "orders", "max_units_per_customer", "created_at", "updated_at"}
	return tables{
		salesDelete: remove(0, salesLedger),
		salesInsert: insert(1, "inventory_sales", []string{"sku", "order_id", "quantity", "sold_at"}, ""),
		// A receipt already stored is left as it is: an item loaded from a
		// snapshot of a release that kept receipts only there writes its
		// window again once, whatever of it the store already holds.
		receiptInsert: insert(2, "inventory_receipts", []string{"sku", "request_id", "quantity", "received_at"},
			d.OnConflict([]string{"sku", "request_id"}, nil)),
		grantsDelete: remove(3, grantsLedger),
		grantsInsert: insert(4, "promo_grants", []string{"promo_id", "order_id", "units", "account_id", "granted_at"}, ""),
		// An account's units at a campaign are written whole by the grant that
		// changes them (the grain is their single writer).
		customers: insert(5, "promo_customers", []string{"promo_id", "account_id", "units"},
			d.OnConflict([]string{"promo_id", "account_id"}, []string{"units"})),
		stockLevel: insert(6, "stock_levels", []string{"sku", "available", "reserved", "sold", "received", "updated_at"},
			d.OnConflict([]string{"sku"}, []string{"available", "reserved", "sold", "received", "updated_at"})),
		order: insert(7, "orders", []string{"id", "account_id", "status", "total_cents", "created_at", "updated_at", "cart_revision"},
			d.OnConflict([]string{"id"}, []string{"status", "total_cents", "updated_at", "cart_revision"})),
		// The snapshot's fence decides who writes a campaign's listing; the
		// first version inserts it, every later one replaces all but its birth.
		promo: insert(8, "promos", promoCols, d.OnConflict([]string{"id"}, append(slices.Clone(promoCols[1:len(promoCols)-2]), "updated_at"))),
		// An event already written (its id names the fact) is left as it is: a
		// fact is published once, whichever write recorded it first.
		event: insert(9, "outbox", []string{"id", "routing_key", "payload", "created_at"}, d.OnConflict([]string{"id"}, nil)),
	}
}

// eventRows are the outbox rows of events.
func (s *Store) eventRows(events []outbox.Event) []row {
	rows := make([]row, len(events))
	for i, e := range events {
		rows[i] = row{s.tables.event, []any{e.ID, e.RoutingKey, e.Payload, e.CreatedAt.UnixMicro()}}
	}
	return rows
}

// writeRows writes rows inside tx with one statement per table (more only past
// maxStatementArgs), tables in rank order, rows in the order given.
func writeRows(ctx context.Context, tx *sql.Tx, rows []row) error {
	if len(rows) == 0 {
		return nil
	}
	rows = slices.Clone(rows)
	slices.SortStableFunc(rows, func(a, b row) int { return cmp.Compare(a.table.rank, b.table.rank) })
	for start := 0; start < len(rows); {
		t := rows[start].table
		end := start
		for end < len(rows) && rows[end].table == t && (end-start+1)*t.width <= maxStatementArgs {
			end++
		}
		var q strings.Builder
		args := make([]any, 0, (end-start)*t.width)
		q.WriteString(t.head)
		for i, r := range rows[start:end] {
			if i > 0 {
				q.WriteString(t.sep)
			}
			q.WriteString(t.tuple)
			args = append(args, r.args...)
		}
		q.WriteString(t.tail)
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
		start = end
	}
	return nil
}
