package redis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"phoneshop/persistence/cache"
	"phoneshop/persistence/cache/cachetest"
	"phoneshop/persistence/redis"
)

// DefaultTestAddr is the CI machine's Redis.
const DefaultTestAddr = "127.0.0.1:6379"

func TestContract(t *testing.T) {
	addr := testAddr(t)
	cachetest.Run(t, func(t *testing.T) cache.Cache { return openTestCache(t, addr, redis.Options{}) })
}

// testAddr returns the test Redis from PHONESHOP_TEST_REDIS_ADDR (default: the CI
// machine's) after checking that it answers. A missing server fails the test;
// only -short skips it.
func testAddr(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Redis (PHONESHOP_TEST_REDIS_ADDR); -short skips it")
	}
	addr := os.Getenv("PHONESHOP_TEST_REDIS_ADDR")
	if addr == "" {
		addr = DefaultTestAddr
	}
	raw := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
	defer raw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := raw.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis at %s is not reachable (%v): start it, or set PHONESHOP_TEST_REDIS_ADDR, or run with -short", addr, err)
	}
	return addr
}

// openTestCache opens a cache on addr under a random prefix of its own, and
// deletes the prefix's keys at cleanup.
func openTestCache(t *testing.T, addr string, opts redis.Options) *redis.Cache {
	t.Helper()
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	prefix := "phoneshop_test_" + hex.EncodeToString(suffix) + ":"
	c := redis.Open(addr, prefix, opts)
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		deletePrefix(t, addr, prefix)
	})
	return c
}

func deletePrefix(t *testing.T, addr, prefix string) {
	t.Helper()
	raw := goredis.NewClient(&goredis.Options{Addr: addr})
	defer raw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	iter := raw.Scan(ctx, 0, prefix+"*", 500).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Errorf("scan %s*: %v", prefix, err)
		return
	}
	if len(keys) > 0 {
		if err := raw.Del(ctx, keys...).Err(); err != nil {
			t.Errorf("delete %d test keys: %v", len(keys), err)
		}
	}
}

func TestKeysArePrefixed(t *testing.T) {
	addr := testAddr(t)
	ctx := context.Background()
	a := openTestCache(t, addr, redis.Options{})
	b := openTestCache(t, addr, redis.Options{})
	if err := a.Set(ctx, "k", []byte("a"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := b.Get(ctx, "k"); err != nil || ok {
		t.Fatalf("another prefix sees the key: found %v, err %v", ok, err)
	}
}
