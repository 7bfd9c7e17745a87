package mailer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"phoneshop/account"
	"phoneshop/actors/order"
	"phoneshop/actors/promo"
	"phoneshop/notify/delivery"
	shopmail "phoneshop/notify/mail"
	"phoneshop/notify/mailer"
	"phoneshop/notify/outbox"
	"phoneshop/notify/queue"
	"phoneshop/persistence/sqlite"
	"phoneshop/persistence/sqlstore"
)

// faulty is the .eml sender of dev with faults a test sets: the SMTP server's
// answers are tested in notify/mail against a real server; here what matters is
// what the mailer does with them.
type faulty struct {
	*shopmail.Files
	mu    sync.Mutex
	fail  error // returned (instead of sending) while set
	sends int
}

func (f *faulty) Send(ctx context.Context, m shopmail.Message) error {
	f.mu.Lock()
	fail := f.fail
	f.sends++
	f.mu.Unlock()
	if fail != nil {
		return fail
	}
	return f.Files.Send(ctx, m)
}

func (f *faulty) setFail(err error) { f.mu.Lock(); f.fail = err; f.mu.Unlock() }
func (f *faulty) count() int        { f.mu.Lock(); defer f.mu.Unlock(); return f.sends }

type fixture struct {
	store  *sqlstore.Store
	sender *faulty
	dir    string
	m      *mailer.Mailer
	tokens *account.UnsubscribeTokens
	now    time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := sqlite.Open(ctx, filepath.Join(dir, "shop.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	tokens, err := account.NewUnsubscribeTokens(strings.Repeat("k", 32))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: s, dir: filepath.Join(dir, "mail"), tokens: tokens, now: time.Now().UTC().Truncate(time.Second)}
	f.sender = &faulty{Files: shopmail.NewFiles(f.dir)}
	f.m = f.mailer("m1", f.sender)
	return f
}

// Retry settings of the fixture's mailers, on its clock.
const (
	retryFirst = time.Minute
	retryMax   = time.Hour
	retryFor   = 72 * time.Hour
	claimLease = 2 * time.Minute
)

// mailer is a mailer named id on the fixture's store and clock, sending through
// sender.
func (f *fixture) mailer(id string, sender shopmail.Sender) *mailer.Mailer {
	return mailer.New(f.store, sender, mailer.Config{From: "phoneshop <shop@example.com>", PublicURL: "https://shop.example.com",
		Unsubscribe: f.tokens, RetryFirst: retryFirst, RetryMax: retryMax, RetryFor: retryFor, ClaimLease: claimLease,
		ID: id, Now: func() time.Time { return f.now }})
}

func (f *fixture) account(t *testing.T, id string, promoEmails bool) account.Account {
	t.Helper()
	a := account.Account{ID: id, Email: id + "@example.com", Name: "A", Roles: []account.Role{account.RoleShopper},
		PasswordHash: "$argon2id$x", CreatedAt: f.now, PromoEmails: promoEmails, EmailVerified: true}
	if err := f.store.CreateAccount(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	return a
}

func (f *fixture) campaign(t *testing.T, id string) {
	t.Helper()
	l := promo.Listing{Snapshot: promo.Snapshot{ID: id, Stage: "launched", Activated: true, Spec: promo.Spec{
		Name: "Pixel week", PercentOff: 20, Brands: []string{"Google"}, StartsAt: f.now.Add(-time.Hour), EndsAt: f.now.Add(time.Hour),
		EmailSubject: "20% off every Pixel", EmailBody: "Größe zählt.\n\nUntil Sunday."}}, CreatedAt: f.now, UpdatedAt: f.now}
	if err := f.store.SavePromo(context.Background(), 0, []byte("x"), l, promo.GrantsChange{}, nil); err != nil {
		t.Fatal(err)
	}
}

func message(t *testing.T, key, subject string, payload any) queue.Message {
	t.Helper()
	e, err := outbox.New(key, subject, payload, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return queue.Message{ID: e.ID, RoutingKey: key, Body: e.Payload, Attempt: 1}
}

func (f *fixture) readMail(t *testing.T, messageID string) *mail.Message {
	t.Helper()
	file, err := os.Open(f.sender.Path(messageID))
	if err != nil {
		t.Fatalf("no mail %s: %v", messageID, err)
	}
	t.Cleanup(func() { file.Close() })
	m, err := mail.ReadMessage(file)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (f *fixture) delivery(t *testing.T, key delivery.Key) delivery.Record {
	t.Helper()
	rec, err := f.store.Delivery(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestPromoMailIsSentOnceWithItsUnsubscribeHeaders(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.account(t, "acc_in", true)
	f.campaign(t, "promo_1")
	msg := message(t, outbox.PromoEmail, "promo_1:acc_in", outbox.PromoEmailPayload{PromoID: "promo_1", AccountID: a.ID})
	if got := f.m.Handle(ctx, msg); got != queue.Ack {
		t.Fatalf("Handle = %v, want ack", got)
	}
	id := mailer.PromoMessageID("promo_1", a.ID, "https://shop.example.com")
	m := f.readMail(t, id)
	link := "https://shop.example.com/u/" + f.tokens.Token(a.ID)
	for header, want := range map[string]string{
		"To": "<acc_in@example.com>", "Subject": "20% off every Pixel", "Message-Id": "<" + id + ">",
		"List-Unsubscribe": "<" + link + ">", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click", "Precedence": "bulk",
	} {
		if got := strings.Join(strings.Fields(m.Header.Get(header)), " "); got != want {
			t.Errorf("%s = %q, want %q", header, got, want)
		}
	}
	if rec := f.delivery(t, delivery.Key{Kind: delivery.KindPromo, Subject: "promo_1", Recipient: a.ID}); rec.Status != delivery.Sent {
		t.Errorf("delivery = %+v, want sent", rec)
	}
	// Delivered again (the mailer died before its ack): acknowledged, not sent.
	if got := f.m.Handle(ctx, msg); got != queue.Ack || f.sender.count() != 1 {
		t.Errorf("redelivery: %v after %d sends, want ack after 1", got, f.sender.count())
	}
}

func TestPromoMailIsNotSentToWhoOptedOut(t *testing.T) {
	f := newFixture(t)
	a := f.account(t, "acc_out", false)
	f.campaign(t, "promo_1")
	msg := message(t, outbox.PromoEmail, "promo_1:acc_out", outbox.PromoEmailPayload{PromoID: "promo_1", AccountID: a.ID})
	if got := f.m.Handle(context.Background(), msg); got != queue.Ack || f.sender.count() != 0 {
		t.Fatalf("Handle = %v after %d sends, want ack and none", got, f.sender.count())
	}
	if rec := f.delivery(t, delivery.Key{Kind: delivery.KindPromo, Subject: "promo_1", Recipient: a.ID}); rec.Status != delivery.Skipped {
		t.Errorf("delivery = %+v, want skipped", rec)
	}
}

func TestOrderMailSaysWhatWasBoughtWhateverTheConsent(t *testing.T) {
	f := newFixture(t)
	a := f.account(t, "acc_o", false)
	p := order.EventPayload{OrderID: "ord_1", AccountID: a.ID, Status: "confirmed", Currency: "USD",
		Lines:         []order.EventLine{{SKU: "google-pixel-9", Name: "Google Pixel 9 128 GB", Quantity: 2, UnitPriceCents: 79900, DiscountCents: 31960, PromoID: "promo_1"}},
		SubtotalCents: 159800, DiscountCents: 31960, TotalCents: 127840,
		ShippingAddress: order.EventAddress{Name: "Ann", Line1: "1 Main St", City: "Springfield", PostalCode: "12345", Country: "US"}}
	for _, key := range []string{outbox.OrderConfirmed, outbox.OrderShipped} {
		if got := f.m.Handle(context.Background(), message(t, key, "ord_1", p)); got != queue.Ack {
			t.Fatalf("%s: Handle = %v", key, got)
		}
	}
	m := f.readMail(t, mailer.OrderMessageID(outbox.OrderConfirmed, "ord_1", "https://shop.example.com"))
	raw, _ := os.ReadFile(f.sender.Path(mailer.OrderMessageID(outbox.OrderConfirmed, "ord_1", "https://shop.example.com")))
	for _, want := range []string{"ord_1", "Google Pixel 9 128 GB", "$799.00", "$1278.40", "Springfield"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("the confirmation does not say %q:\n%s", want, raw)
		}
	}
	if !strings.Contains(m.Header.Get("Subject"), "confirmed") || m.Header.Get("List-Unsubscribe") != "" {
		t.Errorf("confirmation headers: subject %q, List-Unsubscribe %q", m.Header.Get("Subject"), m.Header.Get("List-Unsubscribe"))
	}
	if f.sender.count() != 2 {
		t.Errorf("%d mails sent, want the confirmation and the shipping notice", f.sender.count())
	}
}

func TestTemporaryFailuresRetryOnTheStoresScheduleAndPermanentOnesAreFailed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.account(t, "acc_t", true)
	f.campaign(t, "promo_1")
	msg := message(t, outbox.PromoEmail, "promo_1:acc_t", outbox.PromoEmailPayload{PromoID: "promo_1", AccountID: a.ID})
	key := delivery.Key{Kind: delivery.KindPromo, Subject: "promo_1", Recipient: a.ID}
	began := f.now

	f.sender.setFail(fmt.Errorf("%w: 451 try again later", shopmail.ErrTemporary))
	if got := f.m.Handle(ctx, msg); got != queue.RetryAfter(retryFirst) {
		t.Fatalf("a 4xx: Handle = %v, want a retry after %s", got, retryFirst)
	}
	rec := f.delivery(t, key)
	if rec.Status != delivery.Retrying || rec.Attempts != 1 || !strings.Contains(rec.LastError, "451") ||
		!rec.NextAttemptAt.Equal(began.Add(retryFirst)) || !rec.FirstAttemptAt.Equal(began) {
		t.Fatalf("after a 4xx: %+v, want retrying, attempt 1, next in %s", rec, retryFirst)
	}
	// The message comes again before its next attempt is due (the queue gave
	// it back after a hold): it waits the rest, nothing is sent.
	f.now = began.Add(20 * time.Second)
	if got := f.m.Handle(ctx, msg); got != queue.RetryAfter(40*time.Second) || f.sender.count() != 1 {
		t.Fatalf("early: Handle = %v after %d sends, want a retry after the 40 s left and 1 send", got, f.sender.count())
	}
	f.now = began.Add(retryFirst)
	if got := f.m.Handle(ctx, msg); got != queue.RetryAfter(2*retryFirst) {
		t.Fatalf("the second 4xx: Handle = %v, want a retry after %s", got, 2*retryFirst)
	}
	f.sender.setFail(nil)
	f.now = f.now.Add(2 * retryFirst)
	if got := f.m.Handle(ctx, msg); got != queue.Ack {
		t.Fatalf("the third attempt: Handle = %v, want ack", got)
	}
	if rec := f.delivery(t, key); rec.Status != delivery.Sent || rec.Attempts != 3 || rec.Owner != "" {
		t.Fatalf("after the retries: %+v, want sent at attempt 3", rec)
	}

	b := f.account(t, "acc_p", true)
	msg = message(t, outbox.PromoEmail, "promo_1:acc_p", outbox.PromoEmailPayload{PromoID: "promo_1", AccountID: b.ID})
	f.sender.setFail(fmt.Errorf("%w: 550 no such mailbox", shopmail.ErrPermanent))
	if got := f.m.Handle(ctx, msg); got != queue.DeadLetter {
		t.Fatalf("a 5xx: Handle = %v, want dead-letter", got)
	}
	rec = f.delivery(t, delivery.Key{Kind: delivery.KindPromo, Subject: "promo_1", Recipient: b.ID})
	if rec.Status != delivery.Failed || !strings.Contains(rec.LastError, "550") {
		t.Fatalf("after a 5xx: %+v", rec)
	}
	stats, err := f.store.PromoMailStats(ctx, []string{"promo_1"})
	if err != nil || stats["promo_1"].Sent != 1 || stats["promo_1"].Failed != 1 {
		t.Errorf("stats = %+v, %v", stats, err)
	}
}

// TestBackoffDoublesUpToTheHourAndGivesUpAfterRetryFor: an outage of days
// takes an attempt an hour at most, never exhausts the message before RetryFor,
// and then fails it into the dead letters.
func TestBackoffDoublesUpToTheHourAndGivesUpAfterRetryFor(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.account(t, "acc_b", false)
	msg := message(t, outbox.OrderConfirmed, "ord_b", order.EventPayload{OrderID: "ord_b", AccountID: a.ID, Currency: "USD"})
	key := delivery.Key{Kind: outbox.OrderConfirmed, Subject: "ord_b", Recipient: a.ID}
	f.sender.setFail(fmt.Errorf("%w: dial tcp 127.0.0.1:25: connection refused", shopmail.ErrTemporary))
	began := f.now
	var waits []time.Duration
	for {
		got := f.m.Handle(ctx, msg)
		if got.Action != queue.ActRetry {
			if got != queue.DeadLetter {
				t.Fatalf("Handle = %v after %d attempts, want a retry or, at the end, dead-letter", got, len(waits)+1)
			}
			break
		}
		waits = append(waits, got.After)
		f.now = f.now.Add(got.After)
		if len(waits) > 200 {
			t.Fatal("never given up")
		}
	}
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour}
	if diff := cmp.Diff(want, waits[:len(want)]); diff != "" {
		t.Errorf("first waits (-want +got):\n%s", diff)
	}
	for _, w := range waits[len(want):] {
		if w != time.Hour {
			t.Errorf("a wait of %s after reaching the hour", w)
		}
	}
	if since := f.now.Sub(began); since < retryFor {
		t.Errorf("given up after %s, before RetryFor (%s)", since, retryFor)
	}
	rec := f.delivery(t, key)
	if rec.Status != delivery.Failed || rec.Attempts != len(waits)+1 || !strings.Contains(rec.LastError, "given up") {
		t.Errorf("in the end: %+v, want failed after %d attempts", rec, len(waits)+1)
	}
}

// gate is a sender whose first Send waits until released: a send in progress
// while a test does something else.
type gate struct {
	entered, release chan struct{}
	once             sync.Once
	sends            atomic.Int64
}

func newGate() *gate { return &gate{entered: make(chan struct{}), release: make(chan struct{})} }

func (g *gate) Send(ctx context.Context, m shopmail.Message) error {
	g.sends.Add(1)
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.entered)
		<-g.release
	}
	return nil
}

// TestTwoCopiesOfOneEventAtTwoMailersSendOnce: the relay published an event
// twice and two mailers hold both copies at once: the one that claims the
// delivery sends; the other finds the claim, waits, then finds the mail sent.
func TestTwoCopiesOfOneEventAtTwoMailersSendOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.account(t, "acc_2", false)
	msg := message(t, outbox.OrderShipped, "ord_2", order.EventPayload{OrderID: "ord_2", AccountID: a.ID, Currency: "USD"})
	sender := newGate()
	first, second := f.mailer("m1", sender), f.mailer("m2", sender)

	firstDone := make(chan queue.Outcome, 1)
	go func() { firstDone <- first.Handle(ctx, msg) }()
	<-sender.entered // the first copy is being sent
	got := second.Handle(ctx, msg)
	if got.Action != queue.ActRetry || got.After <= 0 || got.After > mailer.DefaultClaimPoll {
		t.Fatalf("the second copy while the first is sent: %v, want a retry within the claim poll", got)
	}
	close(sender.release)
	if got := <-firstDone; got != queue.Ack {
		t.Fatalf("the first copy: %v, want ack", got)
	}
	if got := second.Handle(ctx, msg); got != queue.Ack {
		t.Fatalf("the second copy after the first was sent: %v, want ack", got)
	}
	if n := sender.sends.Load(); n != 1 {
		t.Errorf("%d sends, want 1", n)
	}
}

// TestAClaimLeftByADeadMailerIsTakenOverWhenItsLeaseRunsOut: a mailer that died
// mid-send does not block the mail for ever.
func TestAClaimLeftByADeadMailerIsTakenOverWhenItsLeaseRunsOut(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.account(t, "acc_d", false)
	msg := message(t, outbox.OrderConfirmed, "ord_d", order.EventPayload{OrderID: "ord_d", AccountID: a.ID, Currency: "USD"})
	key := delivery.Key{Kind: outbox.OrderConfirmed, Subject: "ord_d", Recipient: a.ID}
	if _, claimed, err := f.store.ClaimDelivery(ctx, key, delivery.Claim{Owner: "dead/1", Now: f.now, Lease: claimLease}); err != nil || !claimed {
		t.Fatalf("claim = %v, %v", claimed, err)
	}
	f.now = f.now.Add(claimLease - time.Second)
	if got := f.m.Handle(ctx, msg); got != queue.RetryAfter(time.Second) || f.sender.count() != 0 {
		t.Fatalf("while the claim holds: %v after %d sends, want a retry after the second left", got, f.sender.count())
	}
	f.now = f.now.Add(time.Second)
	if got := f.m.Handle(ctx, msg); got != queue.Ack || f.sender.count() != 1 {
		t.Fatalf("once it ran out: %v after %d sends, want ack after 1", got, f.sender.count())
	}
	if rec := f.delivery(t, key); rec.Status != delivery.Sent || rec.Attempts != 2 {
		t.Errorf("delivery = %+v, want sent at attempt 2", rec)
	}
}

// TestARedrivenMessageTriesItsFailedMailAgain: a mail failed for good (5xx) is
// dead-lettered; redriven after that, it is sent; a copy redriven before the
// failure was recorded is not sent again.
func TestARedrivenMessageTriesItsFailedMailAgain(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.account(t, "acc_r", false)
	msg := message(t, outbox.OrderConfirmed, "ord_r", order.EventPayload{OrderID: "ord_r", AccountID: a.ID, Currency: "USD"})
	key := delivery.Key{Kind: outbox.OrderConfirmed, Subject: "ord_r", Recipient: a.ID}
	f.sender.setFail(fmt.Errorf("%w: 550 mailbox unavailable", shopmail.ErrPermanent))
	if got := f.m.Handle(ctx, msg); got != queue.DeadLetter {
		t.Fatalf("5xx: %v", got)
	}
	failedAt := f.now
	f.sender.setFail(nil)
	stale := msg
	stale.RedrivenAt = failedAt.Add(-time.Second)
	if got := f.m.Handle(ctx, stale); got != queue.Ack || f.sender.count() != 1 {
		t.Fatalf("a copy redriven before the failure: %v after %d sends, want ack without a send", got, f.sender.count())
	}
	f.now = f.now.Add(time.Minute)
	redriven := msg
	redriven.RedrivenAt = f.now
	if got := f.m.Handle(ctx, redriven); got != queue.Ack || f.sender.count() != 2 {
		t.Fatalf("redriven after the failure: %v after %d sends, want ack after a send", got, f.sender.count())
	}
	if rec := f.delivery(t, key); rec.Status != delivery.Sent || rec.Attempts != 2 {
		t.Errorf("delivery = %+v, want sent at attempt 2", rec)
	}
}

func TestAMalformedMessageIsDeadLettered(t *testing.T) {
	f := newFixture(t)
	for name, msg := range map[string]queue.Message{
		"not_json":        {ID: "evt_1", RoutingKey: outbox.PromoEmail, Body: []byte("{")},
		"no_account":      {ID: "evt_2", RoutingKey: outbox.PromoEmail, Body: []byte(`{"promo_id":"promo_1"}`)},
		"unknown_key":     {ID: "evt_3", RoutingKey: "order.lost", Body: []byte(`{}`)},
		"order_not_json":  {ID: "evt_4", RoutingKey: outbox.OrderConfirmed, Body: []byte("[]")},
		"no_such_promo":   message(t, outbox.PromoEmail, "x", outbox.PromoEmailPayload{PromoID: "promo_none", AccountID: f.account(t, "acc_x", true).ID}),
		"activation_junk": {ID: "evt_5", RoutingKey: outbox.PromoActivated, Body: []byte(`"x"`)},
	} {
		if got := f.m.Handle(context.Background(), msg); got != queue.DeadLetter {
			t.Errorf("%s: Handle = %v, want dead-letter", name, got)
		}
	}
	if f.sender.count() != 0 {
		t.Errorf("%d mails sent for malformed messages", f.sender.count())
	}
}

func TestActivationFansOutToTheOptedIn(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for i := range 7 {
		f.account(t, fmt.Sprintf("acc_%d", i), i%3 != 0)
	}
	msg := message(t, outbox.PromoActivated, "promo_1", promo.ActivatedEvent{PromoID: "promo_1", ActivatedAt: f.now})
	if got := f.m.Handle(ctx, msg); got != queue.Ack {
		t.Fatalf("Handle = %v", got)
	}
	events, err := f.store.UnpublishedEvents(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	var to []string
	for _, e := range events {
		var p outbox.PromoEmailPayload
		if err := json.Unmarshal(e.Payload, &p); err != nil || e.RoutingKey != outbox.PromoEmail {
			t.Fatalf("event %+v: %v", e, err)
		}
		to = append(to, p.AccountID)
	}
	slices.Sort(to)
	if strings.Join(to, ",") != "acc_1,acc_2,acc_4,acc_5" {
		t.Errorf("fan-out reached %v, want the opted-in acc_1 acc_2 acc_4 acc_5", to)
	}
	// Delivered again: nothing more.
	if got := f.m.Handle(ctx, msg); got != queue.Ack {
		t.Fatalf("second Handle = %v", got)
	}
	if again, _ := f.store.UnpublishedEvents(ctx, 100); len(again) != len(events) {
		t.Errorf("a redelivered activation wrote %d events more", len(again)-len(events))
	}
}

func TestSendsArePacedAtTheLiveSendRate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var perSec atomic.Int64
	perSec.Store(20)
	paced := mailer.New(f.store, f.sender, mailer.Config{From: "shop@example.com", PublicURL: "https://shop.example.com",
		Unsubscribe: f.tokens, SendPerSec: func() int { return int(perSec.Load()) }, ID: "paced"})
	f.campaign(t, "promo_1")
	send := func(i int) {
		a := f.account(t, fmt.Sprintf("acc_pace_%02d", i), true)
		msg := message(t, outbox.PromoEmail, "promo_1:"+a.ID, outbox.PromoEmailPayload{PromoID: "promo_1", AccountID: a.ID})
		if got := paced.Handle(ctx, msg); got != queue.Ack {
			t.Fatalf("Handle = %v", got)
		}
	}
	began := time.Now()
	for i := range 10 {
		send(i)
	}
	// 20 a second: the tenth send waits for nine intervals of 50 ms at least.
	if elapsed := time.Since(began); elapsed < 450*time.Millisecond {
		t.Errorf("10 sends at 20/s took %s, want at least 450ms", elapsed)
	}
	// The setting is live: 0 lifts the pacing for the next sends.
	perSec.Store(0)
	began = time.Now()
	for i := 10; i < 20; i++ {
		send(i)
	}
	if f.sender.count() != 20 {
		t.Errorf("%d sends, want 20", f.sender.count())
	}
	t.Logf("10 unpaced sends took %s", time.Since(began))
}
