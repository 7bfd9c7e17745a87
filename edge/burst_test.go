// Tests of load and abuse, at the shipped argon2id cost and the shipped limits
// (shoptest.AtShippedCost): a launch-day burst of sign-ups, logins and checkouts is
// served or politely refused, never answered 500; a hostile client gets only 401,
// 429 and 503 and cannot make the shop's memory grow with it.
package edge_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"phoneshop/config"
	"phoneshop/internal/dbtest"
	"phoneshop/internal/shoptest"
)

// burstShoppers is the launch-day crowd: this many shoppers at the same moment.
const burstShoppers = 200

// answers counts the statuses of first tries and of retries.
type answers struct {
	mu     sync.Mutex
	first  map[int]int
	any    map[int]int
	faults []string
}

func newAnswers() *answers { return &answers{first: map[int]int{}, any: map[int]int{}} }

func (a *answers) String() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return fmt.Sprintf("first tries %v, all answers %v", a.first, a.any)
}

// politely sends req until it gets want, waiting Retry-After after each 429 and
// 503. Any other answer, a 429 or 503 without a valid Retry-After, or a transport
// error is recorded as a fault.
func (a *answers) politely(h *shoptest.Harness, what string, req shoptest.Request, want int) (shoptest.Response, bool) {
	for attempt := 0; attempt < 60; attempt++ {
		r, err := h.TryDo(req)
		a.mu.Lock()
		if err != nil {
			a.faults = append(a.faults, fmt.Sprintf("%s: %v", what, err))
			a.mu.Unlock()
			return r, false
		}
		if attempt == 0 {
			a.first[r.Status]++
		}
		a.any[r.Status]++
		a.mu.Unlock()
		switch r.Status {
		case want:
			return r, true
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			wait, err := shoptest.RetryAfter(r)
			if err != nil {
				a.fault("%s: %d without a usable Retry-After: %v", what, r.Status, err)
				return r, false
			}
			time.Sleep(wait)
		default:
			a.fault("%s: %d %s", what, r.Status, r.Body)
			return r, false
		}
	}
	a.fault("%s: still refused after 60 polite retries", what)
	return shoptest.Response{}, false
}

func (a *answers) fault(format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.faults = append(a.faults, fmt.Sprintf(format, args...))
}

func (a *answers) check(t *testing.T, phase string) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	t.Logf("%s: first tries %v; all answers %v", phase, a.first, a.any)
	if a.any[http.StatusInternalServerError] > 0 {
		t.Errorf("%s: %d answers were 500", phase, a.any[http.StatusInternalServerError])
	}
	for i, f := range a.faults {
		if i == 10 {
			t.Errorf("... and %d more", len(a.faults)-10)
			break
		}
		t.Errorf("%s: %s", phase, f)
	}
}

// TestShippedBurst: 200 shoppers register at the same moment, then log in,
// then check out one unit each of a SKU stocked for all of them, at the shipped
// hashing cost and limits. Every answer is the success, or 429/503 with a
// Retry-After after which a retry succeeds; none is a 500.
func TestShippedBurst(t *testing.T) {
	shoptest.ShippedCost(t)
	for _, tc := range []struct {
		name   string
		stores shoptest.Option
	}{
		{"dev_sqlite", func(*config.Dev) {}},
		{"mariadb_redis", func(c *config.Dev) {
			c.MySQLDSN = dbtest.MySQLDSN(t)
			c.RedisAddr, c.RedisPrefix = dbtest.Redis(t)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := shoptest.Start(t, 1, shoptest.AtShippedCost, tc.stores)
			admin := h.Admin()
			sku := shoptest.SoldOutSKUs(t, 1)[0]
			h.SetStock(admin, sku, burstShoppers)
			const password = "launch day password"
			emails := make([]string, burstShoppers)
			tokens := make([]string, burstShoppers)
			for i := range emails {
				emails[i] = fmt.Sprintf("burst-%d-%d@example.com", time.Now().UnixNano(), i)
			}

			phase := func(name string, f func(i int, a *answers)) {
				a := newAnswers()
				start := time.Now()
				var wg sync.WaitGroup
				gate := make(chan struct{})
				for i := range burstShoppers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-gate
						f(i, a)
					}()
				}
				close(gate)
				wg.Wait()
				t.Logf("%s of %d shoppers took %s", name, burstShoppers, time.Since(start).Round(time.Millisecond))
				a.check(t, name)
			}
			phase("register", func(i int, a *answers) {
				a.politely(h, "register "+emails[i], shoptest.Request{Method: "POST", Path: "/api/v1/accounts",
					Body: map[string]string{"email": emails[i], "password": password, "name": "Launch Shopper"}}, http.StatusCreated)
			})
			phase("login", func(i int, a *answers) {
				r, ok := a.politely(h, "login "+emails[i], shoptest.Request{Method: "POST", Path: "/api/v1/sessions",
					Body: map[string]string{"email": emails[i], "password": password}}, http.StatusCreated)
				if ok {
					tokens[i] = r.Map(t)["token"].(string)
				}
			})
			if t.Failed() {
				return
			}
			phase("checkout", func(i int, a *answers) {
				if _, ok := a.politely(h, "cart", shoptest.Request{Method: "PUT", Path: "/api/v1/cart/items/" + sku,
					Token: tokens[i], Body: map[string]int{"quantity": 1}}, http.StatusOK); !ok {
					return
				}
				a.politely(h, "checkout", shoptest.Request{Method: "POST", Path: "/api/v1/orders", Token: tokens[i],
					Headers: map[string]string{"Idempotency-Key": "launch-" + strconv.Itoa(i)},
					Body:    shoptest.Address()}, http.StatusCreated)
			})
			if l := h.StockLevel(admin, sku); l.Sold != burstShoppers || l.Available != 0 {
				t.Errorf("after %d checkouts of one unit: %+v", burstShoppers, l)
			}
		})
	}
}

// TestShippedHostileLogins: 1,000 concurrent logins of accounts that do not
// exist, at the shipped cost. Only 401, 429 and 503 with Retry-After come back,
// /readyz answers 200 throughout, and the process's resident memory stays bounded:
// hashing runs in a pool, not once per request (1,000 hashes at once would want
// about 19 GB).
func TestShippedHostileLogins(t *testing.T) {
	shoptest.ShippedCost(t)
	h := shoptest.Start(t, 1, shoptest.AtShippedCost)
	const attackers = 1000
	// Warm the pool's estimate of a hash with one login, then measure from here.
	do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/sessions",
		Body: map[string]string{"email": "warm-up@example.com", "password": "not a password"}})
	baseline := residentBytes(t)

	ctx, stop := context.WithCancel(context.Background())
	var peak atomic.Int64
	var readyFailures, readyProbes atomic.Int64
	var watchers sync.WaitGroup
	watchers.Add(2)
	go func() { // resident memory, every 20 ms
		defer watchers.Done()
		for ctx.Err() == nil {
			if rss := residentBytes(t); rss > peak.Load() {
				peak.Store(rss)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	go func() { // readiness, as a load balancer would ask
		defer watchers.Done()
		// The compose health check's timeout: a slower answer is a failed check.
		probe := &http.Client{Timeout: 3 * time.Second}
		for ctx.Err() == nil {
			readyProbes.Add(1)
			resp, err := probe.Get(h.URL + "/readyz")
			if err != nil || resp.StatusCode != http.StatusOK {
				readyFailures.Add(1)
				t.Logf("/readyz during the attack: %v %v", err, resp)
			}
			if resp != nil {
				resp.Body.Close()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: attackers}}
	statuses := map[int]int{}
	var mu sync.Mutex
	var badRetryAfter atomic.Int64
	var wg sync.WaitGroup
	gate := make(chan struct{})
	start := time.Now()
	for i := range attackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			body := fmt.Sprintf(`{"email":"nobody-%d@example.com","password":"guess number %d"}`, i, i)
			resp, err := client.Post(h.URL+"/api/v1/sessions", "application/json", strings.NewReader(body))
			status := -1
			if err == nil {
				status = resp.StatusCode
				if (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) && !validRetryAfter(resp.Header.Get("Retry-After")) {
					badRetryAfter.Add(1)
				}
				resp.Body.Close()
			}
			mu.Lock()
			statuses[status]++
			mu.Unlock()
		}()
	}
	close(gate)
	wg.Wait()
	took := time.Since(start)
	stop()
	watchers.Wait()

	t.Logf("%d hostile logins in %s: %v", attackers, took.Round(time.Millisecond), statuses)
	t.Logf("resident memory: %d MiB before, %d MiB at peak (+%d MiB); /readyz probed %d times, %d failed",
		baseline>>20, peak.Load()>>20, (peak.Load()-baseline)>>20, readyProbes.Load(), readyFailures.Load())
	for status, n := range statuses {
		switch status {
		case http.StatusUnauthorized, http.StatusTooManyRequests, http.StatusServiceUnavailable:
		default:
			t.Errorf("%d answers were %d; want only 401, 429 and 503 (-1: transport error)", n, status)
		}
	}
	if n := badRetryAfter.Load(); n > 0 {
		t.Errorf("%d answers 429/503 lacked a valid Retry-After", n)
	}
	if readyFailures.Load() > 0 {
		t.Errorf("/readyz failed %d of %d times during the attack", readyFailures.Load(), readyProbes.Load())
	}
	// Two workers hash 19 MiB each; Go's collector may keep a few generations of
	// those buffers. Without a pool, 1,000 hashes would ask for ~19 GB.
	if grew := peak.Load() - baseline; grew > 512<<20 {
		t.Errorf("resident memory grew by %d MiB during the attack; want under 512 MiB", grew>>20)
	}
}

func validRetryAfter(v string) bool {
	n, err := strconv.Atoi(v)
	return err == nil && n >= 1
}

// residentBytes is this process's resident set (VmRSS), where the shop under test runs.
func residentBytes(t *testing.T) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Errorf("read resident memory: %v", err)
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Errorf("VmRSS %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Error("no VmRSS in /proc/self/status")
	return 0
}

// from returns a copy of h whose requests come from the loopback address ip
// (127.0.0.2, ...): another client address to the shop.
func from(t *testing.T, h *shoptest.Harness, ip string) *shoptest.Harness {
	t.Helper()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	other := *h
	other.Client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext}}
	return &other
}

func loginAs(t *testing.T, h *shoptest.Harness, email, password string, headers map[string]string) shoptest.Response {
	t.Helper()
	return do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/sessions", Headers: headers,
		Body: map[string]string{"email": email, "password": password}})
}

// wantRateLimited checks a 429 rate_limited with a Retry-After of about wait.
func wantRateLimited(t *testing.T, r shoptest.Response, wait time.Duration) {
	t.Helper()
	wantError(t, r, http.StatusTooManyRequests, "rate_limited")
	got, err := shoptest.RetryAfter(r)
	if err != nil {
		t.Fatal(err)
	}
	if wait > 0 && (got < wait-2*time.Second || got > wait+time.Second) {
		t.Fatalf("Retry-After %s; want about %s", got, wait)
	}
}

// TestFailedLoginLockout: the shipped rule, over HTTP. Ten failed logins in a row
// lock that address out of that account for a minute (429 with Retry-After, even
// with the right password); another address still logs in; a success clears a
// streak.
func TestFailedLoginLockout(t *testing.T) {
	h := shoptest.Start(t, 1)
	shipped, _, _ := config.ParseDev(nil)
	failures, first := shipped.Settings.LoginLockoutFailures, shipped.Settings.LoginLockout

	t.Run("ten_failures_lock_that_address_only", func(t *testing.T) {
		_, email := h.Shopper()
		for i := 1; i <= failures; i++ {
			wantError(t, loginAs(t, h, email, "wrong password!", nil), http.StatusUnauthorized, "unauthenticated")
		}
		wantRateLimited(t, loginAs(t, h, email, "a long enough password", nil), first)
		wantRateLimited(t, loginAs(t, h, email, "wrong password!", nil), first)
		other := from(t, h, "127.0.0.2")
		wantOK(t, loginAs(t, other, email, "a long enough password", nil), http.StatusCreated, nil)
		// The owner's success elsewhere does not unlock the guesser.
		wantRateLimited(t, loginAs(t, h, email, "a long enough password", nil), first)
		// Another account from the locked address is not affected.
		_, email2 := h.Shopper()
		wantOK(t, loginAs(t, h, email2, "a long enough password", nil), http.StatusCreated, nil)
	})
	t.Run("a_success_clears_the_streak", func(t *testing.T) {
		_, email := h.Shopper()
		for range failures - 1 {
			wantError(t, loginAs(t, h, email, "wrong password!", nil), http.StatusUnauthorized, "unauthenticated")
		}
		wantOK(t, loginAs(t, h, email, "a long enough password", nil), http.StatusCreated, nil)
		for range failures - 1 {
			wantError(t, loginAs(t, h, email, "wrong password!", nil), http.StatusUnauthorized, "unauthenticated")
		}
		wantOK(t, loginAs(t, h, email, "a long enough password", nil), http.StatusCreated, nil)
	})
	t.Run("unknown_accounts_are_throttled_too", func(t *testing.T) {
		for range failures {
			wantError(t, loginAs(t, h, "ghost@example.com", "wrong password!", nil), http.StatusUnauthorized, "unauthenticated")
		}
		wantRateLimited(t, loginAs(t, h, "ghost@example.com", "wrong password!", nil), first)
	})
}

// TestRateLimitPerAddress: registration, login and checkout are limited per
// client address; the address is the socket's peer, or, behind a trusted proxy,
// the last untrusted hop of X-Forwarded-For.
func TestRateLimitPerAddress(t *testing.T) {
	const burst = 3
	tight := func(c *config.Dev) {
		c.Settings.RateRegisterPerMin, c.Settings.RateRegisterBurst = 1, burst
	}
	register := func(t *testing.T, h *shoptest.Harness, xff string) shoptest.Response {
		t.Helper()
		var headers map[string]string
		if xff != "" {
			headers = map[string]string{"X-Forwarded-For": xff}
		}
		email := fmt.Sprintf("limited-%d@example.com", time.Now().UnixNano())
		return do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/accounts", Headers: headers,
			Body: map[string]string{"email": email, "password": "a long enough password", "name": "Limited"}})
	}

	t.Run("by_socket_address", func(t *testing.T) {
		h := shoptest.Start(t, 1, tight)
		for range burst {
			wantOK(t, register(t, h, "203.0.113.1"), http.StatusCreated, nil)
		}
		// Without a trusted proxy the header is the client's own word: ignored.
		wantRateLimited(t, register(t, h, "203.0.113.2"), time.Minute)
		wantOK(t, register(t, from(t, h, "127.0.0.2"), ""), http.StatusCreated, nil)
	})
	t.Run("behind_a_trusted_proxy", func(t *testing.T) {
		h := shoptest.Start(t, 1, tight, func(c *config.Dev) { c.HTTP.TrustedProxies = []string{"127.0.0.1"} })
		for range burst {
			wantOK(t, register(t, h, "198.51.100.7"), http.StatusCreated, nil)
		}
		wantRateLimited(t, register(t, h, "198.51.100.7"), time.Minute)
		wantOK(t, register(t, h, "198.51.100.8"), http.StatusCreated, nil)
		// A client that sends its own X-Forwarded-For gets it prepended to by the
		// proxy: the proxy's hop, the last one, is what counts.
		wantRateLimited(t, register(t, h, "198.51.100.9, 198.51.100.7"), time.Minute)
		// The proxy itself without a header is a client like any other.
		wantOK(t, register(t, h, ""), http.StatusCreated, nil)
	})
	t.Run("checkout_and_login_have_limits_of_their_own", func(t *testing.T) {
		h := shoptest.Start(t, 1, func(c *config.Dev) {
			c.Settings.RateLoginPerMin, c.Settings.RateLoginBurst = 1, burst
			c.Settings.RateCheckoutPerMin, c.Settings.RateCheckoutBurst = 1, 1
		})
		token, email := h.Shopper() // one login of the burst
		for range burst - 1 {
			wantOK(t, loginAs(t, h, email, "a long enough password", nil), http.StatusCreated, nil)
		}
		wantRateLimited(t, loginAs(t, h, email, "a long enough password", nil), time.Minute)
		checkout := func() shoptest.Response {
			return do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/orders", Token: token,
				Headers: map[string]string{"Idempotency-Key": "k-" + strconv.FormatInt(time.Now().UnixNano(), 10)},
				Body:    shoptest.Address()})
		}
		wantError(t, checkout(), http.StatusConflict, "conflict") // empty cart: counted all the same
		wantRateLimited(t, checkout(), time.Minute)
	})
	t.Run("a_live_change_applies_at_once", func(t *testing.T) {
		h := shoptest.Start(t, 1, tight)
		for range burst {
			wantOK(t, register(t, h, ""), http.StatusCreated, nil)
		}
		wantRateLimited(t, register(t, h, ""), time.Minute)
		if err := h.Shop.Live.Set(config.KeyRateRegisterBurst, "100"); err != nil {
			t.Fatal(err)
		}
		wantOK(t, register(t, h, ""), http.StatusCreated, nil)
	})
}
