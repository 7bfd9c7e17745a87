package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"phoneshop/notify/outbox"
)

// insertEvents writes events inside the transaction of the snapshot that made them
// true. An event already written (its id names the fact) is left as it is: a fact
// is published once, whichever write recorded it first. Both engines roll back
// only the refused statement, not the transaction.
func (s *Store) insertEvents(ctx context.Context, tx *sql.Tx, events []outbox.Event) error {
	for _, e := range events {
		_, err := tx.ExecContext(ctx, `INSERT INTO outbox (id, routing_key, payload, created_at) VALUES (?, ?, ?, ?)`,
			e.ID, e.RoutingKey, e.Payload, e.CreatedAt.UnixMicro())
		if err != nil && !s.dialect.IsDuplicate(err) {
			return err
		}
	}
	return nil
}

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
