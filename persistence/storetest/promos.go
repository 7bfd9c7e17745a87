package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"phoneshop/account"
	"phoneshop/actors/promo"
	"phoneshop/actors/snapshot"
	"phoneshop/notify/outbox"
)

// Promos: a campaign's snapshot, grant ledger and listing are written together and
// fenced; the listing filters by the status a campaign shows at a time; live and
// due campaigns are found; accounts' roles and consent are updated compare-and-set.
func Promos(t *testing.T, open Open) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	listing := func(id, stage string, starts, ends time.Time, created time.Time) promo.Listing {
		return promo.Listing{
			Snapshot: promo.Snapshot{ID: id, Stage: stage, Spec: promo.Spec{Name: "Sale " + id, PercentOff: 10,
				Brands: []string{"Apple"}, SKUs: []string{"sku-1", "sku-2"}, StartsAt: starts, EndsAt: ends,
				MaxDiscountedUnits: 50, MaxUnitsPerCustomer: 3, EmailSubject: "Subject", EmailBody: "Body"}},
			CreatedAt: created, UpdatedAt: created,
		}
	}

	t.Run("snapshot_ledger_and_listing_are_written_together_and_fenced", func(t *testing.T) {
		s := open(t)
		l := listing("promo_a", "launched", now.Add(-time.Hour), now.Add(time.Hour), now)
		l.DiscountedUnits, l.Orders = 3, 2
		grants := promo.GrantsChange{Added: grantedAt(now, map[string]int64{"ord_1": 1, "ord_2": 2})}
		activated, err := outbox.New(outbox.PromoActivated, "promo_a", map[string]string{"promo_id": "promo_a"}, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SavePromo(ctx, 0, []byte("v1"), l, grants, []outbox.Event{activated}); err != nil {
			t.Fatal(err)
		}
		staleEvent, _ := outbox.New(outbox.PromoActivated, "promo_stale", nil, now)
		if err := s.SavePromo(ctx, 0, []byte("again"), l, promo.GrantsChange{Added: grantedAt(now, map[string]int64{"ord_9": 1})}, []outbox.Event{staleEvent}); !errors.Is(err, snapshot.ErrStale) {
			t.Fatalf("a second first write: err = %v, want ErrStale", err)
		}
		// A return and a new grant of the same order in one write: both apply.
		l.DiscountedUnits, l.Orders = 5, 2
		if err := s.SavePromo(ctx, 1, []byte("v2"), l, promo.GrantsChange{
			Added: grantedAt(now, map[string]int64{"ord_1": 3}), Returned: []string{"ord_1"}}, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.SavePromo(ctx, 1, []byte("stale"), l, promo.GrantsChange{Returned: []string{"ord_2"}}, []outbox.Event{staleEvent}); !errors.Is(err, snapshot.ErrStale) {
			t.Fatalf("a stale write: err = %v, want ErrStale", err)
		}
		// Only the committed write's event is in the outbox, once.
		events, err := s.UnpublishedEvents(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]outbox.Event{activated}, events); diff != "" {
			t.Fatalf("outbox (-want +got):\n%s", diff)
		}
		snap, err := s.LoadPromo(ctx, "promo_a")
		if err != nil || snap.Version != 2 || string(snap.State) != "v2" {
			t.Fatalf("snapshot = v%d %q, %v; want v2 \"v2\"", snap.Version, snap.State, err)
		}
		grantsNow, err := grantUnits(ctx, s, "promo_a")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]int64{"ord_1": 3, "ord_2": 2}, grantsNow); diff != "" {
			t.Fatalf("grants (-want +got):\n%s", diff)
		}
		listed, err := s.ListPromos(ctx, promo.ListQuery{Now: now, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(listed) != 1 {
			t.Fatalf("listed %d campaigns, want 1", len(listed))
		}
		if diff := cmp.Diff(l, listed[0]); diff != "" {
			t.Fatalf("listing (-want +got):\n%s", diff)
		}
		if empty, err := grantUnits(ctx, s, "promo_none"); err != nil || len(empty) != 0 {
			t.Fatalf("grants of an unknown campaign = %v, %v", empty, err)
		}
	})

	t.Run("listing_by_status_at_a_time_and_paging", func(t *testing.T) {
		s := open(t)
		hour := time.Hour
		all := []promo.Listing{
			listing("promo_draft", "draft", now.Add(-hour), now.Add(hour), now.Add(1*time.Second)),
			listing("promo_scheduled", "launched", now.Add(hour), now.Add(2*hour), now.Add(2*time.Second)),
			listing("promo_active", "launched", now, now.Add(hour), now.Add(3*time.Second)),
			listing("promo_paused", "paused", now.Add(-hour), now.Add(hour), now.Add(4*time.Second)),
			listing("promo_ended", "ended", now.Add(-hour), now.Add(hour), now.Add(5*time.Second)),
			listing("promo_expired", "launched", now.Add(-2*hour), now, now.Add(6*time.Second)),
			listing("promo_paused_out", "paused", now.Add(-2*hour), now, now.Add(7*time.Second)),
		}
		for _, l := range all {
			if err := s.SavePromo(ctx, 0, []byte("x"), l, promo.GrantsChange{}, nil); err != nil {
				t.Fatal(err)
			}
		}
		ids := func(ls []promo.Listing) []string {
			var out []string
			for _, l := range ls {
				out = append(out, l.ID)
			}
			return out
		}
		for status, want := range map[promo.Status][]string{
			promo.StatusDraft:     {"promo_draft"},
			promo.StatusScheduled: {"promo_scheduled"},
			promo.StatusActive:    {"promo_active"}, // exactly at starts_at: active
			promo.StatusPaused:    {"promo_paused"},
			promo.StatusEnded:     {"promo_paused_out", "promo_expired", "promo_ended"}, // exactly at ends_at: ended
		} {
			got, err := s.ListPromos(ctx, promo.ListQuery{Status: status, Now: now, Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, ids(got)); diff != "" {
				t.Errorf("status %s (-want +got):\n%s", status, diff)
			}
			// The SQL filter and the domain's clock agree.
			for _, l := range got {
				c, err := promo.FromListing(l)
				if err != nil {
					t.Fatal(err)
				}
				if c.StatusAt(now) != status {
					t.Errorf("%s listed as %s shows %s", l.ID, status, c.StatusAt(now))
				}
			}
		}
		var seen []string
		var after *promo.ListCursor
		for page := 0; page < 10; page++ {
			got, err := s.ListPromos(ctx, promo.ListQuery{Now: now, Limit: 3, After: after})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 {
				break
			}
			seen = append(seen, ids(got)...)
			last := got[len(got)-1]
			after = &promo.ListCursor{CreatedAt: last.CreatedAt, ID: last.ID}
		}
		var newestFirst []string
		for _, l := range slices.Backward(all) {
			newestFirst = append(newestFirst, l.ID)
		}
		if diff := cmp.Diff(newestFirst, seen); diff != "" {
			t.Errorf("paging (-want +got):\n%s", diff)
		}
		if _, err := s.ListPromos(ctx, promo.ListQuery{Status: "gone", Now: now, Limit: 3}); !errors.Is(err, promo.ErrInvalid) {
			t.Errorf("unknown status: err = %v, want ErrInvalid", err)
		}

		live, err := s.LivePromos(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"promo_active", "promo_scheduled"}, sorted(ids(live))); diff != "" {
			t.Errorf("live (-want +got):\n%s", diff)
		}
		due, err := s.DuePromos(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		// Active and never activated, and launched past its end.
		if diff := cmp.Diff([]string{"promo_active", "promo_expired"}, sorted(due)); diff != "" {
			t.Errorf("due (-want +got):\n%s", diff)
		}
	})

	t.Run("twenty_role_updates_racing_lose_none", func(t *testing.T) {
		s := open(t)
		a := account.Account{ID: "acc_r", Email: "r@example.com", Name: "R", Roles: []account.Role{account.RoleShopper},
			PasswordHash: "$argon2id$x", CreatedAt: now}
		if err := s.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpdateAccount(ctx, "acc_nobody", func(*account.Account) error { return nil }); !errors.Is(err, account.ErrNotFound) {
			t.Fatalf("unknown account: err = %v, want ErrNotFound", err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := range 20 {
			wg.Go(func() {
				_, err := s.UpdateAccount(ctx, "acc_r", func(a *account.Account) error {
					a.Roles = append(a.Roles, account.Role(fmt.Sprintf("r%02d", i)))
					return nil
				})
				if err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("update: %v", err)
		}
		got, err := s.AccountByID(ctx, "acc_r")
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Roles) != 21 {
			t.Errorf("roles after 20 racing updates = %v, want shopper and 20 more", got.Roles)
		}
		updated, err := s.UpdateAccount(ctx, "acc_r", func(a *account.Account) error { a.PromoEmails = true; return nil })
		if err != nil || !updated.PromoEmails {
			t.Fatalf("consent: %+v, %v", updated, err)
		}
		if got, _ := s.AccountByEmail(ctx, "r@example.com"); !got.PromoEmails {
			t.Error("consent not stored")
		}
		refuse := errors.New("no")
		if _, err := s.UpdateAccount(ctx, "acc_r", func(a *account.Account) error { a.PromoEmails = false; return refuse }); !errors.Is(err, refuse) {
			t.Errorf("a failed update: err = %v", err)
		}
		if got, _ := s.AccountByID(ctx, "acc_r"); !got.PromoEmails {
			t.Error("a failed update changed the account")
		}
	})
}
