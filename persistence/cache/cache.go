// Package cache is the shop's hot-read layer: a small Cache port (Redis in
// production, an in-process LRU by default) and decorators that put it in front of
// the catalog and account stores. The cache only ever makes reads faster: any cache
// error is treated as a miss and the read is served from the store, so Redis down
// means slower, never wrong and never failing.
//
// In front of the cache, two layers hold the hottest reads in process: one entry
// per authenticated token (Sessions, with a Bus), and the edge's rendered catalog
// (Views). A Bus (Redis pub/sub, or in process) carries their invalidations to
// every process at once.
package cache

import (
	"context"
	"errors"
	"time"
)

// ErrUnavailable is what a cache returns while it knows its server is unreachable
// (its circuit breaker is open); callers treat it like any other cache error.
var ErrUnavailable = errors.New("cache: unavailable")

// Cache is the port the decorators read and write through. In production it is
// Redis (persistence/redis); by default it is Memory, in-process.
//
// Values are opaque bytes. A ttl <= 0 means the key does not expire. Incr treats a
// missing key as 0 and keeps the key's expiry, as Redis INCR does.
type Cache interface {
	// Get returns the value of key and whether it was there.
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// Set stores value under key for ttl.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Delete removes keys; missing keys are not an error.
	Delete(ctx context.Context, keys ...string) error
	// Incr adds one to the decimal integer under key and returns the new value.
	Incr(ctx context.Context, key string) (int64, error)
}

type bypassBreakerKey struct{}

// WithBreakerBypass marks ctx as belonging to a cache's own recovery work (the
// OnRecover hook of persistence/redis): operations on it go to the server even
// though the cache has not yet declared itself healthy again.
func WithBreakerBypass(ctx context.Context) context.Context {
	return context.WithValue(ctx, bypassBreakerKey{}, true)
}

// BypassesBreaker reports whether ctx was marked by WithBreakerBypass.
func BypassesBreaker(ctx context.Context) bool {
	v, _ := ctx.Value(bypassBreakerKey{}).(bool)
	return v
}
