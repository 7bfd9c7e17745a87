// Package memqueue is the in-process queue of `phoneshop dev`, the embedded default
// that stands in for RabbitMQ: one topic exchange, a queue per binding, a delivery
// limit and dead letters, with the same contract as notify/rabbitmq (the contract
// suite notify/queue/queuetest runs on both).
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
	// DeliveryLimit: a message delivered more often than this is dead-lettered
	// (default 20, as the RabbitMQ queues).
	DeliveryLimit int
	// RetryDelay is the wait before a message a handler asked to retry is
	// delivered again (default 1 s doubling per attempt, at most 30 s).
	RetryDelay func(attempt int) time.Duration
	// Prefetch is how many messages of one queue are handled at once (default 32).
	Prefetch int
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
	name  string
	mu    sync.Mutex
	ready []queue.Message
	dead  []queue.Message
	wake  chan struct{} // a message became ready
}

// New returns a broker with no queues.
func New(cfg Config) *Broker {
	if cfg.DeliveryLimit <= 0 {
		cfg.DeliveryLimit = 20
	}
	if cfg.RetryDelay == nil {
		cfg.RetryDelay = func(attempt int) time.Duration {
			return min(time.Second<<min(attempt-1, 5), 30*time.Second)
		}
	}
	if cfg.Prefetch <= 0 {
		cfg.Prefetch = 32
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

func (q *memQueue) push(m queue.Message) {
	q.mu.Lock()
	q.ready = append(q.ready, m)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop takes the next ready message, waiting for one until ctx ends.
func (q *memQueue) pop(ctx context.Context) (queue.Message, bool) {
	for {
		q.mu.Lock()
		if len(q.ready) > 0 {
			m := q.ready[0]
			q.ready = q.ready[1:]
			more := len(q.ready) > 0
			q.mu.Unlock()
			if more { // let another worker take the next one
				select {
				case q.wake <- struct{}{}:
				default:
				}
			}
			return m, true
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return queue.Message{}, false
		case <-q.wake:
		}
	}
}

// DeadLetters returns the messages dead-lettered from queue name.
func (b *Broker) DeadLetters(name string) []queue.Message {
	b.mu.Lock()
	q := b.queues[name]
	b.mu.Unlock()
	if q == nil {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]queue.Message(nil), q.dead...)
}

// Run consumes the queues of bindings (declaring them) with handle until ctx ends,
// Prefetch messages of each queue at a time, then waits for the handlers running.
func (b *Broker) Run(ctx context.Context, bindings []queue.Binding, handle queue.Handler) {
	b.Declare(bindings...)
	var wg sync.WaitGroup
	var retries sync.WaitGroup
	for _, bd := range bindings {
		b.mu.Lock()
		q := b.queues[bd.Queue]
		b.mu.Unlock()
		for range b.cfg.Prefetch {
			wg.Go(func() {
				for {
					m, ok := q.pop(ctx)
					if !ok {
						return
					}
					b.settle(ctx, q, m, b.handle(ctx, q, m, handle), &retries)
				}
			})
		}
	}
	wg.Wait()
	retries.Wait()
}

func (b *Broker) handle(ctx context.Context, q *memQueue, m queue.Message, handle queue.Handler) (outcome queue.Outcome) {
	defer func() {
		if r := recover(); r != nil {
			b.cfg.Logger.Error("message handler panicked; dead-lettering the message", "queue", q.name, "message", m.ID, "panic", r)
			outcome = queue.DeadLetter
		}
	}()
	return handle(ctx, m)
}

func (b *Broker) settle(ctx context.Context, q *memQueue, m queue.Message, outcome queue.Outcome, retries *sync.WaitGroup) {
	switch outcome {
	case queue.Ack:
	case queue.Retry:
		if m.Attempt >= b.cfg.DeliveryLimit {
			b.cfg.Logger.Error("message over its delivery limit; dead-lettering it", "queue", q.name, "message", m.ID, "attempts", m.Attempt)
			b.deadLetter(q, m)
			return
		}
		next := m
		next.Attempt++
		// Requeued after the wait; if the broker stops meanwhile, it is requeued at
		// once (so it is not lost to a Run that ends).
		retries.Go(func() {
			t := time.NewTimer(b.cfg.RetryDelay(m.Attempt))
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			q.push(next)
		})
	default:
		b.deadLetter(q, m)
	}
}

func (b *Broker) deadLetter(q *memQueue, m queue.Message) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.dead = append(q.dead, m)
}
