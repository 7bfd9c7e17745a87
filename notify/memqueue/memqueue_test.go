package memqueue_test

import (
	"context"
	"testing"

	"phoneshop/notify/memqueue"
	"phoneshop/notify/queue"
	"phoneshop/notify/queue/queuetest"
)

type bus struct{ *memqueue.Broker }

func (b bus) Declare(_ context.Context, bindings []queue.Binding) error {
	b.Broker.Declare(bindings...)
	return nil
}

func (b bus) Consume(ctx context.Context, bindings []queue.Binding, handle queue.Handler) {
	b.Run(ctx, bindings, handle)
}

func (b bus) DeadLetters(_ context.Context, name string) ([]string, error) {
	var ids []string
	for _, m := range b.Broker.DeadLetters(name) {
		ids = append(ids, m.ID)
	}
	return ids, nil
}

func TestContract(t *testing.T) {
	queuetest.Run(t, func(t *testing.T, cfg queuetest.Config) queuetest.Bus {
		return bus{memqueue.New(memqueue.Config{DeliveryLimit: cfg.DeliveryLimit, Prefetch: cfg.Prefetch, RetryDelay: cfg.RetryDelay, MaxHold: cfg.MaxHold})}
	})
}

func TestTopicMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, key string
		want         bool
	}{
		{"order.*", "order.confirmed", true},
		{"order.*", "order", false},
		{"order.*", "order.confirmed.late", false},
		{"order.#", "order", true},
		{"order.#", "order.a.b", true},
		{"#", "anything.at.all", true},
		{"promo.email", "promo.email", true},
		{"promo.email", "promo.activated", false},
		{"*.email", "promo.email", true},
		{"#.email", "a.b.email", true},
	} {
		if got := memqueue.TopicMatch(tc.pattern, tc.key); got != tc.want {
			t.Errorf("TopicMatch(%q, %q) = %v, want %v", tc.pattern, tc.key, got, tc.want)
		}
	}
}
