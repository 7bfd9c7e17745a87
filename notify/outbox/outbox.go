// Package outbox is the shape of the events the shop publishes: a grain writes an
// event in the same transaction as the snapshot that made it true, so no event is
// published for a change that did not commit (a fenced-off write inserts nothing),
// and none is lost after one. The relay publishes what is written here.
package outbox

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// The routing keys of the topic exchange phoneshop.events.
const (
	PromoActivated = "promo.activated"
	OrderConfirmed = "order.confirmed"
	OrderCancelled = "order.cancelled"
	OrderShipped   = "order.shipped"
	// PromoEmail is one campaign mail to one account, from a campaign's fan-out.
	PromoEmail = "promo.email"
	// AccountVerification is one e-mail verification mail: at sign-up, and each
	// time its owner asks for it again.
	AccountVerification = "account.verification"
)

// AccountVerificationPayload is the body of an account.verification event. The
// mailer reads the account when it sends (the address may be verified since), and
// mints the link then.
type AccountVerificationPayload struct {
	AccountID string `json:"account_id"`
	// RequestedAt tells the requests of one account apart (Unix microseconds):
	// each is a mail of its own.
	RequestedAt int64 `json:"requested_at"`
}

// AccountVerificationEvent is the event of a verification mail of account id asked
// for at now.
func AccountVerificationEvent(id string, now time.Time) (Event, error) {
	at := now.UnixMicro()
	return New(AccountVerification, fmt.Sprintf("%s@%d", id, at), AccountVerificationPayload{AccountID: id, RequestedAt: at}, now)
}

// PromoEmailPayload is the body of a promo.email event: one campaign mail to one
// account. The mailer reads the campaign and the account when it sends (the
// shopper may have opted out since).
type PromoEmailPayload struct {
	PromoID   string `json:"promo_id"`
	AccountID string `json:"account_id"`
}

// Event is one fact to publish.
type Event struct {
	// ID names the fact, not the write: the same fact always has the same id
	// (see New). It is the published message's Message-Id.
	ID         string
	RoutingKey string
	// Payload is the event's JSON body.
	Payload   []byte
	CreatedAt time.Time
}

// New makes the event of a fact: routingKey about subject (a campaign id, an order
// id), with payload encoded as JSON. Its id is derived from the routing key and the
// subject, so writing the same fact twice can be recognised (each of the shop's
// events happens at most once to its subject: a campaign is activated once, an
// order confirmed, cancelled and shipped at most once).
func New(routingKey, subject string, payload any, now time.Time) (Event, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return Event{}, err
	}
	return Event{ID: ID(routingKey, subject), RoutingKey: routingKey, Payload: body, CreatedAt: now.UTC()}, nil
}

// ID is the id of the event routingKey about subject.
func ID(routingKey, subject string) string {
	sum := sha256.Sum256([]byte(routingKey + "\x00" + subject))
	return "evt_" + hex.EncodeToString(sum[:12])
}
