package rabbitmq

// The queue contract on a real broker. This file is in package rabbitmq, not
// rabbitmq_test, so that the bus declares the topology with the Consumer's own
// declare: the queues the contract publishes to are exactly the ones Run
// consumes.

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"phoneshop/internal/rabbittest"
	"phoneshop/notify/outbox"
	"phoneshop/notify/queue"
	"phoneshop/notify/queue/queuetest"
)

func TestContract(t *testing.T) {
	queuetest.Run(t, func(t *testing.T, cfg queuetest.Config) queuetest.Bus {
		b := &contractBus{
			t:             t,
			url:           rabbittest.VHost(t),
			deliveryLimit: toRabbitDeliveryLimit(t, cfg.DeliveryLimit),
			prefetch:      cfg.Prefetch,
			retryDelay:    cfg.RetryDelay,
			maxHold:       cfg.MaxHold,
			log:           slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
			dead:          map[string][]string{},
		}
		b.publisher = NewPublisher(Config{URL: b.url, Logger: b.log})
		t.Cleanup(func() {
			if err := b.publisher.Close(); err != nil {
				t.Errorf("close publisher: %v", err)
			}
		})
		return b
	})
}

// toRabbitDeliveryLimit is the x-delivery-limit that makes a quorum queue
// agree with the contract's DeliveryLimit. The contract counts deliveries (3:
// attempts 1, 2 and 3, then the dead letters, as memqueue does); a quorum
// queue counts the times a message came back, so x-delivery-limit N allows
// N+1 deliveries. 0 keeps the Consumer's default.
func toRabbitDeliveryLimit(t *testing.T, contractLimit int) int {
	t.Helper()
	switch {
	case contractLimit <= 0:
		return 0
	case contractLimit == 1:
		// x-delivery-limit 0 is the Consumer's "use the default".
		t.Fatal("a DeliveryLimit of 1 has no x-delivery-limit the Consumer accepts")
	}
	return contractLimit - 1
}

// contractBus is the Publisher and Consumers on one vhost of their own.
type contractBus struct {
	t             *testing.T
	url           string
	deliveryLimit int
	prefetch      int
	retryDelay    func(attempt int) time.Duration
	maxHold       time.Duration
	log           *slog.Logger
	publisher     *Publisher

	mu sync.Mutex
	// declared are the queues declared so far; consumers the Consumers
	// started (their in-flight counts are the bus's unacknowledged ones, as
	// the mailers' reports are in the shop).
	declared  []string
	consumers []*Consumer
	// dead holds the ids taken from each queue's dead-letter queue so far:
	// DeadLetters drains it (peeking would return each message to the quorum
	// queue, which counts that as a delivery), so it keeps what it took.
	dead map[string][]string
}

// consumerConfig is the configuration of every Consumer of the bus: Declare's
// and Consume's must agree, or the broker refuses the second declaration.
func (b *contractBus) consumerConfig(bindings []queue.Binding) ConsumerConfig {
	return ConsumerConfig{
		URL:           b.url,
		Bindings:      bindings,
		Prefetch:      b.prefetch,
		DeliveryLimit: b.deliveryLimit,
		RetryDelay:    b.retryDelay,
		MaxHold:       b.maxHold,
		Logger:        b.log,
	}
}

// Declare declares the topology with the Consumer's own declaration.
func (b *contractBus) Declare(ctx context.Context, bindings []queue.Binding) error {
	conn, err := dial(ctx, b.url, "phoneshop contract declare")
	if err != nil {
		return err
	}
	defer conn.Close()
	b.mu.Lock()
	for _, bd := range bindings {
		if !slices.Contains(b.declared, bd.Queue) {
			b.declared = append(b.declared, bd.Queue)
		}
	}
	b.mu.Unlock()
	return NewConsumer(b.consumerConfig(bindings)).declare(conn)
}

func (b *contractBus) Publish(ctx context.Context, events []outbox.Event) ([]string, error) {
	return b.publisher.Publish(ctx, events)
}

// Consume runs a Consumer until ctx ends; Run returning an error fails the test.
func (b *contractBus) Consume(ctx context.Context, bindings []queue.Binding, handle queue.Handler) {
	c := NewConsumer(b.consumerConfig(bindings))
	b.mu.Lock()
	b.consumers = append(b.consumers, c)
	b.mu.Unlock()
	if err := c.Run(ctx, handle); err != nil {
		b.t.Errorf("Run: %v", err)
	}
}

// inspector is an Inspector of the queues declared so far.
func (b *contractBus) inspector() *Inspector {
	b.mu.Lock()
	defer b.mu.Unlock()
	consumers := slices.Clone(b.consumers)
	return NewInspector(InspectorConfig{URL: b.url, Queues: slices.Clone(b.declared), Logger: b.log,
		Unacked: func(context.Context) (map[string]int64, error) {
			out := map[string]int64{}
			for _, c := range consumers {
				for name, n := range c.InFlight() {
					out[name] += n
				}
			}
			return out, nil
		}})
}

func (b *contractBus) Stats(ctx context.Context, names []string) ([]queue.Stats, error) {
	return b.inspector().Stats(ctx, names)
}

func (b *contractBus) Redrive(ctx context.Context, name string, limit int) (int, error) {
	return b.inspector().Redrive(ctx, name, limit)
}

// DeadLetters takes what waits in the queue's dead-letter queue and returns the
// ids of every message taken from it so far, oldest first.
func (b *contractBus) DeadLetters(ctx context.Context, queueName string) ([]string, error) {
	conn, err := dial(ctx, b.url, "phoneshop contract dead letters")
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	dead := queue.DeadLetterQueue(queueName)
	for {
		// basic.get with auto-ack takes one message at a time: nothing
		// arriving meanwhile is taken without being returned here.
		d, ok, err := ch.Get(dead, true)
		if err != nil {
			return nil, fmt.Errorf("get from %s: %w", dead, err)
		}
		if !ok {
			return slices.Clone(b.dead[queueName]), nil
		}
		b.dead[queueName] = append(b.dead[queueName], d.MessageId)
	}
}
