// Package mailer turns the shop's mail messages into e-mail: a campaign's mail to
// one shopper (promo.email, from the campaign's fan-out) and an order's mail for
// each event (order.confirmed, order.cancelled, order.shipped). It sends each mail
// once: its delivery's end is recorded before the message is acknowledged, so a
// message delivered again after its mail went out is acknowledged without sending
// (at most the mails in flight when a mailer dies are sent twice: its prefetch
// window). One commit per mail: the record of its end.
//
// Handle decides; the queue adapter carries the decision out (ack, retry later,
// dead-letter).
package mailer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"phoneshop/account"
	"phoneshop/actors/order"
	"phoneshop/actors/promo"
	"phoneshop/notify/delivery"
	"phoneshop/notify/mail"
	"phoneshop/notify/outbox"
	"phoneshop/notify/queue"
)

// The outcomes of Handle, and the message it handles, are the queue's.
type (
	Outcome = queue.Outcome
	Message = queue.Message
)

const (
	Ack        = queue.Ack
	Retry      = queue.Retry
	DeadLetter = queue.DeadLetter
)

// Store is what the mailer reads and records.
type Store interface {
	Delivery(ctx context.Context, key delivery.Key) (delivery.Record, error)
	FinishDelivery(ctx context.Context, key delivery.Key, status delivery.Status, lastError string, attempts int, now time.Time) (delivery.Record, error)
	AccountByID(ctx context.Context, id string) (account.Account, error)
	PromoListing(ctx context.Context, id string) (promo.Listing, bool, error)
	FanOutPage(ctx context.Context, promoID string, limit int, now time.Time) (recipients int64, done bool, err error)
}

// fanOutPage is how many accounts one page of a campaign's fan-out takes: each page
// is one transaction writing that many promo.email events.
const fanOutPage = 500

// Config is what a mailer needs besides its store and sender.
type Config struct {
	// From is the sender of every mail ("phoneshop <shop@example.com>").
	From string
	// PublicURL is where shoppers reach the shop (unsubscribe links).
	PublicURL string
	// Unsubscribe signs the unsubscribe links of campaign mail.
	Unsubscribe *account.UnsubscribeTokens
	// Verification signs the links of verification mail.
	Verification *account.VerificationTokens
	// SendPerSec, when set, is read before every send: the most mails this
	// mailer sends per second (0: no pacing). A live setting: a change applies
	// to the next send.
	SendPerSec func() int
	Now        func() time.Time
	Logger     *slog.Logger
}

// Mailer handles mail messages.
type Mailer struct {
	store  Store
	sender mail.Sender
	cfg    Config
	// pace spaces the sends out at cfg.SendPerSec.
	pace   *rate.Limiter
	paceMu sync.Mutex
	paceAt int // the rate pace is set to (0: unlimited)
}

// New returns a mailer sending through sender.
func New(store Store, sender mail.Sender, cfg Config) *Mailer {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Mailer{store: store, sender: sender, cfg: cfg, pace: rate.NewLimiter(rate.Inf, 1)}
}

// waitTurn waits until the send rate lets one more mail go (at once when there is
// no limit).
func (m *Mailer) waitTurn(ctx context.Context) error {
	if m.cfg.SendPerSec == nil {
		return nil
	}
	perSec := m.cfg.SendPerSec()
	m.paceMu.Lock()
	if perSec != m.paceAt {
		m.paceAt = perSec
		if perSec <= 0 {
			m.pace.SetLimit(rate.Inf)
		} else {
			m.pace.SetLimit(rate.Limit(perSec))
			m.pace.SetBurst(1)
		}
	}
	m.paceMu.Unlock()
	return m.pace.Wait(ctx)
}

// errMalformed marks a message that can never be handled.
var errMalformed = errors.New("mailer: malformed message")

// Handle handles one message and says what becomes of it (a queue.Handler).
func (m *Mailer) Handle(ctx context.Context, msg Message) Outcome {
	var err error
	var outcome Outcome
	switch msg.RoutingKey {
	case outbox.PromoActivated:
		outcome, err = m.fanOut(ctx, msg)
	case outbox.PromoEmail:
		outcome, err = m.promoMail(ctx, msg)
	case outbox.OrderConfirmed, outbox.OrderCancelled, outbox.OrderShipped:
		outcome, err = m.orderMail(ctx, msg)
	case outbox.AccountVerification:
		outcome, err = m.verificationMail(ctx, msg)
	default:
		outcome, err = DeadLetter, fmt.Errorf("%w: no mail for routing key %q", errMalformed, msg.RoutingKey)
	}
	switch {
	case err == nil:
	case outcome == Retry:
		m.cfg.Logger.Warn("mail not sent yet; retrying later", "message", msg.ID, "routing_key", msg.RoutingKey, "err", err)
	default:
		m.cfg.Logger.Error("mail message dead-lettered", "message", msg.ID, "routing_key", msg.RoutingKey, "err", err)
	}
	return outcome
}

// fanOut turns a campaign's activation into one promo.email event per opted-in
// account, page by page; a fan-out interrupted (a crash, a store that did not
// answer) resumes where its last written page ended when the message comes again.
func (m *Mailer) fanOut(ctx context.Context, msg Message) (Outcome, error) {
	var p promo.ActivatedEvent
	if err := json.Unmarshal(msg.Body, &p); err != nil || p.PromoID == "" {
		return DeadLetter, fmt.Errorf("%w: promo.activated body %q", errMalformed, msg.Body)
	}
	for {
		recipients, done, err := m.store.FanOutPage(ctx, p.PromoID, fanOutPage, m.cfg.Now())
		if err != nil {
			return Retry, err
		}
		if done {
			m.cfg.Logger.Info("campaign fanned out", "promo", p.PromoID, "recipients", recipients)
			return Ack, nil
		}
	}
}

func (m *Mailer) promoMail(ctx context.Context, msg Message) (Outcome, error) {
	var p outbox.PromoEmailPayload
	if err := json.Unmarshal(msg.Body, &p); err != nil || p.PromoID == "" || p.AccountID == "" {
		return DeadLetter, fmt.Errorf("%w: promo.email body %q", errMalformed, msg.Body)
	}
	key := delivery.Key{Kind: delivery.KindPromo, Subject: p.PromoID, Recipient: p.AccountID}
	return m.deliver(ctx, key, msg.Attempt, func() (mail.Message, delivery.Status, error) {
		a, skip, err := m.recipient(ctx, p.AccountID)
		if skip != "" || err != nil {
			return mail.Message{}, skip, err
		}
		if !a.PromoEmails || !a.EmailVerified {
			return mail.Message{}, delivery.Skipped, nil // opted out since the fan-out (or never verified)
		}
		l, found, err := m.store.PromoListing(ctx, p.PromoID)
		if err != nil {
			return mail.Message{}, "", err
		}
		if !found {
			return mail.Message{}, "", fmt.Errorf("%w: campaign %s does not exist", errMalformed, p.PromoID)
		}
		return promoMessage(l, a, m.cfg), "", nil
	})
}

func (m *Mailer) orderMail(ctx context.Context, msg Message) (Outcome, error) {
	var p order.EventPayload
	if err := json.Unmarshal(msg.Body, &p); err != nil || p.OrderID == "" || p.AccountID == "" {
		return DeadLetter, fmt.Errorf("%w: %s body %q", errMalformed, msg.RoutingKey, msg.Body)
	}
	key := delivery.Key{Kind: msg.RoutingKey, Subject: p.OrderID, Recipient: p.AccountID}
	return m.deliver(ctx, key, msg.Attempt, func() (mail.Message, delivery.Status, error) {
		a, skip, err := m.recipient(ctx, p.AccountID)
		if skip != "" || err != nil {
			return mail.Message{}, skip, err
		}
		return orderMessage(msg.RoutingKey, p, a, m.cfg), "", nil
	})
}

// recipient reads the account a mail goes to; one that no longer exists is a mail
// to skip.
func (m *Mailer) recipient(ctx context.Context, id string) (account.Account, delivery.Status, error) {
	a, err := m.store.AccountByID(ctx, id)
	if errors.Is(err, account.ErrNotFound) {
		return account.Account{}, delivery.Skipped, nil
	}
	return a, "", err
}

// deliver runs one mail under its delivery guard. compose returns the mail, or an
// end to record without sending (skipped), or an error.
func (m *Mailer) deliver(ctx context.Context, key delivery.Key, attempt int, compose func() (mail.Message, delivery.Status, error)) (Outcome, error) {
	rec, err := m.store.Delivery(ctx, key)
	if err != nil {
		return Retry, err
	}
	if rec.Status != "" {
		return Ack, nil // done before: a redelivered message
	}
	msg, status, err := compose()
	switch {
	case errors.Is(err, errMalformed):
		return m.finish(ctx, key, delivery.Failed, err, attempt, DeadLetter)
	case err != nil:
		return Retry, err
	case status != "":
		return m.finish(ctx, key, status, nil, attempt, Ack)
	}
	if err := m.waitTurn(ctx); err != nil {
		return Retry, err // stopping: the delivery stays sending, the message comes back
	}
	err = m.sender.Send(ctx, msg)
	switch {
	case err == nil:
		return m.finish(ctx, key, delivery.Sent, nil, attempt, Ack)
	case errors.Is(err, mail.ErrPermanent):
		return m.finish(ctx, key, delivery.Failed, err, attempt, DeadLetter)
	default:
		// Temporary (4xx, the server or network away): nothing is recorded and
		// the message is tried again later.
		return Retry, err
	}
}

// finish records a delivery's end before the message's outcome is carried out. If
// the record cannot be written the message is retried: the mail may then go out
// twice, never not at all.
func (m *Mailer) finish(ctx context.Context, key delivery.Key, status delivery.Status, cause error, attempt int, outcome Outcome) (Outcome, error) {
	why := ""
	if cause != nil {
		why = cause.Error()
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := m.store.FinishDelivery(fctx, key, status, why, attempt, m.cfg.Now()); err != nil {
		return Retry, errors.Join(cause, err)
	}
	return outcome, cause
}
