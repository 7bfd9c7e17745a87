// Package delivery is the record of each e-mail the shop sends (or gives up on),
// the guard that makes sending once per mail survive redelivered and duplicated
// messages.
//
// Before it sends, a mailer claims the mail's delivery: a row under the mail's key
// with status sending, an owner (that claim's token) and a lease. Two copies of
// one event (the relay may publish an event twice, and two mailers may hold both
// copies at once) meet at that row: one claims it and sends, the other finds it
// claimed and waits, then finds it sent and is acknowledged. A mailer that dies
// mid-send leaves its claim to run out: when the lease is over another copy may
// claim it and send (the one case a mail may go twice: sent, but the mailer died
// before it recorded so).
//
// A temporary failure (the SMTP server away or answering 4xx) is recorded in the
// row (retrying, the attempts so far, the error, when the next attempt is due), so
// the schedule of a mail's attempts is the store's, not the broker's delivery
// count. Its end (sent, failed, skipped) is recorded before the message is
// acknowledged.
package delivery

import (
	"errors"
	"time"
)

// Key names one mail: a campaign's to one account (kind KindPromo, subject the
// campaign id, recipient the account id), or an order's for one event (kind the
// event's routing key, subject the order id, recipient the account id).
type Key struct {
	Kind, Subject, Recipient string
}

// KindPromo is the kind of campaign mail.
const KindPromo = "promo"

// Status is where a delivery is.
type Status string

// The ends of a delivery; a mail with none is not sent yet.
const (
	Sent   Status = "sent"
	Failed Status = "failed"
	// Skipped: the mail was not sent on purpose (the shopper opted out after the
	// campaign's fan-out).
	Skipped Status = "skipped"
)

// The states of a delivery on its way.
const (
	// Sending: claimed by Owner until LeaseUntil, which is trying it now.
	Sending Status = "sending"
	// Retrying: an attempt failed for a reason that may pass; the next is due at
	// NextAttemptAt.
	Retrying Status = "retrying"
)

// Valid reports whether s is one of the ends.
func (s Status) Valid() bool { return s == Sent || s == Failed || s == Skipped }

// Record is one delivery.
type Record struct {
	Key
	Status Status
	// Attempts counts the claims: each is one try to send (or to decide not to).
	Attempts  int
	LastError string
	UpdatedAt time.Time
	// Owner and LeaseUntil name the claim of a delivery that is Sending.
	Owner      string
	LeaseUntil time.Time
	// NextAttemptAt is when a Retrying delivery may be claimed again.
	NextAttemptAt time.Time
	// FirstAttemptAt is when the delivery was first claimed (the mailer gives up
	// on temporary failures some time after it).
	FirstAttemptAt time.Time
}

// Claim asks for a delivery.
type Claim struct {
	// Owner is the claim's token: unique to one attempt (two copies of one
	// message handled by one mailer are two claims).
	Owner string
	Now   time.Time
	// Lease is how long the claim holds: longer than an attempt can take.
	Lease time.Duration
	// ReopenFailedBefore, when set, lets a failed delivery whose failure was
	// recorded before this time be claimed again (an operator redrove its
	// message from the dead letters after that failure).
	ReopenFailedBefore time.Time
}

// CampaignStats are a campaign's e-mail counts: accounts its fan-out reached, mails
// sent and mails that failed for good.
type CampaignStats struct{ Recipients, Sent, Failed int64 }

// ErrClaimLost: the delivery is no longer claimed by the caller (its lease ran out
// and another claimer took over, or an end is recorded already).
var ErrClaimLost = errors.New("delivery: the claim is no longer the caller's")
