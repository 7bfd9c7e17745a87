package cache_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"phoneshop/account"
	"phoneshop/persistence/cache"
)

// fakeClock is a settable now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type sessionsFixture struct {
	inner   *fakeAccounts
	cached  *cache.Sessions
	clock   *fakeClock
	reg     *prometheus.Registry
	account account.Account
	session account.Session
}

func newSessionsFixture(t *testing.T, c cache.Cache) *sessionsFixture {
	t.Helper()
	ctx := context.Background()
	clock := &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	inner := newFakeAccounts(clock.Now)
	reg := prometheus.NewRegistry()
	f := &sessionsFixture{
		inner: inner, clock: clock, reg: reg,
		cached: cache.NewSessions(inner, c, cache.SessionsOptions{Metrics: cache.NewMetrics(reg), Now: clock.Now}),
		account: account.Account{ID: "acc_1", Email: "ada@example.com", Name: "Ada", Roles: []account.Role{account.RoleShopper},
			PasswordHash: "$argon2id$v=19$m=65536,t=1,p=2$c2FsdA$aGFzaA", CreatedAt: clock.Now().Add(-time.Hour)},
		session: account.Session{TokenHash: account.HashToken("token-1"), AccountID: "acc_1",
			ExpiresAt: clock.Now().Add(24 * time.Hour), CreatedAt: clock.Now()},
	}
	if err := f.cached.CreateAccount(ctx, f.account); err != nil {
		t.Fatal(err)
	}
	if err := f.cached.CreateSession(ctx, f.session); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *sessionsFixture) wantSession(t *testing.T) {
	t.Helper()
	got, err := f.cached.SessionByTokenHash(context.Background(), f.session.TokenHash)
	if err != nil {
		t.Fatalf("SessionByTokenHash: %v", err)
	}
	if diff := cmp.Diff(f.session, got); diff != "" {
		t.Fatalf("session (-want +got):\n%s", diff)
	}
}

func (f *sessionsFixture) wantNoSession(t *testing.T) {
	t.Helper()
	if got, err := f.cached.SessionByTokenHash(context.Background(), f.session.TokenHash); !errors.Is(err, account.ErrSessionNotFound) {
		t.Fatalf("SessionByTokenHash = %+v, %v; want account.ErrSessionNotFound", got, err)
	}
}

func TestSessions(t *testing.T) {
	ctx := context.Background()

	t.Run("session_and_account_lookups_are_cached", func(t *testing.T) {
		f := newSessionsFixture(t, cache.NewMemory(0))
		for range 3 {
			f.wantSession(t)
			got, err := f.cached.AccountByID(ctx, "acc_1")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(f.account, got); diff != "" {
				t.Fatalf("account (-want +got):\n%s", diff)
			}
		}
		if s, a := f.inner.sessionLookups.Load(), f.inner.accountLookups.Load(); s != 1 || a != 1 {
			t.Fatalf("store lookups: sessions %d, accounts %d; want 1 and 1", s, a)
		}
		if hits := requests(t, f.reg, "session", "hit"); hits != 4 {
			t.Fatalf("session cache hits = %v, want 4", hits)
		}
	})

	t.Run("session_not_found_is_not_cached", func(t *testing.T) {
		f := newSessionsFixture(t, cache.NewMemory(0))
		for range 2 {
			if _, err := f.cached.SessionByTokenHash(ctx, "unknown"); !errors.Is(err, account.ErrSessionNotFound) {
				t.Fatalf("err = %v, want account.ErrSessionNotFound", err)
			}
		}
		if n := f.inner.sessionLookups.Load(); n != 2 {
			t.Fatalf("store lookups = %d, want 2", n)
		}
		// A login right after a miss is seen at once.
		late := account.Session{TokenHash: "unknown", AccountID: "acc_1", ExpiresAt: f.clock.Now().Add(time.Hour)}
		if err := f.cached.CreateSession(ctx, late); err != nil {
			t.Fatal(err)
		}
		if _, err := f.cached.SessionByTokenHash(ctx, "unknown"); err != nil {
			t.Fatalf("new session after a cached miss: %v", err)
		}
	})

	t.Run("account_not_found_is_not_cached", func(t *testing.T) {
		f := newSessionsFixture(t, cache.NewMemory(0))
		for range 2 {
			if _, err := f.cached.AccountByID(ctx, "acc_404"); !errors.Is(err, account.ErrNotFound) {
				t.Fatalf("err = %v, want account.ErrNotFound", err)
			}
		}
		if n := f.inner.accountLookups.Load(); n != 2 {
			t.Fatalf("store lookups = %d, want 2", n)
		}
	})

	t.Run("logout_removes_the_cached_session", func(t *testing.T) {
		f := newSessionsFixture(t, cache.NewMemory(0))
		f.wantSession(t)
		if err := f.cached.DeleteSession(ctx, f.session.TokenHash); err != nil {
			t.Fatalf("DeleteSession: %v", err)
		}
		f.wantNoSession(t)
	})

	t.Run("logout_racing_a_lookup_that_fills_late_is_effective", func(t *testing.T) {
		// The lookup reads the session from the store, the logout completes, and
		// only then does the lookup write its entry.
		mem := cache.NewMemory(0)
		gated := &gatedSetCache{Memory: mem, release: make(chan struct{}), entered: make(chan struct{}, 1)}
		f := newSessionsFixture(t, gated)
		done := make(chan error, 1)
		go func() {
			_, err := f.cached.SessionByTokenHash(ctx, f.session.TokenHash)
			done <- err
		}()
		<-gated.entered // the lookup has the session and is about to cache it
		other := cache.NewSessions(f.inner, mem, cache.SessionsOptions{Now: f.clock.Now})
		if err := other.DeleteSession(ctx, f.session.TokenHash); err != nil {
			t.Fatal(err)
		}
		close(gated.release)
		if err := <-done; err != nil {
			t.Fatalf("lookup that started before the logout: %v", err)
		}
		f.wantNoSession(t)
	})

	t.Run("expired_session_is_not_served_from_the_cache", func(t *testing.T) {
		f := newSessionsFixture(t, cache.NewMemory(0))
		f.session.ExpiresAt = f.clock.Now().Add(30 * time.Second)
		if err := f.inner.CreateSession(ctx, f.session); err != nil {
			t.Fatal(err)
		}
		f.wantSession(t)
		f.clock.Advance(31 * time.Second)
		f.wantNoSession(t)
		if n := f.inner.sessionLookups.Load(); n != 2 {
			t.Fatalf("store lookups = %d, want 2 (the expired entry is not served)", n)
		}
	})

	t.Run("lookups_fall_back_to_the_store_when_the_cache_fails", func(t *testing.T) {
		f := newSessionsFixture(t, failingCache{})
		for range 3 {
			f.wantSession(t)
		}
		if n := f.inner.sessionLookups.Load(); n != 3 {
			t.Fatalf("store lookups = %d, want 3", n)
		}
		if err := f.cached.DeleteSession(ctx, f.session.TokenHash); err != nil {
			t.Fatalf("logout failed because of the cache: %v", err)
		}
		f.wantNoSession(t)
		if errs := requests(t, f.reg, "session", "error"); errs != 4 {
			t.Fatalf("error results = %v, want 4", errs)
		}
	})

	t.Run("invalidate_sends_the_next_lookup_to_the_store", func(t *testing.T) {
		f := newSessionsFixture(t, cache.NewMemory(0))
		f.wantSession(t)
		if err := f.cached.Invalidate(ctx); err != nil {
			t.Fatal(err)
		}
		f.wantSession(t)
		if n := f.inner.sessionLookups.Load(); n != 2 {
			t.Fatalf("store lookups = %d, want 2", n)
		}
	})
}

// gatedSetCache holds the first Set of a session token entry until released.
type gatedSetCache struct {
	*cache.Memory
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (g *gatedSetCache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if containsToken(key) {
		g.once.Do(func() {
			g.entered <- struct{}{}
			<-g.release
		})
	}
	return g.Memory.Set(ctx, key, value, ttl)
}

func containsToken(key string) bool { return strings.Contains(key, ":token:") }
