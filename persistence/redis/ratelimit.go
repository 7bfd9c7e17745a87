package redis

import (
	"context"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/throttled/throttled/v2"
	"github.com/throttled/throttled/v2/store/goredisstore.v9"

	"phoneshop/persistence/ratelimit"
)

// RateStore is the GCRA state of the rate limiters in this Redis (throttled's
// go-redis store, under the cache's prefix), behind the cache's circuit breaker:
// while Redis is down it fails at once, and the limiter counts in memory.
func (c *Cache) RateStore() throttled.GCRAStoreCtx {
	inner, _ := goredisstore.NewCtx(c.client, c.prefix+"rate:") // never fails
	return &rateStore{c: c, inner: inner}
}

type rateStore struct {
	c     *Cache
	inner *goredisstore.GoRedisStore
}

func (s *rateStore) GetWithTime(ctx context.Context, key string) (v int64, now time.Time, err error) {
	err = s.c.do(ctx, func(ctx context.Context) error {
		v, now, err = s.inner.GetWithTime(ctx, key)
		return err
	})
	return v, now, err
}

func (s *rateStore) SetIfNotExistsWithTTL(ctx context.Context, key string, value int64, ttl time.Duration) (ok bool, err error) {
	err = s.c.do(ctx, func(ctx context.Context) error {
		ok, err = s.inner.SetIfNotExistsWithTTL(ctx, key, value, ttl)
		return err
	})
	return ok, err
}

func (s *rateStore) CompareAndSwapWithTTL(ctx context.Context, key string, old, new int64, ttl time.Duration) (ok bool, err error) {
	err = s.c.do(ctx, func(ctx context.Context) error {
		ok, err = s.inner.CompareAndSwapWithTTL(ctx, key, old, new, ttl)
		return err
	})
	return ok, err
}

// Counters are the login-failure counters in this Redis, behind the breaker.
func (c *Cache) Counters() ratelimit.Counters { return counters{c} }

type counters struct{ c *Cache }

// Incr implements ratelimit.Counters: INCR and PEXPIRE in one transaction.
func (r counters) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	var n int64
	err := r.c.do(ctx, func(ctx context.Context) error {
		var incr *goredis.IntCmd
		_, err := r.c.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			incr = p.Incr(ctx, r.c.prefix+key)
			p.PExpire(ctx, r.c.prefix+key, ttl)
			return nil
		})
		if err != nil {
			return err
		}
		n = incr.Val()
		return nil
	})
	return n, err
}

// Get implements ratelimit.Counters.
func (r counters) Get(ctx context.Context, key string) (int64, time.Duration, error) {
	var n int64
	var ttl time.Duration
	err := r.c.do(ctx, func(ctx context.Context) error {
		var get *goredis.StringCmd
		var pttl *goredis.DurationCmd
		_, err := r.c.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			get = p.Get(ctx, r.c.prefix+key)
			pttl = p.PTTL(ctx, r.c.prefix+key)
			return nil
		})
		if errors.Is(err, goredis.Nil) {
			return nil
		}
		if err != nil {
			return err
		}
		if n, err = get.Int64(); err != nil {
			return err
		}
		ttl = max(pttl.Val(), 0)
		return nil
	})
	return n, ttl, err
}

// Delete implements ratelimit.Counters.
func (r counters) Delete(ctx context.Context, key string) error {
	return r.c.do(ctx, func(ctx context.Context) error {
		return r.c.client.Del(ctx, r.c.prefix+key).Err()
	})
}
