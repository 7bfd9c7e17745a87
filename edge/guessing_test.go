package edge_test

import (
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"

	"phoneshop/config"
	"phoneshop/internal/shoptest"
)

// TestGuessingFromManyAddresses: password guessing spread over many client
// addresses, behind a trusted proxy (X-Forwarded-For names each guess's address),
// at the shipped lock-out settings.
func TestGuessingFromManyAddresses(t *testing.T) {
	h := shoptest.Start(t, 1, func(c *config.Dev) { c.HTTP.TrustedProxies = []string{"127.0.0.1"} })
	shipped, _, _ := config.ParseDev(nil)
	perAddress := shipped.Settings.LoginLockoutFailures
	underAttack := shipped.Settings.LoginAccountFailures
	trickle := time.Minute / time.Duration(shipped.Settings.RateLoginAccountPerMin)
	via := func(addr string) map[string]string { return map[string]string{"X-Forwarded-For": addr} }

	t.Run("a_64_is_one_address", func(t *testing.T) {
		_, email := h.Shopper()
		statuses := map[int]int{}
		for i := range 256 {
			r := loginAs(t, h, email, "wrong password!", via(fmt.Sprintf("2001:db8:1:2::%x", i+1)))
			if i < perAddress {
				wantError(t, r, http.StatusUnauthorized, "unauthenticated")
			}
			statuses[r.Status]++
		}
		if statuses[http.StatusUnauthorized] != perAddress || statuses[http.StatusTooManyRequests] != 256-perAddress {
			t.Errorf("256 guesses from one /64 were answered %v, want %d 401 and then only 429, as from one address",
				statuses, perAddress)
		}
		// The owner, on another network, is not locked out.
		wantOK(t, loginAs(t, h, email, "a long enough password", via("2001:db8:ffff::1")), http.StatusCreated, nil)
	})

	t.Run("a_botnet_gets_a_trickle_and_the_owner_keeps_a_way_in", func(t *testing.T) {
		_, email := h.Shopper()
		// The owner logs in from home before the attack: that address is known.
		const home = "192.0.2.10"
		wantOK(t, loginAs(t, h, email, "a long enough password", via(home)), http.StatusCreated, nil)

		// Until the account has had underAttack failures, each new address guesses freely.
		bot := 0
		next := func() string { bot++; return fmt.Sprintf("198.18.%d.%d", bot/250, bot%250+1) }
		for range underAttack {
			wantError(t, loginAs(t, h, email, "wrong password!", via(next())), http.StatusUnauthorized, "unauthenticated")
		}
		// From then on, fresh addresses share a trickle.
		start := time.Now()
		admitted, refused := 0, 0
		for range 200 {
			r := loginAs(t, h, email, "wrong password!", via(next()))
			switch r.Status {
			case http.StatusUnauthorized:
				admitted++
			case http.StatusTooManyRequests:
				refused++
				if _, err := shoptest.RetryAfter(r); err != nil {
					t.Fatalf("429 without a usable Retry-After: %v", err)
				}
			default:
				t.Fatalf("guess answered %d, want 401 or 429: %.200s", r.Status, r.Body)
			}
		}
		// One try at once, then one per trickle interval of the time it took.
		most := 1 + int(math.Ceil(float64(time.Since(start))/float64(trickle)))
		if admitted > most {
			t.Errorf("%d of 200 guesses from fresh addresses were tried within %s, want at most %d (one per %s)",
				admitted, time.Since(start).Round(time.Millisecond), most, trickle)
		}
		if refused == 0 {
			t.Error("no guess was refused: the account is not throttled")
		}
		// The owner, from the address they logged in from before, gets straight in,
		// and a wrong password there is a 401, not a lock.
		wantOK(t, loginAs(t, h, email, "a long enough password", via(home)), http.StatusCreated, nil)
		wantError(t, loginAs(t, h, email, "wrong password!", via(home)), http.StatusUnauthorized, "unauthenticated")
		wantOK(t, loginAs(t, h, email, "a long enough password", via(home)), http.StatusCreated, nil)
		// Another account is not affected.
		_, other := h.Shopper()
		wantOK(t, loginAs(t, h, other, "a long enough password", via(next())), http.StatusCreated, nil)
	})
}

// TestRequestLimitsPerAccount: at the shipped settings, a logged-in account's
// requests (reads too), its preference changes and the unsubscribe links have
// quotas; another account or address is not affected.
func TestRequestLimitsPerAccount(t *testing.T) {
	h := shoptest.Start(t, 1, shoptest.AtShippedCost)
	shipped, _, _ := config.ParseDev(nil)
	s := shipped.Settings

	t.Run("every_request_of_an_account_counts", func(t *testing.T) {
		token, _ := h.Shopper()
		untilRefused(t, s.RateAccountBurst, s.RateAccountPerMin, http.StatusNotFound, func() shoptest.Response {
			return do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/orders/ord_000000000000000000000000", Token: token})
		})
		other, _ := h.Shopper()
		wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/me", Token: other}), http.StatusOK, nil)
	})

	t.Run("preference_changes", func(t *testing.T) {
		token, _ := h.Shopper()
		on := false
		untilRefused(t, s.RatePreferencesBurst, s.RatePreferencesPerMin, http.StatusOK, func() shoptest.Response {
			on = !on
			return do(t, h, shoptest.Request{Method: "PUT", Path: "/api/v1/me/preferences", Token: token,
				Body: map[string]bool{"promo_emails": on}})
		})
	})

	t.Run("unsubscribe_links_per_address", func(t *testing.T) {
		a := from(t, h, "127.0.0.3")
		untilRefused(t, s.RateUnsubscribeBurst, s.RateUnsubscribePerMin, http.StatusNotFound, func() shoptest.Response {
			return do(t, a, shoptest.Request{Method: "POST", Path: "/u/not-a-token"})
		})
		wantError(t, do(t, from(t, h, "127.0.0.4"), shoptest.Request{Method: "POST", Path: "/u/not-a-token"}),
			http.StatusNotFound, "not_found")
	})
}

// untilRefused sends requests until one is refused 429, and fails unless that came
// after at least burst served ones and at most burst and what the quota refilled
// meanwhile (perMin a minute): the quota refills while the requests run, so the
// refusal need not come at the burst exactly. Every served one must be served
// with status.
func untilRefused(t *testing.T, burst, perMin, status int, send func() shoptest.Response) {
	t.Helper()
	start, served := time.Now(), 0
	for {
		r := send()
		if r.Status == http.StatusTooManyRequests {
			wantRateLimited(t, r, 0)
			break
		}
		if r.Status != status {
			t.Fatalf("request %d: status %d, want %d; body %.200s", served, r.Status, status, r.Body)
		}
		served++
		refilled := int(time.Since(start) * time.Duration(perMin) / time.Minute)
		if served > burst+refilled+1 {
			t.Fatalf("%d requests in %s were served; the quota is a burst of %d and %d a minute",
				served, time.Since(start).Round(time.Millisecond), burst, perMin)
		}
	}
	if served < burst {
		t.Errorf("refused after %d requests, under the burst of %d", served, burst)
	}
}
