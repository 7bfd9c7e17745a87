package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"phoneshop/notify/queue"
)

// DeadLetterExchange is the durable direct exchange the consumer's queues
// dead-letter to, each with its own name as the routing key; each queue's
// dead-letter queue (queue.DeadLetterQueue) is bound to it with that key.
const DeadLetterExchange = "phoneshop.dead"

// The defaults a zero ConsumerConfig field takes (URL, Exchange, DialTimeout and
// the backoff take the Publisher's).
const (
	DefaultPrefetch      = 32
	DefaultDeliveryLimit = 20
	DefaultHandlerGrace  = 10 * time.Second
)

// ErrTopology is what Run returns when the broker refuses to declare the
// topology as configured: a queue of that name exists with other arguments (a
// classic queue, another DeliveryLimit). Reconnecting cannot fix that; an
// operator must (see ConsumerConfig.DeliveryLimit).
var ErrTopology = errors.New("rabbitmq: topology refused by the broker")

// ConsumerConfig is what a Consumer needs; zero fields take the defaults.
type ConsumerConfig struct {
	// URL is the broker's AMQP URI, with credentials and vhost. It is never
	// logged: logs name the host, port and vhost only.
	URL string
	// Exchange is the durable topic exchange the queues are bound to (the one
	// the Publisher publishes to).
	Exchange string
	// Bindings are the queues to consume, each with the routing keys bound to
	// it. A routing key removed from a binding stays bound until someone
	// unbinds it: declarations only add.
	Bindings []queue.Binding
	// Prefetch is the basic.qos of each queue's channel: at most this many
	// messages of one queue are unacknowledged, so in the handler, at once.
	Prefetch int
	// DeliveryLimit is each quorum queue's x-delivery-limit: a message returned
	// to the queue more often than this is dead-lettered by the broker. Run never
	// lets a retried message get there: a message retried after its
	// DeliveryLimit-th return is renewed (published again with confirms, then
	// acknowledged), so its count starts again. What the limit still catches is a
	// message whose deliveries are lost again and again (a handler that takes its
	// process down, or a connection that drops while it is in flight).
	//
	// A quorum queue's arguments cannot change after its declaration: declaring
	// it again with another limit is refused (ErrTopology). Changing the limit of
	// an existing queue takes a policy (delivery-limit), or a new queue.
	DeliveryLimit int
	// RetryDelay is how long a message the handler returned Retry for (without
	// a wait of its own, queue.RetryAfter) is held before it goes back to the
	// queue, by the attempt that failed (default: DefaultRetryDelay). The message
	// keeps its prefetch slot meanwhile.
	RetryDelay func(attempt int) time.Duration
	// MaxHold bounds a hold, counted from the delivery (default
	// queue.DefaultMaxHold): a message that asked to wait longer goes back to the
	// queue when MaxHold is over, and comes again for its handler to say how much
	// longer. It must stay below the broker's consumer_timeout (30 min by
	// default), which closes the channel of a delivery unacknowledged for longer.
	MaxHold time.Duration
	// FirstBackoff and MaxBackoff bound the wait between connection attempts
	// after a failure or a loss: first, then doubling, at most max.
	FirstBackoff, MaxBackoff time.Duration
	// DialTimeout bounds opening a connection: TCP, AMQP handshake, channels,
	// the topology's declaration and the consumers' registration.
	DialTimeout time.Duration
	// HandlerGrace is how long the handlers in flight may go on when Run's ctx
	// ends or the connection is lost, before their ctx is cancelled.
	HandlerGrace time.Duration
	// Logger receives connections, losses and the messages a handler panicked
	// on (default: discarded).
	Logger *slog.Logger
}

func (c ConsumerConfig) withDefaults() ConsumerConfig {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if c.Exchange == "" {
		c.Exchange = DefaultExchange
	}
	if c.Prefetch <= 0 {
		c.Prefetch = DefaultPrefetch
	}
	if c.DeliveryLimit <= 0 {
		c.DeliveryLimit = DefaultDeliveryLimit
	}
	if c.RetryDelay == nil {
		c.RetryDelay = DefaultRetryDelay
	}
	if c.MaxHold <= 0 {
		c.MaxHold = queue.DefaultMaxHold
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
	if c.HandlerGrace <= 0 {
		c.HandlerGrace = DefaultHandlerGrace
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c ConsumerConfig) validate() error {
	if len(c.Bindings) == 0 {
		return errors.New("rabbitmq: consumer has no bindings")
	}
	seen := map[string]bool{}
	for _, b := range c.Bindings {
		if b.Queue == "" {
			return errors.New("rabbitmq: a binding has no queue name")
		}
		if seen[b.Queue] {
			return fmt.Errorf("rabbitmq: queue %s bound twice", b.Queue)
		}
		seen[b.Queue] = true
	}
	if c.Prefetch > 0xFFFF {
		return fmt.Errorf("rabbitmq: prefetch %d is above the protocol's 65535", c.Prefetch)
	}
	return nil
}

// DefaultRetryDelay holds a retried message 1 s after its first attempt, then
// twice as long after each further one, at most 30 s.
func DefaultRetryDelay(attempt int) time.Duration {
	return backoff(time.Second, 30*time.Second, max(attempt, 1))
}

// Consumer feeds the messages of its queues to a queue.Handler. It holds only
// its configuration: each Run has its own connection.
//
// Delivery is at least once: a message whose outcome did not reach the broker
// (a lost connection, a crash) is delivered again, so handlers must recognise a
// message they already handled (by its ID).
type Consumer struct {
	cfg    ConsumerConfig
	log    *slog.Logger
	broker string // "host:port vhost /", for logs: the URL holds the password
	// inFlight counts, per queue, the messages delivered and not yet settled
	// (handled or held): what the broker counts as unacknowledged, which AMQP
	// does not tell a client.
	inFlight map[string]*atomic.Int64
}

// NewConsumer returns a consumer for cfg. It does not connect: Run does.
func NewConsumer(cfg ConsumerConfig) *Consumer {
	cfg = cfg.withDefaults()
	c := &Consumer{cfg: cfg, log: cfg.Logger, broker: brokerName(cfg.URL), inFlight: map[string]*atomic.Int64{}}
	for _, b := range cfg.Bindings {
		c.inFlight[b.Queue] = new(atomic.Int64)
	}
	return c
}

// InFlight counts, per queue, the messages this consumer holds unacknowledged now:
// in a handler, or held for a retry.
func (c *Consumer) InFlight() map[string]int64 {
	out := make(map[string]int64, len(c.inFlight))
	for name, n := range c.inFlight {
		out[name] = n.Load()
	}
	return out
}

// Run consumes the configured queues until ctx ends, calling handle for each
// message in a goroutine of its own (at most Prefetch per queue at once), and
// carries out the outcome: Ack acknowledges the message; DeadLetter rejects it
// to the dead-letter queue; Retry holds it (in its prefetch slot) for the wait
// the outcome names, or RetryDelay(attempt), at most until MaxHold after its
// delivery (less if ctx ends), and then gives it back: it returns to the head of
// the queue, or, after its DeliveryLimit-th return, is renewed (see
// DeliveryLimit). A handler that panics, or returns an unknown outcome, has its
// message dead-lettered.
//
// On every connection Run declares the topology: the exchange (a durable
// topic exchange, as the Publisher declares it), DeadLetterExchange, and per
// binding a durable quorum queue bound with its routing keys, dead-lettering
// to DeadLetterExchange with its name as the routing key, and its dead-letter
// queue (a durable quorum queue) bound to that key.
//
// When the connection is lost (a broker restart, connections closed by an
// operator) or a consumer is (its queue deleted), Run closes the connection,
// which returns the unacknowledged messages to their queues, and waits for the
// handlers in flight: their outcomes are lost with the channel, but work they
// finish is not found half done by the message's next delivery. (They get
// HandlerGrace before their ctx is cancelled; waiting for them keeps the
// handlers in flight within Prefetch across connections.) Then it waits
// FirstBackoff, doubling up to MaxBackoff while attempts fail, and connects
// again. RabbitMQ counts a message returned by a lost connection as a delivery:
// it counts towards DeliveryLimit and Attempt.
//
// When ctx ends, Run stops the deliveries, returns the messages held for a
// retry to the queue at once, gives the handlers in flight HandlerGrace before
// cancelling their ctx, waits for them and closes the connection; then it
// returns nil. Handlers must return once their ctx is cancelled: Run waits for
// them. The handlers' ctx carries the values of Run's ctx.
//
// Run returns an error only for an invalid configuration or ErrTopology.
func (c *Consumer) Run(ctx context.Context, handle queue.Handler) error {
	if handle == nil {
		return errors.New("rabbitmq: Run needs a handler")
	}
	if err := c.cfg.validate(); err != nil {
		return err
	}
	failures := 0
	for ctx.Err() == nil {
		s, err := c.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, ErrTopology) {
				return err
			}
			failures++
			delay := backoff(c.cfg.FirstBackoff, c.cfg.MaxBackoff, failures)
			c.log.Warn("rabbitmq: cannot consume; will reconnect", "broker", c.broker, "err", err, "retry_in", delay)
			sleep(ctx, delay)
			continue
		}
		c.log.Info("rabbitmq: consuming", "broker", c.broker, "queues", s.queueNames(), "after_failures", failures)
		began := time.Now()
		lost := c.consume(ctx, s, handle)
		if lost == nil {
			return nil
		}
		// A connection that lasted is not a failure in a row with the ones
		// before it; one lost as soon as it opened (a broker that accepts and
		// drops) is, so that such a broker is not hammered.
		if time.Since(began) >= c.cfg.MaxBackoff {
			failures = 0
		}
		failures++
		delay := backoff(c.cfg.FirstBackoff, c.cfg.MaxBackoff, failures)
		c.log.Warn("rabbitmq: consuming interrupted; will reconnect", "broker", c.broker, "err", lost, "retry_in", delay)
		sleep(ctx, delay)
	}
	return nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// session is one connection with a consuming channel per queue, and a channel
// in confirm mode that renews messages.
type session struct {
	conn       *amqp.Connection
	connClosed chan *amqp.Error
	consumers  []*queueConsumer
	renewals   *confirmChannel
}

// queueConsumer is the consumer of one queue, on a channel of its own: basic.qos
// applies per channel, and a channel error then ends one queue's channel only
// (which still ends the session).
type queueConsumer struct {
	queue      string
	tag        string
	ch         *amqp.Channel
	chClosed   chan *amqp.Error
	deliveries <-chan amqp.Delivery
}

func (s *session) queueNames() []string {
	names := make([]string, len(s.consumers))
	for i, qc := range s.consumers {
		names[i] = qc.queue
	}
	return names
}

// tearDown closes the connection at once, without waiting for the broker.
func (s *session) tearDown() {
	_ = s.conn.CloseDeadline(time.Now())
}

// connect opens a connection, declares the topology and starts a consumer per
// queue, all within DialTimeout and ctx.
func (c *Consumer) connect(ctx context.Context) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	conn, err := dial(ctx, c.cfg.URL, "phoneshop consumer")
	if err != nil {
		return nil, err
	}
	stop := tearDownOnDone(ctx, conn)
	s, err := c.open(conn)
	if tornDown := stop(); err != nil || tornDown {
		_ = conn.CloseDeadline(time.Now())
		if ctx.Err() != nil {
			return nil, fmt.Errorf("declare and consume: %w", ctx.Err())
		}
		return nil, err
	}
	return s, nil
}

func (c *Consumer) open(conn *amqp.Connection) (*session, error) {
	s := &session{conn: conn, connClosed: conn.NotifyClose(make(chan *amqp.Error, 1))}
	if err := c.declare(conn); err != nil {
		var amqpErr *amqp.Error
		if errors.As(err, &amqpErr) && amqpErr.Code == amqp.PreconditionFailed {
			return nil, fmt.Errorf("%w: %w", ErrTopology, err)
		}
		return nil, err
	}
	var err error
	if s.renewals, err = openConfirmChannel(conn); err != nil {
		return nil, err
	}
	for _, b := range c.cfg.Bindings {
		ch, err := conn.Channel()
		if err != nil {
			return nil, fmt.Errorf("open channel: %w", err)
		}
		qc := &queueConsumer{queue: b.Queue, tag: "phoneshop consumer " + b.Queue, ch: ch}
		qc.chClosed = ch.NotifyClose(make(chan *amqp.Error, 1))
		// Per consumer (global=false), which is what quorum queues support.
		if err := ch.Qos(c.cfg.Prefetch, 0, false); err != nil {
			return nil, fmt.Errorf("qos: %w", err)
		}
		qc.deliveries, err = ch.Consume(b.Queue, qc.tag, false, false, false, false, nil)
		if err != nil {
			return nil, fmt.Errorf("consume %s: %w", b.Queue, err)
		}
		s.consumers = append(s.consumers, qc)
	}
	return s, nil
}

// declare declares the exchanges, queues and bindings; declaring what exists
// as declared changes nothing.
func (c *Consumer) declare(conn *amqp.Connection) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	// A refused declaration closes the channel itself.
	defer func() { _ = ch.Close() }()
	if err := ch.ExchangeDeclare(c.cfg.Exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", c.cfg.Exchange, err)
	}
	if err := ch.ExchangeDeclare(DeadLetterExchange, amqp.ExchangeDirect, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", DeadLetterExchange, err)
	}
	for _, b := range c.cfg.Bindings {
		dead := queue.DeadLetterQueue(b.Queue)
		if _, err := ch.QueueDeclare(dead, true, false, false, false, amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum}); err != nil {
			return fmt.Errorf("declare queue %s: %w", dead, err)
		}
		if err := ch.QueueBind(dead, b.Queue, DeadLetterExchange, false, nil); err != nil {
			return fmt.Errorf("bind %s to %s: %w", dead, DeadLetterExchange, err)
		}
		// These arguments are fixed once the queue exists: a quorum queue's
		// arguments cannot change, and declaring it with others is refused
		// (PRECONDITION_FAILED). A new DeliveryLimit needs a policy
		// (delivery-limit) or a new queue.
		args := amqp.Table{
			amqp.QueueTypeArg:           amqp.QueueTypeQuorum,
			"x-delivery-limit":          int64(c.cfg.DeliveryLimit),
			"x-dead-letter-exchange":    DeadLetterExchange,
			"x-dead-letter-routing-key": b.Queue,
		}
		if _, err := ch.QueueDeclare(b.Queue, true, false, false, false, args); err != nil {
			return fmt.Errorf("declare queue %s: %w", b.Queue, err)
		}
		for _, key := range b.RoutingKeys {
			if err := ch.QueueBind(b.Queue, key, c.cfg.Exchange, false, nil); err != nil {
				return fmt.Errorf("bind %s to %s with %s: %w", b.Queue, c.cfg.Exchange, key, err)
			}
		}
	}
	return nil
}

// consume hands the session's deliveries to handlers until ctx ends (then it
// returns nil) or the session is lost (then it returns why). Either way it
// returns only once every handler it started has returned and the connection
// is closed.
func (c *Consumer) consume(ctx context.Context, s *session, handle queue.Handler) (lost error) {
	// stopping ends the retry waits, and keeps the deliveries that arrive after
	// it from reaching a handler.
	stopping := make(chan struct{})
	// The handlers' ctx ends HandlerGrace after the session does, not with
	// Run's: a handler halfway through its work had better finish it, so that
	// the message's next delivery finds it done.
	handlerCtx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()

	var (
		readers, handlers sync.WaitGroup
		ended             = make(chan error, len(s.consumers))
	)
	for _, qc := range s.consumers {
		readers.Go(func() {
			for d := range qc.deliveries {
				select {
				case <-stopping:
					// Left unacknowledged: the connection's close returns
					// it to the queue. A nack would too, but until the
					// consumer's cancel is through the queue could hand
					// it straight back, and each return counts towards
					// the delivery limit.
					continue
				default:
				}
				inFlight := c.inFlight[qc.queue]
				inFlight.Add(1)
				deliveredAt := time.Now()
				handlers.Go(func() {
					defer inFlight.Add(-1)
					c.handleDelivery(handlerCtx, stopping, s, qc.queue, d, deliveredAt, handle)
				})
			}
			ended <- qc.whyEnded()
		})
	}

	select {
	case <-ctx.Done():
	case lost = <-ended:
	case e, ok := <-s.connClosed:
		lost = closeReason("connection", e, ok)
	}
	close(stopping)
	graceOver := time.AfterFunc(c.cfg.HandlerGrace, cancelHandlers)
	defer graceOver.Stop()

	if lost != nil {
		// The deliveries' outcomes can no longer reach the broker; closing at
		// once returns them to the queues for other consumers.
		s.tearDown()
		readers.Wait()
		handlers.Wait()
		return lost
	}

	// A broker that stops answering must not hold Run long past the grace:
	// tearing the connection down ends a cancel or an ack stuck on it.
	hardStop := time.AfterFunc(c.cfg.HandlerGrace+closeTimeout, s.tearDown)
	defer hardStop.Stop()
	for _, qc := range s.consumers {
		// After basic.cancel no more deliveries come; those on their way still
		// do, and the handlers' acks still work on the open channel.
		if err := qc.ch.Cancel(qc.tag, false); err != nil {
			c.log.Debug("rabbitmq: cancel consumer", "queue", qc.queue, "err", err)
		}
	}
	readers.Wait() // after this, no handler starts: handlers.Wait is safe
	handlers.Wait()
	hardStop.Stop()
	if err := s.conn.CloseDeadline(time.Now().Add(closeTimeout)); err != nil && !errors.Is(err, amqp.ErrClosed) {
		c.log.Debug("rabbitmq: close", "broker", c.broker, "err", err)
	}
	return nil
}

// whyEnded says why the consumer's deliveries ended while it was not being
// cancelled: its channel closed, or the broker cancelled it (its queue was
// deleted).
func (qc *queueConsumer) whyEnded() error {
	select {
	case e, ok := <-qc.chClosed:
		return closeReason("channel of "+qc.queue, e, ok)
	default:
		return fmt.Errorf("consumer of %s cancelled by the broker (queue deleted?)", qc.queue)
	}
}

// handleDelivery calls handle for d and carries out its outcome.
func (c *Consumer) handleDelivery(ctx context.Context, stopping <-chan struct{}, s *session, queueName string, d amqp.Delivery, deliveredAt time.Time, handle queue.Handler) {
	m := toMessage(d)
	outcome := c.call(ctx, queueName, m, handle)
	var err error
	switch outcome.Action {
	case queue.ActAck:
		err = d.Ack(false)
	case queue.ActDeadLetter:
		err = d.Reject(false)
	case queue.ActRetry:
		// The broker would deliver a returned message again at once (a quorum
		// queue serves returned messages first), so the wait happens here, in
		// the message's prefetch slot: the rest of the queue waits untouched.
		wait := outcome.After
		if wait == 0 {
			wait = c.cfg.RetryDelay(m.Attempt)
		}
		hold := min(max(wait, 0), max(c.cfg.MaxHold-time.Since(deliveredAt), 0))
		t := time.NewTimer(hold)
		select {
		case <-t.C:
		case <-stopping:
		}
		t.Stop()
		err = c.giveBack(s, queueName, d, m)
	}
	if err != nil {
		// The channel is gone: the broker returns the message to the queue.
		c.log.Debug("rabbitmq: outcome not delivered; the message will come again", "queue", queueName,
			"message", m.ID, "outcome", outcome, "err", err)
	}
}

// giveBack returns a retried message to its queue. Once the queue has taken it
// back DeliveryLimit times, one more return would dead-letter it: it is renewed
// instead, published again to its queue as a new message (with its routing key,
// properties and headers, so the handler sees the same message with Attempt 1)
// and acknowledged once the broker confirmed the copy. If the copy is not
// confirmed the message is returned anyway (and dead-lettered by the broker)
// rather than held past the consumer timeout.
func (c *Consumer) giveBack(s *session, queueName string, d amqp.Delivery, m queue.Message) error {
	if m.Attempt <= c.cfg.DeliveryLimit {
		return d.Nack(false, true)
	}
	ctx, cancel := context.WithTimeout(context.Background(), DefaultConfirmTimeout)
	defer cancel()
	if err := s.renewals.publish(ctx, queueName, republished(d, m.RoutingKey, nil)); err != nil {
		c.log.Error("rabbitmq: a retried message at its delivery limit could not be renewed; the broker will dead-letter it",
			"queue", queueName, "message", m.ID, "err", err)
		return d.Nack(false, true)
	}
	c.log.Info("rabbitmq: retried message renewed at its delivery limit", "queue", queueName, "message", m.ID, "attempt", m.Attempt)
	return d.Ack(false)
}

// call runs handle and says what becomes of the message: a panic or an unknown
// outcome dead-letters it, since delivering it again would most likely end the
// same way.
func (c *Consumer) call(ctx context.Context, queueName string, m queue.Message, handle queue.Handler) (outcome queue.Outcome) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("rabbitmq: handler panicked; message dead-lettered", "queue", queueName,
				"message", m.ID, "routing_key", m.RoutingKey, "attempt", m.Attempt, "panic", r, "stack", string(debug.Stack()))
			outcome = queue.DeadLetter
		}
	}()
	outcome = handle(ctx, m)
	if outcome.Valid() {
		return outcome
	}
	c.log.Error("rabbitmq: handler returned an unknown outcome; message dead-lettered", "queue", queueName,
		"message", m.ID, "routing_key", m.RoutingKey, "outcome", outcome.String())
	return queue.DeadLetter
}

// toMessage is the queue.Message of a delivery. A renewed or redriven message
// comes through the default exchange, keyed by its queue's name: its routing key
// is the one in headerRoutingKey.
func toMessage(d amqp.Delivery) queue.Message {
	m := queue.Message{ID: d.MessageId, RoutingKey: d.RoutingKey, Body: d.Body, Attempt: deliveryAttempt(d.Headers)}
	if key, ok := d.Headers[headerRoutingKey].(string); ok && key != "" {
		m.RoutingKey = key
	}
	if at, ok := d.Headers[headerRedrivenAt].(int64); ok && at > 0 {
		m.RedrivenAt = time.UnixMicro(at).UTC()
	}
	return m
}

// deliveryAttempt counts a delivery from 1. A quorum queue counts the times it
// took a message back (a nack or reject with requeue, a closed channel) in the
// x-delivery-count header, which RabbitMQ 3.10 leaves out of a first delivery
// and sends as a long otherwise.
func deliveryAttempt(headers amqp.Table) int {
	switch n := headers["x-delivery-count"].(type) {
	case int64:
		return int(n) + 1
	case int32:
		return int(n) + 1
	case int16:
		return int(n) + 1
	case int8:
		return int(n) + 1
	case int:
		return n + 1
	}
	return 1
}
