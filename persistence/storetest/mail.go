package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"phoneshop/account"
	"phoneshop/notify/delivery"
	"phoneshop/notify/outbox"
)

// Mail: deliveries guard each mail (claimed before it is sent, by one claimer of
// many racing; a temporary failure recorded with its next attempt; an end
// recorded under the claim and never changed after; a claim whose mailer died
// taken over once its lease ran out); a campaign's fan-out writes one promo.email
// event per opted-in account, page by page, resumably; mailers' reports of what
// they hold add up per queue.
func Mail(t *testing.T, open Open) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	claim := func(owner string, at time.Time) delivery.Claim {
		return delivery.Claim{Owner: owner, Now: at, Lease: time.Minute}
	}

	t.Run("a_delivery_is_claimed_then_ends_once", func(t *testing.T) {
		s := open(t)
		key := delivery.Key{Kind: delivery.KindPromo, Subject: "promo_1", Recipient: "acc_1"}
		if rec, err := s.Delivery(ctx, key); err != nil || rec.Status != "" {
			t.Fatalf("a mail not claimed yet = %+v, %v", rec, err)
		}
		rec, claimed, err := s.ClaimDelivery(ctx, key, claim("a", now))
		want := delivery.Record{Key: key, Status: delivery.Sending, Attempts: 1, UpdatedAt: now, Owner: "a",
			LeaseUntil: now.Add(time.Minute), FirstAttemptAt: now}
		if err != nil || !claimed {
			t.Fatalf("first claim = %+v, %v, %v", rec, claimed, err)
		}
		if diff := cmp.Diff(want, rec); diff != "" {
			t.Fatalf("claimed (-want +got):\n%s", diff)
		}
		// A second copy of the message meets the claim.
		if got, claimed, err := s.ClaimDelivery(ctx, key, claim("b", now.Add(time.Second))); err != nil || claimed || got.Owner != "a" {
			t.Fatalf("a second claim = %+v, %v, %v; want a's claim", got, claimed, err)
		}
		if _, err := s.FinishDelivery(ctx, key, "b", delivery.Sent, "", now); !errors.Is(err, delivery.ErrClaimLost) {
			t.Fatalf("finish under b's name = %v, want ErrClaimLost", err)
		}
		long := string(make([]rune, 2000))
		rec, err = s.FinishDelivery(ctx, key, "a", delivery.Sent, long, now.Add(2*time.Second))
		if err != nil || rec.Status != delivery.Sent || rec.Attempts != 1 || len(rec.LastError) != 1000 || rec.Owner != "" {
			t.Fatalf("finish = %+v, %v", rec, err)
		}
		// Its end stays: a late claim or finish changes nothing.
		if got, claimed, err := s.ClaimDelivery(ctx, key, claim("c", now.Add(time.Hour))); err != nil || claimed || got.Status != delivery.Sent {
			t.Fatalf("a claim after the end = %+v, %v, %v", got, claimed, err)
		}
		if got, err := s.FinishDelivery(ctx, key, "a", delivery.Failed, "late", now.Add(3*time.Second)); !errors.Is(err, delivery.ErrClaimLost) || got.Status != delivery.Sent {
			t.Fatalf("a second end = %+v, %v; want the first kept", got, err)
		}
		if rec, err = s.Delivery(ctx, key); err != nil || rec.Status != delivery.Sent || !rec.UpdatedAt.Equal(now.Add(2*time.Second)) {
			t.Fatalf("read back = %+v, %v", rec, err)
		}
		if _, err := s.FinishDelivery(ctx, key, "a", delivery.Sending, "", now); err == nil {
			t.Error("an end that is none was accepted")
		}
		other := delivery.Key{Kind: delivery.KindPromo, Subject: "promo_1", Recipient: "acc_2"}
		if _, _, err := s.ClaimDelivery(ctx, other, claim("d", now)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.FinishDelivery(ctx, other, "d", delivery.Failed, "550 no such user", now); err != nil {
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

	t.Run("a_temporary_failure_waits_for_its_next_attempt", func(t *testing.T) {
		s := open(t)
		key := delivery.Key{Kind: "order.confirmed", Subject: "ord_1", Recipient: "acc_1"}
		if _, _, err := s.ClaimDelivery(ctx, key, claim("a", now)); err != nil {
			t.Fatal(err)
		}
		next := now.Add(10 * time.Minute)
		rec, err := s.RetryDelivery(ctx, key, "a", "dial tcp: connection refused", now.Add(time.Second), next)
		if err != nil || rec.Status != delivery.Retrying || rec.Owner != "" || !rec.NextAttemptAt.Equal(next) ||
			rec.LastError != "dial tcp: connection refused" || rec.Attempts != 1 {
			t.Fatalf("retry = %+v, %v", rec, err)
		}
		if _, err := s.RetryDelivery(ctx, key, "a", "again", now, next); !errors.Is(err, delivery.ErrClaimLost) {
			t.Fatalf("a retry without the claim = %v, want ErrClaimLost", err)
		}
		// Not due yet: not claimed, and the record says when.
		if got, claimed, err := s.ClaimDelivery(ctx, key, claim("b", next.Add(-time.Second))); err != nil || claimed || !got.NextAttemptAt.Equal(next) {
			t.Fatalf("an early claim = %+v, %v, %v", got, claimed, err)
		}
		got, claimed, err := s.ClaimDelivery(ctx, key, claim("b", next))
		if err != nil || !claimed || got.Attempts != 2 || !got.FirstAttemptAt.Equal(now) || got.LastError != "dial tcp: connection refused" {
			t.Fatalf("the due claim = %+v, %v, %v; want attempt 2, first attempt kept", got, claimed, err)
		}
	})

	t.Run("a_claim_whose_lease_ran_out_is_taken_over", func(t *testing.T) {
		s := open(t)
		key := delivery.Key{Kind: "order.shipped", Subject: "ord_1", Recipient: "acc_1"}
		if _, _, err := s.ClaimDelivery(ctx, key, claim("dead", now)); err != nil {
			t.Fatal(err)
		}
		got, claimed, err := s.ClaimDelivery(ctx, key, claim("alive", now.Add(time.Minute+time.Microsecond)))
		if err != nil || !claimed || got.Attempts != 2 || got.Owner != "alive" {
			t.Fatalf("take-over = %+v, %v, %v", got, claimed, err)
		}
		if _, err := s.FinishDelivery(ctx, key, "dead", delivery.Sent, "", now.Add(2*time.Minute)); !errors.Is(err, delivery.ErrClaimLost) {
			t.Fatalf("the dead claim's finish = %v, want ErrClaimLost", err)
		}
		if rec, err := s.FinishDelivery(ctx, key, "alive", delivery.Sent, "", now.Add(2*time.Minute)); err != nil || rec.Status != delivery.Sent {
			t.Fatalf("finish = %+v, %v", rec, err)
		}
	})

	t.Run("a_failed_delivery_reopens_only_for_a_later_redrive", func(t *testing.T) {
		s := open(t)
		key := delivery.Key{Kind: delivery.KindPromo, Subject: "promo_r", Recipient: "acc_1"}
		if _, _, err := s.ClaimDelivery(ctx, key, claim("a", now)); err != nil {
			t.Fatal(err)
		}
		failedAt := now.Add(time.Second)
		if _, err := s.FinishDelivery(ctx, key, "a", delivery.Failed, "550", failedAt); err != nil {
			t.Fatal(err)
		}
		stale := claim("b", now.Add(time.Hour))
		stale.ReopenFailedBefore = failedAt // redriven before (or as) it failed
		if got, claimed, err := s.ClaimDelivery(ctx, key, stale); err != nil || claimed || got.Status != delivery.Failed {
			t.Fatalf("a claim of a copy redriven before the failure = %+v, %v, %v", got, claimed, err)
		}
		later := claim("c", now.Add(time.Hour))
		later.ReopenFailedBefore = failedAt.Add(time.Microsecond)
		got, claimed, err := s.ClaimDelivery(ctx, key, later)
		if err != nil || !claimed || got.Attempts != 2 || !got.FirstAttemptAt.Equal(later.Now) {
			t.Fatalf("a claim of a copy redriven after the failure = %+v, %v, %v; want attempt 2, the give-up clock restarted", got, claimed, err)
		}
	})

	t.Run("twenty_claimers_racing_one_claims", func(t *testing.T) {
		s := open(t)
		key := delivery.Key{Kind: "order.confirmed", Subject: "ord_race", Recipient: "acc_1"}
		// Half race for a fresh delivery, then half for it once its first
		// attempt failed and is due again.
		race := func(at time.Time) (winners []string) {
			var wg sync.WaitGroup
			var mu sync.Mutex
			for i := range 10 {
				wg.Go(func() {
					owner := fmt.Sprintf("m%d", i)
					_, claimed, err := s.ClaimDelivery(ctx, key, claim(owner, at))
					if err != nil {
						t.Errorf("claim: %v", err)
						return
					}
					if claimed {
						mu.Lock()
						winners = append(winners, owner)
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			return winners
		}
		first := race(now)
		if len(first) != 1 {
			t.Fatalf("%d claimers won a fresh delivery: %v", len(first), first)
		}
		if _, err := s.RetryDelivery(ctx, key, first[0], "451", now, now.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		second := race(now.Add(time.Second))
		if len(second) != 1 {
			t.Fatalf("%d claimers won the retry: %v", len(second), second)
		}
		if rec, err := s.Delivery(ctx, key); err != nil || rec.Attempts != 2 || rec.Owner != second[0] {
			t.Fatalf("stored = %+v, %v", rec, err)
		}
	})

	t.Run("mailers_reports_add_up_per_queue_while_fresh", func(t *testing.T) {
		s := open(t)
		report := func(id string, counts map[string]int64, at time.Time) {
			t.Helper()
			if err := s.ReportInFlight(ctx, id, counts, at, at.Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		report("m1", map[string]int64{"q.a": 3, "q.b": 0}, now)
		report("m2", map[string]int64{"q.a": 2, "q.b": 7}, now)
		report("m1", map[string]int64{"q.a": 4, "q.b": 1}, now.Add(time.Second)) // replaces m1's first
		report("gone", map[string]int64{"q.a": 100}, now.Add(-time.Minute))
		got, err := s.InFlight(ctx, now.Add(-15*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]int64{"q.a": 6, "q.b": 8}, got); diff != "" {
			t.Errorf("in flight (-want +got):\n%s", diff)
		}
		if err := s.ForgetMailer(ctx, "m2"); err != nil {
			t.Fatal(err)
		}
		// A report two hours on forgets what was not refreshed within the hour.
		report("m3", map[string]int64{"q.a": 1}, now.Add(2*time.Hour))
		got, err = s.InFlight(ctx, now.Add(-2*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]int64{"q.a": 1}, got); diff != "" {
			t.Errorf("after m2 stopped and an hour passed (-want +got):\n%s", diff)
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
			if _, _, err := s.ClaimDelivery(ctx, key, claim("m", now)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.FinishDelivery(ctx, key, "m", []delivery.Status{delivery.Sent, delivery.Failed, delivery.Skipped}[i], "", now); err != nil {
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
