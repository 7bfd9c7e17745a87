// Package ratelimittest is the contract every ratelimit store passes: process
// memory and Redis run the same tests.
package ratelimittest

import (
	"context"
	"sync"
	"testing"
	"time"

	"phoneshop/persistence/ratelimit"
)

// RunCounters checks a ratelimit.Counters implementation; each subtest gets fresh
// counters from open.
func RunCounters(t *testing.T, open func(t *testing.T) ratelimit.Counters) {
	ctx := context.Background()
	t.Run("missing_key_is_zero", func(t *testing.T) {
		c := open(t)
		n, ttl, err := c.Get(ctx, "nobody")
		if err != nil || n != 0 || ttl != 0 {
			t.Fatalf("Get(missing) = %d, %s, %v; want 0, 0, nil", n, ttl, err)
		}
	})
	t.Run("incr_counts_and_sets_the_ttl", func(t *testing.T) {
		c := open(t)
		for want := int64(1); want <= 3; want++ {
			n, err := c.Incr(ctx, "k", time.Hour)
			if err != nil || n != want {
				t.Fatalf("Incr #%d = %d, %v", want, n, err)
			}
		}
		n, ttl, err := c.Get(ctx, "k")
		if err != nil || n != 3 || ttl <= 59*time.Minute || ttl > time.Hour {
			t.Fatalf("Get = %d, %s, %v; want 3 with about an hour left", n, ttl, err)
		}
	})
	t.Run("delete_clears", func(t *testing.T) {
		c := open(t)
		if _, err := c.Incr(ctx, "k", time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := c.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if err := c.Delete(ctx, "k"); err != nil {
			t.Fatalf("deleting a missing key: %v", err)
		}
		if n, _, err := c.Get(ctx, "k"); err != nil || n != 0 {
			t.Fatalf("after delete Get = %d, %v", n, err)
		}
	})
	t.Run("expires", func(t *testing.T) {
		c := open(t)
		if _, err := c.Incr(ctx, "k", 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			n, _, err := c.Get(ctx, "k")
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a 50ms counter still holds %d after 5s", n)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if n, err := c.Incr(ctx, "k", time.Hour); err != nil || n != 1 {
			t.Fatalf("Incr after expiry = %d, %v; want a new count of 1", n, err)
		}
	})
	t.Run("concurrent_incr_loses_no_count", func(t *testing.T) {
		c := open(t)
		const writers, each = 20, 25
		var wg sync.WaitGroup
		for range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					if _, err := c.Incr(ctx, "k", time.Hour); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if n, _, err := c.Get(ctx, "k"); err != nil || n != writers*each {
			t.Fatalf("after %d concurrent increments Get = %d, %v", writers*each, n, err)
		}
	})
}

// RunRateStore checks a limiter's state through a ratelimit.Limiter: the burst
// passes, the next request is refused with a wait, and another key is not
// affected. open returns the shared state, or nil for process memory.
func RunRateStore(t *testing.T, open func(t *testing.T) ratelimit.Shared) {
	ctx := context.Background()
	t.Run("burst_then_refused_with_retry_after", func(t *testing.T) {
		q := ratelimit.Quota{PerMinute: 6, Burst: 5}
		l, err := ratelimit.NewLimiter("test", func() ratelimit.Quota { return q }, open(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range q.Burst {
			if ok, _ := l.Allow(ctx, "addr-a"); !ok {
				t.Fatalf("request %d of a burst of %d refused", i+1, q.Burst)
			}
		}
		ok, wait := l.Allow(ctx, "addr-a")
		if ok {
			t.Fatalf("request %d allowed past a burst of %d", q.Burst+1, q.Burst)
		}
		if wait <= 0 || wait > 10*time.Second {
			t.Fatalf("retry after %s; want about 10s (6/min)", wait)
		}
		if ok, _ := l.Allow(ctx, "addr-b"); !ok {
			t.Fatal("another key was refused")
		}
	})
	t.Run("concurrent_requests_never_exceed_the_burst", func(t *testing.T) {
		q := ratelimit.Quota{PerMinute: 1, Burst: 10}
		l, err := ratelimit.NewLimiter("test-concurrent", func() ratelimit.Quota { return q }, open(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		allowed := 0
		var wg sync.WaitGroup
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if ok, _ := l.Allow(ctx, "hot"); ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if allowed != q.Burst {
			t.Fatalf("%d of 50 concurrent requests allowed; want exactly the burst, %d", allowed, q.Burst)
		}
	})
}
