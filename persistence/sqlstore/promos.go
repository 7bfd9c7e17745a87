package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"phoneshop/actors/promo"
	"phoneshop/actors/snapshot"
	"phoneshop/notify/outbox"
)

const kindPromo = "promo"

// LoadPromo implements promo.Store.
func (s *Store) LoadPromo(ctx context.Context, id string) (_ snapshot.Snapshot, err error) {
	defer s.classify(&err)
	return s.loadSnapshot(ctx, kindPromo, id)
}

// PromoGrants implements promo.Store: the campaign's grants made at or after
// since (zero: all of them). A grant stored before grants had times counts as
// made at the epoch's start.
func (s *Store) PromoGrants(ctx context.Context, id string, since time.Time) (_ map[string]promo.Grant, err error) {
	defer s.classify(&err)
	q, args := `SELECT order_id, units, account_id, granted_at FROM promo_grants WHERE promo_id = ?`, []any{id}
	if !since.IsZero() {
		q, args = q+` AND granted_at >= ?`, append(args, since.UnixMicro())
	}
	rows, err := s.reader.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]promo.Grant{}
	for rows.Next() {
		var order string
		var g promo.Grant
		var at int64
		if err := rows.Scan(&order, &g.Units, &g.AccountID, &at); err != nil {
			return nil, err
		}
		g.At = time.UnixMicro(at).UTC()
		out[order] = g
	}
	return out, rows.Err()
}

// PromoGrant implements promo.Store: one order's grant.
func (s *Store) PromoGrant(ctx context.Context, id, orderID string) (_ promo.Grant, found bool, err error) {
	defer s.classify(&err)
	var g promo.Grant
	var at int64
	err = s.reader.QueryRowContext(ctx, `SELECT units, account_id, granted_at FROM promo_grants WHERE promo_id = ? AND order_id = ?`,
		id, orderID).Scan(&g.Units, &g.AccountID, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return promo.Grant{}, false, nil
	}
	if err != nil {
		return promo.Grant{}, false, err
	}
	g.At = time.UnixMicro(at).UTC()
	return g, true, nil
}

// PromoCustomerUnits implements promo.Store: the units an account holds at the
// campaign's discount (0 when it holds none).
func (s *Store) PromoCustomerUnits(ctx context.Context, id, accountID string) (_ int64, err error) {
	defer s.classify(&err)
	var units int64
	err = s.reader.QueryRowContext(ctx, `SELECT units FROM promo_customers WHERE promo_id = ? AND account_id = ?`,
		id, accountID).Scan(&units)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return units, err
}

// SavePromo implements promo.Store: the snapshot, the ledgers' changes, the
// listing and the events of the write (the campaign's activation) in one
// transaction.
func (s *Store) SavePromo(ctx context.Context, expectedVersion int64, state []byte, l promo.Listing, change promo.GrantsChange, events []outbox.Event) (err error) {
	defer s.classify(&err)
	brands, err := json.Marshal(nonNil(l.Brands))
	if err != nil {
		return err
	}
	skus, err := json.Marshal(nonNil(l.SKUs))
	if err != nil {
		return err
	}
	rows := make([]row, 0, len(change.Returned)+len(change.Added)+len(change.Customers)+len(events)+1)
	for _, id := range change.Returned {
		rows = append(rows, row{s.tables.grantsDelete, []any{l.ID, id}})
	}
	for id, g := range change.Added {
		rows = append(rows, row{s.tables.grantsInsert, []any{l.ID, id, g.Units, g.AccountID, g.At.UnixMicro()}})
	}
	for account, units := range change.Customers {
		rows = append(rows, row{s.tables.customers, []any{l.ID, account, units}})
	}
	rows = append(rows, row{s.tables.promo, []any{l.ID, l.Name, l.Stage, l.PercentOff, string(brands), string(skus), l.StartsAt.UnixMicro(),
		l.EndsAt.UnixMicro(), l.MaxDiscountedUnits, l.EmailSubject, l.EmailBody, l.Activated, l.DiscountedUnits, l.Orders,
		l.MaxUnitsPerCustomer, l.CreatedAt.UnixMicro(), l.UpdatedAt.UnixMicro()}})
	return s.saveFenced(ctx, kindPromo, l.ID, expectedVersion, state, append(rows, s.eventRows(events)...))
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

const promoColumns = `id, name, stage, percent_off, brands, skus, starts_at, ends_at, max_discounted_units,
	email_subject, email_body, activated, discounted_units, orders, max_units_per_customer, created_at, updated_at`

// statusFilters select the listings of one status at a time given as the last
// argument(s), mirroring promo.Campaign.StatusAt.
var statusFilters = map[promo.Status]struct {
	where string
	nows  int
}{
	promo.StatusDraft:     {`stage = 'draft'`, 0},
	promo.StatusScheduled: {`stage = 'launched' AND starts_at > ? AND ends_at > ?`, 2},
	promo.StatusActive:    {`stage = 'launched' AND starts_at <= ? AND ends_at > ?`, 2},
	promo.StatusPaused:    {`stage = 'paused' AND ends_at > ?`, 1},
	promo.StatusEnded:     {`(stage = 'ended' OR (stage IN ('launched', 'paused') AND ends_at <= ?))`, 1},
}

// ListPromos implements the campaign listing: newest first, of one status when
// q.Status is set, after q.After.
func (s *Store) ListPromos(ctx context.Context, q promo.ListQuery) (_ []promo.Listing, err error) {
	defer s.classify(&err)
	var where []string
	var args []any
	if q.Status != "" {
		f, ok := statusFilters[q.Status]
		if !ok {
			return nil, fmt.Errorf("%w: unknown status %q", promo.ErrInvalid, q.Status)
		}
		where = append(where, f.where)
		for range f.nows {
			args = append(args, q.Now.UnixMicro())
		}
	}
	if q.After != nil {
		c := q.After.CreatedAt.UnixMicro()
		where = append(where, `(created_at < ? OR (created_at = ? AND id < ?))`)
		args = append(args, c, c, q.After.ID)
	}
	query := `SELECT ` + promoColumns + ` FROM promos`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, q.Limit)
	return s.queryPromos(ctx, query, args...)
}

// LivePromos implements promo.Lister: the campaigns launched and not past their end.
func (s *Store) LivePromos(ctx context.Context, now time.Time) (_ []promo.Listing, err error) {
	defer s.classify(&err)
	return s.queryPromos(ctx, `SELECT `+promoColumns+` FROM promos WHERE stage = 'launched' AND ends_at > ?`, now.UnixMicro())
}

// DuePromos lists the campaigns whose clock decided something no write has
// recorded yet: launched and past their end, or active and never activated. Their
// grains settle it when woken.
func (s *Store) DuePromos(ctx context.Context, now time.Time) (_ []string, err error) {
	defer s.classify(&err)
	t := now.UnixMicro()
	return s.queryIDs(ctx, `SELECT id FROM promos WHERE stage = 'launched'
		AND (ends_at <= ? OR (starts_at <= ? AND activated = ?))`, t, t, false)
}

func (s *Store) queryPromos(ctx context.Context, query string, args ...any) ([]promo.Listing, error) {
	rows, err := s.reader.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []promo.Listing
	for rows.Next() {
		var l promo.Listing
		var brands, skus string
		var starts, ends, created, updated int64
		if err := rows.Scan(&l.ID, &l.Name, &l.Stage, &l.PercentOff, &brands, &skus, &starts, &ends,
			&l.MaxDiscountedUnits, &l.EmailSubject, &l.EmailBody, &l.Activated, &l.DiscountedUnits, &l.Orders,
			&l.MaxUnitsPerCustomer, &created, &updated); err != nil {
			return nil, err
		}
		if err := errors.Join(json.Unmarshal([]byte(brands), &l.Brands), json.Unmarshal([]byte(skus), &l.SKUs)); err != nil {
			return nil, fmt.Errorf("promo %s: targets: %w", l.ID, err)
		}
		l.StartsAt, l.EndsAt = time.UnixMicro(starts).UTC(), time.UnixMicro(ends).UTC()
		l.CreatedAt, l.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
		out = append(out, l)
	}
	return out, rows.Err()
}

// PromoListing reads one campaign's listing; found is false for an unknown id.
func (s *Store) PromoListing(ctx context.Context, id string) (_ promo.Listing, found bool, err error) {
	defer s.classify(&err)
	ls, err := s.queryPromos(ctx, `SELECT `+promoColumns+` FROM promos WHERE id = ?`, id)
	if err != nil || len(ls) == 0 {
		return promo.Listing{}, false, err
	}
	return ls[0], true, nil
}
