// Package rabbitmq is the shop's RabbitMQ adapter: Publisher publishes outbox
// events to the durable topic exchange phoneshop.events with publisher confirms
// and tells the relay exactly which events the broker took responsibility for;
// Consumer feeds the messages of the queues bound to that exchange to a
// queue.Handler and carries out its outcomes (ack, retry later, dead-letter).
package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"phoneshop/notify/outbox"
)

// The defaults a zero Config field takes.
const (
	DefaultURL            = "amqp://guest:guest@127.0.0.1:5672/"
	DefaultExchange       = "phoneshop.events"
	DefaultConfirmTimeout = 10 * time.Second
	DefaultDialTimeout    = 5 * time.Second
	DefaultFirstBackoff   = 100 * time.Millisecond
	DefaultMaxBackoff     = 10 * time.Second
)

// Errors of Publish. A Publish error may join several of them (errors.Is finds
// each): a batch can have one event returned and another lost with the connection.
var (
	// ErrClosed: Close was called.
	ErrClosed = errors.New("rabbitmq: publisher closed")
	// ErrUnavailable: no connection could be had, so nothing was published.
	ErrUnavailable = errors.New("rabbitmq: broker unavailable")
	// ErrReturned: the broker routed the event to no queue (mandatory flag) and
	// sent it back. The connection is fine; the event is not published.
	ErrReturned = errors.New("rabbitmq: returned unroutable")
	// ErrNacked: the broker refused responsibility for the event.
	ErrNacked = errors.New("rabbitmq: nacked by the broker")
	// ErrUnconfirmed: no confirm came before the connection or channel was lost,
	// ConfirmTimeout passed or ctx ended. The event may or may not have reached a
	// queue; publishing it again is safe because consumers recognise Message-Id.
	ErrUnconfirmed = errors.New("rabbitmq: not confirmed")
)

// Config is what a Publisher needs; zero fields take the defaults above.
type Config struct {
	// URL is the broker's AMQP URI, with credentials and vhost. It is never
	// logged: logs name the host, port and vhost only.
	URL string
	// Exchange is the durable topic exchange events go to; the publisher declares
	// it on every connection.
	Exchange string
	// ConfirmTimeout bounds one Publish from its first message written to its
	// last confirm (the caller's ctx may end it sooner).
	ConfirmTimeout time.Duration
	// DialTimeout bounds opening a connection: TCP, AMQP handshake, channel,
	// confirm mode and the exchange declaration.
	DialTimeout time.Duration
	// FirstBackoff and MaxBackoff bound the wait between connection attempts
	// after a failure: first, then doubling, at most max.
	FirstBackoff, MaxBackoff time.Duration
	// Logger receives connection losses and reconnections (default: discarded).
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if c.Exchange == "" {
		c.Exchange = DefaultExchange
	}
	if c.ConfirmTimeout <= 0 {
		c.ConfirmTimeout = DefaultConfirmTimeout
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.FirstBackoff <= 0 {
		c.FirstBackoff = DefaultFirstBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	c.MaxBackoff = max(c.MaxBackoff, c.FirstBackoff)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// maxInFlight caps the messages published before their confirms are awaited;
// a larger batch goes out in slices of this size. It is also the capacity of
// the return listener: the library hands a basic.return to its listener from its
// only reader goroutine and drops it if the listener stays full for 5 s, and a
// dropped return would let an unroutable event count as confirmed. A slice never
// has more returns than messages, and the listener is drained after each slice,
// so it is never full.
const maxInFlight = 256

// Publisher publishes outbox events to RabbitMQ. It connects on first use,
// reconnects after a loss, and is safe for concurrent use.
//
// Concurrent Publish calls take turns on one channel: a call holds the channel
// from its first message written to its last confirm. Returns carry no delivery
// tag, only the message's properties, so telling which batch an unroutable
// message belonged to needs one batch in flight per channel; the relay publishes
// one batch at a time anyway, so the turns cost it nothing.
type Publisher struct {
	cfg    Config
	log    *slog.Logger
	broker string // "host:port vhost /", for logs: the URL holds the password

	// turn is a one-slot semaphore (a channel so that waiting for it can end
	// with ctx). Its holder owns every field below it.
	turn      chan struct{}
	closing   chan struct{}
	closeOnce sync.Once

	link     *link // nil until connected, and after a loss
	failures int   // consecutive connection attempts or links that failed
	retryAt  time.Time
	lastErr  error
}

// NewPublisher returns a publisher for cfg. It does not connect: the first
// Publish does.
func NewPublisher(cfg Config) *Publisher {
	cfg = cfg.withDefaults()
	return &Publisher{
		cfg:     cfg,
		log:     cfg.Logger,
		broker:  brokerName(cfg.URL),
		turn:    make(chan struct{}, 1),
		closing: make(chan struct{}),
	}
}

// Publish publishes events to the exchange and waits for the broker's
// confirms. It returns the ids of the events the broker confirmed, in the
// order given; only those may be marked published. err is nil only when every
// event is confirmed.
//
// Each event becomes one persistent message (delivery mode 2) with content type
// application/json, Message-Id = ID, Timestamp = CreatedAt (AMQP timestamps
// have whole seconds), Type = RoutingKey and body = Payload, published with the
// event's routing key and the mandatory flag. The channel is in confirm mode: the
// batch is written, then all its confirms are awaited, bounded by ctx and
// Config.ConfirmTimeout.
//
// An event counts as confirmed only when the broker acked it and did not return
// it. A message that no queue is bound for is returned (basic.return, which the
// broker sends before its ack) and is reported with ErrReturned: the connection
// is fine, but nobody received the event. Events with the same ID in one batch
// share their fate: a return is matched to its event by Message-Id.
//
// When the connection or channel is lost (broker restart, connections closed by
// an operator), when ConfirmTimeout passes, or when ctx ends, the events not yet
// confirmed are reported with ErrUnconfirmed, and the connection is dropped so
// that no late confirm or return can be mistaken for a later batch's. The next
// Publish connects again. After a failed attempt, attempts wait FirstBackoff,
// then twice as long each time, up to MaxBackoff; a Publish whose ctx ends
// before the next attempt is due returns ErrUnavailable at once rather than wait.
//
// Publish with an already ended ctx returns ctx.Err() and publishes nothing;
// after Close it returns ErrClosed.
func (p *Publisher) Publish(ctx context.Context, events []outbox.Event) (confirmed []string, err error) {
	if len(events) == 0 {
		return nil, nil
	}
	for i, ev := range events {
		if ev.ID == "" {
			return nil, fmt.Errorf("rabbitmq: event %d (%s) has no id: its return could not be recognised", i, ev.RoutingKey)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case <-p.closing:
		return nil, ErrClosed
	default:
	}
	select {
	case p.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.closing:
		return nil, ErrClosed
	}
	defer func() { <-p.turn }()
	select {
	case <-p.closing:
		return nil, ErrClosed
	default:
	}

	if err := p.ready(ctx); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, p.cfg.ConfirmTimeout,
		fmt.Errorf("no confirm within ConfirmTimeout (%s)", p.cfg.ConfirmTimeout))
	defer cancel()

	var out outcome
	for start := 0; start < len(events); start += maxInFlight {
		slice := events[start:min(start+maxInFlight, len(events))]
		if lost := p.publishSlice(ctx, slice, &out); lost != nil {
			p.dropLink(lost)
			out.notConfirmed(events[start+len(slice):], lost)
			return out.confirmed, out.err()
		}
	}
	// The link carried a whole batch to its confirms: it works.
	p.failures = 0
	return out.confirmed, out.err()
}

// publishSlice publishes at most maxInFlight events and records what became of
// each in out. It returns why the link must be dropped, or nil while it is sound.
func (p *Publisher) publishSlice(ctx context.Context, events []outbox.Event, out *outcome) (lost error) {
	l := p.link
	// The library's writes and confirms do not watch ctx: a write stuck in TCP
	// back-pressure (a broker's memory alarm) would outlive it. Tearing the
	// connection down unblocks it and settles every pending confirm as a nack.
	stop := tearDownOnDone(ctx, l.conn)

	pending := make([]*amqp.DeferredConfirmation, 0, len(events))
	for _, ev := range events {
		dc, err := l.ch.PublishWithDeferredConfirmWithContext(ctx, p.cfg.Exchange, ev.RoutingKey, true, false, toPublishing(ev))
		if err != nil {
			lost = fmt.Errorf("publish: %w", err)
			break
		}
		pending = append(pending, dc)
	}
wait:
	for _, dc := range pending {
		select {
		case <-dc.Done():
		case <-ctx.Done():
			lost = context.Cause(ctx)
			break wait
		}
	}
	if stop() && lost == nil {
		lost = context.Cause(ctx)
	}
	if lost == nil {
		lost = l.lost()
	}

	// Acks are read before returns: the reader goroutine hands a message's
	// return to the listener before it processes that message's ack, so every
	// return of an ack seen here is already in the listener.
	acked := make([]bool, len(pending))
	for i, dc := range pending {
		acked[i] = dc.Acked()
	}
	returned := l.drainReturns()

	for i, ev := range events {
		switch {
		case i >= len(pending):
			out.notConfirmed(events[i:], lost)
			return lost
		case returned[ev.ID] != nil:
			r := returned[ev.ID]
			out.returned = append(out.returned, fmt.Sprintf("%s (%s: %d %s)", ev.ID, ev.RoutingKey, r.ReplyCode, r.ReplyText))
		case acked[i]:
			out.confirmed = append(out.confirmed, ev.ID)
		case lost != nil:
			// Closing a channel settles its pending confirms as nacks: a nack
			// on a lost link says nothing about the broker's decision.
			out.notConfirmed(events[i:i+1], lost)
		default:
			out.nacked = append(out.nacked, ev.ID)
		}
	}
	return lost
}

// ready makes sure there is a link, connecting if there is none, no sooner than
// the backoff allows.
func (p *Publisher) ready(ctx context.Context) error {
	if p.link != nil {
		lost := p.link.lost()
		if lost == nil {
			return nil
		}
		p.dropLink(lost)
	}
	if wait := time.Until(p.retryAt); wait > 0 {
		if deadline, ok := ctx.Deadline(); ok && deadline.Before(p.retryAt) {
			return fmt.Errorf("%w: next attempt in %s, after this call's deadline; last error: %w",
				ErrUnavailable, wait.Round(time.Millisecond), p.lastErr)
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting to reconnect: %w", ErrUnavailable, ctx.Err())
		case <-p.closing:
			return ErrClosed
		}
	}
	l, err := p.connect(ctx)
	if err != nil {
		if ctx.Err() == nil {
			p.failed(err)
		}
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, p.broker, err)
	}
	if p.failures > 0 {
		p.log.Info("rabbitmq: connected again", "broker", p.broker, "after_failures", p.failures)
	}
	p.link = l
	return nil
}

// failed records a failed attempt or a lost link, and when to try next.
func (p *Publisher) failed(err error) {
	p.failures++
	delay := backoff(p.cfg.FirstBackoff, p.cfg.MaxBackoff, p.failures)
	p.retryAt = time.Now().Add(delay)
	p.lastErr = err
	p.log.Warn("rabbitmq: cannot publish; will reconnect", "broker", p.broker, "err", err, "retry_in", delay)
}

// dropLink tears down a link that failed. The loss counts as a failure, so a
// broker that accepts connections and then drops them is not hammered either.
func (p *Publisher) dropLink(why error) {
	if p.link == nil {
		return
	}
	p.link.tearDown()
	p.link = nil
	p.failed(fmt.Errorf("connection dropped: %w", why))
}

// Close waits for a Publish in progress (at most its DialTimeout and
// ConfirmTimeout; a Publish waiting to reconnect stops waiting), closes the
// connection and stops the library's goroutines. Later Publish calls return
// ErrClosed. Close may be called more than once.
func (p *Publisher) Close() error {
	p.closeOnce.Do(func() { close(p.closing) })
	p.turn <- struct{}{}
	defer func() { <-p.turn }()
	if p.link == nil {
		return nil
	}
	l := p.link
	p.link = nil
	err := l.conn.CloseDeadline(time.Now().Add(closeTimeout))
	if err != nil && !errors.Is(err, amqp.ErrClosed) {
		return fmt.Errorf("rabbitmq: close: %w", err)
	}
	return nil
}

// connect opens a connection and its confirm-mode channel and declares the
// exchange, all within DialTimeout and ctx.
func (p *Publisher) connect(ctx context.Context) (*link, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	defer cancel()
	conn, err := dial(ctx, p.cfg.URL, "phoneshop outbox publisher")
	if err != nil {
		return nil, err
	}
	stop := tearDownOnDone(ctx, conn)
	l, err := openLink(conn, p.cfg.Exchange)
	if tornDown := stop(); err != nil || tornDown {
		_ = conn.CloseDeadline(time.Now())
		if ctx.Err() != nil {
			return nil, fmt.Errorf("open channel: %w", ctx.Err())
		}
		return nil, err
	}
	return l, nil
}

// link is one connection with its confirm-mode channel.
type link struct {
	conn       *amqp.Connection
	ch         *amqp.Channel
	connClosed chan *amqp.Error
	chClosed   chan *amqp.Error
	returns    chan amqp.Return
	lostErr    error
}

func openLink(conn *amqp.Connection, exchange string) (*link, error) {
	l := &link{conn: conn, connClosed: conn.NotifyClose(make(chan *amqp.Error, 1))}
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	l.ch = ch
	l.chClosed = ch.NotifyClose(make(chan *amqp.Error, 1))
	l.returns = ch.NotifyReturn(make(chan amqp.Return, maxInFlight))
	if err := ch.Confirm(false); err != nil {
		return nil, fmt.Errorf("confirm mode: %w", err)
	}
	if err := ch.ExchangeDeclare(exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return nil, fmt.Errorf("declare exchange %s: %w", exchange, err)
	}
	return l, nil
}

// lost says why the connection or channel is gone, or nil while both are open.
// The library reports a loss once on each NotifyClose listener (with the
// broker's reason), then closes it; closing the listener alone means the close
// was ours.
func (l *link) lost() error {
	if l.lostErr != nil {
		return l.lostErr
	}
	select {
	case e, ok := <-l.connClosed:
		l.lostErr = closeReason("connection", e, ok)
	case e, ok := <-l.chClosed:
		l.lostErr = closeReason("channel", e, ok)
	default:
		if l.conn.IsClosed() || l.ch.IsClosed() {
			l.lostErr = errors.New("connection or channel closed")
		}
	}
	return l.lostErr
}

// drainReturns takes the returns waiting in the listener, by Message-Id.
func (l *link) drainReturns() map[string]*amqp.Return {
	returned := map[string]*amqp.Return{}
	for {
		select {
		case r, ok := <-l.returns:
			if !ok {
				return returned
			}
			returned[r.MessageId] = &r
		default:
			return returned
		}
	}
}

// tearDown closes the connection at once, without waiting for the broker: it
// failed, and a polite close could hang as long as the failure.
func (l *link) tearDown() {
	_ = l.conn.CloseDeadline(time.Now())
}

func toPublishing(ev outbox.Event) amqp.Publishing {
	return amqp.Publishing{
		DeliveryMode: amqp.Persistent,
		ContentType:  "application/json",
		MessageId:    ev.ID,
		Timestamp:    ev.CreatedAt,
		Type:         ev.RoutingKey,
		Body:         ev.Payload,
	}
}

// outcome gathers what became of a batch's events.
type outcome struct {
	confirmed   []string
	returned    []string // "id (routing key: code text)"
	nacked      []string
	unconfirmed []string
	cause       error // why the unconfirmed were not confirmed
}

func (o *outcome) notConfirmed(events []outbox.Event, cause error) {
	for _, ev := range events {
		o.unconfirmed = append(o.unconfirmed, ev.ID)
	}
	if len(events) > 0 && o.cause == nil {
		o.cause = cause
	}
}

func (o *outcome) err() error {
	var errs []error
	if len(o.returned) > 0 {
		errs = append(errs, fmt.Errorf("%w: %s", ErrReturned, listed(o.returned)))
	}
	if len(o.nacked) > 0 {
		errs = append(errs, fmt.Errorf("%w: %s", ErrNacked, listed(o.nacked)))
	}
	if len(o.unconfirmed) > 0 {
		errs = append(errs, fmt.Errorf("%w: %s: %w", ErrUnconfirmed, listed(o.unconfirmed), o.cause))
	}
	return errors.Join(errs...)
}

// listed names a few of items and counts the rest, so that a failed batch of
// hundreds makes a readable log line.
func listed(items []string) string {
	const shown = 5
	noun := "events"
	if len(items) == 1 {
		noun = "event"
	}
	s := fmt.Sprintf("%d %s: %s", len(items), noun, strings.Join(items[:min(shown, len(items))], ", "))
	if len(items) > shown {
		s += fmt.Sprintf(", and %d more", len(items)-shown)
	}
	return s
}
