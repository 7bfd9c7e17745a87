package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"phoneshop/notify/delivery"
	"phoneshop/notify/outbox"
)

// deliveryColumns are the columns scanDelivery reads, in its order.
const deliveryColumns = `status, attempts, last_error, updated_at, owner, lease_until, next_attempt_at, first_attempt_at`

// scanDelivery reads one row of deliveryColumns into a record of key.
func scanDelivery(row interface{ Scan(...any) error }, key delivery.Key) (delivery.Record, error) {
	rec := delivery.Record{Key: key}
	var status string
	var updated, lease, next, first int64
	if err := row.Scan(&status, &rec.Attempts, &rec.LastError, &updated, &rec.Owner, &lease, &next, &first); err != nil {
		return delivery.Record{}, err
	}
	rec.Status, rec.UpdatedAt = delivery.Status(status), time.UnixMicro(updated).UTC()
	rec.LeaseUntil, rec.NextAttemptAt, rec.FirstAttemptAt = microsOrZero(lease), microsOrZero(next), microsOrZero(first)
	return rec, nil
}

func microsOrZero(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

func microsOf(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// Delivery reads one delivery; a mail not claimed yet is a Record with no status.
func (s *Store) Delivery(ctx context.Context, key delivery.Key) (_ delivery.Record, err error) {
	defer s.classify(&err)
	return s.readDelivery(ctx, key)
}

func (s *Store) readDelivery(ctx context.Context, key delivery.Key) (delivery.Record, error) {
	rec, err := scanDelivery(s.writer.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM deliveries
		WHERE kind = ? AND subject = ? AND recipient = ?`, key.Kind, key.Subject, key.Recipient), key)
	if errors.Is(err, sql.ErrNoRows) {
		return delivery.Record{Key: key}, nil
	}
	return rec, err
}

// claimRaces bounds how often ClaimDelivery reads again after another claimer
// moved the row between its read and its write.
const claimRaces = 5

// ClaimDelivery claims the mail key for one attempt (see package delivery): a
// mail never claimed gets a row (sending, attempt 1); a retrying one whose next
// attempt is due, or a sending one whose lease ran out (its mailer died
// mid-send), is taken over with one more attempt; so is a failed one when
// c.ReopenFailedBefore is after its failure (the give-up clock then starts
// again). Anything else is left as it is and returned with claimed false: an end
// (sent, failed, skipped), a claim that holds, a retry not due yet. Each move is
// a compare-and-set on the row as it was read, so of claimers racing, one wins.
func (s *Store) ClaimDelivery(ctx context.Context, key delivery.Key, c delivery.Claim) (_ delivery.Record, claimed bool, err error) {
	defer s.classify(&err)
	if c.Owner == "" || c.Lease <= 0 {
		return delivery.Record{}, false, errors.New("sqlstore: a claim needs an owner and a lease")
	}
	now, until := c.Now.UnixMicro(), c.Now.Add(c.Lease).UnixMicro()
	mine := delivery.Record{Key: key, Status: delivery.Sending, Owner: c.Owner, LeaseUntil: time.UnixMicro(until).UTC(),
		UpdatedAt: time.UnixMicro(now).UTC()}
	var cur delivery.Record
	for range claimRaces {
		if cur, err = s.readDelivery(ctx, key); err != nil {
			return delivery.Record{}, false, err
		}
		if cur.Status == "" {
			_, err = s.writer.ExecContext(ctx, `INSERT INTO deliveries (kind, subject, recipient, status, attempts, last_error,
				updated_at, owner, lease_until, next_attempt_at, first_attempt_at) VALUES (?, ?, ?, ?, 1, '', ?, ?, ?, 0, ?)`,
				key.Kind, key.Subject, key.Recipient, string(delivery.Sending), now, c.Owner, until, now)
			if s.dialect.IsDuplicate(err) {
				continue // another claimer's row: read it
			}
			if err != nil {
				return delivery.Record{}, false, err
			}
			mine.Attempts, mine.FirstAttemptAt = 1, mine.UpdatedAt
			return mine, true, nil
		}
		reopen := cur.Status == delivery.Failed && cur.UpdatedAt.Before(c.ReopenFailedBefore)
		switch {
		case cur.Status.Valid() && !reopen:
			return cur, false, nil
		case cur.Status == delivery.Sending && cur.LeaseUntil.After(c.Now):
			return cur, false, nil
		case cur.Status == delivery.Retrying && cur.NextAttemptAt.After(c.Now):
			return cur, false, nil
		}
		first := microsOf(cur.FirstAttemptAt)
		if reopen || first == 0 {
			first = now
		}
		res, err := s.writer.ExecContext(ctx, `UPDATE deliveries SET status = ?, attempts = attempts + 1, owner = ?,
			lease_until = ?, updated_at = ?, first_attempt_at = ?
			WHERE kind = ? AND subject = ? AND recipient = ? AND status = ? AND attempts = ? AND updated_at = ? AND owner = ?`,
			string(delivery.Sending), c.Owner, until, now, first,
			key.Kind, key.Subject, key.Recipient, string(cur.Status), cur.Attempts, cur.UpdatedAt.UnixMicro(), cur.Owner)
		if err != nil {
			return delivery.Record{}, false, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return delivery.Record{}, false, err
		} else if n == 1 {
			mine.Attempts, mine.LastError, mine.FirstAttemptAt = cur.Attempts+1, cur.LastError, time.UnixMicro(first).UTC()
			return mine, true, nil
		}
	}
	// Others kept moving the row: what it was last is not ours.
	return cur, false, nil
}

// FinishDelivery records the end of the mail key (sent, failed or skipped), with
// what went wrong (cut to 1,000 characters), under the caller's claim owner, in
// one statement (one commit per mail). When the claim is no longer the caller's
// (it ran out and another claimer took over, or an end is recorded already), the
// row is left as it is and returned with delivery.ErrClaimLost.
func (s *Store) FinishDelivery(ctx context.Context, key delivery.Key, owner string, status delivery.Status, lastError string, now time.Time) (_ delivery.Record, err error) {
	defer s.classify(&err)
	if !status.Valid() {
		return delivery.Record{}, fmt.Errorf("sqlstore: a delivery cannot end as %q", status)
	}
	return s.moveClaimed(ctx, key, owner, status, truncate(lastError, 1000), now, time.Time{})
}

// RetryDelivery records a temporary failure of the mail key under the caller's
// claim owner: the delivery is retrying, with the error (cut to 1,000
// characters), until next, when a claimer may try again. A claim no longer the
// caller's is delivery.ErrClaimLost, as for FinishDelivery.
func (s *Store) RetryDelivery(ctx context.Context, key delivery.Key, owner, lastError string, now, next time.Time) (_ delivery.Record, err error) {
	defer s.classify(&err)
	return s.moveClaimed(ctx, key, owner, delivery.Retrying, truncate(lastError, 1000), now, next)
}

// moveClaimed moves a delivery claimed by owner to status and releases the claim.
func (s *Store) moveClaimed(ctx context.Context, key delivery.Key, owner string, status delivery.Status, lastError string, now, next time.Time) (delivery.Record, error) {
	res, err := s.writer.ExecContext(ctx, `UPDATE deliveries SET status = ?, last_error = ?, updated_at = ?, owner = '',
		lease_until = 0, next_attempt_at = ?
		WHERE kind = ? AND subject = ? AND recipient = ? AND status = ? AND owner = ?`,
		string(status), lastError, now.UnixMicro(), microsOf(next),
		key.Kind, key.Subject, key.Recipient, string(delivery.Sending), owner)
	if err != nil {
		return delivery.Record{}, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return delivery.Record{}, err
	}
	rec, err := s.readDelivery(ctx, key)
	if err != nil {
		return delivery.Record{}, err
	}
	if n != 1 {
		return rec, fmt.Errorf("%w: %s %s %s is %q", delivery.ErrClaimLost, key.Kind, key.Subject, key.Recipient, rec.Status)
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

// ReportInFlight writes what the mailer mailerID holds unacknowledged now, per
// queue (the ops view adds up the mailers' reports: RabbitMQ does not tell a
// client), and deletes the reports no mailer has refreshed since forgetBefore.
func (s *Store) ReportInFlight(ctx context.Context, mailerID string, counts map[string]int64, now, forgetBefore time.Time) (err error) {
	defer s.classify(&err)
	if len(counts) == 0 {
		return nil
	}
	names := make([]string, 0, len(counts))
	for name := range counts {
		names = append(names, name)
	}
	slices.Sort(names)
	args := make([]any, 0, 4*len(names))
	for _, name := range names {
		args = append(args, mailerID, name, counts[name], now.UnixMicro())
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO mailer_status (mailer_id, queue_name, unacked, updated_at) VALUES (?, ?, ?, ?)`+
			strings.Repeat(", (?, ?, ?, ?)", len(names)-1)+
			s.dialect.OnConflict([]string{"mailer_id", "queue_name"}, []string{"unacked", "updated_at"}), args...); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM mailer_status WHERE updated_at < ?`, forgetBefore.UnixMicro())
		return err
	})
}

// ForgetMailer deletes the reports of mailerID (a mailer that stops).
func (s *Store) ForgetMailer(ctx context.Context, mailerID string) (err error) {
	defer s.classify(&err)
	_, err = s.writer.ExecContext(ctx, `DELETE FROM mailer_status WHERE mailer_id = ?`, mailerID)
	return err
}

// InFlight adds up, per queue, what the mailers reported unacknowledged at or
// after since (older reports are of mailers gone: their messages went back to the
// queue when their connections closed).
func (s *Store) InFlight(ctx context.Context, since time.Time) (_ map[string]int64, err error) {
	defer s.classify(&err)
	rows, err := s.reader.QueryContext(ctx, `SELECT queue_name, SUM(unacked) FROM mailer_status WHERE updated_at >= ? GROUP BY queue_name`,
		since.UnixMicro())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			return nil, err
		}
		out[name] = n
	}
	return out, rows.Err()
}
