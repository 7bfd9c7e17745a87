package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"phoneshop/account"
	"phoneshop/notify/delivery"
	"phoneshop/notify/outbox"
)

// Mail: deliveries guard each mail (begun before it is sent, finished before the
// message is acknowledged, never sent again once finished); a campaign's fan-out
// writes one promo.email event per opted-in account, page by page, resumably.
func Mail(t *testing.T, open Open) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)

	t.Run("a_delivery_is_begun_counted_and_finished_once", func(t *testing.T) {
		s := open(t)
		key := delivery.Key{Kind: delivery.KindPromo, Subject: "promo_1", Recipient: "acc_1"}
		if rec, err := s.Delivery(ctx, key); err != nil || rec.Status != "" {
			t.Fatalf("unknown delivery = %+v, %v", rec, err)
		}
		rec, err := s.BeginDelivery(ctx, key, now)
		if err != nil || rec.Status != delivery.Sending || rec.Attempts != 1 {
			t.Fatalf("first begin = %+v, %v", rec, err)
		}
		// The mailer died, or the server said "try later": another attempt.
		if rec, err = s.BeginDelivery(ctx, key, now.Add(time.Second)); err != nil || rec.Attempts != 2 {
			t.Fatalf("second begin = %+v, %v", rec, err)
		}
		long := string(make([]rune, 2000))
		if rec, err = s.FinishDelivery(ctx, key, delivery.Sent, long, now.Add(2*time.Second)); err != nil || rec.Status != delivery.Sent {
			t.Fatalf("finish = %+v, %v", rec, err)
		}
		// Finished: a redelivered message begins nothing and cannot change the end.
		if rec, err = s.BeginDelivery(ctx, key, now.Add(3*time.Second)); err != nil || rec.Status != delivery.Sent || rec.Attempts != 2 {
			t.Fatalf("begin after sent = %+v, %v", rec, err)
		}
		if rec, err = s.FinishDelivery(ctx, key, delivery.Failed, "late", now.Add(4*time.Second)); err != nil || rec.Status != delivery.Sent {
			t.Fatalf("a second finish = %+v, %v; want the first end kept", rec, err)
		}
		if _, err := s.FinishDelivery(ctx, key, delivery.Sending, "", now); err == nil {
			t.Error("finishing as sending was accepted")
		}
		other := delivery.Key{Kind: delivery.KindPromo, Subject: "promo_1", Recipient: "acc_2"}
		if _, err := s.BeginDelivery(ctx, other, now); err != nil {
			t.Fatal(err)
		}
		if _, err := s.FinishDelivery(ctx, other, delivery.Failed, "550 no such user", now); err != nil {
			t.Fatal(err)
		}
		counts, err := s.DeliveryCounts(ctx, delivery.KindPromo, "promo_1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[delivery.Status]int64{delivery.Sent: 1, delivery.Failed: 1}, counts); diff != "" {
			t.Errorf("counts (-want +got):\n%s", diff)
		}
	})

	t.Run("ten_mailers_racing_begin_one_delivery", func(t *testing.T) {
		s := open(t)
		key := delivery.Key{Kind: "order.confirmed", Subject: "ord_1", Recipient: "acc_1"}
		var wg sync.WaitGroup
		errs := make(chan error, 10)
		for range 10 {
			wg.Go(func() {
				if _, err := s.BeginDelivery(ctx, key, now); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("begin: %v", err)
		}
		rec, err := s.Delivery(ctx, key)
		if err != nil || rec.Status != delivery.Sending || rec.Attempts < 1 || rec.Attempts > 10 {
			t.Fatalf("after the race: %+v, %v", rec, err)
		}
	})

	t.Run("a_fan_out_reaches_each_opted_in_account_once_and_resumes", func(t *testing.T) {
		s := open(t)
		var optedIn []string
		for i := range 25 {
			a := account.Account{ID: fmt.Sprintf("acc_%03d", i), Email: fmt.Sprintf("a%d@example.com", i), Name: "A",
				Roles: []account.Role{account.RoleShopper}, PasswordHash: "$argon2id$x", CreatedAt: now, PromoEmails: i%5 != 0}
			if err := s.CreateAccount(ctx, a); err != nil {
				t.Fatal(err)
			}
			if a.PromoEmails {
				optedIn = append(optedIn, a.ID)
			}
		}
		var pages int
		for {
			recipients, done, err := s.FanOutPage(ctx, "promo_f", 7, now)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if done {
				if recipients != int64(len(optedIn)) {
					t.Fatalf("recipients = %d, want %d", recipients, len(optedIn))
				}
				break
			}
			if pages > 10 {
				t.Fatal("the fan-out never ends")
			}
		}
		// Done: a redelivered promo.activated writes nothing more.
		if recipients, done, err := s.FanOutPage(ctx, "promo_f", 7, now); err != nil || !done || recipients != int64(len(optedIn)) {
			t.Fatalf("after done: %d %v %v", recipients, done, err)
		}
		if n, err := s.Recipients(ctx, "promo_f"); err != nil || n != int64(len(optedIn)) {
			t.Fatalf("Recipients = %d, %v", n, err)
		}
		events, err := s.UnpublishedEvents(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		var reached []string
		for _, e := range events {
			var p outbox.PromoEmailPayload
			if err := json.Unmarshal(e.Payload, &p); err != nil {
				t.Fatal(err)
			}
			if e.RoutingKey != outbox.PromoEmail || p.PromoID != "promo_f" || e.ID != outbox.ID(outbox.PromoEmail, "promo_f:"+p.AccountID) {
				t.Errorf("event %+v", e)
			}
			reached = append(reached, p.AccountID)
		}
		if diff := cmp.Diff(optedIn, sorted(reached)); diff != "" {
			t.Errorf("accounts reached (-want +got):\n%s", diff)
		}
		if n, err := s.Recipients(ctx, "promo_none"); err != nil || n != 0 {
			t.Errorf("Recipients of a campaign never fanned out = %d, %v", n, err)
		}
		// Stats: recipients from the fan-out, sent and failed from the deliveries.
		for i, id := range optedIn[:3] {
			key := delivery.Key{Kind: delivery.KindPromo, Subject: "promo_f", Recipient: id}
			if _, err := s.BeginDelivery(ctx, key, now); err != nil {
				t.Fatal(err)
			}
			if i < 2 {
				if _, err := s.FinishDelivery(ctx, key, []delivery.Status{delivery.Sent, delivery.Failed}[i], "", now); err != nil {
					t.Fatal(err)
				}
			}
		}
		stats, err := s.PromoMailStats(ctx, []string{"promo_f", "promo_none"})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]delivery.CampaignStats{"promo_f": {Recipients: int64(len(optedIn)), Sent: 1, Failed: 1}}
		if diff := cmp.Diff(want, stats); diff != "" {
			t.Errorf("stats (-want +got):\n%s", diff)
		}
	})
}
