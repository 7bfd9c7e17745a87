// Package delivery is the record of each e-mail the shop sent (or gave up on), the
// guard that makes sending once per mail survive a redelivered message: the
// mailer records a mail's end (sent, failed, skipped) before it acknowledges the
// message, and a message whose mail has an end is acknowledged without sending.
// At most the mails sent but not yet recorded when a mailer dies go twice.
package delivery

import "time"

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

// Valid reports whether s is one of the ends.
func (s Status) Valid() bool { return s == Sent || s == Failed || s == Skipped }

// Record is one delivery.
type Record struct {
	Key
	Status    Status
	Attempts  int
	LastError string
	UpdatedAt time.Time
}

// CampaignStats are a campaign's e-mail counts: accounts its fan-out reached, mails
// sent and mails that failed for good.
type CampaignStats struct{ Recipients, Sent, Failed int64 }
