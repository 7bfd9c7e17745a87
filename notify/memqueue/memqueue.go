// Package memqueue is the in-process queue of `phoneshop dev`, the embedded default
// that stands in for RabbitMQ: one topic exchange, a queue per binding, holds and
// renewals of retried messages, dead letters that operators can count and send
// back, with the same contract as notify/rabbitmq (the contract suite
// notify/queue/queuetest runs on both).
//
// It is not durable: what was published but not yet handled when the process
// stops is gone (the outbox rows were marked published on the confirm). dev runs
// on one machine for one person; the shop's durability holds on RabbitMQ.
package memqueue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"phoneshop/notify/outbox"
	"phoneshop/notify/queue"
)

// Config tunes a broker; zero values take the defaults.
type Config struct {
	// DeliveryLimit: a retried message given back to its queue this often is
	// renewed (its Attempt starts again at 1), as the RabbitMQ consumer does
	// before the broker's delivery limit would dead-letter it (default 20).
	DeliveryLimit int
	// RetryDelay is the wait before a message a handler asked to retry (without
	// saying how long) is delivered again (default 1 s doubling per attempt, at
	// most 30 s).
	RetryDelay func(attempt int) time.Duration
	// MaxHold is the longest a retried message is held before it goes back to
	// its queue (default queue.DefaultMaxHold). dev has no consumer timeout; the
	// hold is bounded as on RabbitMQ so that both behave alike.
	MaxHold time.Duration
	// Prefetch is how many messages of one queue are handled, or held, at once
	// (default 32).
	Prefetch int
	Now      func() time.Time
	Logger   *slog.Logger
}

// Broker is an in-process topic exchange and its queues.
type Broker struct {
	cfg    Config
	mu     sync.Mutex
	queues map[string]*memQueue
	binds  []bind
}

type bind struct {
	pattern string
	queue   *memQueue
}

type memQueue struct {
	name     string
	mu       sync.Mutex
	ready    []queue.Message
	dead     []queue.Message
	inFlight int           // taken by a worker: handled or held
	wake     chan struct{} // a message became ready
}

// New returns a broker with no queues.
func New(cfg Config) *Broker {
	if cfg.DeliveryLimit <= 0 {
		cfg.DeliveryLimit = 20
	}
	if cfg.RetryDelay == nil {
		cfg.RetryDelay = func(attempt int) time.Duration {
			return min(time.Second<<min(max(attempt, 1)-1, 5), 30*time.Second)
		}
	}
	if cfg.MaxHold <= 0 {
		cfg.MaxHold = queue.DefaultMaxHold
	}
	if cfg.Prefetch <= 0 {
		cfg.Prefetch = 32
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Broker{cfg: cfg, queues: map[string]*memQueue{}}
}

// Declare creates the queues of bindings and binds their routing keys (again:
// nothing changes).
func (b *Broker) Declare(bindings ...queue.Binding) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, bd := range bindings {
		q, ok := b.queues[bd.Queue]
		if !ok {
			q = &memQueue{name: bd.Queue, wake: make(chan struct{}, 1)}
			b.queues[bd.Queue] = q
		}
		for _, key := range bd.RoutingKeys {
			found := false
			for _, existing := range b.binds {
				found = found || (existing.queue == q && existing.pattern == key)
			}
			if !found {
				b.binds = append(b.binds, bind{pattern: key, queue: q})
			}
		}
	}
}

// ErrReturned is a message no queue is bound to take: it is not confirmed.
var ErrReturned = errors.New("memqueue: no queue bound for the routing key (returned)")

// Publish implements the relay's Publisher: an event is confirmed once it is in
// every queue bound to its routing key; one that no queue takes is returned.
func (b *Broker) Publish(ctx context.Context, events []outbox.Event) (confirmed []string, err error) {
	var returned []string
	for _, e := range events {
		if err := ctx.Err(); err != nil {
			return confirmed, err
		}
		targets := b.route(e.RoutingKey)
		if len(targets) == 0 {
			returned = append(returned, e.ID)
			continue
		}
		for _, q := range targets {
			q.push(queue.Message{ID: e.ID, RoutingKey: e.RoutingKey, Body: e.Payload, Attempt: 1})
		}
		confirmed = append(confirmed, e.ID)
	}
	if len(returned) > 0 {
		err = fmt.Errorf("%w: %s", ErrReturned, strings.Join(returned, ", "))
	}
	return confirmed, err
}

func (b *Broker) route(key string) []*memQueue {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*memQueue
	seen := map[*memQueue]bool{}
	for _, bd := range b.binds {
		if !seen[bd.queue] && TopicMatch(bd.pattern, key) {
			seen[bd.queue] = true
			out = append(out, bd.queue)
		}
	}
	return out
}

// TopicMatch reports whether routing key matches a topic pattern as RabbitMQ's
// topic exchange does: words separated by dots, "*" matches one word, "#" zero or
// more.
func TopicMatch(pattern, key string) bool {
	return matchWords(strings.Split(pattern, "."), strings.Split(key, "."))
}

func matchWords(p, k []string) bool {
	switch {
	case len(p) == 0:
		return len(k) == 0
	case p[0] == "#":
		for i := 0; i <= len(k); i++ {
			if matchWords(p[1:], k[i:]) {
				return true
			}
		}
		return false
	case len(k) == 0:
		return false
	case p[0] == "*" || p[0] == k[0]:
		return matchWords(p[1:], k[1:])
	}
	return false
}

// push appends m to the queue (a publish).
func (q *memQueue) push(m queue.Message) {
	q.mu.Lock()
	q.ready = append(q.ready, m)
	q.mu.Unlock()
	q.signal()
}

func (q *memQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop takes the next ready message into flight, waiting for one until ctx ends
// (once it has, it takes none: a message given back at the stop stays ready).
func (q *memQueue) pop(ctx context.Context) (queue.Message, bool) {
	for ctx.Err() == nil {
		q.mu.Lock()
		if len(q.ready) > 0 {
			m := q.ready[0]
			q.ready = q.ready[1:]
			q.inFlight++
			more := len(q.ready) > 0
			q.mu.Unlock()
			if more { // let another worker take the next one
				q.signal()
			}
			return m, true
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-q.wake:
		}
	}
	return queue.Message{}, false
}

// settle ends a message's flight: acknowledged, or moved by move (under the
// queue's lock, so that counts never show it twice or nowhere).
func (q *memQueue) settle(move func()) {
	q.mu.Lock()
	q.inFlight--
	if move != nil {
		move()
	}
	q.mu.Unlock()
	q.signal()
}

// DeadLetters returns the messages dead-lettered from queue name.
func (b *Broker) DeadLetters(name string) []queue.Message {
	q := b.queue(name)
	if q == nil {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]queue.Message(nil), q.dead...)
}

func (b *Broker) queue(name string) *memQueue {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.queues[name]
}

// Stats implements queue.Ops: ready, in flight (handled or held) and dead, per
// queue of names; a queue not declared is queue.ErrUnknownQueue.
func (b *Broker) Stats(_ context.Context, names []string) ([]queue.Stats, error) {
	out := make([]queue.Stats, 0, len(names))
	for _, name := range names {
		q := b.queue(name)
		if q == nil {
			return nil, fmt.Errorf("%w: %s", queue.ErrUnknownQueue, name)
		}
		q.mu.Lock()
		out = append(out, queue.Stats{Name: name, Ready: int64(len(q.ready)), Unacked: int64(q.inFlight), Dead: int64(len(q.dead))})
		q.mu.Unlock()
	}
	return out, nil
}

// Redrive implements queue.Ops: up to limit dead letters, oldest first, go to the
// end of their queue, with Attempt 1 and RedrivenAt now, in one step.
func (b *Broker) Redrive(_ context.Context, name string, limit int) (int, error) {
	q := b.queue(name)
	if q == nil {
		return 0, fmt.Errorf("%w: %s", queue.ErrUnknownQueue, name)
	}
	if limit < 1 {
		return 0, fmt.Errorf("memqueue: redrive limit %d: want at least 1", limit)
	}
	now := b.cfg.Now()
	q.mu.Lock()
	n := min(limit, len(q.dead))
	for _, m := range q.dead[:n] {
		m.Attempt, m.RedrivenAt = 1, now
		q.ready = append(q.ready, m)
	}
	q.dead = append([]queue.Message(nil), q.dead[n:]...)
	q.mu.Unlock()
	if n > 0 {
		q.signal()
	}
	b.cfg.Logger.Info("dead letters redriven", "queue", name, "messages", n)
	return n, nil
}

// Run consumes the queues of bindings (declaring them) with handle until ctx ends,
// Prefetch messages of each queue at a time, then waits for the handlers running.
// A message held for a retry when ctx ends goes back to its queue at once.
func (b *Broker) Run(ctx context.Context, bindings []queue.Binding, handle queue.Handler) {
	b.Declare(bindings...)
	var wg sync.WaitGroup
	for _, bd := range bindings {
		q := b.queue(bd.Queue)
		for range b.cfg.Prefetch {
			wg.Go(func() {
				for {
					m, ok := q.pop(ctx)
					if !ok {
						return
					}
					b.process(ctx, q, m, handle)
				}
			})
		}
	}
	wg.Wait()
}

// process handles m and carries out the outcome; a retried message is held by the
// worker (it keeps its prefetch slot), then given back.
func (b *Broker) process(ctx context.Context, q *memQueue, m queue.Message, handle queue.Handler) {
	outcome := b.handle(ctx, q, m, handle)
	switch outcome.Action {
	case queue.ActAck:
		q.settle(nil)
	case queue.ActRetry:
		wait := outcome.After
		if wait == 0 {
			wait = b.cfg.RetryDelay(m.Attempt)
		}
		t := time.NewTimer(min(wait, b.cfg.MaxHold))
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		b.giveBack(q, m)
	default:
		b.cfg.Logger.Error("message dead-lettered", "queue", q.name, "message", m.ID, "attempt", m.Attempt)
		q.settle(func() { q.dead = append(q.dead, m) })
	}
}

// giveBack returns a retried message to the head of its queue with its next
// attempt; one at the delivery limit is renewed instead, at the end of the queue,
// as the RabbitMQ consumer publishes it again.
func (b *Broker) giveBack(q *memQueue, m queue.Message) {
	if m.Attempt >= b.cfg.DeliveryLimit {
		m.Attempt = 1
		q.settle(func() { q.ready = append(q.ready, m) })
		return
	}
	m.Attempt++
	q.settle(func() { q.ready = append([]queue.Message{m}, q.ready...) })
}

func (b *Broker) handle(ctx context.Context, q *memQueue, m queue.Message, handle queue.Handler) (outcome queue.Outcome) {
	defer func() {
		if r := recover(); r != nil {
			b.cfg.Logger.Error("message handler panicked; dead-lettering the message", "queue", q.name, "message", m.ID, "panic", r)
			outcome = queue.DeadLetter
		}
	}()
	outcome = handle(ctx, m)
	if !outcome.Valid() {
		b.cfg.Logger.Error("message handler returned an unknown outcome; dead-lettering the message", "queue", q.name, "message", m.ID, "outcome", outcome)
		return queue.DeadLetter
	}
	return outcome
}
