package redis_test

import (
	"testing"

	"phoneshop/persistence/ratelimit"
	"phoneshop/persistence/ratelimit/ratelimittest"
	"phoneshop/persistence/redis"
)

func TestRateLimitCountersContract(t *testing.T) {
	addr := testAddr(t)
	ratelimittest.RunCounters(t, func(t *testing.T) ratelimit.Counters {
		return openTestCache(t, addr, redis.Options{}).Counters()
	})
}

func TestRateStoreContract(t *testing.T) {
	addr := testAddr(t)
	ratelimittest.RunRateStore(t, func(t *testing.T) ratelimit.Shared {
		return openTestCache(t, addr, redis.Options{}).RateStore()
	})
}
