// Package mailer turns the shop's mail messages into e-mail: a campaign's mail to
// one shopper (promo.email, from the campaign's fan-out) and an order's mail for
// each event (order.confirmed, order.cancelled, order.shipped). It sends each mail
// once: it claims the mail's delivery before it sends (package delivery), so two
// copies of one event never send twice, and records the end before the message is
// acknowledged, so a message delivered again after its mail went out is
// acknowledged without sending (a mailer that dies between a send and its record
// leaves its claim to run out; that mail may then go twice).
//
// A temporary failure (the SMTP server away, a 4xx) never exhausts a message: the
// delivery records the attempt and when the next one is due, backing off from
// RetryFirst, doubling, up to RetryMax, and the message waits for it in the
// queue adapter's hold. The schedule lives in the store, not in the broker's
// delivery count, so an outage of hours loses nothing and dead-letters nothing;
// the mailer gives up (failed, dead-lettered, for ops to redrive) only once a mail
// has failed for RetryFor since its first attempt.
//
// Handle decides; the queue adapter carries the decision out (ack, retry after a
// wait, dead-letter).
package mailer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
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

var (
	Ack        = queue.Ack
	Retry      = queue.Retry
	DeadLetter = queue.DeadLetter
)

// Store is what the mailer reads and records.
type Store interface {
	ClaimDelivery(ctx context.Context, key delivery.Key, c delivery.Claim) (delivery.Record, bool, error)
	FinishDelivery(ctx context.Context, key delivery.Key, owner string, status delivery.Status, lastError string, now time.Time) (delivery.Record, error)
	RetryDelivery(ctx context.Context, key delivery.Key, owner, lastError string, now, next time.Time) (delivery.Record, error)
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
	// RetryFirst is the wait after a mail's first temporary failure; each
	// further one doubles it, up to RetryMax (defaults DefaultRetryFirst and
	// DefaultRetryMax).
	RetryFirst, RetryMax time.Duration
	// RetryFor is how long after its first attempt a mail that keeps failing
	// for temporary reasons is given up: failed and dead-lettered (default
	// DefaultRetryFor).
	RetryFor time.Duration
	// ClaimLease is how long a claim on a delivery holds (default
	// DefaultClaimLease): longer than composing and sending one mail can take
	// (the SMTP timeout), or a second copy could send while the first is still
	// sending. A mailer that dies mid-send blocks the mail this long.
	ClaimLease time.Duration
	// ClaimPoll is how often a copy that found its delivery claimed by another
	// looks again (default DefaultClaimPoll; sooner when the claim runs out).
	ClaimPoll time.Duration
	// ID names this mailer in its claims (default: host, process id and a
	// random suffix).
	ID     string
	Now    func() time.Time
	Logger *slog.Logger
}

// The defaults of Config.
const (
	DefaultRetryFirst = 30 * time.Second
	DefaultRetryMax   = time.Hour
	// DefaultRetryFor is three days, about what mail servers keep trying
	// (Postfix's maximal_queue_lifetime is five).
	DefaultRetryFor   = 72 * time.Hour
	DefaultClaimLease = 2 * time.Minute
	DefaultClaimPoll  = 5 * time.Second
)

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
	if cfg.RetryFirst <= 0 {
		cfg.RetryFirst = DefaultRetryFirst
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = DefaultRetryMax
	}
	cfg.RetryMax = max(cfg.RetryMax, cfg.RetryFirst)
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = DefaultRetryFor
	}
	if cfg.ClaimLease <= 0 {
		cfg.ClaimLease = DefaultClaimLease
	}
	if cfg.ClaimPoll <= 0 {
		cfg.ClaimPoll = DefaultClaimPoll
	}
	if cfg.ID == "" {
		cfg.ID = DefaultID()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Mailer{store: store, sender: sender, cfg: cfg, pace: rate.NewLimiter(rate.Inf, 1)}
}

// DefaultID names a mailer process: its host, its process id and a random
// suffix (a restarted process is another mailer).
func DefaultID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), randomHex(3))
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// backoff is the wait after a mail's attempts-th temporary failure.
func (m *Mailer) backoff(attempts int) time.Duration {
	d := m.cfg.RetryFirst
	for i := 1; i < attempts && d < m.cfg.RetryMax; i++ {
		d *= 2
	}
	return min(d, m.cfg.RetryMax)
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
	case outcome.Action == queue.ActRetry:
		m.cfg.Logger.Warn("mail not sent yet; retrying later", "message", msg.ID, "routing_key", msg.RoutingKey,
			"retry_in", outcome.After, "err", err)
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
	return m.deliver(ctx, msg, key, func() (mail.Message, delivery.Status, error) {
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
	return m.deliver(ctx, msg, key, func() (mail.Message, delivery.Status, error) {
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

// deliver runs one mail under its delivery's claim. compose returns the mail, or
// an end to record without sending (skipped), or an error.
func (m *Mailer) deliver(ctx context.Context, msg Message, key delivery.Key, compose func() (mail.Message, delivery.Status, error)) (Outcome, error) {
	// The send rate's wait comes before the claim, which must outlast only the
	// attempt itself: a claim held while the mailer waits its turn could run
	// out, and another copy take the mail over and send it too.
	if err := m.waitTurn(ctx); err != nil {
		return Retry, err // stopping: the message comes back
	}
	now := m.cfg.Now()
	owner := m.cfg.ID + "/" + randomHex(6)
	rec, claimed, err := m.store.ClaimDelivery(ctx, key, delivery.Claim{Owner: owner, Now: now, Lease: m.cfg.ClaimLease,
		ReopenFailedBefore: msg.RedrivenAt})
	if err != nil {
		return Retry, err
	}
	if !claimed {
		return m.notMine(rec, now), nil
	}
	c := claim{m: m, key: key, owner: owner, rec: rec}
	mailMsg, status, err := compose()
	switch {
	case errors.Is(err, errMalformed):
		return c.finish(ctx, delivery.Failed, err, DeadLetter)
	case err != nil:
		return c.retry(ctx, err)
	case status != "":
		return c.finish(ctx, status, nil, Ack)
	}
	err = m.sender.Send(ctx, mailMsg)
	switch {
	case err == nil:
		return c.finish(ctx, delivery.Sent, nil, Ack)
	case errors.Is(err, mail.ErrPermanent):
		return c.finish(ctx, delivery.Failed, err, DeadLetter)
	default:
		return c.retry(ctx, err)
	}
}

// notMine is what becomes of a message whose delivery this attempt could not
// claim: done with once the delivery has an end; otherwise it waits for the
// claim that holds to end (looking again every ClaimPoll at most) or for its
// next attempt to be due.
func (m *Mailer) notMine(rec delivery.Record, now time.Time) Outcome {
	switch rec.Status {
	case delivery.Sending:
		return queue.RetryAfter(min(rec.LeaseUntil.Sub(now), m.cfg.ClaimPoll))
	case delivery.Retrying:
		return queue.RetryAfter(rec.NextAttemptAt.Sub(now))
	}
	return Ack
}

// claim is one attempt at a delivery, claimed by owner.
type claim struct {
	m     *Mailer
	key   delivery.Key
	owner string
	rec   delivery.Record // as claimed
}

// recordTimeout bounds writing an attempt's outcome. It runs even when the mailer
// is stopping: a send that is not recorded may be sent again.
const recordTimeout = 5 * time.Second

// finish records the delivery's end before the message's outcome is carried out.
// If the record cannot be written the message is retried: the mail may then go
// out twice (once this claim has run out), never not at all. A claim lost
// meanwhile (it ran out and another copy took over) is not retried: that copy
// records the end.
func (c claim) finish(ctx context.Context, status delivery.Status, cause error, outcome Outcome) (Outcome, error) {
	why := ""
	if cause != nil {
		why = cause.Error()
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	_, err := c.m.store.FinishDelivery(fctx, c.key, c.owner, status, why, c.m.cfg.Now())
	switch {
	case errors.Is(err, delivery.ErrClaimLost):
		c.m.cfg.Logger.Warn("mail delivery claimed by another while this mailer held it", "kind", c.key.Kind,
			"subject", c.key.Subject, "recipient", c.key.Recipient, "end", status, "err", err)
		return Ack, cause
	case err != nil:
		return Retry, errors.Join(cause, err)
	}
	return outcome, cause
}

// retry records a temporary failure and when the next attempt is due (backing
// off by the attempts so far), and says to hold the message until then. A mail
// that has failed for RetryFor since its first attempt is given up instead. An
// attempt interrupted by the mailer's stop is due again at once.
func (c claim) retry(ctx context.Context, cause error) (Outcome, error) {
	m := c.m
	now := m.cfg.Now()
	if since := now.Sub(c.rec.FirstAttemptAt); since >= m.cfg.RetryFor {
		return c.finish(ctx, delivery.Failed, fmt.Errorf("given up after %d attempts in %s: %w",
			c.rec.Attempts, since.Round(time.Second), cause), DeadLetter)
	}
	wait := m.backoff(c.rec.Attempts)
	if ctx.Err() != nil {
		wait = 0
	}
	next := now.Add(wait)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if _, err := m.store.RetryDelivery(rctx, c.key, c.owner, cause.Error(), now, next); err != nil && !errors.Is(err, delivery.ErrClaimLost) {
		// The claim stays until its lease runs out; the message's next
		// delivery waits for that.
		return Retry, errors.Join(cause, err)
	}
	return queue.RetryAfter(wait), cause
}
