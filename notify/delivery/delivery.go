// Package delivery is the record of each e-mail the shop means to send, the guard
// that makes sending once per mail survive a redelivered message: the mailer
// begins a delivery before it sends, and finishes it (sent, failed, skipped)
// before it acknowledges the message. A message whose delivery has finished is
// acknowledged without sending.
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

// The statuses of a delivery. Sending is the only one that is not final: a mail
// begun but not finished (the mailer died, the server said "try later") is tried
// again; the others are never sent again.
const (
	Sending Status = "sending"
	Sent    Status = "sent"
	Failed  Status = "failed"
	// Skipped: the mail was not sent on purpose (the shopper opted out after the
	// campaign's fan-out).
	Skipped Status = "skipped"
)

// Final reports whether a delivery in s is done with.
func (s Status) Final() bool { return s != Sending }

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
