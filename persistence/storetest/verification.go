package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"phoneshop/account"
	"phoneshop/notify/outbox"
)

// Verification: an account signed up unverified is written with its first
// verification mail's event; a resend queues one event per resendAfter however
// many ask at once; a verified address gets none; campaign fan-outs reach only
// verified addresses.
func Verification(t *testing.T, open Open) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	s := open(t)
	create := func(t *testing.T, id string, verified, promo bool) {
		t.Helper()
		if err := s.CreateAccount(ctx, account.Account{ID: id, Email: id + "@example.com", Name: id, Roles: []account.Role{account.RoleShopper},
			PasswordHash: "$argon2id$x", CreatedAt: now, PromoEmails: promo, EmailVerified: verified}); err != nil {
			t.Fatal(err)
		}
	}
	verifications := func(t *testing.T) map[string]int {
		t.Helper()
		events, err := s.UnpublishedEvents(ctx, 1000)
		if err != nil {
			t.Fatal(err)
		}
		n := map[string]int{}
		for _, e := range events {
			if e.RoutingKey == outbox.AccountVerification {
				p, err := decodeVerification(e)
				if err != nil {
					t.Fatal(err)
				}
				n[p.AccountID]++
			}
		}
		return n
	}

	create(t, "acc_new", false, true)
	create(t, "acc_admin", true, true)
	if got := verifications(t); got["acc_new"] != 1 || got["acc_admin"] != 0 {
		t.Fatalf("verification events after sign-ups = %v; want one for the unverified account, none for the verified", got)
	}
	if a, err := s.AccountByID(ctx, "acc_new"); err != nil || a.EmailVerified {
		t.Fatalf("new account = %+v, %v; want it unverified", a, err)
	}

	t.Run("a_resend_waits_and_racers_queue_one", func(t *testing.T) {
		wait, err := s.RequestVerification(ctx, "acc_new", now.Add(time.Minute), 5*time.Minute)
		if err != nil || wait != 4*time.Minute {
			t.Fatalf("resend a minute after sign-up = %s, %v; want to wait 4m", wait, err)
		}
		later := now.Add(10 * time.Minute)
		var wg sync.WaitGroup
		waits := make([]time.Duration, 10)
		errs := make([]error, 10)
		for i := range waits {
			wg.Go(func() { waits[i], errs[i] = s.RequestVerification(ctx, "acc_new", later, 5*time.Minute) })
		}
		wg.Wait()
		queued := 0
		for i := range waits {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if waits[i] == 0 {
				queued++
			}
		}
		if queued != 1 || verifications(t)["acc_new"] != 2 {
			t.Fatalf("10 resends at once: %d queued, %d events in all; want 1 queued, 2 events", queued, verifications(t)["acc_new"])
		}
	})
	t.Run("verified_or_unknown_is_refused", func(t *testing.T) {
		if _, err := s.RequestVerification(ctx, "acc_admin", now.Add(time.Hour), time.Minute); !errors.Is(err, account.ErrAlreadyVerified) {
			t.Errorf("resend to a verified address: %v, want account.ErrAlreadyVerified", err)
		}
		if _, err := s.RequestVerification(ctx, "acc_nobody", now, time.Minute); !errors.Is(err, account.ErrNotFound) {
			t.Errorf("resend to no account: %v, want account.ErrNotFound", err)
		}
	})
	t.Run("verifying_is_stored", func(t *testing.T) {
		a, err := s.UpdateAccount(ctx, "acc_new", func(a *account.Account) error { a.EmailVerified = true; return nil })
		if err != nil || !a.EmailVerified {
			t.Fatalf("verify: %+v, %v", a, err)
		}
		if a, err := s.AccountByEmail(ctx, "acc_new@example.com"); err != nil || !a.EmailVerified {
			t.Fatalf("read back: %+v, %v; want verified", a, err)
		}
		if _, err := s.RequestVerification(ctx, "acc_new", now.Add(time.Hour), time.Minute); !errors.Is(err, account.ErrAlreadyVerified) {
			t.Errorf("resend after verifying: %v, want account.ErrAlreadyVerified", err)
		}
	})
	t.Run("fan_outs_reach_verified_opted_in_accounts_only", func(t *testing.T) {
		create(t, "acc_unverified_promo", false, true)
		create(t, "acc_verified_no_promo", true, false)
		recipients, done, err := s.FanOutPage(ctx, "promo_v", 100, now)
		if err != nil || !done {
			t.Fatalf("a page longer than the accounts: done %v, %v; want done", done, err)
		}
		events, err := s.UnpublishedEvents(ctx, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var to []string
		for _, e := range events {
			if e.RoutingKey == outbox.PromoEmail {
				p, err := decodePromoEmail(e)
				if err != nil {
					t.Fatal(err)
				}
				to = append(to, p.AccountID)
			}
		}
		if recipients != 2 || len(to) != 2 || !((to[0] == "acc_admin" && to[1] == "acc_new") || (to[0] == "acc_new" && to[1] == "acc_admin")) {
			t.Fatalf("fan-out reached %d: %v; want acc_admin and acc_new (verified and opted in)", recipients, to)
		}
	})
}

func decodeVerification(e outbox.Event) (p outbox.AccountVerificationPayload, err error) {
	err = json.Unmarshal(e.Payload, &p)
	return p, err
}

func decodePromoEmail(e outbox.Event) (p outbox.PromoEmailPayload, err error) {
	err = json.Unmarshal(e.Payload, &p)
	return p, err
}
