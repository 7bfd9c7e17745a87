package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"phoneshop/notify/outbox"
)

// UnpublishedEvents lists up to limit events not yet published, oldest first.
func (s *Store) UnpublishedEvents(ctx context.Context, limit int) (_ []outbox.Event, err error) {
	defer s.classify(&err)
	rows, err := s.reader.QueryContext(ctx, `SELECT id, routing_key, payload, created_at FROM outbox
		WHERE published_at IS NULL ORDER BY created_at, id LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []outbox.Event
	for rows.Next() {
		var e outbox.Event
		var created int64
		if err := rows.Scan(&e.ID, &e.RoutingKey, &e.Payload, &created); err != nil {
			return nil, err
		}
		e.CreatedAt = time.UnixMicro(created).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// ClaimEvents leases up to limit unpublished events to one relay until now+lease,
// oldest first, and returns them. An event leased to another relay whose lease has
// not run out is left alone, so relays running side by side publish each event
// once in normal operation; an event whose relay died is claimed again once its
// lease runs out (and may then be published twice: consumers recognise the
// Message-Id).
func (s *Store) ClaimEvents(ctx context.Context, now time.Time, lease time.Duration, limit int) (_ []outbox.Event, err error) {
	defer s.classify(&err)
	t := now.UnixMicro()
	rows, err := s.reader.QueryContext(ctx, `SELECT id, routing_key, payload, created_at, lease_until FROM outbox
		WHERE published_at IS NULL AND lease_until < ? ORDER BY created_at, id LIMIT ?`, t, limit)
	if err != nil {
		return nil, err
	}
	type candidate struct {
		outbox.Event
		leaseUntil int64
	}
	var found []candidate
	for rows.Next() {
		var c candidate
		var created int64
		if err := rows.Scan(&c.ID, &c.RoutingKey, &c.Payload, &created, &c.leaseUntil); err != nil {
			rows.Close()
			return nil, err
		}
		c.CreatedAt = time.UnixMicro(created).UTC()
		found = append(found, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	until := now.Add(lease).UnixMicro()
	var claimed []outbox.Event
	// One transaction for the batch: one commit (one log flush) per claim, not
	// one per event.
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		claimed = claimed[:0]
		for _, c := range found {
			// Compare-and-set on the lease this relay saw: of relays racing for
			// the row, one moves it.
			res, err := tx.ExecContext(ctx, `UPDATE outbox SET lease_until = ?
				WHERE id = ? AND published_at IS NULL AND lease_until = ?`, until, c.ID, c.leaseUntil)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 1 {
				claimed = append(claimed, c.Event)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return claimed, nil
}

// MarkPublished records that the broker confirmed the events ids.
func (s *Store) MarkPublished(ctx context.Context, ids []string, now time.Time) (err error) {
	defer s.classify(&err)
	if len(ids) == 0 {
		return nil
	}
	args := []any{now.UnixMicro()}
	for _, id := range ids {
		args = append(args, id)
	}
	_, err = s.writer.ExecContext(ctx, `UPDATE outbox SET published_at = ? WHERE published_at IS NULL AND id IN (?`+
		strings.Repeat(",?", len(ids)-1)+`)`, args...)
	return err
}

// OutboxBacklog counts the events not yet published and says when the oldest of
// them was written (zero when there is none).
func (s *Store) OutboxBacklog(ctx context.Context) (pending int64, oldest time.Time, err error) {
	defer s.classify(&err)
	var first sql.NullInt64
	if err := s.reader.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_at) FROM outbox WHERE published_at IS NULL`).
		Scan(&pending, &first); err != nil {
		return 0, time.Time{}, err
	}
	if first.Valid {
		oldest = time.UnixMicro(first.Int64).UTC()
	}
	return pending, oldest, nil
}

// PurgePublishedEvents deletes up to limit events published before before, oldest
// first, and says how many it deleted: one short transaction per call, so a purge
// of a large backlog runs in batches that never hold the table long. An event
// not yet published is never deleted.
//
// The outbox also recognises a fact written twice by its row; a fact written
// again after its row was purged would be published again, which the consumers'
// deliveries absorb. The retention is days, far beyond the seconds in which a
// grain writes one fact twice.
func (s *Store) PurgePublishedEvents(ctx context.Context, before time.Time, limit int) (_ int, err error) {
	defer s.classify(&err)
	// Ids first: MySQL and MariaDB take no LIMIT in an IN subquery.
	rows, err := s.reader.QueryContext(ctx, `SELECT id FROM outbox WHERE published_at < ? ORDER BY published_at LIMIT ?`,
		before.UnixMicro(), limit)
	if err != nil {
		return 0, err
	}
	var ids []any
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(ids) == 0 {
		return 0, err
	}
	res, err := s.writer.ExecContext(ctx, `DELETE FROM outbox WHERE published_at IS NOT NULL AND id IN (?`+
		strings.Repeat(",?", len(ids)-1)+`)`, ids...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}
