// Package cachetest is the contract every cache.Cache passes: the same suite runs
// against the in-process Memory and against a real Redis, so the decorators can
// rely on one behaviour (misses, expiry, binary values, atomic counters).
package cachetest

import (
	"bytes"
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"phoneshop/persistence/cache"
)

// Open returns a new, empty cache for one test; the adapter's test cleans it up.
type Open func(t *testing.T) cache.Cache

// Run runs the whole contract.
func Run(t *testing.T, open Open) {
	ctx := context.Background()

	t.Run("get_of_a_missing_key_is_a_miss", func(t *testing.T) {
		c := open(t)
		got, ok, err := c.Get(ctx, "nothing-here")
		if err != nil || ok || got != nil {
			t.Fatalf("Get = %q, %v, %v; want a miss", got, ok, err)
		}
	})

	t.Run("set_then_get_returns_the_value", func(t *testing.T) {
		c := open(t)
		mustSet(t, c, "k", []byte("v1"), time.Minute)
		wantValue(t, c, "k", []byte("v1"))
		mustSet(t, c, "k", []byte("v2"), time.Minute)
		wantValue(t, c, "k", []byte("v2"))
	})

	t.Run("values_round_trip_byte_for_byte", func(t *testing.T) {
		c := open(t)
		all := make([]byte, 0, 512)
		for i := range 512 {
			all = append(all, byte(i))
		}
		values := []struct {
			name  string
			value []byte
		}{
			{"every_byte_value", all},
			{"empty", []byte{}},
			{"nul_and_newlines", []byte("a\x00b\r\nc")},
			{"utf8", []byte("Pixel 9 Pro · 256 GB · Obsidian")},
			{"large", bytes.Repeat([]byte("0123456789abcdef"), 64<<10)},
		}
		for _, v := range values {
			mustSet(t, c, v.name, v.value, time.Minute)
		}
		for _, v := range values {
			wantValue(t, c, v.name, v.value)
		}
	})

	t.Run("values_are_copied_in_and_out", func(t *testing.T) {
		c := open(t)
		in := []byte("abc")
		mustSet(t, c, "k", in, time.Minute)
		in[0] = 'X'
		out, _, _ := c.Get(ctx, "k")
		if len(out) > 0 {
			out[0] = 'Y'
		}
		wantValue(t, c, "k", []byte("abc"))
	})

	t.Run("value_expires_after_its_ttl", func(t *testing.T) {
		c := open(t)
		mustSet(t, c, "short", []byte("v"), 150*time.Millisecond)
		mustSet(t, c, "long", []byte("v"), time.Minute)
		mustSet(t, c, "forever", []byte("v"), 0)
		wantValue(t, c, "short", []byte("v"))
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, ok, err := c.Get(ctx, "short")
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("a key set for 150ms is still there after 5s")
			}
			time.Sleep(25 * time.Millisecond)
		}
		wantValue(t, c, "long", []byte("v"))
		wantValue(t, c, "forever", []byte("v"))
	})

	t.Run("set_replaces_the_ttl", func(t *testing.T) {
		c := open(t)
		mustSet(t, c, "k", []byte("v1"), 100*time.Millisecond)
		mustSet(t, c, "k", []byte("v2"), time.Minute)
		time.Sleep(300 * time.Millisecond)
		wantValue(t, c, "k", []byte("v2"))
	})

	t.Run("delete_removes_every_key_given", func(t *testing.T) {
		c := open(t)
		for _, k := range []string{"a", "b", "c"} {
			mustSet(t, c, k, []byte(k), time.Minute)
		}
		if err := c.Delete(ctx, "a", "b", "never-set"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		wantMiss(t, c, "a")
		wantMiss(t, c, "b")
		wantValue(t, c, "c", []byte("c"))
		if err := c.Delete(ctx); err != nil {
			t.Fatalf("Delete of no keys: %v", err)
		}
		wantValue(t, c, "c", []byte("c"))
	})

	t.Run("incr_counts_from_one", func(t *testing.T) {
		c := open(t)
		for want := int64(1); want <= 3; want++ {
			got, err := c.Incr(ctx, "n")
			if err != nil || got != want {
				t.Fatalf("Incr = %d, %v; want %d", got, err, want)
			}
		}
		wantValue(t, c, "n", []byte("3"))
	})

	t.Run("incr_continues_a_number_that_was_set", func(t *testing.T) {
		c := open(t)
		mustSet(t, c, "n", []byte("41"), time.Minute)
		if got, err := c.Incr(ctx, "n"); err != nil || got != 42 {
			t.Fatalf("Incr = %d, %v; want 42", got, err)
		}
	})

	t.Run("incr_of_a_non_number_fails", func(t *testing.T) {
		c := open(t)
		mustSet(t, c, "word", []byte("phone"), time.Minute)
		if got, err := c.Incr(ctx, "word"); err == nil {
			t.Fatalf("Incr of %q = %d, want an error", "phone", got)
		}
		wantValue(t, c, "word", []byte("phone"))
	})

	t.Run("incr_keeps_the_ttl", func(t *testing.T) {
		c := open(t)
		mustSet(t, c, "n", []byte("1"), 150*time.Millisecond)
		if _, err := c.Incr(ctx, "n"); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, ok, err := c.Get(ctx, "n"); err != nil || !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("Incr made a key with a 150ms TTL permanent")
			}
			time.Sleep(25 * time.Millisecond)
		}
	})

	t.Run("twenty_concurrent_incrs_lose_no_count", func(t *testing.T) {
		c := open(t)
		const workers, each = 20, 25
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for range workers {
			wg.Go(func() {
				for range each {
					if _, err := c.Incr(ctx, "n"); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		wantValue(t, c, "n", []byte(strconv.Itoa(workers*each)))
	})
}

func mustSet(t *testing.T, c cache.Cache, key string, value []byte, ttl time.Duration) {
	t.Helper()
	if err := c.Set(context.Background(), key, value, ttl); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func wantValue(t *testing.T, c cache.Cache, key string, want []byte) {
	t.Helper()
	got, ok, err := c.Get(context.Background(), key)
	if err != nil || !ok {
		t.Fatalf("Get(%q) = found %v, err %v; want the value", key, ok, err)
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(bytes.Equal)); diff != "" {
		t.Fatalf("Get(%q) (-want +got):\n%s", key, diff)
	}
}

func wantMiss(t *testing.T, c cache.Cache, key string) {
	t.Helper()
	got, ok, err := c.Get(context.Background(), key)
	if err != nil || ok {
		t.Fatalf("Get(%q) = %q, %v, %v; want a miss", key, got, ok, err)
	}
}
