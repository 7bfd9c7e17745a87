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

// FinishDelivery records the end of the mail key: sent, failed or skipped, with
// what went wrong (cut to 1,000 characters) and the attempts it took, in one
// statement (one commit per mail). A mail is recorded once: when another end is
// stored already (a redelivered message handled twice at once), that first end is
// kept and returned.
func (s *Store) FinishDelivery(ctx context.Context, key delivery.Key, status delivery.Status, lastError string, attempts int, now time.Time) (_ delivery.Record, err error) {
	defer s.classify(&err)
	if !status.Valid() {
		return delivery.Record{}, fmt.Errorf("sqlstore: a delivery cannot end as %q", status)
	}
	rec := delivery.Record{Key: key, Status: status, Attempts: attempts, LastError: truncate(lastError, 1000), UpdatedAt: now.UTC()}
	_, err = s.writer.ExecContext(ctx, `INSERT INTO deliveries (kind, subject, recipient, status, attempts, last_error, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, key.Kind, key.Subject, key.Recipient, string(status), attempts, rec.LastError, now.UnixMicro())
	if s.dialect.IsDuplicate(err) {
		return s.Delivery(ctx, key)
	}
	if err != nil {
		return delivery.Record{}, err
	}
	return rec, nil
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

// Delivery reads one delivery; a mail not sent yet is a Record with no status.
func (s *Store) Delivery(ctx context.Context, key delivery.Key) (_ delivery.Record, err error) {
	defer s.classify(&err)
	rec := delivery.Record{Key: key}
	var status string
	var updated int64
	err = s.reader.QueryRowContext(ctx, `SELECT status, attempts, last_error, updated_at FROM deliveries
		WHERE kind = ? AND subject = ? AND recipient = ?`, key.Kind, key.Subject, key.Recipient).
		Scan(&status, &rec.Attempts, &rec.LastError, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return delivery.Record{Key: key}, nil
	}
	if err != nil {
		return delivery.Record{}, err
	}
	rec.Status, rec.UpdatedAt = delivery.Status(status), time.UnixMicro(updated).UTC()
	return rec, nil
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
// per account opted in to campaign e-mail whose address is verified (campaign
// mail goes to no address its owner did not prove theirs), by account id after where the last page
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
		rows, err := tx.QueryContext(ctx, `SELECT id FROM accounts WHERE promo_emails = ? AND email_verified = ? AND id > ?
			ORDER BY id LIMIT ?`, true, true, last, limit)
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
		if err := writeRows(ctx, tx, s.eventRows(events)); err != nil {
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
