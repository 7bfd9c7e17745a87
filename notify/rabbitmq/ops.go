package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"phoneshop/notify/queue"
)

// Headers the shop adds to a message it publishes again (renewed by a Consumer,
// redriven from the dead letters): they go to their queue through the default
// exchange, keyed by the queue's name, so the event's own routing key travels in
// a header; and a redriven message says when it was sent back.
const (
	headerRoutingKey = "x-phoneshop-routing-key"
	headerRedrivenAt = "x-phoneshop-redriven-at" // Unix microseconds
)

// brokerHeaders are the headers RabbitMQ writes itself when it delivers or
// dead-letters a message; a copy published again starts without them (a copy
// carrying x-death could be taken for a dead-letter cycle and dropped).
func brokerHeader(name string) bool {
	return name == "x-delivery-count" || name == "x-death" ||
		strings.HasPrefix(name, "x-first-death-") || strings.HasPrefix(name, "x-last-death-")
}

// republished is the copy of d to publish again: its properties and body, its
// headers without the broker's own, and routingKey in headerRoutingKey (plus
// extra headers).
func republished(d amqp.Delivery, routingKey string, extra amqp.Table) amqp.Publishing {
	headers := amqp.Table{}
	for k, v := range d.Headers {
		if !brokerHeader(k) {
			headers[k] = v
		}
	}
	headers[headerRoutingKey] = routingKey
	for k, v := range extra {
		headers[k] = v
	}
	return amqp.Publishing{
		Headers:         headers,
		ContentType:     d.ContentType,
		ContentEncoding: d.ContentEncoding,
		DeliveryMode:    amqp.Persistent,
		Priority:        d.Priority,
		CorrelationId:   d.CorrelationId,
		ReplyTo:         d.ReplyTo,
		Expiration:      d.Expiration,
		MessageId:       d.MessageId,
		Timestamp:       d.Timestamp,
		Type:            d.Type,
		UserId:          d.UserId,
		AppId:           d.AppId,
		Body:            d.Body,
	}
}

// originalRoutingKey is the routing key a dead-lettered message was published
// with: the shop's header if it was published again before, else the first of
// the routing keys RabbitMQ recorded when it dead-lettered it, else its Type
// (the Publisher sets it to the routing key).
func originalRoutingKey(d amqp.Delivery) string {
	if key, ok := d.Headers[headerRoutingKey].(string); ok && key != "" {
		return key
	}
	if deaths, ok := d.Headers["x-death"].([]any); ok && len(deaths) > 0 {
		if death, ok := deaths[0].(amqp.Table); ok {
			if keys, ok := death["routing-keys"].([]any); ok && len(keys) > 0 {
				if key, ok := keys[0].(string); ok && key != "" {
					return key
				}
			}
		}
	}
	if d.Type != "" {
		return d.Type
	}
	return d.RoutingKey
}

// confirmChannel publishes one message at a time on a channel in confirm mode and
// waits for the broker's confirm: a message returned (mandatory: no queue took
// it) or nacked is an error. A channel lost (closed after a confirm that did not
// come in time, or by the broker) is opened again on the next publish, on the
// same connection.
type confirmChannel struct {
	mu      sync.Mutex
	conn    *amqp.Connection
	ch      *amqp.Channel
	returns chan amqp.Return
}

func openConfirmChannel(conn *amqp.Connection) (*confirmChannel, error) {
	c := &confirmChannel{conn: conn}
	if err := c.open(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *confirmChannel) open() error {
	ch, err := c.conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	returns := ch.NotifyReturn(make(chan amqp.Return, 1))
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return fmt.Errorf("confirm mode: %w", err)
	}
	c.ch, c.returns = ch, returns
	return nil
}

// publish publishes p to queueName through the default exchange and returns once
// the broker confirmed it, or why not.
func (c *confirmChannel) publish(ctx context.Context, queueName string, p amqp.Publishing) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch.IsClosed() {
		if err := c.open(); err != nil {
			return err
		}
	}
	dc, err := c.ch.PublishWithDeferredConfirmWithContext(ctx, "", queueName, true, false, p)
	if err != nil {
		return fmt.Errorf("publish to %s: %w", queueName, err)
	}
	select {
	case <-dc.Done():
	case <-ctx.Done():
		// The confirm may still come; the channel can no longer tell which
		// message a late one is for.
		_ = c.ch.Close()
		return fmt.Errorf("%w: %s: %w", ErrUnconfirmed, queueName, ctx.Err())
	}
	// The reader goroutine hands a message's return to the listener before it
	// processes that message's ack (see Publisher.publishSlice).
	select {
	case r := <-c.returns:
		return fmt.Errorf("%w: %s: %d %s", ErrReturned, queueName, r.ReplyCode, r.ReplyText)
	default:
	}
	if !dc.Acked() {
		return fmt.Errorf("%w: %s", ErrNacked, queueName)
	}
	return nil
}

// InspectorConfig is what an Inspector needs; zero durations take the defaults.
type InspectorConfig struct {
	// URL is the broker's AMQP URI (never logged).
	URL string
	// Queues are the queues the Inspector serves (a mailer's bindings): others
	// are queue.ErrUnknownQueue.
	Queues []string
	// Unacked counts, per queue, the messages consumers hold unacknowledged:
	// RabbitMQ tells a client the ready messages of a queue (a passive
	// declaration), not the unacknowledged ones, so the consumers report theirs
	// (the mailers write them to the store). nil: zeros.
	Unacked func(ctx context.Context) (map[string]int64, error)
	// DialTimeout bounds opening a connection; ConfirmTimeout one redriven
	// message's confirm.
	DialTimeout, ConfirmTimeout time.Duration
	Logger                      *slog.Logger
}

// Inspector counts the shop's queues on RabbitMQ and sends their dead letters
// back (queue.Ops). Each call opens a connection of its own and closes it: ops
// reads are rare, and a connection held between them would be one more thing to
// heal after a broker restart.
type Inspector struct {
	cfg    InspectorConfig
	broker string
}

// NewInspector returns an Inspector for cfg; it connects on each call.
func NewInspector(cfg InspectorConfig) *Inspector {
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.ConfirmTimeout <= 0 {
		cfg.ConfirmTimeout = DefaultConfirmTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Inspector{cfg: cfg, broker: brokerName(cfg.URL)}
}

func (i *Inspector) known(name string) error {
	if !slices.Contains(i.cfg.Queues, name) {
		return fmt.Errorf("%w: %s", queue.ErrUnknownQueue, name)
	}
	return nil
}

// connect opens a connection within DialTimeout, torn down at once if ctx ends
// while it is in use (stop reports nothing; call it when done).
func (i *Inspector) connect(ctx context.Context, name string) (conn *amqp.Connection, stop func(), err error) {
	dctx, cancel := context.WithTimeout(ctx, i.cfg.DialTimeout)
	defer cancel()
	conn, err = dial(dctx, i.cfg.URL, name)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, i.broker, err)
	}
	stopTearDown := tearDownOnDone(ctx, conn)
	return conn, func() {
		stopTearDown()
		_ = conn.CloseDeadline(time.Now().Add(closeTimeout))
	}, nil
}

// Stats implements queue.Ops: ready and dead counts by passive declarations (a
// queue not declared yet counts zeros), unacknowledged counts from Unacked.
func (i *Inspector) Stats(ctx context.Context, names []string) ([]queue.Stats, error) {
	for _, name := range names {
		if err := i.known(name); err != nil {
			return nil, err
		}
	}
	var unacked map[string]int64
	if i.cfg.Unacked != nil {
		var err error
		if unacked, err = i.cfg.Unacked(ctx); err != nil {
			return nil, fmt.Errorf("rabbitmq: unacknowledged counts: %w", err)
		}
	}
	conn, stop, err := i.connect(ctx, "phoneshop queue inspector")
	if err != nil {
		return nil, err
	}
	defer stop()
	var ch *amqp.Channel
	// count reads one queue's ready messages. A passive declaration of a queue
	// that does not exist closes the channel (404): the next one opens another.
	count := func(name string) (int64, error) {
		if ch == nil {
			if ch, err = conn.Channel(); err != nil {
				return 0, fmt.Errorf("%w: open channel: %w", ErrUnavailable, err)
			}
		}
		q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
		var amqpErr *amqp.Error
		if errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound {
			ch = nil
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("%w: inspect %s: %w", ErrUnavailable, name, err)
		}
		return int64(q.Messages), nil
	}
	out := make([]queue.Stats, 0, len(names))
	for _, name := range names {
		st := queue.Stats{Name: name, Unacked: unacked[name]}
		if st.Ready, err = count(name); err != nil {
			return nil, err
		}
		if st.Dead, err = count(queue.DeadLetterQueue(name)); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Redrive implements queue.Ops. One message at a time: take it from the dead
// letters (basic.get, not acknowledged), publish a copy to its queue through the
// default exchange with its routing key and the time of the redrive in headers,
// wait for the broker's confirm, and only then acknowledge the dead letter. A copy
// not confirmed returns its dead letter to the dead letters and ends the redrive
// with an error.
func (i *Inspector) Redrive(ctx context.Context, name string, limit int) (n int, err error) {
	if err := i.known(name); err != nil {
		return 0, err
	}
	if limit < 1 {
		return 0, fmt.Errorf("rabbitmq: redrive limit %d: want at least 1", limit)
	}
	conn, stop, err := i.connect(ctx, "phoneshop dead-letter redrive")
	if err != nil {
		return 0, err
	}
	defer stop()
	defer func() {
		i.cfg.Logger.Info("dead letters redriven", "queue", name, "messages", n, "err", err)
	}()
	pub, err := openConfirmChannel(conn)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	dead := queue.DeadLetterQueue(name)
	redrivenAt := time.Now().UnixMicro()
	for n < limit {
		d, ok, err := pub.ch.Get(dead, false)
		var amqpErr *amqp.Error
		switch {
		case errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound:
			return n, nil // never declared: nothing dead
		case err != nil:
			return n, fmt.Errorf("%w: get from %s: %w", ErrUnavailable, dead, err)
		case !ok:
			return n, nil
		}
		again := republished(d, originalRoutingKey(d), amqp.Table{headerRedrivenAt: redrivenAt})
		cctx, cancel := context.WithTimeout(ctx, i.cfg.ConfirmTimeout)
		err = pub.publish(cctx, name, again)
		cancel()
		if err != nil {
			_ = d.Nack(false, true)
			return n, fmt.Errorf("%w: redrive %s to %s: %w", ErrUnavailable, d.MessageId, name, err)
		}
		if err := d.Ack(false); err != nil {
			// The copy is in the queue and the dead letter stays: handlers
			// recognise the message by its id.
			return n + 1, fmt.Errorf("%w: acknowledge %s in %s: %w", ErrUnavailable, d.MessageId, dead, err)
		}
		n++
	}
	return n, nil
}
