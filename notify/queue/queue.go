// Package queue is what the shop's message consumers and the queues that feed them
// agree on, whichever carries the messages: RabbitMQ (notify/rabbitmq) or the
// in-process queue of `phoneshop dev` (notify/memqueue).
//
// The topology: the outbox relay publishes every event to one topic exchange; a
// queue per consumer is bound to the routing keys it handles, and each queue has a
// dead-letter queue beside it for the messages that can never be handled.
//
// Retries and holds: a message a handler wants to retry stays in the consumer's
// prefetch window while it waits (it is "held"), so at most the prefetch window is
// in flight and the rest of the queue waits untouched. A hold never lasts longer
// than MaxHold: RabbitMQ closes the channel of a delivery left unacknowledged past
// its consumer_timeout (30 min by default). A message that wants a longer wait is
// given back to the queue once MaxHold is over and comes again at once, for its
// handler to say how much longer (a handler that keeps its own schedule, as the
// mailer does in its deliveries, answers from it). A message given back more
// often than the delivery limit would be dead-lettered by the broker; it is
// renewed instead (published again as a new message, then acknowledged), so a
// message is dead-lettered only when a handler says so, or when its deliveries are
// lost again and again (a handler that takes its process down).
package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"phoneshop/notify/outbox"
)

// Message is one message as a consumer receives it.
type Message struct {
	// ID is the message's Message-Id: the outbox event's id.
	ID         string
	RoutingKey string
	Body       []byte
	// Attempt counts the deliveries of this message by its queue, from 1. A
	// renewed or redriven message starts again at 1.
	Attempt int
	// RedrivenAt is when an operator last sent the message back from the dead
	// letters (zero: never). A handler that recorded the message's failure
	// before that time may try again.
	RedrivenAt time.Time
}

// Action is what becomes of a handled message.
type Action int

// The actions of an Outcome.
const (
	// ActAck: done with.
	ActAck Action = iota
	// ActRetry: not done; hand it to the handler again later.
	ActRetry
	// ActDeadLetter: it can never succeed (malformed, refused for good): it goes
	// to the dead-letter queue for someone to look at, and the rest keeps flowing.
	ActDeadLetter
)

// Outcome is what a handler decided for a message.
type Outcome struct {
	Action Action
	// After is how long a retried message waits before the handler gets it
	// again (0: the adapter's RetryDelay for its attempt).
	After time.Duration
}

// The outcomes a handler chooses from; RetryAfter says how long to wait.
var (
	Ack        = Outcome{Action: ActAck}
	Retry      = Outcome{Action: ActRetry}
	DeadLetter = Outcome{Action: ActDeadLetter}
)

// RetryAfter is a retry after d (at least a millisecond, so that it is never the
// adapter's default).
func RetryAfter(d time.Duration) Outcome {
	return Outcome{Action: ActRetry, After: max(d, time.Millisecond)}
}

// Valid reports whether o is one of the outcomes above.
func (o Outcome) Valid() bool {
	switch o.Action {
	case ActAck, ActDeadLetter:
		return o.After == 0
	case ActRetry:
		return o.After >= 0
	}
	return false
}

func (o Outcome) String() string {
	switch {
	case o == Ack:
		return "ack"
	case o == Retry:
		return "retry"
	case o.Action == ActRetry && o.Valid():
		return "retry after " + o.After.String()
	case o == DeadLetter:
		return "dead-letter"
	}
	return fmt.Sprintf("unknown (%d, %s)", o.Action, o.After)
}

// DefaultMaxHold is the longest an adapter holds a retried message before it gives
// it back to the queue: well inside RabbitMQ's default consumer_timeout of 30
// minutes, which closes the channel of a delivery unacknowledged for longer.
const DefaultMaxHold = 15 * time.Minute

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

// Names are the queue names of bindings, in their order.
func Names(bindings []Binding) []string {
	names := make([]string, len(bindings))
	for i, b := range bindings {
		names[i] = b.Queue
	}
	return names
}

// DeadLetterQueue is the name of the dead-letter queue of queue.
func DeadLetterQueue(queue string) string { return queue + ".dead" }

// Stats are the counts of one queue: messages waiting to be delivered, messages
// delivered and not yet settled (handled or held by a consumer), and messages in
// its dead letters.
type Stats struct {
	Name                 string
	Ready, Unacked, Dead int64
}

// ErrUnknownQueue: the queue named is not one the adapter serves.
var ErrUnknownQueue = errors.New("queue: no such queue")

// Ops is what operators see of an adapter's queues and do with their dead letters;
// both adapters implement it and pass the same contract (queuetest).
type Ops interface {
	// Stats counts each queue of names, in that order. A queue not declared yet
	// counts zeros.
	Stats(ctx context.Context, names []string) ([]Stats, error)
	// Redrive sends up to limit messages of queue's dead letters, oldest first,
	// back to queue, and says how many it sent. A message leaves the dead letters
	// only once the queue holds it again (on RabbitMQ: once the broker confirmed
	// it), so a redrive that fails halfway loses nothing; it may leave a message in
	// both places, which handlers recognise by its ID. The messages sent back are
	// marked with RedrivenAt, and their Attempt starts again at 1.
	Redrive(ctx context.Context, queue string, limit int) (int, error)
}
