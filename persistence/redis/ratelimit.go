package redis

import (
	"context"
	"errors"
	"time"

	"github.com/go-redis/redis_rate/v10"
	goredis "github.com/redis/go-redis/v9"

	"phoneshop/persistence/ratelimit"
)

// RateStore is the rate limiters' state in this Redis, behind the cache's circuit
// breaker: while Redis is down it fails at once, and the limiter counts in memory.
// Each request is one round trip: github.com/go-redis/redis_rate runs the GCRA step
// as one Lua script. (throttled's go-redis store, used before, read the state and
// then compared-and-swapped it, two round trips, retried whenever another request
// of the key came in between: on one hot key, a sale's shoppers behind one
// address, that was a quarter of the shop's CPU.)
func (c *Cache) RateStore() ratelimit.Shared {
	return &rateStore{c: c, limiter: redis_rate.NewLimiter(c.client)}
}

type rateStore struct {
	c       *Cache
	limiter *redis_rate.Limiter
}

// Allow implements ratelimit.Shared. redis_rate keeps the key under "rate:"
// followed by the cache's prefix.
func (s *rateStore) Allow(ctx context.Context, key string, q ratelimit.Quota) (ok bool, retryAfter time.Duration, err error) {
	err = s.c.do(ctx, func(ctx context.Context) error {
		res, err := s.limiter.Allow(ctx, s.c.prefix+key, redis_rate.Limit{Rate: q.PerMinute, Burst: q.Burst, Period: time.Minute})
		if err != nil {
			return err
		}
		ok, retryAfter = res.Allowed > 0, max(res.RetryAfter, 0)
		return nil
	})
	return ok, retryAfter, err
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
