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

	t.Run("a_delivery_ends_once", func(t *testing.T) {
		s := open(t)
		key := delivery.Key{Kind: delivery.KindPromo, Subject: "promo_1", Recipient: "acc_1"}
		if rec, err := s.Delivery(ctx, key); err != nil || rec.Status != "" {
			t.Fatalf("a mail not sent yet = %+v, %v", rec, err)
		}
		long := string(make([]rune, 2000))
		rec, err := s.FinishDelivery(ctx, key, delivery.Sent, long, 2, now)
		if err != nil || rec.Status != delivery.Sent || rec.Attempts != 2 || len(rec.LastError) != 1000 {
			t.Fatalf("finish = %+v, %v", rec, err)
		}
		// Its end stays: a redelivered message handled twice at once keeps the first.
		if rec, err = s.FinishDelivery(ctx, key, delivery.Failed, "late", 3, now.Add(time.Second)); err != nil || rec.Status != delivery.Sent || rec.Attempts != 2 {
			t.Fatalf("a second end = %+v, %v; want the first kept", rec, err)
		}
		if rec, err = s.Delivery(ctx, key); err != nil || rec.Status != delivery.Sent || !rec.UpdatedAt.Equal(now) {
			t.Fatalf("read back = %+v, %v", rec, err)
		}
		if _, err := s.FinishDelivery(ctx, key, "sending", "", 1, now); err == nil {
			t.Error("an end that is none was accepted")
		}
		other := delivery.Key{Kind: delivery.KindPromo, Subject: "promo_1", Recipient: "acc_2"}
		if _, err := s.FinishDelivery(ctx, other, delivery.Failed, "550 no such user", 1, now); err != nil {
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

	t.Run("ten_mailers_racing_record_one_end", func(t *testing.T) {
		s := open(t)
		key := delivery.Key{Kind: "order.confirmed", Subject: "ord_1", Recipient: "acc_1"}
		var wg sync.WaitGroup
		errs := make(chan error, 10)
		ends := make(chan delivery.Status, 10)
		for i := range 10 {
			wg.Go(func() {
				rec, err := s.FinishDelivery(ctx, key, []delivery.Status{delivery.Sent, delivery.Skipped}[i%2], "", 1, now)
				if err != nil {
					errs <- err
					return
				}
				ends <- rec.Status
			})
		}
		wg.Wait()
		close(errs)
		close(ends)
		for err := range errs {
			t.Errorf("finish: %v", err)
		}
		stored, err := s.Delivery(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		for end := range ends {
			if end != stored.Status {
				t.Errorf("a racer was told %q, the store kept %q", end, stored.Status)
			}
		}
	})

	t.Run("a_fan_out_reaches_each_opted_in_account_once_and_resumes", func(t *testing.T) {
		s := open(t)
		var optedIn []string
		for i := range 25 {
			a := account.Account{ID: fmt.Sprintf("acc_%03d", i), Email: fmt.Sprintf("a%d@example.com", i), Name: "A",
				Roles: []account.Role{account.RoleShopper}, PasswordHash: "$argon2id$x", CreatedAt: now, PromoEmails: i%5 != 0, EmailVerified: true}
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
			if _, err := s.FinishDelivery(ctx, key, []delivery.Status{delivery.Sent, delivery.Failed, delivery.Skipped}[i], "", 1, now); err != nil {
				t.Fatal(err)
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
