// Package queue is what the shop's message consumers and the queues that feed them
// agree on, whichever carries the messages: RabbitMQ (notify/rabbitmq) or the
// in-process queue of `phoneshop dev` (notify/memqueue).
//
// The topology: the outbox relay publishes every event to one topic exchange; a
// queue per consumer is bound to the routing keys it handles, and each queue has a
// dead-letter queue beside it for the messages that can never be handled.
package queue

import (
	"context"

	"phoneshop/notify/outbox"
)

// Message is one message as a consumer receives it.
type Message struct {
	// ID is the message's Message-Id: the outbox event's id.
	ID         string
	RoutingKey string
	Body       []byte
	// Attempt counts the deliveries of this message, from 1.
	Attempt int
}

// Outcome is what becomes of a handled message.
type Outcome int

// The outcomes a handler chooses.
const (
	// Ack: done with.
	Ack Outcome = iota
	// Retry: not done; deliver it again later (after a wait that grows with the
	// attempts), until the queue's delivery limit sends it to the dead letters.
	Retry
	// DeadLetter: it can never succeed (malformed, refused for good): it goes to
	// the dead-letter queue for someone to look at, and the rest keeps flowing.
	DeadLetter
)

func (o Outcome) String() string {
	switch o {
	case Ack:
		return "ack"
	case Retry:
		return "retry"
	case DeadLetter:
		return "dead-letter"
	}
	return "unknown"
}

// Handler handles one message. It is called from several goroutines at once (up
// to the consumer's prefetch).
type Handler func(ctx context.Context, m Message) Outcome

// Binding is one consumer's queue: its name and the routing keys it takes
// (topic patterns: "order.*").
type Binding struct {
	Queue       string
	RoutingKeys []string
}

// The queues of the shop's mail pipeline.
var (
	// PromoActivated feeds the campaigns' fan-outs.
	PromoActivated = Binding{Queue: "phoneshop.promo.activated", RoutingKeys: []string{outbox.PromoActivated}}
	// PromoEmail feeds the campaign mails, one per shopper.
	PromoEmail = Binding{Queue: "phoneshop.promo.email", RoutingKeys: []string{outbox.PromoEmail}}
	// OrderEmail feeds the order mails.
	OrderEmail = Binding{Queue: "phoneshop.order.email", RoutingKeys: []string{outbox.OrderConfirmed, outbox.OrderCancelled, outbox.OrderShipped}}
	// AccountEmail feeds the accounts' mails: address verification.
	AccountEmail = Binding{Queue: "phoneshop.account.email", RoutingKeys: []string{outbox.AccountVerification}}
)

// MailBindings are the queues a mailer consumes.
var MailBindings = []Binding{PromoActivated, PromoEmail, OrderEmail, AccountEmail}

// DeadLetterQueue is the name of the dead-letter queue of queue.
func DeadLetterQueue(queue string) string { return queue + ".dead" }
