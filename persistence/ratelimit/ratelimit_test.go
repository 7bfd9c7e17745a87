package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"phoneshop/persistence/ratelimit"
	"phoneshop/persistence/ratelimit/ratelimittest"
)

func TestMemoryCounters(t *testing.T) {
	ratelimittest.RunCounters(t, func(*testing.T) ratelimit.Counters { return ratelimit.NewMemory(1000) })
}

// TestMemoryRateStore: a limiter with no shared state counts in process memory.
func TestMemoryRateStore(t *testing.T) {
	ratelimittest.RunRateStore(t, func(*testing.T) ratelimit.Shared { return nil })
}

func TestLimiterFollowsALiveQuota(t *testing.T) {
	q := ratelimit.Quota{PerMinute: 60, Burst: 1}
	l, err := ratelimit.NewLimiter("live", func() ratelimit.Quota { return q }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if ok, _ := l.Allow(ctx, "a"); !ok {
		t.Fatal("first request refused")
	}
	if ok, _ := l.Allow(ctx, "a"); ok {
		t.Fatal("second request allowed with a burst of 1")
	}
	q = ratelimit.Quota{PerMinute: 60, Burst: 100}
	if ok, _ := l.Allow(ctx, "a"); !ok {
		t.Fatal("a raised burst did not apply")
	}
}

// failingCounters is a shared store that is down.
type failingCounters struct{}

func (failingCounters) Incr(context.Context, string, time.Duration) (int64, error) {
	return 0, context.DeadlineExceeded
}
func (failingCounters) Get(context.Context, string) (int64, time.Duration, error) {
	return 0, 0, context.DeadlineExceeded
}
func (failingCounters) Delete(context.Context, string) error { return context.DeadlineExceeded }

func TestLockouts(t *testing.T) {
	policy := ratelimit.LockoutPolicy{Failures: 10, First: time.Minute, Max: 15 * time.Minute}
	for _, tc := range []struct {
		name   string
		shared ratelimit.Counters
	}{
		{"memory_only", nil},
		{"shared_store_down_counts_in_memory", failingCounters{}},
		{"shared_store", ratelimit.NewMemory(100)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			l := ratelimit.NewLockouts(func() ratelimit.LockoutPolicy { return policy }, tc.shared, nil, nil)
			for i := 1; i < policy.Failures; i++ {
				if lock := l.Failed(ctx, "ann@example.com", "10.0.0.1"); lock != 0 {
					t.Fatalf("failure %d locked for %s", i, lock)
				}
				if l.Locked(ctx, "ann@example.com", "10.0.0.1") != 0 {
					t.Fatalf("locked after %d failures", i)
				}
			}
			want := time.Minute
			for range 6 {
				if lock := l.Failed(ctx, "ann@example.com", "10.0.0.1"); lock != want {
					t.Fatalf("lock %s; want %s", lock, want)
				}
				if left := l.Locked(ctx, "ann@example.com", "10.0.0.1"); left < want-time.Second || left > want {
					t.Fatalf("locked for %s; want about %s", left, want)
				}
				want = min(2*want, policy.Max)
			}
			if l.Locked(ctx, "ann@example.com", "10.0.0.2") != 0 {
				t.Fatal("another address is locked out")
			}
			if l.Locked(ctx, "bob@example.com", "10.0.0.1") != 0 {
				t.Fatal("another account is locked")
			}
			l.Succeeded(ctx, "ann@example.com", "10.0.0.1")
			if l.Locked(ctx, "ann@example.com", "10.0.0.1") != 0 {
				t.Fatal("still locked after a success")
			}
		})
	}
}
