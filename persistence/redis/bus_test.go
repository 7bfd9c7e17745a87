package redis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"phoneshop/account"
	"phoneshop/persistence/cache"
	"phoneshop/persistence/redis"
)

// openSharedCaches opens n caches on addr under one random prefix, as n processes
// of one shop do, and deletes the prefix's keys at cleanup.
func openSharedCaches(t *testing.T, addr string, n int) []*redis.Cache {
	t.Helper()
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	prefix := "phoneshop_test_" + hex.EncodeToString(suffix) + ":"
	var caches []*redis.Cache
	for range n {
		c := redis.Open(addr, prefix, redis.Options{})
		caches = append(caches, c)
	}
	t.Cleanup(func() {
		for _, c := range caches {
			if err := c.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		}
		deletePrefix(t, addr, prefix)
	})
	return caches
}

// waitHealthy waits until every bus has its subscription confirmed.
func waitHealthy(t *testing.T, buses ...cache.Bus) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, b := range buses {
		for !b.Healthy() {
			if time.Now().After(deadline) {
				t.Fatal("a bus did not become healthy within 10s")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// recorder records the keys a topic's handler received.
type recorder struct {
	mu   sync.Mutex
	keys []string
}

func (r *recorder) handle(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = append(r.keys, key)
}

func (r *recorder) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.keys) == 0 {
		return ""
	}
	return r.keys[len(r.keys)-1]
}

func (r *recorder) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, k := range r.keys {
		if k == key {
			n++
		}
	}
	return n
}

func TestBus(t *testing.T) {
	ctx := context.Background()

	t.Run("every_process_has_handled_a_message_when_publish_returns", func(t *testing.T) {
		caches := openSharedCaches(t, testAddr(t), 3)
		var recs []*recorder
		var buses []cache.Bus
		for _, c := range caches {
			r := &recorder{}
			c.Bus().Subscribe(cache.TopicSession, r.handle)
			recs, buses = append(recs, r), append(buses, c.Bus())
		}
		waitHealthy(t, buses...)
		for i := range 50 {
			key := fmt.Sprintf("hash-%d", i)
			from := buses[i%3]
			if err := from.Publish(ctx, cache.TopicSession, key); err != nil {
				t.Fatal(err)
			}
			// No waiting: Publish returned, so every process has run its handler.
			for j, r := range recs {
				if got := r.last(); got != key {
					t.Fatalf("message %d from process %d: process %d last handled %q, want %q", i, i%3, j, got, key)
				}
			}
		}
	})

	t.Run("a_logout_is_refused_on_the_other_process_at_once", func(t *testing.T) {
		caches := openSharedCaches(t, testAddr(t), 2)
		store := newAccountStore()
		edgeA := cache.NewSessions(store, caches[0], cache.SessionsOptions{Bus: caches[0].Bus()})
		edgeB := cache.NewSessions(store, caches[1], cache.SessionsOptions{Bus: caches[1].Bus()})
		waitHealthy(t, caches[0].Bus(), caches[1].Bus())
		for i := range 20 {
			hash := fmt.Sprintf("hash-%d", i)
			if err := store.CreateSession(ctx, account.Session{TokenHash: hash, AccountID: "acc_1", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			for range 2 { // the second from the in-process layer
				if _, _, err := edgeB.SessionAccount(ctx, hash); err != nil {
					t.Fatalf("session %d on B before the logout: %v", i, err)
				}
			}
			if err := edgeA.DeleteSession(ctx, hash); err != nil {
				t.Fatal(err)
			}
			if _, _, err := edgeB.SessionAccount(ctx, hash); !errors.Is(err, account.ErrSessionNotFound) {
				t.Fatalf("session %d on B right after the logout on A: err = %v, want account.ErrSessionNotFound", i, err)
			}
		}
	})

	t.Run("a_lost_subscription_is_noticed_forgotten_and_restored", func(t *testing.T) {
		if testing.Short() {
			t.Skip("starts its own redis-server; -short skips it")
		}
		srv := startServer(t)
		caches := openSharedCaches(t, srv.addr, 1)
		bus := caches[0].Bus()
		r := &recorder{}
		bus.Subscribe(cache.TopicSession, r.handle)
		waitHealthy(t, bus)
		forgotten := r.count("") // once at the first confirmation
		raw := goredis.NewClient(&goredis.Options{Addr: srv.addr})
		defer raw.Close()
		if err := raw.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
			t.Fatal(err)
		}
		// Forgotten when lost, and again when confirmed anew.
		deadline := time.Now().Add(10 * time.Second)
		for r.count("") < forgotten+2 || !bus.Healthy() {
			if time.Now().After(deadline) {
				t.Fatalf("after the subscription was killed: %d forget-alls (want %d), healthy %v", r.count(""), forgotten+2, bus.Healthy())
			}
			time.Sleep(5 * time.Millisecond)
		}
	})

	t.Run("a_paused_server_makes_authentication_bypass_the_layer", func(t *testing.T) {
		if testing.Short() {
			t.Skip("starts its own redis-server; -short skips it")
		}
		srv := startServer(t)
		caches := openSharedCaches(t, srv.addr, 1)
		bus := caches[0].Bus()
		store := newAccountStore()
		sessions := cache.NewSessions(store, caches[0], cache.SessionsOptions{Bus: bus})
		waitHealthy(t, bus)
		if err := store.CreateSession(ctx, account.Session{TokenHash: "hash", AccountID: "acc_1", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, _, err := sessions.SessionAccount(ctx, "hash"); err != nil {
				t.Fatal(err)
			}
		}
		before := store.lookups.Load()
		srv.pause(t)
		defer srv.resume(t)
		// Silence is noticed within about a second (busSilence); allow for a loaded machine.
		deadline := time.Now().Add(5 * time.Second)
		for bus.Healthy() {
			if time.Now().After(deadline) {
				t.Fatal("the bus still says healthy 5s after the server stopped answering")
			}
			time.Sleep(5 * time.Millisecond)
		}
		if _, _, err := sessions.SessionAccount(ctx, "hash"); err != nil {
			t.Fatalf("authentication with the server paused: %v", err)
		}
		if n := store.lookups.Load() - before; n != 1 {
			t.Fatalf("store lookups with the server paused = %d, want 1: the in-process entry is not to be served", n)
		}
	})
}

// accountStore is an account.Store of one account (acc_1) and any sessions,
// counting session lookups.
type accountStore struct {
	*memoryAccounts
}

func newAccountStore() *accountStore {
	return &accountStore{memoryAccounts: newMemoryAccounts()}
}

func (s *accountStore) AccountByID(_ context.Context, id string) (account.Account, error) {
	if id != "acc_1" {
		return account.Account{}, account.ErrNotFound
	}
	return account.Account{ID: id, Email: "ada@example.com", Roles: []account.Role{account.RoleShopper}}, nil
}
