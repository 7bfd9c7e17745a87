package rabbitmq_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	amqp "github.com/rabbitmq/amqp091-go"

	"phoneshop/internal/rabbittest"
	"phoneshop/notify/outbox"
	"phoneshop/notify/queue"
	"phoneshop/notify/rabbitmq"
)

// waitTimeout bounds every wait for the broker or the consumer in these tests;
// far above what a healthy local broker needs.
const waitTimeout = 30 * time.Second

var (
	ordersQueue = queue.Binding{Queue: "orders", RoutingKeys: []string{"order.*"}}
	promosQueue = queue.Binding{Queue: "promos", RoutingKeys: []string{"promo.*"}}
)

// runConsumer runs a consumer for cfg (on broker, a vhost of the test broker)
// until stop is called or the test ends, and waits until it consumes every queue of cfg.Bindings: the
// publisher's events are returned unroutable until the queues exist. stop
// cancels Run's ctx and says how long Run took to return; it fails the test if
// Run returns an error, or does not return within the grace and some slack.
func runConsumer(t *testing.T, broker string, ctx context.Context, cfg rabbitmq.ConsumerConfig, handle queue.Handler) (stop func() time.Duration) {
	t.Helper()
	cfg.URL = broker
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	grace := cfg.HandlerGrace
	if grace == 0 {
		grace = rabbitmq.DefaultHandlerGrace
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rabbitmq.NewConsumer(cfg).Run(ctx, handle) }()

	var (
		once    sync.Once
		elapsed time.Duration
	)
	stop = func() time.Duration {
		once.Do(func() {
			began := time.Now()
			cancel()
			select {
			case err := <-done:
				elapsed = time.Since(began)
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(grace + waitTimeout):
				t.Errorf("Run did not return %s after its ctx was cancelled", grace+waitTimeout)
			}
		})
		return elapsed
	}
	t.Cleanup(func() { stop() })

	for _, binding := range cfg.Bindings {
		eventually(t, "a consumer on "+binding.Queue, func() bool {
			select {
			case err := <-done:
				t.Fatalf("Run returned before consuming: %v", err)
			default:
			}
			return rabbittest.Consumers(t, broker, binding.Queue) > 0
		})
	}
	return stop
}

// eventually polls cond until it holds, and fails the test if it does not within
// waitTimeout.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", waitTimeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// recorder keeps the messages a handler saw, in the order it saw them.
type recorder struct {
	mu   sync.Mutex
	msgs []queue.Message
}

func (r *recorder) add(m queue.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
}

func (r *recorder) all() []queue.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// attempts are the attempts with which the handler saw the message id.
func (r *recorder) attempts(id string) []int {
	var out []int
	for _, m := range r.all() {
		if m.ID == id {
			out = append(out, m.Attempt)
		}
	}
	return out
}

// handledIDs are the distinct ids the handler saw, sorted, and how many
// deliveries repeated one.
func (r *recorder) handledIDs() (ids []string, duplicates int) {
	seen := map[string]bool{}
	for _, m := range r.all() {
		if seen[m.ID] {
			duplicates++
			continue
		}
		seen[m.ID] = true
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	return ids, duplicates
}

// firstAttempts are the messages of events as a handler sees them first.
func firstAttempts(events []outbox.Event) []queue.Message {
	msgs := make([]queue.Message, len(events))
	for i, ev := range events {
		msgs[i] = queue.Message{ID: ev.ID, RoutingKey: ev.RoutingKey, Body: ev.Payload, Attempt: 1}
	}
	return msgs
}

func byID(msgs []queue.Message) []queue.Message {
	msgs = slices.Clone(msgs)
	slices.SortFunc(msgs, func(a, b queue.Message) int { return strings.Compare(a.ID, b.ID) })
	return msgs
}

func publishAll(t *testing.T, p *rabbitmq.Publisher, events []outbox.Event) {
	t.Helper()
	if _, err := publish(t, p, events); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

type ctxKey struct{}

func TestConsumedMessagesCarryTheirIDRoutingKeyBodyAndFirstAttempt(t *testing.T) {
	broker := rabbittest.VHost(t)
	var (
		got          recorder
		missingValue atomic.Int64
	)
	ctx := context.WithValue(t.Context(), ctxKey{}, "run's value")
	stop := runConsumer(t, broker, ctx, rabbitmq.ConsumerConfig{Bindings: []queue.Binding{ordersQueue, promosQueue}},
		func(ctx context.Context, m queue.Message) queue.Outcome {
			if ctx.Value(ctxKey{}) != "run's value" {
				missingValue.Add(1)
			}
			got.add(m)
			return queue.Ack
		})
	p := newPublisher(t, rabbitmq.Config{URL: broker})

	events := newEvents(6, outbox.OrderConfirmed, outbox.PromoActivated, outbox.OrderShipped, outbox.PromoEmail)
	publishAll(t, p, events)
	eventually(t, "6 messages handled", func() bool { return got.count() >= 6 })
	stop()

	if diff := cmp.Diff(byID(firstAttempts(events)), byID(got.all())); diff != "" {
		t.Errorf("handled (-want +got):\n%s", diff)
	}
	if n := missingValue.Load(); n > 0 {
		t.Errorf("%d handlers' ctx lacked the value of Run's ctx", n)
	}
	// Run has closed its connection: an unacknowledged message would be back.
	for _, name := range []string{"orders", "promos", "orders.dead", "promos.dead"} {
		if n := rabbittest.QueueDepth(t, broker, name); n != 0 {
			t.Errorf("%s holds %d messages, want 0", name, n)
		}
	}
}

func TestMessageWithoutAnIDIsStillHandled(t *testing.T) {
	broker := rabbittest.VHost(t)
	var got recorder
	runConsumer(t, broker, t.Context(), rabbitmq.ConsumerConfig{Bindings: []queue.Binding{ordersQueue}},
		func(ctx context.Context, m queue.Message) queue.Outcome {
			got.add(m)
			return queue.Ack
		})
	rabbittest.WithChannel(t, broker, func(ch *amqp.Channel) {
		err := ch.PublishWithContext(t.Context(), rabbitmq.DefaultExchange, outbox.OrderShipped, false, false,
			amqp.Publishing{Body: []byte(`{"legacy":true}`)})
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
	})
	eventually(t, "the message handled", func() bool { return got.count() >= 1 })
	want := []queue.Message{{ID: "", RoutingKey: outbox.OrderShipped, Body: []byte(`{"legacy":true}`), Attempt: 1}}
	if diff := cmp.Diff(want, got.all()); diff != "" {
		t.Errorf("handled (-want +got):\n%s", diff)
	}
}

func TestRetriedMessageComesBackWithTheNextAttemptAfterTheRetryDelay(t *testing.T) {
	broker := rabbittest.VHost(t)
	const delay = 150 * time.Millisecond
	var (
		got     recorder
		mu      sync.Mutex
		seenAt  []time.Time
		delayed []int // the attempts RetryDelay was asked about
	)
	cfg := rabbitmq.ConsumerConfig{
		Bindings: []queue.Binding{ordersQueue},
		RetryDelay: func(attempt int) time.Duration {
			mu.Lock()
			defer mu.Unlock()
			delayed = append(delayed, attempt)
			return delay
		},
	}
	stop := runConsumer(t, broker, t.Context(), cfg, func(ctx context.Context, m queue.Message) queue.Outcome {
		mu.Lock()
		seenAt = append(seenAt, time.Now())
		mu.Unlock()
		got.add(m)
		if m.Attempt < 3 {
			return queue.Retry
		}
		return queue.Ack
	})
	p := newPublisher(t, rabbitmq.Config{URL: broker})

	events := newEvents(1, outbox.OrderConfirmed)
	publishAll(t, p, events)
	eventually(t, "the third attempt", func() bool { return got.count() >= 3 })
	time.Sleep(3 * delay) // a fourth delivery would come by now
	stop()

	var want []queue.Message
	for attempt := 1; attempt <= 3; attempt++ {
		m := firstAttempts(events)[0]
		m.Attempt = attempt
		want = append(want, m)
	}
	if diff := cmp.Diff(want, got.all()); diff != "" {
		t.Errorf("handled (-want +got):\n%s", diff)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]int{1, 2}, delayed); diff != "" {
		t.Errorf("RetryDelay asked for attempts (-want +got):\n%s", diff)
	}
	for i := 1; i < len(seenAt); i++ {
		if gap := seenAt[i].Sub(seenAt[i-1]); gap < delay {
			t.Errorf("attempt %d came %s after attempt %d, before the RetryDelay of %s", i+1, gap, i, delay)
		}
	}
	if n := rabbittest.QueueDepth(t, broker, "orders.dead"); n != 0 {
		t.Errorf("orders.dead holds %d messages, want 0", n)
	}
}

func TestMessageRetriedPastTheDeliveryLimitIsRenewedNotDeadLettered(t *testing.T) {
	broker := rabbittest.VHost(t)
	events := newEvents(6, outbox.OrderConfirmed, outbox.OrderShipped)
	stuck, others := events[0], events[1:]
	var got recorder
	cfg := rabbitmq.ConsumerConfig{
		Bindings:      []queue.Binding{ordersQueue},
		DeliveryLimit: 3,
		RetryDelay:    func(int) time.Duration { return 20 * time.Millisecond },
	}
	stop := runConsumer(t, broker, t.Context(), cfg, func(ctx context.Context, m queue.Message) queue.Outcome {
		got.add(m)
		if m.ID == stuck.ID && len(got.attempts(stuck.ID)) < 6 {
			return queue.Retry
		}
		return queue.Ack
	})
	p := newPublisher(t, rabbitmq.Config{URL: broker})

	publishAll(t, p, []outbox.Event{stuck})
	eventually(t, "the stuck message's second attempt", func() bool { return len(got.attempts(stuck.ID)) >= 2 })
	publishAll(t, p, others)
	eventually(t, "every message acked", func() bool { return got.count() >= 6+len(others) })
	stop()

	// x-delivery-limit 3: the queue takes the message back three times; a
	// fourth return would dead-letter it, so it is published again instead and
	// its count starts over.
	if diff := cmp.Diff([]int{1, 2, 3, 4, 1, 2}, got.attempts(stuck.ID)); diff != "" {
		t.Errorf("the stuck message's attempts (-want +got):\n%s", diff)
	}
	for _, m := range got.all() {
		if m.ID == stuck.ID && (m.RoutingKey != stuck.RoutingKey || string(m.Body) != string(stuck.Payload)) {
			t.Errorf("the stuck message came back as %+v", m)
		}
	}
	var handledOthers []queue.Message
	for _, m := range got.all() {
		if m.ID != stuck.ID {
			handledOthers = append(handledOthers, m)
		}
	}
	if diff := cmp.Diff(byID(firstAttempts(others)), byID(handledOthers)); diff != "" {
		t.Errorf("the others (-want +got):\n%s", diff)
	}
	for _, name := range []string{"orders", "orders.dead"} {
		if n := rabbittest.QueueDepth(t, broker, name); n != 0 {
			t.Errorf("%s holds %d messages, want 0", name, n)
		}
	}
}

// TestAMessageWhoseDeliveriesAreLostAgainAndAgainIsDeadLettered: the delivery
// limit still guards against a message that never gets an outcome (its handler
// takes the connection, or the process, down each time).
func TestAMessageWhoseDeliveriesAreLostAgainAndAgainIsDeadLettered(t *testing.T) {
	broker := rabbittest.VHost(t)
	poison := newEvents(1, outbox.OrderConfirmed)[0]
	var got recorder
	cfg := rabbitmq.ConsumerConfig{
		Bindings:      []queue.Binding{ordersQueue},
		DeliveryLimit: 2,
		HandlerGrace:  50 * time.Millisecond,
		FirstBackoff:  10 * time.Millisecond,
		MaxBackoff:    50 * time.Millisecond,
	}
	runConsumer(t, broker, t.Context(), cfg, func(ctx context.Context, m queue.Message) queue.Outcome {
		got.add(m)
		<-ctx.Done() // never finishes: its connection goes first
		return queue.Retry
	})
	publishAll(t, newPublisher(t, rabbitmq.Config{URL: broker}), []outbox.Event{poison})
	for attempt := 1; attempt <= 3; attempt++ {
		eventually(t, fmt.Sprintf("attempt %d in its handler", attempt), func() bool { return got.count() >= attempt })
		rabbittest.CloseAllConnections(t, broker)
	}
	eventually(t, "the message in orders.dead", func() bool { return rabbittest.QueueDepth(t, broker, "orders.dead") == 1 })
	if diff := cmp.Diff([]int{1, 2, 3}, got.attempts(poison.ID)); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}
	dead := rabbittest.Drain(t, broker, "orders.dead")
	if len(dead) != 1 || dead[0].MessageId != poison.ID || dead[0].Headers["x-first-death-reason"] != "delivery_limit" {
		t.Errorf("orders.dead holds %v, want only %s, dead for its delivery_limit", deadLetters(dead), poison.ID)
	}
}

// deadLetters describes dead-lettered deliveries: id and reason.
func deadLetters(ds []amqp.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = fmt.Sprintf("%s (%v)", d.MessageId, d.Headers["x-first-death-reason"])
	}
	return out
}

func TestRefusedMessageIsDeadLetteredAtOnceAndTheRestKeepsFlowing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		refuse func() queue.Outcome
	}{
		{"dead_letter_outcome", func() queue.Outcome { return queue.DeadLetter }},
		{"handler_panics", func() queue.Outcome { panic("malformed beyond repair") }},
		{"unknown_outcome", func() queue.Outcome { return queue.Outcome{Action: 42} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			broker := rabbittest.VHost(t)
			events := newEvents(4, outbox.OrderConfirmed)
			bad, others := events[0], events[1:]
			var got recorder
			stop := runConsumer(t, broker, t.Context(), rabbitmq.ConsumerConfig{Bindings: []queue.Binding{ordersQueue}},
				func(ctx context.Context, m queue.Message) queue.Outcome {
					got.add(m)
					if m.ID == bad.ID {
						return tc.refuse()
					}
					return queue.Ack
				})
			p := newPublisher(t, rabbitmq.Config{URL: broker})

			publishAll(t, p, []outbox.Event{bad})
			eventually(t, "the message in orders.dead", func() bool { return rabbittest.QueueDepth(t, broker, "orders.dead") == 1 })
			publishAll(t, p, others)
			eventually(t, "the others handled", func() bool { return got.count() >= len(events) })
			stop()

			if diff := cmp.Diff(byID(firstAttempts(events)), byID(got.all())); diff != "" {
				t.Errorf("handled (-want +got):\n%s", diff)
			}
			dead := rabbittest.Drain(t, broker, "orders.dead")
			if len(dead) != 1 || dead[0].MessageId != bad.ID || dead[0].Headers["x-first-death-reason"] != "rejected" {
				t.Errorf("orders.dead holds %v, want only %s, rejected", deadLetters(dead), bad.ID)
			}
			if n := rabbittest.QueueDepth(t, broker, "orders"); n != 0 {
				t.Errorf("orders holds %d messages, want 0", n)
			}
		})
	}
}

func TestPrefetchBoundsTheHandlersInFlightPerQueue(t *testing.T) {
	broker := rabbittest.VHost(t)
	const prefetch = 2
	var (
		got      recorder
		mu       sync.Mutex
		inFlight = map[string]int{}
		most     = map[string]int{}
	)
	queueOf := func(m queue.Message) string {
		if strings.HasPrefix(m.RoutingKey, "order.") {
			return ordersQueue.Queue
		}
		return promosQueue.Queue
	}
	runConsumer(t, broker, t.Context(), rabbitmq.ConsumerConfig{Bindings: []queue.Binding{ordersQueue, promosQueue}, Prefetch: prefetch},
		func(ctx context.Context, m queue.Message) queue.Outcome {
			q := queueOf(m)
			mu.Lock()
			inFlight[q]++
			most[q] = max(most[q], inFlight[q])
			mu.Unlock()
			time.Sleep(30 * time.Millisecond)
			mu.Lock()
			inFlight[q]--
			mu.Unlock()
			got.add(m)
			return queue.Ack
		})
	p := newPublisher(t, rabbitmq.Config{URL: broker})

	events := newEvents(30, outbox.OrderConfirmed, outbox.PromoEmail)
	publishAll(t, p, events)
	eventually(t, "every message handled", func() bool { return got.count() >= len(events) })

	mu.Lock()
	defer mu.Unlock()
	// At most prefetch, and as many: the handlers do run side by side.
	want := map[string]int{ordersQueue.Queue: prefetch, promosQueue.Queue: prefetch}
	if diff := cmp.Diff(want, most); diff != "" {
		t.Errorf("most handlers in flight per queue (-want +got):\n%s", diff)
	}
}

func TestRunReconnectsAfterConnectionsAreClosedAndEveryMessageIsHandled(t *testing.T) {
	broker := rabbittest.VHost(t)
	before := runtime.NumGoroutine()
	var got recorder
	stop := runConsumer(t, broker, t.Context(), rabbitmq.ConsumerConfig{Bindings: []queue.Binding{ordersQueue, promosQueue}},
		func(ctx context.Context, m queue.Message) queue.Outcome {
			// Slow enough that some handlers are in flight when the
			// connections close: their acks are lost with them.
			time.Sleep(5 * time.Millisecond)
			got.add(m)
			return queue.Ack
		})
	p := rabbitmq.NewPublisher(rabbitmq.Config{URL: broker, Logger: testLogger(t)})

	// The publisher publishes until told to stop, then until every event it
	// made is confirmed, as the relay does: an unconfirmed event is published
	// again.
	var (
		mu          sync.Mutex
		published   []string
		publishing  = make(chan struct{})
		publisherWG sync.WaitGroup
	)
	publisherWG.Go(func() {
		var pending []outbox.Event
		deadline := time.Now().Add(waitTimeout)
		for {
			select {
			case <-publishing:
				if len(pending) == 0 {
					return
				}
				if time.Now().After(deadline) {
					t.Errorf("%d events still unconfirmed after %s", len(pending), waitTimeout)
					return
				}
			default:
				pending = append(pending, newEvents(10, outbox.OrderConfirmed, outbox.PromoEmail)...)
			}
			confirmed, err := publish(t, p, pending)
			if err != nil && !errors.Is(err, rabbitmq.ErrUnconfirmed) && !errors.Is(err, rabbitmq.ErrUnavailable) {
				t.Errorf("publish: %v", err)
			}
			mu.Lock()
			published = append(published, confirmed...)
			mu.Unlock()
			pending = slices.DeleteFunc(pending, func(ev outbox.Event) bool { return slices.Contains(confirmed, ev.ID) })
			time.Sleep(10 * time.Millisecond)
		}
	})

	for round := 1; round <= 2; round++ {
		handled := got.count()
		eventually(t, "messages handled before the close", func() bool { return got.count() >= handled+20 })
		rabbittest.CloseAllConnections(t, broker)
		t.Logf("close %d: %d messages handled before it", round, got.count())
	}
	handled := got.count()
	eventually(t, "messages handled after the last close", func() bool { return got.count() >= handled+50 })
	close(publishing)
	publisherWG.Wait()

	mu.Lock()
	slices.Sort(published)
	mu.Unlock()
	eventually(t, "every published message handled", func() bool {
		ids, _ := got.handledIDs()
		return len(ids) >= len(published)
	})
	stop()
	ids, duplicates := got.handledIDs()
	if diff := cmp.Diff(published, ids); diff != "" {
		t.Errorf("handled (-published +handled):\n%s", diff)
	}
	t.Logf("%d messages published, %d deliveries handled (%d again after a lost connection)", len(published), len(ids)+duplicates, duplicates)

	if err := p.Close(); err != nil {
		t.Errorf("close publisher: %v", err)
	}
	waitForGoroutines(t, before)
}

func TestRunDeclaresAgainAQueueDeletedWhileConsuming(t *testing.T) {
	broker := rabbittest.VHost(t)
	var got recorder
	runConsumer(t, broker, t.Context(), rabbitmq.ConsumerConfig{Bindings: []queue.Binding{ordersQueue}, FirstBackoff: 10 * time.Millisecond},
		func(ctx context.Context, m queue.Message) queue.Outcome {
			got.add(m)
			return queue.Ack
		})
	p := newPublisher(t, rabbitmq.Config{URL: broker})

	rabbittest.WithChannel(t, broker, func(ch *amqp.Channel) {
		if _, err := ch.QueueDelete(ordersQueue.Queue, false, false, false); err != nil {
			t.Fatalf("delete %s: %v", ordersQueue.Queue, err)
		}
	})
	// The broker cancels the consumer; Run reconnects, which declares the
	// queue and its binding again.
	eventually(t, "a consumer on the declared again "+ordersQueue.Queue, func() bool { return rabbittest.Consumers(t, broker, ordersQueue.Queue) > 0 })
	events := newEvents(3, outbox.OrderConfirmed)
	publishAll(t, p, events)
	eventually(t, "3 messages handled", func() bool { return got.count() >= 3 })
	if diff := cmp.Diff(byID(firstAttempts(events)), byID(got.all())); diff != "" {
		t.Errorf("handled (-want +got):\n%s", diff)
	}
}

func TestCancelStopsRunWithinTheGraceAndLeavesNothingBehind(t *testing.T) {
	broker := rabbittest.VHost(t)
	before := runtime.NumGoroutine()
	const grace = 500 * time.Millisecond
	events := newEvents(3, outbox.OrderConfirmed, outbox.OrderShipped, outbox.OrderCancelled)
	// finishing completes its work shortly after Run's ctx ends; stubborn
	// works until its own ctx ends; retrying waits for its retry.
	finishing, stubborn, retrying := events[0], events[1], events[2]

	var (
		started      sync.WaitGroup
		runCancelled = make(chan struct{})
		stubbornEnd  atomic.Int64 // unix nanos when the stubborn handler's ctx ended
	)
	started.Add(len(events))
	cfg := rabbitmq.ConsumerConfig{
		Bindings:     []queue.Binding{ordersQueue},
		HandlerGrace: grace,
		RetryDelay:   func(int) time.Duration { return time.Minute },
	}
	stop := runConsumer(t, broker, t.Context(), cfg, func(ctx context.Context, m queue.Message) queue.Outcome {
		if m.Attempt > 1 {
			t.Errorf("%s delivered again while Run stops", m.ID)
			return queue.Retry
		}
		started.Done()
		switch m.ID {
		case finishing.ID:
			<-runCancelled
			time.Sleep(grace / 5)
			return queue.Ack
		case stubborn.ID:
			<-ctx.Done()
			stubbornEnd.Store(time.Now().UnixNano())
			return queue.Retry
		}
		return queue.Retry
	})
	p := newPublisher(t, rabbitmq.Config{URL: broker})
	publishAll(t, p, events)
	started.Wait()
	time.Sleep(50 * time.Millisecond) // the retrying message is in its wait

	cancelledAt := time.Now()
	close(runCancelled)
	elapsed := stop()
	t.Logf("Run returned %s after its ctx was cancelled", elapsed.Round(time.Millisecond))
	if elapsed > grace+time.Second {
		t.Errorf("Run returned %s after its ctx was cancelled, want within the grace of %s", elapsed, grace)
	}
	if end := time.Unix(0, stubbornEnd.Load()); end.Sub(cancelledAt) < grace {
		t.Errorf("the stubborn handler's ctx ended %s after Run's, before the grace of %s", end.Sub(cancelledAt), grace)
	}

	// The finished handler's ack went through; the other two messages are
	// back in the queue, none dead-lettered.
	eventually(t, "2 messages back in orders", func() bool { return rabbittest.QueueDepth(t, broker, "orders") == 2 })
	back := rabbittest.MessageIDs(rabbittest.Drain(t, broker, "orders"))
	slices.Sort(back)
	want := []string{stubborn.ID, retrying.ID}
	slices.Sort(want)
	if diff := cmp.Diff(want, back); diff != "" {
		t.Errorf("back in orders (-want +got):\n%s", diff)
	}
	if n := rabbittest.QueueDepth(t, broker, "orders.dead"); n != 0 {
		t.Errorf("orders.dead holds %d messages, want 0", n)
	}

	if err := p.Close(); err != nil {
		t.Errorf("close publisher: %v", err)
	}
	waitForGoroutines(t, before)
}

func TestRunRefusesAQueueDeclaredWithOtherArguments(t *testing.T) {
	for _, tc := range []struct {
		name    string
		declare func(t *testing.T, broker string)
		mention string
	}{
		{"a_classic_queue", func(t *testing.T, broker string) {
			bindQueue(t, broker, ordersQueue.Queue, nil, "order.*")
		}, "inequivalent arg"},
		{"another_delivery_limit", func(t *testing.T, broker string) {
			stop := runConsumer(t, broker, t.Context(), rabbitmq.ConsumerConfig{Bindings: []queue.Binding{ordersQueue}, DeliveryLimit: 5},
				func(context.Context, queue.Message) queue.Outcome { return queue.Ack })
			stop()
		}, "x-delivery-limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			broker := rabbittest.VHost(t)
			tc.declare(t, broker)
			ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
			defer cancel()
			err := rabbitmq.NewConsumer(rabbitmq.ConsumerConfig{URL: broker, Bindings: []queue.Binding{ordersQueue}, DeliveryLimit: 7, Logger: testLogger(t)}).
				Run(ctx, func(context.Context, queue.Message) queue.Outcome { return queue.Ack })
			if !errors.Is(err, rabbitmq.ErrTopology) || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("Run = %v, want ErrTopology naming %s", err, tc.mention)
			}
			if ctx.Err() != nil {
				t.Errorf("Run returned only when its ctx ended")
			}
		})
	}
}

func TestRunRetriesAnUnreachableBrokerWithBackoffUntilCancelled(t *testing.T) {
	f := newFakeBroker(t, true)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		c := rabbitmq.NewConsumer(rabbitmq.ConsumerConfig{
			URL: f.url(), Bindings: []queue.Binding{ordersQueue},
			FirstBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Logger: testLogger(t),
		})
		done <- c.Run(ctx, func(context.Context, queue.Message) queue.Outcome { return queue.Ack })
	}()
	time.Sleep(time.Second)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil once its ctx ends", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its ctx was cancelled")
	}
	// Attempts 50, 100, 200, 200, ... ms apart: about 7 in a second; without
	// the backoff, thousands.
	if n := f.accepts.Load(); n < 3 || n > 10 {
		t.Errorf("%d connection attempts in a second, want 3 to 10", n)
	}
	waitForGoroutines(t, before)
}

func TestRunRejectsAnInvalidConfiguration(t *testing.T) {
	ack := func(context.Context, queue.Message) queue.Outcome { return queue.Ack }
	for _, tc := range []struct {
		name   string
		cfg    rabbitmq.ConsumerConfig
		handle queue.Handler
	}{
		{"no_handler", rabbitmq.ConsumerConfig{Bindings: []queue.Binding{ordersQueue}}, nil},
		{"no_bindings", rabbitmq.ConsumerConfig{}, ack},
		{"a_queue_without_a_name", rabbitmq.ConsumerConfig{Bindings: []queue.Binding{{RoutingKeys: []string{"#"}}}}, ack},
		{"a_queue_bound_twice", rabbitmq.ConsumerConfig{Bindings: []queue.Binding{ordersQueue, ordersQueue}}, ack},
		{"prefetch_above_65535", rabbitmq.ConsumerConfig{Bindings: []queue.Binding{ordersQueue}, Prefetch: 70000}, ack},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A broker that is not there: the configuration is refused first.
			tc.cfg.URL = "amqp://guest:guest@127.0.0.1:1/"
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			if err := rabbitmq.NewConsumer(tc.cfg).Run(ctx, tc.handle); err == nil || ctx.Err() != nil {
				t.Errorf("Run = %v, want an error at once", err)
			}
		})
	}
}

func TestDefaultRetryDelayDoublesFromOneSecondUpToThirty(t *testing.T) {
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{
		{1, time.Second},
		{2, 2 * time.Second},
		{3, 4 * time.Second},
		{5, 16 * time.Second},
		{6, 30 * time.Second},
		{100, 30 * time.Second},
	} {
		if got := rabbitmq.DefaultRetryDelay(tc.attempt); got != tc.want {
			t.Errorf("DefaultRetryDelay(%d) = %s, want %s", tc.attempt, got, tc.want)
		}
	}
}
