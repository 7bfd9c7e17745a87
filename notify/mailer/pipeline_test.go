package mailer_test

// The mail pipeline on real servers: RabbitMQ (a vhost of the test's own) feeds
// mailers that send through a Mailpit of the test's own; the store is SQLite (the
// claims behave alike on MariaDB: persistence/storetest).

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"phoneshop/actors/order"
	"phoneshop/internal/mailpittest"
	"phoneshop/internal/rabbittest"
	"phoneshop/notify/delivery"
	shopmail "phoneshop/notify/mail"
	"phoneshop/notify/mailer"
	"phoneshop/notify/outbox"
	"phoneshop/notify/queue"
	"phoneshop/notify/rabbitmq"
)

// pipeline is a broker vhost, a Mailpit and the fixture's store, with the
// helpers to run mailers on them.
type pipeline struct {
	*fixture
	broker string
	mp     *mailpittest.Server
	pub    *rabbitmq.Publisher
	log    *slog.Logger
}

func newPipeline(t *testing.T) *pipeline {
	t.Helper()
	p := &pipeline{fixture: newFixture(t), broker: rabbittest.VHost(t), mp: mailpittest.Start(t),
		log: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))}
	p.pub = rabbitmq.NewPublisher(rabbitmq.Config{URL: p.broker, Logger: p.log})
	t.Cleanup(func() { _ = p.pub.Close() })
	return p
}

// smtp is an SMTP sender to the pipeline's Mailpit: no TLS (Mailpit has no
// certificate here), set explicitly as the shop's configuration must.
func (p *pipeline) smtp(t *testing.T) *shopmail.SMTP {
	s := shopmail.NewSMTP(shopmail.SMTPConfig{Host: p.mp.SMTPHost, Port: p.mp.SMTPPort, TLSPolicy: "none",
		Timeout: 5 * time.Second, HELO: "phoneshop.test"})
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// orderEvents writes n accounts and returns an order.confirmed event for each.
func (p *pipeline) orderEvents(t *testing.T, prefix string, n int) []outbox.Event {
	t.Helper()
	var events []outbox.Event
	for i := range n {
		a := p.account(t, fmt.Sprintf("acc_%s_%02d", prefix, i), false)
		id := fmt.Sprintf("ord_%s_%02d", prefix, i)
		e, err := outbox.New(outbox.OrderConfirmed, id, order.EventPayload{OrderID: id, AccountID: a.ID, Currency: "USD",
			Status: "confirmed"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, e)
	}
	return events
}

func keyOf(e outbox.Event, prefix string, i int) delivery.Key {
	return delivery.Key{Kind: e.RoutingKey, Subject: fmt.Sprintf("ord_%s_%02d", prefix, i), Recipient: fmt.Sprintf("acc_%s_%02d", prefix, i)}
}

// run consumes the order mail queue with handle until the test ends, and waits
// until the broker lists the consumer.
func (p *pipeline) run(t *testing.T, cfg rabbitmq.ConsumerConfig, handle queue.Handler) *rabbitmq.Consumer {
	t.Helper()
	cfg.URL, cfg.Bindings, cfg.Logger = p.broker, []queue.Binding{queue.OrderEmail}, p.log
	c := rabbitmq.NewConsumer(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	before := rabbittest.Consumers(t, p.broker, queue.OrderEmail.Queue)
	go func() { done <- c.Run(ctx, handle) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitUntil(t, "the consumer registered", func() bool {
		return rabbittest.Consumers(t, p.broker, queue.OrderEmail.Queue) > before
	})
	return c
}

func (p *pipeline) publish(t *testing.T, events []outbox.Event) {
	t.Helper()
	if confirmed, err := p.pub.Publish(context.Background(), events); err != nil || len(confirmed) != len(events) {
		t.Fatalf("publish: %d of %d confirmed, %v", len(confirmed), len(events), err)
	}
}

// stats counts the order mail queue, with consumers' in-flight counts.
func (p *pipeline) stats(t *testing.T, consumers ...*rabbitmq.Consumer) queue.Stats {
	t.Helper()
	in := rabbitmq.NewInspector(rabbitmq.InspectorConfig{URL: p.broker, Queues: []string{queue.OrderEmail.Queue},
		Unacked: func(context.Context) (map[string]int64, error) {
			out := map[string]int64{}
			for _, c := range consumers {
				for q, n := range c.InFlight() {
					out[q] += n
				}
			}
			return out, nil
		}})
	st, err := in.Stats(context.Background(), []string{queue.OrderEmail.Queue})
	if err != nil {
		t.Fatal(err)
	}
	return st[0]
}

// waitUntil polls cond until it holds, failing the test after a minute.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
	}
}

// TestATwoHourSMTPOutageLosesNoMailAndSendsNoneTwice: the SMTP server is
// stopped while mails are queued and in flight; short settings stand for the
// shipped ones, in the same proportions (the hour's cap is 400 ms, a hold of 15
// min 100 ms, so the shipped delivery limit of 20 returns is 2 s, 5 "hours"; the
// first wait 20 ms), and the outage lasts past two "hours" and past the point
// where the backoff reached its cap. Then the server comes back:
// every mail arrives exactly once, none is in the dead letters, and the
// deliveries show the attempts. With the shipped delivery limit, the messages
// in flight stay the prefetch window and the rest waits untouched; with a
// delivery limit of 2, held messages are renewed many times over, and still
// nothing is lost, dead-lettered or sent twice.
func TestATwoHourSMTPOutageLosesNoMailAndSendsNoneTwice(t *testing.T) {
	const (
		hour       = 400 * time.Millisecond
		retryFirst = 20 * time.Millisecond
		maxHold    = hour / 4
		prefetch   = 4
		mails      = 12
		// Attempts that take a mail to the cap: after the first, waits of 20,
		// 40, 80, 160 and 320 ms; the sixth failure waits the cap, 400 ms.
		outageAttempts = 6
	)
	for _, tc := range []struct {
		name          string
		deliveryLimit int
	}{
		{"shipped_delivery_limit", rabbitmq.DefaultDeliveryLimit},
		{"delivery_limit_2_renews_held_messages", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPipeline(t)
			m := mailer.New(p.store, p.smtp(t), mailer.Config{From: "phoneshop <shop@example.com>", PublicURL: "https://shop.example.com",
				Unsubscribe: p.tokens, RetryFirst: retryFirst, RetryMax: hour, RetryFor: 1000 * hour, ClaimLease: time.Minute,
				ID: "outage", Logger: p.log})
			var mu sync.Mutex
			seen := map[string][]int{} // the attempts (the broker's) with which each message came
			c := p.run(t, rabbitmq.ConsumerConfig{Prefetch: prefetch, DeliveryLimit: tc.deliveryLimit, MaxHold: maxHold},
				func(ctx context.Context, msg queue.Message) queue.Outcome {
					mu.Lock()
					seen[msg.ID] = append(seen[msg.ID], msg.Attempt)
					mu.Unlock()
					return m.Handle(ctx, msg)
				})

			p.mp.Stop()
			events := p.orderEvents(t, "out", mails)
			p.publish(t, events)
			began := time.Now()
			rows := func() (claimed []delivery.Record) {
				for i, e := range events {
					rec := p.delivery(t, keyOf(e, "out", i))
					if rec.Status != "" {
						claimed = append(claimed, rec)
					}
				}
				return claimed
			}
			waitUntil(t, fmt.Sprintf("two hours, and %d mails at attempt %d", prefetch, outageAttempts), func() bool {
				n := 0
				for _, rec := range rows() {
					if rec.Attempts >= outageAttempts {
						n++
					}
				}
				return n >= prefetch && time.Since(began) >= 2*hour
			})
			outage := time.Since(began)
			st := p.stats(t, c)
			if st.Dead != 0 {
				t.Fatalf("during the outage: %+v, want no dead letters", st)
			}
			if tc.deliveryLimit == rabbitmq.DefaultDeliveryLimit {
				// Only the prefetch window was touched; the rest waits in the
				// queue, never delivered.
				// (A held message given back at the end of its hold is for a
				// moment neither held nor counted ready.)
				want := queue.Stats{Name: queue.OrderEmail.Queue, Ready: mails - prefetch, Unacked: prefetch}
				waitUntil(t, fmt.Sprintf("the outage's counts %+v", want), func() bool { return p.stats(t, c) == want })
				mu.Lock()
				if len(seen) != prefetch {
					t.Errorf("%d messages delivered during the outage, want the prefetch window of %d", len(seen), prefetch)
				}
				mu.Unlock()
				if claimed := rows(); len(claimed) != prefetch {
					t.Errorf("%d deliveries attempted during the outage, want %d", len(claimed), prefetch)
				}
			}
			for _, rec := range rows() {
				if rec.Status != delivery.Retrying && rec.Status != delivery.Sending {
					t.Errorf("during the outage: %+v, want retrying", rec)
				}
			}
			t.Logf("outage of %s (%.1f \"hours\"): %+v", outage.Round(time.Millisecond), float64(outage)/float64(hour), st)

			p.mp.Start()
			waitUntil(t, "every mail sent and the queue empty", func() bool {
				st := p.stats(t, c)
				return len(rows()) == mails && st == queue.Stats{Name: queue.OrderEmail.Queue} && allSent(rows())
			})
			got := p.mp.Summaries(t)
			ids := map[string]int{}
			for _, s := range got {
				ids[s.MessageID]++
			}
			if len(got) != mails || len(ids) != mails {
				t.Errorf("Mailpit holds %d mails with %d Message-IDs, want %d once each: %v", len(got), len(ids), mails, ids)
			}
			attempts := 0
			for i, e := range events {
				rec := p.delivery(t, keyOf(e, "out", i))
				attempts += rec.Attempts
				if rec.Status != delivery.Sent || rec.Owner != "" {
					t.Errorf("delivery %d = %+v, want sent", i, rec)
				}
			}
			var outaged int
			for _, rec := range rows() {
				if rec.Attempts > outageAttempts {
					outaged++
				}
			}
			if outaged < prefetch {
				t.Errorf("%d deliveries show more than %d attempts, want at least the %d held through the outage", outaged, outageAttempts, prefetch)
			}
			if tc.deliveryLimit == 2 {
				renewed := 0
				mu.Lock()
				for _, as := range seen {
					for i := 1; i < len(as); i++ {
						if as[i] < as[i-1] {
							renewed++
						}
					}
				}
				mu.Unlock()
				if renewed == 0 {
					t.Error("no held message was renewed at the delivery limit of 2")
				}
				t.Logf("%d renewals", renewed)
			}
			t.Logf("%d attempts for %d mails", attempts, mails)
		})
	}
}

func allSent(recs []delivery.Record) bool {
	for _, r := range recs {
		if r.Status != delivery.Sent {
			return false
		}
	}
	return true
}

// gatedSender holds its first send until released: two copies of one event are
// then in flight at once.
type gatedSender struct {
	shopmail.Sender
	entered, release chan struct{}
	once             sync.Once
	mu               sync.Mutex
	sends            []string
}

func (g *gatedSender) Send(ctx context.Context, m shopmail.Message) error {
	g.mu.Lock()
	g.sends = append(g.sends, m.MessageID)
	g.mu.Unlock()
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.entered)
		select {
		case <-g.release:
		case <-ctx.Done():
		}
	}
	return g.Sender.Send(ctx, m)
}

// TestTwoMailersHoldingBothCopiesOfAnEventSendItOnce: the relay published an
// event twice; two mailers hold the two copies at once; the mail goes once.
func TestTwoMailersHoldingBothCopiesOfAnEventSendItOnce(t *testing.T) {
	p := newPipeline(t)
	sender := &gatedSender{Sender: p.smtp(t), entered: make(chan struct{}), release: make(chan struct{})}
	var mu sync.Mutex
	outcomes := map[string][]queue.Outcome{}
	var releaseOnce sync.Once
	var consumers []*rabbitmq.Consumer
	for _, id := range []string{"m1", "m2"} {
		m := mailer.New(p.store, sender, mailer.Config{From: "phoneshop <shop@example.com>", PublicURL: "https://shop.example.com",
			Unsubscribe: p.tokens, ClaimPoll: 20 * time.Millisecond, ID: id, Logger: p.log})
		consumers = append(consumers, p.run(t, rabbitmq.ConsumerConfig{Prefetch: 1},
			func(ctx context.Context, msg queue.Message) queue.Outcome {
				out := m.Handle(ctx, msg)
				mu.Lock()
				outcomes[id] = append(outcomes[id], out)
				mu.Unlock()
				if out.Action == queue.ActRetry {
					// The other copy met the claim while the first is being
					// sent: let the send finish.
					releaseOnce.Do(func() { close(sender.release) })
				}
				return out
			}))
	}
	events := p.orderEvents(t, "dup", 1)
	p.publish(t, events)
	p.publish(t, events) // the same event again, as a relay whose lease ran out does
	<-sender.entered
	waitUntil(t, "both copies acknowledged", func() bool {
		mu.Lock()
		defer mu.Unlock()
		acks := 0
		for _, outs := range outcomes {
			for _, o := range outs {
				if o == queue.Ack {
					acks++
				}
			}
		}
		return acks == 2 && p.stats(t, consumers...) == queue.Stats{Name: queue.OrderEmail.Queue}
	})
	mu.Lock()
	if len(outcomes["m1"]) == 0 || len(outcomes["m2"]) == 0 {
		t.Errorf("outcomes %v: each mailer should have held a copy", outcomes)
	}
	mu.Unlock()
	sender.mu.Lock()
	sends := slices.Clone(sender.sends)
	sender.mu.Unlock()
	if len(sends) != 1 {
		t.Errorf("%d sends, want 1: %v", len(sends), sends)
	}
	if n := p.mp.Count(t); n != 1 {
		t.Errorf("Mailpit holds %d mails, want 1", n)
	}
	if rec := p.delivery(t, keyOf(events[0], "dup", 0)); rec.Status != delivery.Sent || rec.Attempts != 1 {
		t.Errorf("delivery = %+v, want sent at the first attempt", rec)
	}
}
