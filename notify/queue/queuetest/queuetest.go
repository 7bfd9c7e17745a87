// Package queuetest is the contract every queue adapter passes: the same suite runs
// on the in-process queue of dev (notify/memqueue) and on RabbitMQ, so the mail
// pipeline behaves alike on both: routing, returns, retries with a growing
// attempt, holds within the prefetch window and MaxHold, renewal at the delivery
// limit (never the dead letters for a retry), dead letters counted and redriven.
package queuetest

import (
	"context"
	"errors"
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
	// DeadLetters lists the ids of the messages dead-lettered from queue (it may
	// take them out of the dead letters, to be read without a delivery count).
	DeadLetters(ctx context.Context, queueName string) ([]string, error)
	// Ops counts the queues (unacknowledged: what the bus's consumers hold) and
	// redrives their dead letters.
	queue.Ops
}

// Config is what a test asks of a new bus.
type Config struct {
	DeliveryLimit int
	Prefetch      int
	RetryDelay    func(attempt int) time.Duration
	MaxHold       time.Duration
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

	t.Run("retries_come_back_with_a_growing_attempt_and_are_renewed_never_dead_lettered", func(t *testing.T) {
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
		var stuckSeen []queue.Message
		acked := 0
		done := make(chan struct{})
		go func() {
			defer close(done)
			bus.Consume(ctx, []queue.Binding{orders}, func(_ context.Context, m queue.Message) queue.Outcome {
				mu.Lock()
				defer mu.Unlock()
				if m.ID == stuck.ID {
					attempts = append(attempts, m.Attempt)
					stuckSeen = append(stuckSeen, m)
					if len(attempts) < 7 {
						return queue.Retry
					}
				}
				acked++
				return queue.Ack
			})
		}()
		waitFor(t, "the stuck message retried past its delivery limit twice, then acked", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return acked == len(fine)+1
		})
		mu.Lock()
		// Renewed when its queue would dead-letter it: the attempt starts again.
		if !slices.Equal(attempts, []int{1, 2, 3, 1, 2, 3, 1}) {
			t.Errorf("attempts %v, want 1 2 3 1 2 3 1", attempts)
		}
		for _, m := range stuckSeen {
			if m.RoutingKey != stuck.RoutingKey || string(m.Body) != string(stuck.Payload) || !m.RedrivenAt.IsZero() {
				t.Errorf("the stuck message came back as %+v", m)
			}
		}
		mu.Unlock()
		cancel()
		<-done
		if dead, err := bus.DeadLetters(context.Background(), orders.Queue); err != nil || len(dead) != 0 {
			t.Errorf("dead letters = %v, %v; want none", dead, err)
		}
	})

	t.Run("a_retry_waits_as_long_as_its_handler_says_within_the_longest_hold", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		const hold = 300 * time.Millisecond
		const wait = 100 * time.Millisecond // within the hold: served whole
		bus := open(t, Config{MaxHold: hold, RetryDelay: fast})
		if err := bus.Declare(ctx, []queue.Binding{orders}); err != nil {
			t.Fatal(err)
		}
		long, short := events(t, outbox.OrderConfirmed, 1, "long")[0], events(t, outbox.OrderShipped, 1, "short")[0]
		if _, err := bus.Publish(ctx, []outbox.Event{long, short}); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		seen := map[string][]time.Time{}
		var longAttempts []int
		done := make(chan struct{})
		go func() {
			defer close(done)
			bus.Consume(ctx, []queue.Binding{orders}, func(_ context.Context, m queue.Message) queue.Outcome {
				mu.Lock()
				defer mu.Unlock()
				seen[m.ID] = append(seen[m.ID], time.Now())
				switch {
				case m.ID == long.ID && len(seen[m.ID]) < 3:
					longAttempts = append(longAttempts, m.Attempt)
					// An hour, far past the hold: the queue takes it back
					// each time the hold is over, and it comes again.
					return queue.RetryAfter(time.Hour)
				case m.ID == short.ID && len(seen[m.ID]) < 2:
					return queue.RetryAfter(wait)
				}
				return queue.Ack
			})
		}()
		waitFor(t, "both messages handled to the end", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(seen[long.ID]) == 3 && len(seen[short.ID]) == 2
		})
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(longAttempts, []int{1, 2}) {
			t.Errorf("the long wait's attempts %v, want 1 2 (given back after each hold)", longAttempts)
		}
		if gap := seen[short.ID][1].Sub(seen[short.ID][0]); gap < wait {
			t.Errorf("the short retry came back after %s, before its wait of %s", gap, wait)
		}
		if dead, err := bus.DeadLetters(context.Background(), orders.Queue); err != nil || len(dead) != 0 {
			t.Errorf("dead letters = %v, %v; want none", dead, err)
		}
	})

	t.Run("held_messages_keep_the_rest_of_the_queue_waiting_untouched", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		bus := open(t, Config{Prefetch: 2, MaxHold: time.Minute, RetryDelay: fast})
		if err := bus.Declare(ctx, []queue.Binding{promos}); err != nil {
			t.Fatal(err)
		}
		if _, err := bus.Publish(ctx, events(t, outbox.PromoEmail, 6, "held")); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		handled := map[string]int{}
		done := make(chan struct{})
		go func() {
			defer close(done)
			bus.Consume(ctx, []queue.Binding{promos}, func(_ context.Context, m queue.Message) queue.Outcome {
				mu.Lock()
				handled[m.ID]++
				mu.Unlock()
				return queue.RetryAfter(time.Hour) // the SMTP server is away
			})
		}()
		waitFor(t, "two messages held, four ready", func() bool {
			st, err := bus.Stats(ctx, []string{promos.Queue})
			return err == nil && st[0] == queue.Stats{Name: promos.Queue, Ready: 4, Unacked: 2}
		})
		mu.Lock()
		if len(handled) != 2 {
			t.Errorf("%d messages handled, want the prefetch window of 2: %v", len(handled), handled)
		}
		mu.Unlock()
		cancel()
		<-done
		// Stopped: the held messages are back in the queue, nothing is lost.
		waitFor(t, "all six back in the queue", func() bool {
			st, err := bus.Stats(context.Background(), []string{promos.Queue})
			return err == nil && st[0] == queue.Stats{Name: promos.Queue, Ready: 6}
		})
	})

	t.Run("dead_letters_are_counted_and_redriven_with_their_routing_key", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		bus := open(t, Config{RetryDelay: fast})
		if err := bus.Declare(ctx, []queue.Binding{orders, promos}); err != nil {
			t.Fatal(err)
		}
		if _, err := bus.Redrive(ctx, "test.nope", 10); !errors.Is(err, queue.ErrUnknownQueue) {
			t.Fatalf("Redrive of an unknown queue = %v, want ErrUnknownQueue", err)
		}
		if n, err := bus.Redrive(ctx, orders.Queue, 10); err != nil || n != 0 {
			t.Fatalf("Redrive of no dead letters = %d, %v", n, err)
		}
		sent := slices.Concat(events(t, outbox.OrderConfirmed, 2, "d"), events(t, outbox.OrderCancelled, 1, "d"))
		byID := map[string]outbox.Event{}
		for _, e := range sent {
			byID[e.ID] = e
		}
		if _, err := bus.Publish(ctx, sent); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var redriven []queue.Message
		began := time.Now()
		done := make(chan struct{})
		go func() {
			defer close(done)
			bus.Consume(ctx, []queue.Binding{orders}, func(_ context.Context, m queue.Message) queue.Outcome {
				if m.RedrivenAt.IsZero() {
					return queue.DeadLetter // refused, until an operator sends it back
				}
				mu.Lock()
				redriven = append(redriven, m)
				mu.Unlock()
				return queue.Ack
			})
		}()
		stats := func() queue.Stats {
			st, err := bus.Stats(ctx, []string{orders.Queue, promos.Queue})
			if err != nil {
				t.Fatalf("Stats: %v", err)
			}
			if st[1] != (queue.Stats{Name: promos.Queue}) {
				t.Errorf("the other queue counts %+v, want zeros", st[1])
			}
			return st[0]
		}
		waitFor(t, "three dead letters", func() bool { return stats() == queue.Stats{Name: orders.Queue, Dead: 3} })
		if n, err := bus.Redrive(ctx, orders.Queue, 2); err != nil || n != 2 {
			t.Fatalf("Redrive(2) = %d, %v", n, err)
		}
		waitFor(t, "two redriven and handled, one left dead", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(redriven) == 2 && stats() == queue.Stats{Name: orders.Queue, Dead: 1}
		})
		if n, err := bus.Redrive(ctx, orders.Queue, 10); err != nil || n != 1 {
			t.Fatalf("Redrive(10) = %d, %v; want the last one", n, err)
		}
		waitFor(t, "all three redriven and handled", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(redriven) == 3 && stats() == queue.Stats{Name: orders.Queue}
		})
		cancel()
		<-done
		for _, m := range redriven {
			e, ok := byID[m.ID]
			if !ok || m.RoutingKey != e.RoutingKey || string(m.Body) != string(e.Payload) || m.Attempt != 1 || m.RedrivenAt.Before(began.Add(-time.Second)) {
				t.Errorf("redriven %+v, want %+v with attempt 1 and a redrive time", m, e)
			}
			delete(byID, m.ID)
		}
		if len(byID) != 0 {
			t.Errorf("never redriven (or twice): %v", byID)
		}
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
