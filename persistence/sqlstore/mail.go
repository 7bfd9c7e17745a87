package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"phoneshop/notify/delivery"
	"phoneshop/notify/outbox"
)

// BeginDelivery records an attempt at the mail key and returns the delivery as it
// now is: a new one is sending with 1 attempt; one still sending counts another
// attempt; a finished one (sent, failed, skipped) is returned unchanged, and the
// caller must not send.
func (s *Store) BeginDelivery(ctx context.Context, key delivery.Key, now time.Time) (_ delivery.Record, err error) {
	defer s.classify(&err)
	var rec delivery.Record
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var found bool
		if rec, found, err = readDelivery(ctx, tx, key); err != nil {
			return err
		}
		switch {
		case !found:
			rec = delivery.Record{Key: key, Status: delivery.Sending, Attempts: 1, UpdatedAt: now}
			_, err := tx.ExecContext(ctx, `INSERT INTO deliveries (kind, subject, recipient, status, attempts, last_error, updated_at)
				VALUES (?, ?, ?, ?, 1, '', ?)`, key.Kind, key.Subject, key.Recipient, string(delivery.Sending), now.UnixMicro())
			if s.dialect.IsDuplicate(err) {
				return errDeliveryRace
			}
			return err
		case rec.Status == delivery.Sending:
			rec.Attempts++
			rec.UpdatedAt = now
			res, err := tx.ExecContext(ctx, `UPDATE deliveries SET attempts = ?, updated_at = ?
				WHERE kind = ? AND subject = ? AND recipient = ? AND status = ? AND attempts = ?`,
				rec.Attempts, now.UnixMicro(), key.Kind, key.Subject, key.Recipient, string(delivery.Sending), rec.Attempts-1)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return errors.Join(err, errDeliveryRace)
			}
		}
		return nil
	})
	if errors.Is(err, errDeliveryRace) {
		// Another mailer began the same mail at the same moment (a redelivery
		// racing the first delivery): read what it left.
		return s.Delivery(ctx, key)
	}
	return rec, err
}

// errDeliveryRace: another writer changed the delivery between read and write.
var errDeliveryRace = errors.New("sqlstore: delivery changed concurrently")

// FinishDelivery ends a sending delivery as status (sent, failed or skipped), with
// what went wrong (cut to 1,000 characters). A delivery already finished keeps its
// first end: it reports the record as stored.
func (s *Store) FinishDelivery(ctx context.Context, key delivery.Key, status delivery.Status, lastError string, now time.Time) (_ delivery.Record, err error) {
	defer s.classify(&err)
	if !status.Final() {
		return delivery.Record{}, fmt.Errorf("sqlstore: a delivery cannot be finished as %q", status)
	}
	_, err = s.writer.ExecContext(ctx, `UPDATE deliveries SET status = ?, last_error = ?, updated_at = ?
		WHERE kind = ? AND subject = ? AND recipient = ? AND status = ?`,
		string(status), truncate(lastError, 1000), now.UnixMicro(), key.Kind, key.Subject, key.Recipient, string(delivery.Sending))
	if err != nil {
		return delivery.Record{}, err
	}
	return s.Delivery(ctx, key)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// Delivery reads one delivery; an unknown one is a zero Record with no status.
func (s *Store) Delivery(ctx context.Context, key delivery.Key) (_ delivery.Record, err error) {
	defer s.classify(&err)
	rec, _, err := readDelivery(ctx, s.reader, key)
	return rec, err
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func readDelivery(ctx context.Context, q querier, key delivery.Key) (delivery.Record, bool, error) {
	rec := delivery.Record{Key: key}
	var status string
	var updated int64
	err := q.QueryRowContext(ctx, `SELECT status, attempts, last_error, updated_at FROM deliveries
		WHERE kind = ? AND subject = ? AND recipient = ?`, key.Kind, key.Subject, key.Recipient).
		Scan(&status, &rec.Attempts, &rec.LastError, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return delivery.Record{Key: key}, false, nil
	}
	if err != nil {
		return rec, false, err
	}
	rec.Status, rec.UpdatedAt = delivery.Status(status), time.UnixMicro(updated).UTC()
	return rec, true, nil
}

// DeliveryCounts counts the deliveries of one subject (a campaign) by status.
func (s *Store) DeliveryCounts(ctx context.Context, kind, subject string) (_ map[delivery.Status]int64, err error) {
	defer s.classify(&err)
	rows, err := s.reader.QueryContext(ctx, `SELECT status, COUNT(*) FROM deliveries WHERE kind = ? AND subject = ? GROUP BY status`, kind, subject)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[delivery.Status]int64{}
	for rows.Next() {
		var status string
		var n int64
		if err := rows.Scan(&status, &n); err != nil {
			return nil, err
		}
		out[delivery.Status(status)] = n
	}
	return out, rows.Err()
}

// FanOutPage writes the next page of a campaign's fan-out: one promo.email event
// per account opted in to campaign e-mail, by account id after where the last page
// ended, and the new end, in one transaction; so a fan-out interrupted by a crash
// resumes where it stopped, and writes each account's event once. It reports the
// campaign's recipients so far and whether the fan-out is done (a page shorter
// than limit ends it; a done fan-out writes nothing more).
func (s *Store) FanOutPage(ctx context.Context, promoID string, limit int, now time.Time) (recipients int64, done bool, err error) {
	defer s.classify(&err)
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var last string
		err := tx.QueryRowContext(ctx, `SELECT last_account_id, recipients, done FROM fanouts WHERE promo_id = ?`, promoID).
			Scan(&last, &recipients, &done)
		fresh := errors.Is(err, sql.ErrNoRows)
		if err != nil && !fresh {
			return err
		}
		if done {
			return nil
		}
		rows, err := tx.QueryContext(ctx, `SELECT id FROM accounts WHERE promo_emails = ? AND id > ? ORDER BY id LIMIT ?`, true, last, limit)
		if err != nil {
			return err
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		events := make([]outbox.Event, 0, len(ids))
		for _, id := range ids {
			e, err := outbox.New(outbox.PromoEmail, promoID+":"+id, outbox.PromoEmailPayload{PromoID: promoID, AccountID: id}, now)
			if err != nil {
				return err
			}
			events = append(events, e)
		}
		if err := s.insertEvents(ctx, tx, events); err != nil {
			return err
		}
		if len(ids) > 0 {
			last = ids[len(ids)-1]
		}
		recipients += int64(len(ids))
		done = len(ids) < limit
		if fresh {
			_, err = tx.ExecContext(ctx, `INSERT INTO fanouts (promo_id, last_account_id, recipients, done, updated_at) VALUES (?, ?, ?, ?, ?)`,
				promoID, last, recipients, done, now.UnixMicro())
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE fanouts SET last_account_id = ?, recipients = ?, done = ?, updated_at = ? WHERE promo_id = ?`,
				last, recipients, done, now.UnixMicro(), promoID)
		}
		return err
	})
	return recipients, done, err
}

// Recipients is how many accounts a campaign's fan-out has reached (0: not begun).
func (s *Store) Recipients(ctx context.Context, promoID string) (_ int64, err error) {
	defer s.classify(&err)
	var n int64
	err = s.reader.QueryRowContext(ctx, `SELECT recipients FROM fanouts WHERE promo_id = ?`, promoID).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, err
}

// PromoMailStats reads the e-mail counts of campaigns ids (absent: all zero).
func (s *Store) PromoMailStats(ctx context.Context, ids []string) (_ map[string]delivery.CampaignStats, err error) {
	defer s.classify(&err)
	out := map[string]delivery.CampaignStats{}
	if len(ids) == 0 {
		return out, nil
	}
	in := `(?` + strings.Repeat(",?", len(ids)-1) + `)`
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT promo_id, recipients FROM fanouts WHERE promo_id IN `+in, args...)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			rows.Close()
			return nil, err
		}
		st := out[id]
		st.Recipients = n
		out[id] = st
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.reader.QueryContext(ctx, `SELECT subject, status, COUNT(*) FROM deliveries
		WHERE kind = ? AND subject IN `+in+` AND status IN (?, ?) GROUP BY subject, status`,
		append(append([]any{delivery.KindPromo}, args...), string(delivery.Sent), string(delivery.Failed))...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, status string
		var n int64
		if err := rows.Scan(&id, &status, &n); err != nil {
			return nil, err
		}
		st := out[id]
		if delivery.Status(status) == delivery.Sent {
			st.Sent = n
		} else {
			st.Failed = n
		}
		out[id] = st
	}
	return out, rows.Err()
}
