package redis_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"phoneshop/internal/testbin"
	"phoneshop/persistence/cache"
	"phoneshop/persistence/redis"
)

// TestBreakerIgnoresWhatSaysNothingOfTheServer: a miss, an answer about one key
// and a call its caller gave up on leave the breaker closed.
func TestBreakerIgnoresWhatSaysNothingOfTheServer(t *testing.T) {
	addr := testAddr(t)
	ctx := context.Background()
	c := openTestCache(t, addr, redis.Options{})

	if _, ok, err := c.Get(ctx, "missing"); err != nil || ok {
		t.Fatalf("Get of a missing key = %v, %v; want a miss", ok, err)
	}
	if err := c.Set(ctx, "word", []byte("phone"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Incr(ctx, "word"); err == nil {
		t.Fatal("Incr of a word succeeded")
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := c.Get(canceled, "word"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with a canceled ctx: %v; want the caller's context.Canceled", err)
	}
	if _, _, err := c.Counters().Get(ctx, "no-counter"); err != nil {
		t.Fatalf("Counters().Get of a missing key: %v", err)
	}
	if c.Degraded() {
		t.Fatal("degraded after a miss, a WRONGTYPE-like answer and a canceled call")
	}
	if _, ok, err := c.Get(ctx, "word"); err != nil || !ok {
		t.Fatalf("Get after them = %v, %v; want the value", ok, err)
	}
}

// TestBreakerRecoversOnlyThroughOnRecover: one failure opens the breaker; while
// it is open or half-open callers get cache.ErrUnavailable and never reach the
// server, even once it is back, until a probe's OnRecover succeeded; a failed
// OnRecover keeps the cache degraded and is tried again.
func TestBreakerRecoversOnlyThroughOnRecover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own redis-server; -short skips it")
	}
	srv := startServer(t)
	ctx := context.Background()
	logs := &testbin.Buffer{}
	var attempts, recovered atomic.Int64
	var c *redis.Cache
	c = redis.Open(srv.addr, "breaker:", redis.Options{
		RetryAfter: 100 * time.Millisecond,
		Log:        slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		OnRecover: func(ctx context.Context) {
			if attempts.Add(1) == 1 {
				// The first recovery fails: one of its calls does.
				failing, cancel := context.WithCancel(ctx)
				cancel()
				_ = c.Delete(failing, "k")
				return
			}
			if err := c.Delete(ctx, "k"); err != nil {
				t.Errorf("OnRecover's Delete: %v", err)
				return
			}
			recovered.Add(1)
		},
	})
	t.Cleanup(func() { _ = c.Close() })

	if err := c.Set(ctx, "k", []byte("fresh"), 0); err != nil {
		t.Fatal(err)
	}
	srv.kill(t)
	if _, _, err := c.Get(ctx, "k"); err == nil || errors.Is(err, cache.ErrUnavailable) {
		t.Fatalf("first Get after the kill: %v; want the network's error", err)
	}
	if !c.Degraded() {
		t.Fatal("one failure did not open the breaker")
	}
	if _, _, err := c.Get(ctx, "k"); !errors.Is(err, cache.ErrUnavailable) {
		t.Fatalf("Get with the breaker open: %v; want cache.ErrUnavailable", err)
	}

	// The server comes back holding a value that must not be served: only
	// OnRecover's Delete may reach it first.
	srv.start(t)
	raw := goredis.NewClient(&goredis.Options{Addr: srv.addr})
	defer raw.Close()
	if err := raw.Set(ctx, "breaker:k", "stale", 0).Err(); err != nil {
		t.Fatal(err)
	}
	back := eventually(10*time.Second, func() bool {
		v, ok, err := c.Get(ctx, "k")
		switch {
		case errors.Is(err, cache.ErrUnavailable):
			return false
		case err != nil:
			t.Fatalf("Get while recovering: %v", err)
		case ok && bytes.Equal(v, []byte("stale")):
			t.Fatalf("Get served %q before OnRecover ran (attempts %d)", v, attempts.Load())
		}
		return true
	})
	if !back {
		t.Fatalf("cache not back 10s after the server (OnRecover attempts %d)", attempts.Load())
	}
	if attempts.Load() < 2 || recovered.Load() != 1 {
		t.Fatalf("OnRecover attempts %d, successes %d; want the failed one, then one success", attempts.Load(), recovered.Load())
	}
	if c.Degraded() {
		t.Fatal("still degraded after the recovery")
	}
	text := logs.String()
	if n := strings.Count(text, "redis unreachable"); n != 1 {
		t.Errorf("logged %d 'redis unreachable' warnings, want 1:\n%s", n, text)
	}
	if n := strings.Count(text, "redis back"); n != 1 {
		t.Errorf("logged %d 'redis back' lines, want 1:\n%s", n, text)
	}
}
