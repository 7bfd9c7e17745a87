package cache_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"phoneshop/account"
	"phoneshop/catalog"
	"phoneshop/persistence/cache"
)

// fakeNetwork joins fake buses as Redis pub/sub joins processes: a message
// published on one reaches every other one that is connected, and none that is
// not.
type fakeNetwork struct {
	mu    sync.Mutex
	buses []*fakeBus
}

type fakeBus struct {
	net       *fakeNetwork
	handlers  cache.Handlers
	connected atomic.Bool
	published atomic.Int64 // messages published through this bus
}

var errBusDown = errors.New("fake bus: not connected")

func (n *fakeNetwork) join() *fakeBus {
	b := &fakeBus{net: n}
	b.connected.Store(true)
	n.mu.Lock()
	n.buses = append(n.buses, b)
	n.mu.Unlock()
	return b
}

func (b *fakeBus) Publish(_ context.Context, topic, key string) error {
	b.published.Add(1)
	b.handlers.Deliver(topic, key)
	if !b.connected.Load() {
		return errBusDown
	}
	b.net.mu.Lock()
	others := slices.Clone(b.net.buses)
	b.net.mu.Unlock()
	for _, o := range others {
		if o != b && o.connected.Load() {
			o.handlers.Deliver(topic, key)
		}
	}
	return nil
}

func (b *fakeBus) Announce(ctx context.Context, topic, key string) error {
	return b.Publish(ctx, topic, key)
}

func (b *fakeBus) Subscribe(topic string, handle func(string)) { b.handlers.Add(topic, handle) }
func (b *fakeBus) Healthy() bool                               { return b.connected.Load() }

// disconnect and reconnect do what persistence/redis's bus does when its
// subscription is lost and when it is confirmed again.
func (b *fakeBus) disconnect() { b.connected.Store(false); b.handlers.ForgetAll() }
func (b *fakeBus) reconnect()  { b.handlers.ForgetAll(); b.connected.Store(true) }

// edgePair is two processes' Sessions over one cache and one store, each with a
// bus of its own on one network.
type edgePair struct {
	store      *fakeAccounts
	clock      *fakeClock
	a, b       *cache.Sessions
	busA, busB *fakeBus
	regB       *prometheus.Registry
	account    account.Account
	session    account.Session
}

func newEdgePair(t *testing.T, store account.Store) *edgePair {
	t.Helper()
	ctx := context.Background()
	clock := &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	fake := newFakeAccounts(clock.Now)
	if store == nil {
		store = fake
	}
	shared := cache.NewMemory(0) // the Redis both edges share
	var net fakeNetwork
	p := &edgePair{store: fake, clock: clock, busA: net.join(), busB: net.join(), regB: prometheus.NewRegistry(),
		account: account.Account{ID: "acc_1", Email: "ada@example.com", Name: "Ada", Roles: []account.Role{account.RoleShopper}},
		session: account.Session{TokenHash: account.HashToken("token-1"), AccountID: "acc_1",
			ExpiresAt: clock.Now().Add(24 * time.Hour), CreatedAt: clock.Now()}}
	p.a = cache.NewSessions(store, shared, cache.SessionsOptions{Bus: p.busA, Now: clock.Now})
	p.b = cache.NewSessions(store, shared, cache.SessionsOptions{Bus: p.busB, Now: clock.Now, Metrics: cache.NewMetrics(p.regB)})
	if err := fake.CreateAccount(ctx, p.account); err != nil {
		t.Fatal(err)
	}
	if err := fake.CreateSession(ctx, p.session); err != nil {
		t.Fatal(err)
	}
	return p
}

// authenticate runs s's SessionAccount for the pair's token.
func (p *edgePair) authenticate(t *testing.T, s *cache.Sessions) (account.Account, error) {
	t.Helper()
	sess, a, err := s.SessionAccount(context.Background(), p.session.TokenHash)
	if err == nil && sess.TokenHash != p.session.TokenHash {
		t.Fatalf("SessionAccount returned the session of %s", sess.TokenHash)
	}
	return a, err
}

func (p *edgePair) wantAccount(t *testing.T, s *cache.Sessions, roles ...account.Role) {
	t.Helper()
	a, err := p.authenticate(t, s)
	if err != nil {
		t.Fatalf("SessionAccount: %v", err)
	}
	if diff := cmp.Diff(roles, a.Roles); diff != "" {
		t.Fatalf("roles (-want +got):\n%s", diff)
	}
}

func (p *edgePair) wantRefused(t *testing.T, s *cache.Sessions) {
	t.Helper()
	if a, err := p.authenticate(t, s); !errors.Is(err, account.ErrSessionNotFound) {
		t.Fatalf("SessionAccount = %+v, %v; want account.ErrSessionNotFound", a, err)
	}
}

// TestAnUpdateThatChangesNothingRevokesNothing: a revocation reaches every process
// and waits for them, so only an update that changes what the store keeps sends one.
func TestAnUpdateThatChangesNothingRevokesNothing(t *testing.T) {
	ctx := context.Background()
	p := newEdgePair(t, nil)
	p.wantAccount(t, p.a, account.RoleShopper)
	set := func(promo bool, roles ...account.Role) {
		t.Helper()
		if _, err := p.a.UpdateAccount(ctx, p.account.ID, func(a *account.Account) error {
			a.PromoEmails = promo
			if roles != nil {
				a.Roles = roles
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name    string
		promo   bool
		roles   []account.Role
		revokes int64
	}{
		{"same_preference", false, nil, 0},
		{"preference_on", true, nil, 1},
		{"preference_on_again", true, nil, 0},
		{"same_roles", true, []account.Role{account.RoleShopper}, 0},
		{"a_role_given", true, []account.Role{account.RoleShopper, account.RoleOps}, 1},
		{"preference_off", false, nil, 1},
	}
	for _, st := range steps {
		before := p.busA.published.Load()
		set(st.promo, st.roles...)
		if got := p.busA.published.Load() - before; got != st.revokes {
			t.Errorf("%s: %d revocations published, want %d", st.name, got, st.revokes)
		}
	}
	// The last change reached the other process at once.
	p.wantAccount(t, p.b, account.RoleShopper, account.RoleOps)
}

func TestSessionsInProcess(t *testing.T) {
	ctx := context.Background()

	t.Run("authentication_is_served_in_process_after_the_first", func(t *testing.T) {
		p := newEdgePair(t, nil)
		for range 3 {
			p.wantAccount(t, p.b, account.RoleShopper)
		}
		if s, a := p.store.sessionLookups.Load(), p.store.accountLookups.Load(); s != 1 || a != 1 {
			t.Fatalf("store lookups: sessions %d, accounts %d; want 1 and 1", s, a)
		}
		if hits := requests(t, p.regB, "session", "hit"); hits != 0 {
			t.Fatalf("the cache was read %v times after the first authentication, want 0", hits)
		}
		if hits, misses := localRequests(t, p.regB, "session", "hit"), localRequests(t, p.regB, "session", "miss"); hits != 2 || misses != 1 {
			t.Fatalf("in-process hits, misses = %v, %v; want 2, 1", hits, misses)
		}
	})

	t.Run("logout_on_one_edge_is_refused_on_the_other_at_once", func(t *testing.T) {
		p := newEdgePair(t, nil)
		p.wantAccount(t, p.a, account.RoleShopper)
		p.wantAccount(t, p.b, account.RoleShopper)
		if err := p.a.DeleteSession(ctx, p.session.TokenHash); err != nil {
			t.Fatal(err)
		}
		p.wantRefused(t, p.b)
		p.wantRefused(t, p.a)
	})

	t.Run("role_change_on_one_edge_shows_on_the_other_at_once", func(t *testing.T) {
		p := newEdgePair(t, nil)
		p.wantAccount(t, p.b, account.RoleShopper)
		setRoles := func(roles ...account.Role) {
			t.Helper()
			if _, err := p.a.UpdateAccount(ctx, "acc_1", func(a *account.Account) error { a.Roles = roles; return nil }); err != nil {
				t.Fatal(err)
			}
		}
		setRoles(account.RoleShopper, account.RoleOps)
		p.wantAccount(t, p.b, account.RoleShopper, account.RoleOps)
		setRoles(account.RoleShopper) // the role taken away
		p.wantAccount(t, p.b, account.RoleShopper)
	})

	t.Run("while_the_bus_is_down_the_layer_is_bypassed", func(t *testing.T) {
		p := newEdgePair(t, nil)
		p.wantAccount(t, p.b, account.RoleShopper)
		p.busB.disconnect()
		// B cannot hear the logout: only going to the cache refuses the token.
		if err := p.a.DeleteSession(ctx, p.session.TokenHash); err != nil {
			t.Fatal(err)
		}
		p.wantRefused(t, p.b)
		if n := localRequests(t, p.regB, "session", "bypass"); n != 1 {
			t.Fatalf("bypassed reads = %v, want 1", n)
		}
	})

	t.Run("entries_held_before_the_bus_went_down_are_not_served_after_it", func(t *testing.T) {
		p := newEdgePair(t, nil)
		p.wantAccount(t, p.b, account.RoleShopper)
		p.busB.disconnect()
		if _, err := p.a.UpdateAccount(ctx, "acc_1", func(a *account.Account) error {
			a.Roles = []account.Role{account.RoleShopper, account.RoleAdmin}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		p.busB.reconnect() // within the entry's life: only forgetting it shows the change
		p.wantAccount(t, p.b, account.RoleShopper, account.RoleAdmin)
	})

	t.Run("a_lookup_that_read_before_a_logout_is_not_kept", func(t *testing.T) {
		gated := &gatedAccountLookups{Store: nil, entered: make(chan struct{}), release: make(chan struct{})}
		p := newEdgePair(t, gated)
		gated.Store = p.store
		done := make(chan error, 1)
		go func() {
			_, err := p.authenticate(t, p.b)
			done <- err
		}()
		<-gated.entered // B has read the session, not yet the account
		if err := p.a.DeleteSession(ctx, p.session.TokenHash); err != nil {
			t.Fatal(err)
		}
		close(gated.release)
		if err := <-done; err != nil {
			t.Fatalf("the lookup that began before the logout: %v", err)
		}
		p.wantRefused(t, p.b)
	})

	t.Run("an_entry_lives_its_short_life", func(t *testing.T) {
		p := newEdgePair(t, nil)
		p.wantAccount(t, p.b, account.RoleShopper)
		p.clock.Advance(cache.DefaultLocalSessionTTL)
		p.wantAccount(t, p.b, account.RoleShopper)
		if misses := localRequests(t, p.regB, "session", "miss"); misses != 2 {
			t.Fatalf("in-process misses = %v, want 2 (the entry past its life is not served)", misses)
		}
	})

	t.Run("a_session_past_its_expiry_is_not_served", func(t *testing.T) {
		p := newEdgePair(t, nil)
		p.session.ExpiresAt = p.clock.Now().Add(time.Second)
		if err := p.store.CreateSession(ctx, p.session); err != nil {
			t.Fatal(err)
		}
		p.wantAccount(t, p.b, account.RoleShopper)
		p.clock.Advance(time.Second)
		p.wantRefused(t, p.b)
	})

	t.Run("without_a_bus_there_is_no_in_process_layer", func(t *testing.T) {
		f := newSessionsFixture(t, cache.NewMemory(0))
		for range 2 {
			if _, _, err := f.cached.SessionAccount(ctx, f.session.TokenHash); err != nil {
				t.Fatal(err)
			}
		}
		if hits := requests(t, f.reg, "session", "hit"); hits != 2 {
			t.Fatalf("cache hits = %v, want 2 (the second authentication's two lookups)", hits)
		}
	})
}

// gatedAccountLookups holds the first AccountByID until released.
type gatedAccountLookups struct {
	account.Store
	once             sync.Once
	entered, release chan struct{}
}

func (g *gatedAccountLookups) AccountByID(ctx context.Context, id string) (account.Account, error) {
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
	return g.Store.AccountByID(ctx, id)
}

func TestViews(t *testing.T) {
	ctx := context.Background()
	type fixture struct {
		a, b   *cache.Catalog
		busA   *fakeBus
		views  *cache.Views
		reg    *prometheus.Registry
		builds atomic.Int64
	}
	setup := func(t *testing.T, c cache.Cache) *fixture {
		t.Helper()
		var net fakeNetwork
		f := &fixture{busA: net.join(), reg: prometheus.NewRegistry()}
		f.a = cache.NewCatalog(newFakeCatalog(), c, cache.CatalogOptions{Bus: f.busA})
		f.b = cache.NewCatalog(newFakeCatalog(), c, cache.CatalogOptions{Bus: net.join()})
		f.views = cache.NewViews(f.b, cache.LocalPhones, 8, cache.NewMetrics(f.reg))
		return f
	}
	view := func(t *testing.T, f *fixture, key string) any {
		t.Helper()
		v, err := f.views.View(ctx, key, func(context.Context) (any, error) { return f.builds.Add(1), nil })
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	t.Run("a_view_is_built_once_per_generation", func(t *testing.T) {
		f := setup(t, cache.NewMemory(0))
		for range 3 {
			if v := view(t, f, "phone:pixel-9"); v != int64(1) {
				t.Fatalf("view = %v, want the first build", v)
			}
		}
		if err := f.b.Invalidate(ctx); err != nil {
			t.Fatal(err)
		}
		if v := view(t, f, "phone:pixel-9"); v != int64(2) {
			t.Fatalf("view after Invalidate = %v, want a second build", v)
		}
		if hits, misses := localRequests(t, f.reg, "phone_view", "hit"), localRequests(t, f.reg, "phone_view", "miss"); hits != 2 || misses != 2 {
			t.Fatalf("hits, misses = %v, %v; want 2, 2", hits, misses)
		}
	})

	t.Run("an_invalidation_by_another_edge_replaces_the_view_at_once", func(t *testing.T) {
		f := setup(t, cache.NewMemory(0))
		view(t, f, "phone:pixel-9")
		// A stock state changes on another process: without the bus, this one
		// would keep its generation for up to a second.
		if err := f.a.Invalidate(ctx); err != nil {
			t.Fatal(err)
		}
		if v := view(t, f, "phone:pixel-9"); v != int64(2) {
			t.Fatalf("view after another edge's Invalidate = %v, want a second build", v)
		}
	})

	t.Run("while_the_cache_fails_every_read_builds", func(t *testing.T) {
		f := setup(t, failingCache{})
		for range 3 {
			view(t, f, "phone:pixel-9")
		}
		if n := f.builds.Load(); n != 3 {
			t.Fatalf("builds = %d, want 3", n)
		}
		if n := localRequests(t, f.reg, "phone_view", "bypass"); n != 3 {
			t.Fatalf("bypassed = %v, want 3", n)
		}
	})

	t.Run("a_failed_build_is_not_held", func(t *testing.T) {
		f := setup(t, cache.NewMemory(0))
		for range 2 {
			_, err := f.views.View(ctx, "phone:nokia-3310", func(context.Context) (any, error) {
				f.builds.Add(1)
				return nil, catalog.ErrNotFound
			})
			if !errors.Is(err, catalog.ErrNotFound) {
				t.Fatalf("err = %v, want catalog.ErrNotFound", err)
			}
		}
		if n := f.builds.Load(); n != 2 {
			t.Fatalf("builds = %d, want 2", n)
		}
	})

	t.Run("views_are_bounded", func(t *testing.T) {
		f := setup(t, cache.NewMemory(0))
		for i := range 20 {
			view(t, f, "search:"+string(rune('a'+i)))
		}
		view(t, f, "search:a") // evicted by the 19 after it
		if n := f.builds.Load(); n != 21 {
			t.Fatalf("builds = %d, want 21", n)
		}
	})
}
