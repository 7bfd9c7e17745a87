// Package queuetest is the contract every queue adapter passes: the same suite runs
// on the in-process queue of dev (notify/memqueue) and on RabbitMQ, so the mail
// pipeline behaves alike on both: routing, returns, retries with a growing
// attempt, the delivery limit, dead letters, prefetch.
package queuetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"phoneshop/notify/outbox"
	"phoneshop/notify/queue"
)

// Bus is one adapter under test: a publisher and a consumer on one broker.
type Bus interface {
	// Declare creates the queues of bindings (before anything is published).
	Declare(ctx context.Context, bindings []queue.Binding) error
	Publish(ctx context.Context, events []outbox.Event) (confirmed []string, err error)
	// Consume handles the messages of bindings until ctx ends.
	Consume(ctx context.Context, bindings []queue.Binding, handle queue.Handler)
	// DeadLetters lists the ids of the messages dead-lettered from queue.
	DeadLetters(ctx context.Context, queueName string) ([]string, error)
}

// Config is what a test asks of a new bus.
type Config struct {
	DeliveryLimit int
	Prefetch      int
	RetryDelay    func(attempt int) time.Duration
}

// Open returns a new, empty bus for one test, removed at cleanup.
type Open func(t *testing.T, cfg Config) Bus

func events(t *testing.T, key string, n int, prefix string) []outbox.Event {
	t.Helper()
	var out []outbox.Event
	for i := range n {
		e, err := outbox.New(key, fmt.Sprintf("%s-%d", prefix, i), map[string]int{"n": i}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// waitFor polls cond until it holds or 20 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Run runs the contract.
func Run(t *testing.T, open Open) {
	fast := func(int) time.Duration { return 10 * time.Millisecond }
	orders := queue.Binding{Queue: "test.orders", RoutingKeys: []string{"order.*"}}
	promos := queue.Binding{Queue: "test.promos", RoutingKeys: []string{outbox.PromoEmail}}

	t.Run("messages_reach_the_queues_bound_to_their_keys", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		bus := open(t, Config{RetryDelay: fast})
		if err := bus.Declare(ctx, []queue.Binding{orders, promos}); err != nil {
			t.Fatal(err)
		}
		sent := slices.Concat(events(t, outbox.OrderConfirmed, 5, "o"), events(t, outbox.OrderShipped, 5, "s"), events(t, outbox.PromoEmail, 5, "p"))
		confirmed, err := bus.Publish(ctx, sent)
		if err != nil || len(confirmed) != len(sent) {
			t.Fatalf("Publish = %d confirmed, %v", len(confirmed), err)
		}
		var mu sync.Mutex
		got := map[string][]queue.Message{}
		done := make(chan struct{})
		go func() {
			defer close(done)
			bus.Consume(ctx, []queue.Binding{orders, promos}, func(_ context.Context, m queue.Message) queue.Outcome {
				mu.Lock()
				defer mu.Unlock()
				got[m.RoutingKey] = append(got[m.RoutingKey], m)
				return queue.Ack
			})
		}()
		waitFor(t, "every message handled", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(got[outbox.OrderConfirmed])+len(got[outbox.OrderShipped])+len(got[outbox.PromoEmail]) == len(sent)
		})
		cancel()
		<-done
		byID := map[string]outbox.Event{}
		for _, e := range sent {
			byID[e.ID] = e
		}
		for _, ms := range got {
			for _, m := range ms {
				e, ok := byID[m.ID]
				if !ok || e.RoutingKey != m.RoutingKey || string(e.Payload) != string(m.Body) || m.Attempt != 1 {
					t.Errorf("message %+v does not match what was sent (%+v)", m, e)
				}
				delete(byID, m.ID)
			}
		}
		if len(byID) > 0 {
			t.Errorf("never handled (or handled twice): %v", byID)
		}
	})

	t.Run("a_message_no_queue_takes_is_returned_not_confirmed", func(t *testing.T) {
		ctx := context.Background()
		bus := open(t, Config{RetryDelay: fast})
		if err := bus.Declare(ctx, []queue.Binding{orders}); err != nil {
			t.Fatal(err)
		}
		sent := slices.Concat(events(t, outbox.OrderConfirmed, 2, "o"), events(t, outbox.PromoActivated, 1, "a"))
		confirmed, err := bus.Publish(ctx, sent)
		if err == nil || !slices.Equal(confirmed, []string{sent[0].ID, sent[1].ID}) {
			t.Fatalf("Publish = %v, %v; want the two order events confirmed and an error for the third", confirmed, err)
		}
	})

	t.Run("retries_come_back_with_a_growing_attempt_until_the_dead_letters", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		bus := open(t, Config{DeliveryLimit: 3, RetryDelay: fast})
		if err := bus.Declare(ctx, []queue.Binding{orders}); err != nil {
			t.Fatal(err)
		}
		stuck := events(t, outbox.OrderConfirmed, 1, "stuck")[0]
		fine := events(t, outbox.OrderShipped, 3, "fine")
		if _, err := bus.Publish(ctx, append([]outbox.Event{stuck}, fine...)); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var attempts []int
		acked := 0
		done := make(chan struct{})
		go func() {
			defer close(done)
			bus.Consume(ctx, []queue.Binding{orders}, func(_ context.Context, m queue.Message) queue.Outcome {
				mu.Lock()
				defer mu.Unlock()
				if m.ID == stuck.ID {
					attempts = append(attempts, m.Attempt)
					return queue.Retry
				}
				acked++
				return queue.Ack
			})
		}()
		waitFor(t, "the stuck message dead-lettered", func() bool {
			dead, err := bus.DeadLetters(ctx, orders.Queue)
			return err == nil && slices.Equal(dead, []string{stuck.ID})
		})
		mu.Lock()
		if !slices.Equal(attempts, []int{1, 2, 3}) || acked != len(fine) {
			t.Errorf("attempts %v (want 1 2 3), %d others acked (want %d)", attempts, acked, len(fine))
		}
		mu.Unlock()
		cancel()
		<-done
	})

	t.Run("a_dead_letter_goes_at_once_and_the_rest_flows", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		bus := open(t, Config{RetryDelay: fast})
		if err := bus.Declare(ctx, []queue.Binding{promos}); err != nil {
			t.Fatal(err)
		}
		sent := events(t, outbox.PromoEmail, 10, "p")
		if _, err := bus.Publish(ctx, sent); err != nil {
			t.Fatal(err)
		}
		var handled atomic.Int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			bus.Consume(ctx, []queue.Binding{promos}, func(_ context.Context, m queue.Message) queue.Outcome {
				handled.Add(1)
				if m.ID == sent[3].ID {
					return queue.DeadLetter
				}
				return queue.Ack
			})
		}()
		waitFor(t, "every message handled once", func() bool { return handled.Load() == int64(len(sent)) })
		waitFor(t, "the refused message dead-lettered", func() bool {
			dead, err := bus.DeadLetters(ctx, promos.Queue)
			return err == nil && slices.Equal(dead, []string{sent[3].ID})
		})
		cancel()
		<-done
	})

	t.Run("prefetch_bounds_the_handlers_in_flight", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		bus := open(t, Config{Prefetch: 2, RetryDelay: fast})
		if err := bus.Declare(ctx, []queue.Binding{promos}); err != nil {
			t.Fatal(err)
		}
		if _, err := bus.Publish(ctx, events(t, outbox.PromoEmail, 12, "p")); err != nil {
			t.Fatal(err)
		}
		var inFlight, most, handled atomic.Int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			bus.Consume(ctx, []queue.Binding{promos}, func(context.Context, queue.Message) queue.Outcome {
				n := inFlight.Add(1)
				for {
					m := most.Load()
					if n <= m || most.CompareAndSwap(m, n) {
						break
					}
				}
				time.Sleep(20 * time.Millisecond)
				inFlight.Add(-1)
				handled.Add(1)
				return queue.Ack
			})
		}()
		waitFor(t, "every message handled", func() bool { return handled.Load() == 12 })
		cancel()
		<-done
		if most.Load() > 2 || most.Load() < 1 {
			t.Errorf("%d handlers ran at once, want at most the prefetch (2)", most.Load())
		}
	})
}
