package rabbitmq_test

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	amqp "github.com/rabbitmq/amqp091-go"

	"phoneshop/internal/rabbittest"
	"phoneshop/notify/outbox"
	"phoneshop/notify/rabbitmq"
)

// publishCtx bounds one Publish in these tests; far above what a healthy local
// broker needs.
const publishCtx = 20 * time.Second

func publish(t *testing.T, p *rabbitmq.Publisher, events []outbox.Event) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), publishCtx)
	defer cancel()
	return p.Publish(ctx, events)
}

func TestPublishedEventsArrivePersistentWithTheirIDKeyAndType(t *testing.T) {
	broker := rabbittest.VHost(t)
	bindQueue(t, broker, "all", nil, "#")
	p := newPublisher(t, rabbitmq.Config{URL: broker})

	events := newEvents(3, outbox.OrderConfirmed, outbox.OrderShipped, outbox.PromoActivated)
	confirmed, err := publish(t, p, events)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if diff := cmp.Diff(ids(events), confirmed); diff != "" {
		t.Errorf("confirmed (-want +got):\n%s", diff)
	}

	type message struct {
		Exchange, RoutingKey, MessageID, Type, ContentType string
		DeliveryMode                                       uint8
		Timestamp                                          time.Time
		Body                                               string
	}
	var want []message
	for _, ev := range events {
		want = append(want, message{
			Exchange: rabbitmq.DefaultExchange, RoutingKey: ev.RoutingKey, MessageID: ev.ID, Type: ev.RoutingKey,
			ContentType: "application/json", DeliveryMode: amqp.Persistent,
			// AMQP timestamps are whole seconds.
			Timestamp: ev.CreatedAt.Truncate(time.Second), Body: string(ev.Payload),
		})
	}
	var got []message
	for _, d := range rabbittest.Drain(t, broker, "all") {
		got = append(got, message{
			Exchange: d.Exchange, RoutingKey: d.RoutingKey, MessageID: d.MessageId, Type: d.Type,
			ContentType: d.ContentType, DeliveryMode: d.DeliveryMode, Timestamp: d.Timestamp, Body: string(d.Body),
		})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("messages in the queue (-want +got):\n%s", diff)
	}
}

func TestUnroutableEventIsReturnedAndTheRestOfTheBatchConfirmed(t *testing.T) {
	broker := rabbittest.VHost(t)
	bindQueue(t, broker, "orders", nil, "order.*")
	p := newPublisher(t, rabbitmq.Config{URL: broker})

	for _, tc := range []struct {
		name string
		n    int // more than the publisher keeps in flight at once, for the second
	}{{"three_events", 3}, {"six_hundred_events", 600}} {
		t.Run(tc.name, func(t *testing.T) {
			// Every third event is a promo event, which no queue is bound for.
			events := newEvents(tc.n, outbox.OrderConfirmed, outbox.PromoActivated, outbox.OrderShipped)
			var routable, unroutable []string
			for _, ev := range events {
				if ev.RoutingKey == outbox.PromoActivated {
					unroutable = append(unroutable, ev.ID)
				} else {
					routable = append(routable, ev.ID)
				}
			}
			confirmed, err := publish(t, p, events)
			if diff := cmp.Diff(routable, confirmed); diff != "" {
				t.Errorf("confirmed (-want +got):\n%s", diff)
			}
			if !errors.Is(err, rabbitmq.ErrReturned) || errors.Is(err, rabbitmq.ErrUnconfirmed) || errors.Is(err, rabbitmq.ErrNacked) {
				t.Fatalf("err = %v, want ErrReturned alone", err)
			}
			if !strings.Contains(err.Error(), unroutable[0]) || !strings.Contains(err.Error(), "NO_ROUTE") {
				t.Errorf("err = %v, want it to name %s and NO_ROUTE", err, unroutable[0])
			}
			if diff := cmp.Diff(routable, rabbittest.MessageIDs(rabbittest.Drain(t, broker, "orders"))); diff != "" {
				t.Errorf("queue (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("the_connection_stays_usable", func(t *testing.T) {
		events := newEvents(2, outbox.OrderCancelled)
		confirmed, err := publish(t, p, events)
		if err != nil || len(confirmed) != 2 {
			t.Fatalf("after returns: confirmed %v, err %v", confirmed, err)
		}
	})
}

func TestEventRefusedByAFullQueueIsNackedNotConfirmed(t *testing.T) {
	broker := rabbittest.VHost(t)
	bindQueue(t, broker, "tiny", amqp.Table{"x-max-length": int32(1), "x-overflow": "reject-publish"}, "#")
	p := newPublisher(t, rabbitmq.Config{URL: broker})

	events := newEvents(3, outbox.OrderConfirmed)
	confirmed, err := publish(t, p, events)
	if diff := cmp.Diff(ids(events[:1]), confirmed); diff != "" {
		t.Errorf("confirmed (-want +got):\n%s", diff)
	}
	if !errors.Is(err, rabbitmq.ErrNacked) || errors.Is(err, rabbitmq.ErrReturned) || errors.Is(err, rabbitmq.ErrUnconfirmed) {
		t.Errorf("err = %v, want ErrNacked alone", err)
	}
}

func TestPublishReconnectsAfterConnectionsAreClosed(t *testing.T) {
	broker := rabbittest.VHost(t)
	bindQueue(t, broker, "all", nil, "#")
	p := newPublisher(t, rabbitmq.Config{URL: broker})

	var confirmed []string
	first := newEvents(5, outbox.OrderConfirmed)
	got, err := publish(t, p, first)
	confirmed = append(confirmed, got...)
	if err != nil {
		t.Fatalf("before the close: %v", err)
	}

	rabbittest.CloseAllConnections(t, broker)

	// The first Publish after may fail (the close may not have reached the
	// client yet); a later one must succeed. No pause between attempts: the
	// publisher's backoff paces them, and the attempts are bounded anyway.
	deadline := time.Now().Add(15 * time.Second)
	for attempt := 1; ; attempt++ {
		got, err := publish(t, p, newEvents(5, outbox.OrderShipped))
		confirmed = append(confirmed, got...)
		if err == nil {
			t.Logf("attempt %d after the close succeeded", attempt)
			break
		}
		t.Logf("attempt %d after the close: %v", attempt, err)
		if !errors.Is(err, rabbitmq.ErrUnconfirmed) && !errors.Is(err, rabbitmq.ErrUnavailable) {
			t.Errorf("attempt %d: err = %v, want ErrUnconfirmed or ErrUnavailable", attempt, err)
		}
		if attempt == 50 || time.Now().After(deadline) {
			t.Fatalf("no Publish succeeded after the connections were closed (%d attempts)", attempt)
		}
	}
	assertAllInQueue(t, broker, "all", confirmed)
}

func TestNothingConfirmedIsLostWhenConnectionsCloseMidStream(t *testing.T) {
	broker := rabbittest.VHost(t)
	bindQueue(t, broker, "all", nil, "#")
	p := newPublisher(t, rabbitmq.Config{URL: broker})

	var (
		mu        sync.Mutex
		confirmed []string
		failures  int
		stop      = make(chan struct{})
		wg        sync.WaitGroup
	)
	publishUntilStopped := func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), publishCtx)
			got, err := p.Publish(ctx, newEvents(10, outbox.OrderConfirmed, outbox.OrderShipped))
			cancel()
			mu.Lock()
			confirmed = append(confirmed, got...)
			if err != nil {
				failures++
				if !errors.Is(err, rabbitmq.ErrUnconfirmed) && !errors.Is(err, rabbitmq.ErrUnavailable) {
					t.Errorf("err = %v, want ErrUnconfirmed or ErrUnavailable", err)
				}
			}
			mu.Unlock()
		}
	}
	for range 3 {
		wg.Go(publishUntilStopped)
	}
	time.Sleep(300 * time.Millisecond)
	rabbittest.CloseAllConnections(t, broker)
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := publish(t, p, newEvents(3, outbox.OrderCancelled))
		mu.Lock()
		confirmed = append(confirmed, got...)
		mu.Unlock()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("no Publish succeeded after the connections were closed: %v", err)
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d events confirmed, %d Publish calls failed", len(confirmed), failures)
	assertAllInQueue(t, broker, "all", confirmed)
}

// assertAllInQueue checks that every confirmed event is in queue: a confirm
// the relay acts on must mean the broker has the message.
func assertAllInQueue(t *testing.T, broker string, queue string, confirmed []string) {
	t.Helper()
	inQueue := map[string]bool{}
	for _, id := range rabbittest.MessageIDs(rabbittest.Drain(t, broker, queue)) {
		inQueue[id] = true
	}
	var missing []string
	for _, id := range confirmed {
		if !inQueue[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d confirmed events are not in the queue: %v", len(missing), len(confirmed), missing)
	}
}

func TestConcurrentPublishersAreAllConfirmed(t *testing.T) {
	broker := rabbittest.VHost(t)
	bindQueue(t, broker, "all", nil, "#")
	p := newPublisher(t, rabbitmq.Config{URL: broker})

	var (
		mu   sync.Mutex
		want []string
		got  []string
		wg   sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for range 5 {
				events := newEvents(10, outbox.OrderConfirmed, outbox.PromoActivated)
				ctx, cancel := context.WithTimeout(context.Background(), publishCtx)
				confirmed, err := p.Publish(ctx, events)
				cancel()
				if err != nil {
					t.Errorf("publish: %v", err)
				}
				mu.Lock()
				want = append(want, ids(events)...)
				got = append(got, confirmed...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(want)
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("confirmed (-want +got):\n%s", diff)
	}
	inQueue := rabbittest.MessageIDs(rabbittest.Drain(t, broker, "all"))
	slices.Sort(inQueue)
	if diff := cmp.Diff(want, inQueue); diff != "" {
		t.Errorf("queue (-want +got):\n%s", diff)
	}
}

func TestPublishGivesUpAtConfirmTimeoutWhenTheBrokerFallsSilent(t *testing.T) {
	broker := rabbittest.VHost(t)
	bindQueue(t, broker, "all", nil, "#")
	px, url := newProxy(t, broker)
	p := newPublisher(t, rabbitmq.Config{URL: url, ConfirmTimeout: 300 * time.Millisecond})

	var confirmed []string
	got, err := publish(t, p, newEvents(3, outbox.OrderConfirmed))
	confirmed = append(confirmed, got...)
	if err != nil {
		t.Fatalf("before the silence: %v", err)
	}

	px.freeze()
	got, err = publish(t, p, newEvents(3, outbox.OrderShipped))
	confirmed = append(confirmed, got...)
	if len(got) != 0 || !errors.Is(err, rabbitmq.ErrUnconfirmed) || !strings.Contains(err.Error(), "ConfirmTimeout") {
		t.Errorf("while silent: confirmed %v, err %v; want none, ErrUnconfirmed for the ConfirmTimeout", got, err)
	}
	px.thaw()

	// The silent connection was dropped; the next Publish makes a new one.
	got, err = publish(t, p, newEvents(3, outbox.OrderCancelled))
	confirmed = append(confirmed, got...)
	if err != nil {
		t.Errorf("after the silence: %v", err)
	}
	assertAllInQueue(t, broker, "all", confirmed)
}

func TestPublishEndsPromptlyWhenItsContextEnds(t *testing.T) {
	// returnsSoon runs Publish, cancels its ctx after a moment, and fails if
	// Publish does not return soon after (every other bound here is a minute).
	returnsSoon := func(t *testing.T, p *rabbitmq.Publisher, events []outbox.Event) ([]string, error) {
		t.Helper()
		ctx, cancel := context.WithCancel(t.Context())
		type result struct {
			confirmed []string
			err       error
		}
		done := make(chan result, 1)
		go func() {
			confirmed, err := p.Publish(ctx, events)
			done <- result{confirmed, err}
		}()
		time.Sleep(200 * time.Millisecond)
		cancel()
		select {
		case r := <-done:
			return r.confirmed, r.err
		case <-time.After(10 * time.Second):
			t.Fatal("Publish did not return after its ctx was cancelled")
			return nil, nil
		}
	}
	patient := rabbitmq.Config{ConfirmTimeout: time.Minute, DialTimeout: time.Minute, FirstBackoff: time.Minute}

	t.Run("already_cancelled", func(t *testing.T) {
		f := newFakeBroker(t, false)
		cfg := patient
		cfg.URL = f.url()
		p := newPublisher(t, cfg)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		confirmed, err := p.Publish(ctx, newEvents(1, outbox.OrderConfirmed))
		if confirmed != nil || !errors.Is(err, context.Canceled) {
			t.Errorf("confirmed %v, err %v; want none, context.Canceled", confirmed, err)
		}
		if n := f.accepts.Load(); n != 0 {
			t.Errorf("%d connections made with a cancelled ctx", n)
		}
	})

	t.Run("while_the_handshake_hangs", func(t *testing.T) {
		f := newFakeBroker(t, false)
		cfg := patient
		cfg.URL = f.url()
		p := newPublisher(t, cfg)
		confirmed, err := returnsSoon(t, p, newEvents(1, outbox.OrderConfirmed))
		if confirmed != nil || !errors.Is(err, rabbitmq.ErrUnavailable) || !errors.Is(err, context.Canceled) {
			t.Errorf("confirmed %v, err %v; want none, ErrUnavailable and context.Canceled", confirmed, err)
		}
	})

	t.Run("while_waiting_for_confirms", func(t *testing.T) {
		broker := rabbittest.VHost(t)
		bindQueue(t, broker, "all", nil, "#")
		px, url := newProxy(t, broker)
		cfg := patient
		cfg.URL = url
		cfg.FirstBackoff = 0 // the default, so that the reconnection below is quick
		p := newPublisher(t, cfg)
		if _, err := publish(t, p, newEvents(1, outbox.OrderConfirmed)); err != nil {
			t.Fatalf("before the silence: %v", err)
		}
		px.freeze()
		confirmed, err := returnsSoon(t, p, newEvents(3, outbox.OrderConfirmed))
		px.thaw()
		if len(confirmed) != 0 || !errors.Is(err, rabbitmq.ErrUnconfirmed) || !errors.Is(err, context.Canceled) {
			t.Errorf("confirmed %v, err %v; want none, ErrUnconfirmed and context.Canceled", confirmed, err)
		}
		if _, err := publish(t, p, newEvents(1, outbox.OrderConfirmed)); err != nil {
			t.Errorf("after the silence: %v", err)
		}
	})

	t.Run("while_waiting_to_reconnect", func(t *testing.T) {
		f := newFakeBroker(t, true)
		cfg := patient
		cfg.URL = f.url()
		p := newPublisher(t, cfg)
		if _, err := publish(t, p, newEvents(1, outbox.OrderConfirmed)); !errors.Is(err, rabbitmq.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
		// No deadline: Publish waits for the next attempt, a minute away,
		// until the ctx is cancelled.
		confirmed, err := returnsSoon(t, p, newEvents(1, outbox.OrderConfirmed))
		if confirmed != nil || !errors.Is(err, rabbitmq.ErrUnavailable) || !errors.Is(err, context.Canceled) {
			t.Errorf("confirmed %v, err %v; want none, ErrUnavailable and context.Canceled", confirmed, err)
		}
		if n := f.accepts.Load(); n != 1 {
			t.Errorf("%d connection attempts, want 1 (the next is a minute away)", n)
		}
	})
}

func TestDeadBrokerIsNotHammered(t *testing.T) {
	f := newFakeBroker(t, true)
	p := newPublisher(t, rabbitmq.Config{URL: f.url(), FirstBackoff: time.Minute})

	for i := range 20 {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		confirmed, err := p.Publish(ctx, newEvents(1, outbox.OrderConfirmed))
		cancel()
		if confirmed != nil || !errors.Is(err, rabbitmq.ErrUnavailable) {
			t.Fatalf("call %d: confirmed %v, err %v; want none, ErrUnavailable", i, confirmed, err)
		}
	}
	if n := f.accepts.Load(); n != 1 {
		t.Errorf("%d connection attempts in 20 calls, want 1: the next is a minute after the first failure", n)
	}

	// Close ends a Publish that waits for its next attempt.
	done := make(chan error, 1)
	go func() {
		_, err := p.Publish(t.Context(), newEvents(1, outbox.OrderConfirmed))
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, rabbitmq.ErrClosed) {
			t.Errorf("err = %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end a Publish waiting to reconnect")
	}
}

func TestCloseStopsEveryGoroutine(t *testing.T) {
	t.Run("after_publishing_and_a_reconnection", func(t *testing.T) {
		broker := rabbittest.VHost(t)
		bindQueue(t, broker, "all", nil, "#")
		before := runtime.NumGoroutine()

		p := rabbitmq.NewPublisher(rabbitmq.Config{URL: broker, Logger: testLogger(t)})
		if _, err := publish(t, p, newEvents(3, outbox.OrderConfirmed)); err != nil {
			t.Fatalf("publish: %v", err)
		}
		rabbittest.CloseAllConnections(t, broker)
		deadline := time.Now().Add(15 * time.Second)
		for {
			_, err := publish(t, p, newEvents(3, outbox.OrderShipped))
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no reconnection: %v", err)
			}
		}
		if err := p.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		waitForGoroutines(t, before)

		if _, err := publish(t, p, newEvents(1, outbox.OrderConfirmed)); !errors.Is(err, rabbitmq.ErrClosed) {
			t.Errorf("publish after close: err = %v, want ErrClosed", err)
		}
		if err := p.Close(); err != nil {
			t.Errorf("second close: %v", err)
		}
	})

	t.Run("after_failed_handshakes", func(t *testing.T) {
		dead := newFakeBroker(t, true)
		silent := newFakeBroker(t, false)
		before := runtime.NumGoroutine()

		p := rabbitmq.NewPublisher(rabbitmq.Config{URL: dead.url(), Logger: testLogger(t)})
		if _, err := publish(t, p, newEvents(1, outbox.OrderConfirmed)); !errors.Is(err, rabbitmq.ErrUnavailable) {
			t.Errorf("err = %v, want ErrUnavailable", err)
		}
		if err := p.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		p = rabbitmq.NewPublisher(rabbitmq.Config{URL: silent.url(), DialTimeout: 200 * time.Millisecond, Logger: testLogger(t)})
		if _, err := publish(t, p, newEvents(1, outbox.OrderConfirmed)); !errors.Is(err, rabbitmq.ErrUnavailable) {
			t.Errorf("err = %v, want ErrUnavailable", err)
		}
		if err := p.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		waitForGoroutines(t, before)
	})
}
