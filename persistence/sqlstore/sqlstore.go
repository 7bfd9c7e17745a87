// Package sqlstore implements every store port of the shop (grain snapshots, catalog,
// accounts, sessions, order listings) on database/sql. The SQL is portable between
// SQLite and MySQL/MariaDB; what differs lives in a Dialect supplied by the adapter
// package (persistence/sqlite, persistence/mysql) that opens the database.
package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"syscall"
	"time"

	"phoneshop/account"
	"phoneshop/actors/cart"
	"phoneshop/actors/inventory"
	"phoneshop/actors/order"
	"phoneshop/actors/snapshot"
	"phoneshop/fault"
	"phoneshop/notify/outbox"
)

// Dialect is what differs between SQL engines.
type Dialect interface {
	// IsDuplicate reports whether err is a unique-key violation.
	IsDuplicate(err error) bool
	// OnConflict is the clause that ends a (multi-row) INSERT whose rows may meet
	// rows already there by the unique key: their update columns are set from the
	// row inserted, or, with no update columns, the row there is left as it is.
	OnConflict(key, update []string) string
	// IsRetryable reports whether err rolled the transaction back whole and running
	// it again may succeed (a deadlock, a lock wait timeout).
	IsRetryable(err error) bool
	// SingleWriter reports whether the engine takes one writer at a time.
	SingleWriter() bool
	// BatchTxOptions are the options of a group-commit transaction (nil: defaults).
	BatchTxOptions() *sql.TxOptions
	// IsUnavailable reports whether err says the engine could not serve now (busy,
	// locked, shutting down, read-only, out of connections) rather than that the
	// statement is wrong.
	IsUnavailable(err error) bool
}

// Store is the shop's SQL store. Writes go through writer; reads through reader
// (the same pool on servers; SQLite keeps a single writer connection).
type Store struct {
	writer    *sql.DB
	reader    *sql.DB
	dialect   Dialect
	tables    tables
	now       func() time.Time
	committer *committer // nil: every snapshot write commits on its own
	loader    *loader    // nil: every snapshot read runs on its own
}

// New returns a store on already-migrated databases; it owns them (Close closes
// them). writer and reader may be the same pool.
func New(writer, reader *sql.DB, dialect Dialect) *Store {
	return &Store{writer: writer, reader: reader, dialect: dialect, tables: newTables(dialect), now: time.Now}
}

// SingleWriter reports whether the engine takes one writer at a time (SQLite).
func (s *Store) SingleWriter() bool { return s.dialect.SingleWriter() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.writer.PingContext(ctx) }

// Close stops group commit (after the writes queued) and closes the pools.
func (s *Store) Close() error {
	if s.committer != nil {
		s.committer.close()
	}
	if s.loader != nil {
		s.loader.close()
	}
	if s.reader == s.writer {
		return s.writer.Close()
	}
	return errors.Join(s.reader.Close(), s.writer.Close())
}

// classify marks *err as fault.ErrUnavailable when the database did not serve the
// call (unreachable, a dropped connection, out of time, busy), so that callers
// answer it with "retry later"; any other error stays as it is: a bug. Every
// exported method that reaches the database defers it.
func (s *Store) classify(err *error) {
	if *err != nil && s.unavailable(*err) {
		*err = fault.Unavailable(*err)
	}
}

func (s *Store) unavailable(err error) bool {
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, errClosed),
		errors.As(err, &netErr):
		return true
	}
	return s.dialect.IsUnavailable(err)
}

// errClosed is what a write queued for group commit gets when the store closes.
var errClosed = errors.New("sqlstore: closed")

// Snapshot kinds as stored in grain_snapshots.kind.
const (
	kindInventory = "inventory"
	kindCart      = "cart"
	kindOrder     = "order"
)

func (s *Store) loadSnapshot(ctx context.Context, kind, id string) (snapshot.Snapshot, error) {
	if s.loader != nil {
		return s.loadBatched(ctx, kind, id)
	}
	var snap snapshot.Snapshot
	err := s.reader.QueryRowContext(ctx,
		`SELECT version, state FROM grain_snapshots WHERE kind = ? AND id = ?`, kind, id).Scan(&snap.Version, &snap.State)
	if errors.Is(err, sql.ErrNoRows) {
		return snapshot.Snapshot{}, nil
	}
	if err != nil {
		return snapshot.Snapshot{}, fmt.Errorf("load %s %s: %w", kind, id, err)
	}
	return snap, nil
}

// saveSnapshot writes a fenced snapshot inside tx: insert when expectedVersion is 0,
// else update only the row still at expectedVersion.
func (s *Store) saveSnapshot(ctx context.Context, tx *sql.Tx, kind, id string, expectedVersion int64, state []byte) error {
	now := s.now().UnixMicro()
	if expectedVersion == 0 {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO grain_snapshots (kind, id, version, state, updated_at) VALUES (?, ?, 1, ?, ?)`, kind, id, state, now)
		if s.dialect.IsDuplicate(err) {
			return snapshot.ErrStale
		}
		return err
	}
	res, err := tx.ExecContext(ctx,
		`UPDATE grain_snapshots SET version = version + 1, state = ?, updated_at = ? WHERE kind = ? AND id = ? AND version = ?`,
		state, now, kind, id, expectedVersion)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return snapshot.ErrStale
	}
	return nil
}

// errBatchFenced says a batch written whole met a fence that refused one of its
// writes, or carried two writes of one grain (two activations: at most one may win).
var errBatchFenced = errors.New("sqlstore: a write of the batch was fenced off")

// maxSnapshotsPerStatement bounds the snapshots one multi-row statement carries.
const maxSnapshotsPerStatement = 512

// saveBatch writes every snapshot of batch and every row they carry inside tx with
// a constant number of statements: one fenced UPDATE per kind of grain for the
// snapshots that exist, one INSERT for the first versions, then one statement per
// table of rows. The fence is the same as saveSnapshot's, for many rows at once:
// each row is updated only at the version its writer loaded, and an UPDATE that
// changed fewer rows than it carried, or an INSERT that met a row already there,
// fails the batch with errBatchFenced (the caller rolls back and writes the batch
// a write at a time, so that the refused writes fail alone). Writes go in
// (kind, id) order, so batches committing side by side lock rows in one order.
func (s *Store) saveBatch(ctx context.Context, tx *sql.Tx, batch []*write) error {
	ws := slices.Clone(batch)
	slices.SortFunc(ws, func(a, b *write) int {
		return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.id, b.id))
	})
	now := s.now().UnixMicro()
	var inserts []*write
	var rows []row
	for i, w := range ws {
		if i > 0 && w.kind == ws[i-1].kind && w.id == ws[i-1].id {
			return errBatchFenced
		}
		if w.expected == 0 {
			inserts = append(inserts, w)
		}
		for _, b := range w.born {
			// A first snapshot carried by another write: one row of the INSERT,
			// which meets any row already there (or another write's) as a fence.
			inserts = append(inserts, &write{kind: b.kind, id: b.id, state: b.state})
		}
		rows = append(rows, w.rows...)
	}
	for start := 0; start < len(ws); {
		// One kind's updates, up to maxSnapshotsPerStatement of them.
		kind := ws[start].kind
		var updates []*write
		end := start
		for ; end < len(ws) && ws[end].kind == kind && len(updates) < maxSnapshotsPerStatement; end++ {
			if ws[end].expected != 0 {
				updates = append(updates, ws[end])
			}
		}
		start = end
		if len(updates) == 0 {
			continue
		}
		var q strings.Builder
		args := make([]any, 0, 4*len(updates)+2)
		q.WriteString(`UPDATE grain_snapshots SET version = version + 1, updated_at = ?, state = CASE id`)
		args = append(args, now)
		for _, w := range updates {
			q.WriteString(` WHEN ? THEN ?`)
			args = append(args, w.id, w.state)
		}
		q.WriteString(` END WHERE kind = ? AND (`)
		args = append(args, kind)
		for i, w := range updates {
			if i > 0 {
				q.WriteString(` OR `)
			}
			q.WriteString(`(id = ? AND version = ?)`)
			args = append(args, w.id, w.expected)
		}
		q.WriteString(`)`)
		res, err := tx.ExecContext(ctx, q.String(), args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n != int64(len(updates)) {
			return errBatchFenced
		}
	}
	for start := 0; start < len(inserts); start += maxSnapshotsPerStatement {
		chunk := inserts[start:min(start+maxSnapshotsPerStatement, len(inserts))]
		args := make([]any, 0, 4*len(chunk))
		for _, w := range chunk {
			args = append(args, w.kind, w.id, w.state, now)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO grain_snapshots (kind, id, version, state, updated_at) VALUES (?, ?, 1, ?, ?)`+
			strings.Repeat(`, (?, ?, 1, ?, ?)`, len(chunk)-1), args...)
		if s.dialect.IsDuplicate(err) {
			return errBatchFenced
		}
		if err != nil {
			return err
		}
	}
	return writeRows(ctx, tx, rows)
}

// inTx runs f in a write transaction and commits it.
func (s *Store) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	return s.inTxWith(ctx, nil, f)
}

func (s *Store) inTxWith(ctx context.Context, opts *sql.TxOptions, f func(tx *sql.Tx) error) error {
	tx, err := s.writer.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// LoadInventory implements inventory.Store.
func (s *Store) LoadInventory(ctx context.Context, sku string) (_ snapshot.Snapshot, err error) {
	defer s.classify(&err)
	return s.loadSnapshot(ctx, kindInventory, sku)
}

// InventorySales implements inventory.Store: the SKU's sales made at or after
// since (zero: all of them). A sale stored before sales had times counts as made
// at the epoch's start.
func (s *Store) InventorySales(ctx context.Context, sku string, since time.Time) (_ map[string]inventory.Sale, err error) {
	defer s.classify(&err)
	q, args := `SELECT order_id, quantity, sold_at FROM inventory_sales WHERE sku = ?`, []any{sku}
	if !since.IsZero() {
		q, args = q+` AND sold_at >= ?`, append(args, since.UnixMicro())
	}
	rows, err := s.reader.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]inventory.Sale{}
	for rows.Next() {
		var id string
		var sale inventory.Sale
		var at int64
		if err := rows.Scan(&id, &sale.Quantity, &at); err != nil {
			return nil, err
		}
		sale.At = time.UnixMicro(at).UTC()
		out[id] = sale
	}
	return out, rows.Err()
}

// InventorySale implements inventory.Store: one order's sale of the SKU.
func (s *Store) InventorySale(ctx context.Context, sku, orderID string) (_ inventory.Sale, found bool, err error) {
	defer s.classify(&err)
	var sale inventory.Sale
	var at int64
	err = s.reader.QueryRowContext(ctx, `SELECT quantity, sold_at FROM inventory_sales WHERE sku = ? AND order_id = ?`,
		sku, orderID).Scan(&sale.Quantity, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return inventory.Sale{}, false, nil
	}
	if err != nil {
		return inventory.Sale{}, false, err
	}
	sale.At = time.UnixMicro(at).UTC()
	return sale, true, nil
}

// InventoryReceipt implements inventory.Store: one delivery the SKU received.
func (s *Store) InventoryReceipt(ctx context.Context, sku, requestID string) (_ inventory.Receipt, found bool, err error) {
	defer s.classify(&err)
	r := inventory.Receipt{RequestID: requestID}
	err = s.reader.QueryRowContext(ctx, `SELECT quantity FROM inventory_receipts WHERE sku = ? AND request_id = ?`,
		sku, requestID).Scan(&r.Quantity)
	if errors.Is(err, sql.ErrNoRows) {
		return inventory.Receipt{}, false, nil
	}
	if err != nil {
		return inventory.Receipt{}, false, err
	}
	return r, true, nil
}

// ledger is a table of per-order rows beside a grain's snapshot: an inventory
// item's sales, a campaign's grants. A write adds and deletes only its own rows.
type ledger struct{ table, owner string }

var (
	salesLedger  = ledger{table: "inventory_sales", owner: "sku"}
	grantsLedger = ledger{table: "promo_grants", owner: "promo_id"}
)

// SaveInventory implements inventory.Store: the snapshot, the ledgers' changes and
// the stock level in one transaction.
func (s *Store) SaveInventory(ctx context.Context, sku string, expectedVersion int64, state []byte, l inventory.Level, change inventory.LedgerChange) (err error) {
	defer s.classify(&err)
	rows := make([]row, 0, len(change.Returned)+len(change.Added)+len(change.Receipts)+1)
	for _, id := range change.Returned {
		rows = append(rows, row{s.tables.salesDelete, []any{sku, id}})
	}
	for id, sale := range change.Added {
		rows = append(rows, row{s.tables.salesInsert, []any{sku, id, sale.Quantity, sale.At.UnixMicro()}})
	}
	now := s.now().UnixMicro()
	for _, r := range change.Receipts {
		rows = append(rows, row{s.tables.receiptInsert, []any{sku, r.RequestID, r.Quantity, now}})
	}
	rows = append(rows, row{s.tables.stockLevel, []any{sku, l.Available, l.Reserved, l.Sold, l.Received, now}})
	w := &write{kind: kindInventory, id: sku, expected: expectedVersion, state: state}
	for id, st := range change.Born {
		// The order born in its sale: its first snapshot, its listing row and
		// its event, as its grain's first save would write them.
		o, err := order.Decode(st)
		if err != nil {
			return fmt.Errorf("order %s born in a sale of %s: %w", id, sku, err)
		}
		if o.ID != id {
			return fmt.Errorf("order %s born in a sale of %s: the snapshot is of order %q", id, sku, o.ID)
		}
		r, events, err := order.Record(o)
		if err != nil {
			return err
		}
		w.born = append(w.born, born{kind: kindOrder, id: id, state: st})
		rows = append(rows, s.orderRow(r))
		rows = append(rows, s.eventRows(events)...)
	}
	w.rows = rows
	return s.saveWrite(ctx, w)
}

// LoadCart implements cart.Store.
func (s *Store) LoadCart(ctx context.Context, accountID string) (_ snapshot.Snapshot, err error) {
	defer s.classify(&err)
	return s.loadSnapshot(ctx, kindCart, accountID)
}

// SaveCart implements cart.Store.
func (s *Store) SaveCart(ctx context.Context, accountID string, expectedVersion int64, state []byte) (err error) {
	defer s.classify(&err)
	return s.saveFenced(ctx, kindCart, accountID, expectedVersion, state, nil)
}

// CartCheckedOut implements cart.Store: the account's confirmed order placed from
// the highest cart revision.
func (s *Store) CartCheckedOut(ctx context.Context, accountID string) (_ cart.Checkout, err error) {
	defer s.classify(&err)
	var c cart.Checkout
	err = s.reader.QueryRowContext(ctx, `SELECT id, cart_revision FROM orders WHERE account_id = ? AND cart_revision > 0
		AND status IN `+boughtStatuses+` ORDER BY cart_revision DESC LIMIT 1`, accountID).Scan(&c.OrderID, &c.Revision)
	if errors.Is(err, sql.ErrNoRows) {
		return cart.Checkout{}, nil
	}
	return c, err
}

// LoadOrder implements order.Store.
func (s *Store) LoadOrder(ctx context.Context, id string) (_ snapshot.Snapshot, err error) {
	defer s.classify(&err)
	return s.loadSnapshot(ctx, kindOrder, id)
}

// SaveOrder implements order.Store: the snapshot, its listing row and the events
// of the write in one transaction.
func (s *Store) SaveOrder(ctx context.Context, expectedVersion int64, state []byte, r order.Row, events []outbox.Event) (err error) {
	defer s.classify(&err)
	rows := append([]row{s.orderRow(r)}, s.eventRows(events)...)
	return s.saveFenced(ctx, kindOrder, r.ID, expectedVersion, state, rows)
}

// orderRow is an order's listing row.
func (s *Store) orderRow(r order.Row) row {
	return row{s.tables.order, []any{r.ID, r.AccountID, string(r.Status), r.TotalCents,
		r.CreatedAt.UnixMicro(), r.UpdatedAt.UnixMicro(), r.CartRevision}}
}

// listedStatuses are the statuses an account sees in its order history: an order
// whose checkout is still running or was rejected is not (yet) an order to them. A
// parked saga (needs_attention) is listed as where it stopped.
const listedStatuses = `('confirmed','cancelling','cancelled','shipped','delivered','needs_attention')`

// boughtStatuses are those of an order that bought its cart's lines: a parked saga
// may not have, so its cart keeps them.
const boughtStatuses = `('confirmed','cancelling','cancelled','shipped','delivered')`

// ListOrders returns a page of an account's order history: up to limit orders,
// newest first, starting after the cursor (nil: from the newest). The page's Next
// is the last row's (created_at, id), set only when another order follows.
func (s *Store) ListOrders(ctx context.Context, accountID string, limit int, after *order.ListCursor) (_ order.HistoryPage, err error) {
	defer s.classify(&err)
	if limit < 1 {
		return order.HistoryPage{}, fmt.Errorf("sqlstore: list orders: limit %d, want at least 1", limit)
	}
	q := `SELECT o.id, o.created_at, g.state FROM orders o JOIN grain_snapshots g ON g.kind = 'order' AND g.id = o.id
		WHERE o.account_id = ? AND o.status IN ` + listedStatuses
	args := []any{accountID}
	if after != nil {
		c := after.CreatedAt.UnixMicro()
		q += ` AND (o.created_at < ? OR (o.created_at = ? AND o.id < ?))`
		args = append(args, c, c, after.ID)
	}
	// One row more than the page says whether another page follows.
	q += ` ORDER BY o.created_at DESC, o.id DESC LIMIT ?`
	args = append(args, limit+1)
	rows, err := s.reader.QueryContext(ctx, q, args...)
	if err != nil {
		return order.HistoryPage{}, err
	}
	defer rows.Close()
	var page order.HistoryPage
	var last order.ListCursor
	for rows.Next() {
		if len(page.Orders) == limit {
			page.Next = &last
			break
		}
		var created int64
		var state []byte
		if err := rows.Scan(&last.ID, &created, &state); err != nil {
			return order.HistoryPage{}, err
		}
		last.CreatedAt = time.UnixMicro(created).UTC()
		o, err := order.Decode(state)
		if err != nil {
			return order.HistoryPage{}, fmt.Errorf("order %s: decode snapshot: %w", last.ID, err)
		}
		page.Orders = append(page.Orders, o)
	}
	if err := rows.Err(); err != nil {
		return order.HistoryPage{}, err
	}
	return page, nil
}

// OrderByID reads one order as its last durable write left it, from the order's
// listing row and snapshot: what the edge answers an order read with, and how it
// learns that an id names an order (and whose) before it calls the order's grain.
// A checkout that is still running before its first write, or was rejected, is no
// order yet: order.ErrNotFound, as for an id that names nothing.
func (s *Store) OrderByID(ctx context.Context, id string) (_ *order.Order, err error) {
	defer s.classify(&err)
	var state []byte
	err = s.reader.QueryRowContext(ctx, `SELECT g.state FROM orders o JOIN grain_snapshots g ON g.kind = 'order' AND g.id = o.id
		WHERE o.id = ? AND o.status NOT IN ('pending','rejected')`, id).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, order.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	o, err := order.Decode(state)
	if err != nil {
		return nil, fmt.Errorf("order %s: decode snapshot: %w", id, err)
	}
	return o, nil
}

// opsStatuses are the statuses ops list when they name none: every order that
// exists for its buyer.
const opsStatuses = `('committing','confirmed','cancelling','cancelled','shipped','delivered','needs_attention')`

// ListAllOrders returns a page of the orders of every account, as ops list them
// (see order.OpsQuery), each with its account's e-mail address.
func (s *Store) ListAllOrders(ctx context.Context, q order.OpsQuery) (_ order.OpsPage, err error) {
	defer s.classify(&err)
	if q.Limit < 1 {
		return order.OpsPage{}, fmt.Errorf("sqlstore: list all orders: limit %d, want at least 1", q.Limit)
	}
	query := `SELECT o.id, o.created_at, g.state, COALESCE(a.email, '') FROM orders o
		JOIN grain_snapshots g ON g.kind = 'order' AND g.id = o.id
		LEFT JOIN accounts a ON a.id = o.account_id WHERE `
	var args []any
	if q.Status != "" {
		query += `o.status = ?`
		args = append(args, string(q.Status))
	} else {
		query += `o.status IN ` + opsStatuses
	}
	if q.AccountID != "" {
		query += ` AND o.account_id = ?`
		args = append(args, q.AccountID)
	}
	cmpOp, dir := "<", "DESC"
	if q.OldestFirst {
		cmpOp, dir = ">", "ASC"
	}
	if q.After != nil {
		c := q.After.CreatedAt.UnixMicro()
		query += ` AND (o.created_at ` + cmpOp + ` ? OR (o.created_at = ? AND o.id ` + cmpOp + ` ?))`
		args = append(args, c, c, q.After.ID)
	}
	query += ` ORDER BY o.created_at ` + dir + `, o.id ` + dir + ` LIMIT ?`
	args = append(args, q.Limit+1)
	rows, err := s.reader.QueryContext(ctx, query, args...)
	if err != nil {
		return order.OpsPage{}, err
	}
	defer rows.Close()
	var page order.OpsPage
	var last order.ListCursor
	for rows.Next() {
		if len(page.Orders) == q.Limit {
			page.Next = &last
			break
		}
		var created int64
		var state []byte
		var email string
		if err := rows.Scan(&last.ID, &created, &state, &email); err != nil {
			return order.OpsPage{}, err
		}
		last.CreatedAt = time.UnixMicro(created).UTC()
		o, err := order.Decode(state)
		if err != nil {
			return order.OpsPage{}, fmt.Errorf("order %s: decode snapshot: %w", last.ID, err)
		}
		page.Orders = append(page.Orders, order.OpsOrder{Order: o, Email: email})
	}
	return page, rows.Err()
}

// UnfinishedOrders lists the ids of orders whose saga was interrupted (committing or
// cancelling), so that a starting node can resume them.
func (s *Store) UnfinishedOrders(ctx context.Context) (_ []string, err error) {
	defer s.classify(&err)
	return s.queryIDs(ctx, `SELECT id FROM orders WHERE status IN ('committing','cancelling') ORDER BY created_at`)
}

// queryIDs runs a query of one string column and returns its values.
func (s *Store) queryIDs(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := s.reader.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// CreateAccount implements account.Store: an account whose address is not verified
// is written with its first verification mail's event, in one transaction.
func (s *Store) CreateAccount(ctx context.Context, a account.Account) (err error) {
	defer s.classify(&err)
	roles := make([]string, len(a.Roles))
	for i, r := range a.Roles {
		roles[i] = string(r)
	}
	var events []outbox.Event
	var sentAt int64
	if !a.EmailVerified {
		e, err := outbox.AccountVerificationEvent(a.ID, a.CreatedAt)
		if err != nil {
			return err
		}
		events, sentAt = append(events, e), a.CreatedAt.UnixMicro()
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO accounts (id, email, name, password_hash, roles, created_at, promo_emails, email_verified, verification_sent_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.Email, a.Name, a.PasswordHash, strings.Join(roles, ","), a.CreatedAt.UnixMicro(), a.PromoEmails,
			a.EmailVerified, sentAt); err != nil {
			return err
		}
		return writeRows(ctx, tx, s.eventRows(events))
	})
	if s.dialect.IsDuplicate(err) {
		return account.ErrEmailTaken
	}
	return err
}

// RequestVerification implements account.Store: the time it was asked for and the
// mail's event in one transaction, the time a compare-and-set on the one read, so
// that two requests at once queue one mail.
func (s *Store) RequestVerification(ctx context.Context, id string, now time.Time, resendAfter time.Duration) (_ time.Duration, err error) {
	defer s.classify(&err)
	var verified bool
	var sentAt int64
	err = s.writer.QueryRowContext(ctx, `SELECT email_verified, verification_sent_at FROM accounts WHERE id = ?`, id).
		Scan(&verified, &sentAt)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, account.ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	if verified {
		return 0, account.ErrAlreadyVerified
	}
	if wait := time.UnixMicro(sentAt).Add(resendAfter).Sub(now); sentAt > 0 && wait > 0 {
		return wait, nil
	}
	e, err := outbox.AccountVerificationEvent(id, now)
	if err != nil {
		return 0, err
	}
	var landed bool
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE accounts SET verification_sent_at = ?
			WHERE id = ? AND verification_sent_at = ? AND email_verified = ?`, now.UnixMicro(), id, sentAt, false)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return err // another request (or the verification) came first: queue nothing
		}
		landed = true
		return writeRows(ctx, tx, s.eventRows([]outbox.Event{e}))
	})
	if err != nil || landed {
		return 0, err
	}
	// Lost the race: say what the winner left.
	return s.RequestVerification(ctx, id, now, resendAfter)
}

// AccountByEmail implements account.Store.
func (s *Store) AccountByEmail(ctx context.Context, email string) (_ account.Account, err error) {
	defer s.classify(&err)
	return s.account(ctx, `email = ?`, email)
}

// AccountByID implements account.Store.
func (s *Store) AccountByID(ctx context.Context, id string) (_ account.Account, err error) {
	defer s.classify(&err)
	return s.account(ctx, `id = ?`, id)
}

func (s *Store) account(ctx context.Context, where string, arg string) (account.Account, error) {
	var a account.Account
	var roles string
	var created int64
	err := s.reader.QueryRowContext(ctx,
		`SELECT id, email, name, password_hash, roles, created_at, promo_emails, email_verified FROM accounts WHERE `+where, arg).
		Scan(&a.ID, &a.Email, &a.Name, &a.PasswordHash, &roles, &created, &a.PromoEmails, &a.EmailVerified)
	if errors.Is(err, sql.ErrNoRows) {
		return account.Account{}, account.ErrNotFound
	}
	if err != nil {
		return account.Account{}, err
	}
	for _, r := range strings.Split(roles, ",") {
		a.Roles = append(a.Roles, account.Role(r))
	}
	a.CreatedAt = time.UnixMicro(created).UTC()
	return a, nil
}

// UpdateAccount implements account.Store as compare-and-set: the update lands only
// on the roles, preference and verification it was computed from, else it is
// computed again. An update that takes admin away holds the admins lock for its
// transaction and is refused with account.ErrLastAdmin when no other account would
// be admin: two admins demoting each other at once are serialised on that lock, and
// the second finds the first's change (a read after the lock sees every change
// committed before it).
func (s *Store) UpdateAccount(ctx context.Context, id string, update func(*account.Account) error) (_ account.Account, err error) {
	defer s.classify(&err)
	for attempt := 0; ; attempt++ {
		a, err := s.account(ctx, `id = ?`, id)
		if err != nil {
			return account.Account{}, err
		}
		before := a
		before.Roles = slices.Clone(a.Roles)
		if err := update(&a); err != nil {
			return account.Account{}, err
		}
		if account.SameStored(before, a) {
			return a, nil
		}
		var landed bool
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			if slices.Contains(before.Roles, account.RoleAdmin) && !slices.Contains(a.Roles, account.RoleAdmin) {
				if err := keepAnAdmin(ctx, tx, id); err != nil {
					return err
				}
			}
			res, err := tx.ExecContext(ctx, `UPDATE accounts SET roles = ?, promo_emails = ?, email_verified = ?
				WHERE id = ? AND roles = ? AND promo_emails = ? AND email_verified = ?`,
				joinRoles(a.Roles), a.PromoEmails, a.EmailVerified, id, joinRoles(before.Roles), before.PromoEmails, before.EmailVerified)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			landed = n == 1
			return err
		})
		if err != nil || landed {
			return a, err
		}
		// Another update landed first: every round one of the racers wins, so a
		// few dozen rounds serve any realistic race (an admin's clicks, a
		// shopper's preferences).
		if attempt == 50 {
			return account.Account{}, fmt.Errorf("update account %s: it kept changing under the update", id)
		}
	}
}

// keepAnAdmin takes the admins lock inside tx and fails with account.ErrLastAdmin
// unless an account other than id holds the admin role. The lock is a write, so it
// is held to the end of tx (a row lock on MySQL, the one writer on SQLite), and
// the count that follows reads after every change committed before the lock.
func keepAnAdmin(ctx context.Context, tx *sql.Tx, id string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE shop_locks SET n = n + 1 WHERE name = 'admins'`); err != nil {
		return err
	}
	var others int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts WHERE id <> ? AND
		(roles = 'admin' OR roles LIKE 'admin,%' OR roles LIKE '%,admin' OR roles LIKE '%,admin,%')`, id).Scan(&others); err != nil {
		return err
	}
	if others == 0 {
		return account.ErrLastAdmin
	}
	return nil
}

func joinRoles(roles []account.Role) string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return strings.Join(names, ",")
}

// CreateSession implements account.Store.
func (s *Store) CreateSession(ctx context.Context, sess account.Session) (err error) {
	defer s.classify(&err)
	_, err = s.writer.ExecContext(ctx,
		`INSERT INTO sessions (token_hash, account_id, expires_at, created_at) VALUES (?, ?, ?, ?)`,
		sess.TokenHash, sess.AccountID, sess.ExpiresAt.UnixMicro(), sess.CreatedAt.UnixMicro())
	return err
}

// SessionByTokenHash implements account.Store.
func (s *Store) SessionByTokenHash(ctx context.Context, tokenHash string) (_ account.Session, err error) {
	defer s.classify(&err)
	var sess account.Session
	var expires, created int64
	err = s.reader.QueryRowContext(ctx,
		`SELECT token_hash, account_id, expires_at, created_at FROM sessions WHERE token_hash = ?`, tokenHash).
		Scan(&sess.TokenHash, &sess.AccountID, &expires, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return account.Session{}, account.ErrSessionNotFound
	}
	if err != nil {
		return account.Session{}, err
	}
	sess.ExpiresAt, sess.CreatedAt = time.UnixMicro(expires).UTC(), time.UnixMicro(created).UTC()
	return sess, nil
}

// DeleteExpiredSessions implements account.SessionPurger: it deletes the sessions
// that expired before now and says how many.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (_ int64, err error) {
	defer s.classify(&err)
	res, err := s.writer.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < ?`, now.UnixMicro())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// DeleteSession implements account.Store.
func (s *Store) DeleteSession(ctx context.Context, tokenHash string) (err error) {
	defer s.classify(&err)
	_, err = s.writer.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = ?`, tokenHash)
	return err
}
