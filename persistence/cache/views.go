package cache

import (
	"context"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// DefaultViewTTL is the longest a view lives in process. It only matters when an
// invalidation was missed (a stock update dropped by a full queue): every other
// change of the catalog replaces the views at once, through the generation. The
// catalog keeps its entries in the cache for its TTL less this, so that a view
// built from an entry about to expire is still no older than the TTL.
const DefaultViewTTL = 5 * time.Second

// Bounds of the edge's views. Phone details are keyed by known phone ids only (an
// unknown id is not held), a few KB each; pages are keyed by whatever filters a
// client sends, up to 100 phones each, so fewer are held.
const (
	DefaultPhoneViews = 4096
	DefaultPageViews  = 256
)

// Views hold values built from catalog reads — the edge's rendered JSON of phone
// details and catalog pages — in process, so that a hot read costs no round trip
// to the cache and no encoding. A view is built under the catalog generation of
// its moment and is served only while the generation is the same: an
// invalidation by any process replaces every view as soon as this one sees the
// new generation (at once with a Bus, else within a second), exactly when the
// catalog's own cached entries are replaced.
//
// While the generation cannot be read (the cache server is down), views are
// neither served nor kept: every read builds its value, as every catalog read
// then goes to the store.
type Views struct {
	rt      *readThrough
	ttl     time.Duration
	name    string // the metric's cache label
	metrics *Metrics

	mu  sync.Mutex
	gen string // the generation prefix of the views held
	// epoch counts generation changes, so that a view built under an older
	// generation is not kept.
	epoch uint64
	views *lru.Cache[string, view]
}

type view struct {
	value     any
	expiresAt time.Time
}

// NewViews returns at most size views (at least 1) over c's generation; name
// labels their hit and miss counts.
func NewViews(c *Catalog, name string, size int, m *Metrics) *Views {
	// golang-lru's expirable LRU would expire views by itself, but its cleanup
	// goroutine never ends, one for every shop a test starts; a view checks its
	// own expiry when read instead.
	views, err := lru.New[string, view](max(size, 1))
	if err != nil {
		panic(err) // only for a size <= 0
	}
	return &Views{rt: c.rt, ttl: c.viewTTL, name: name, metrics: m, views: views}
}

// View returns the value held under key for the catalog's current generation, or
// builds it with build and holds it. build's errors are returned and not held.
func (v *Views) View(ctx context.Context, key string, build func(context.Context) (any, error)) (any, error) {
	prefix, err := v.rt.prefix(ctx)
	if err != nil {
		v.metrics.localRead(v.name, resultBypass)
		return build(ctx)
	}
	now := time.Now()
	v.mu.Lock()
	if prefix != v.gen {
		v.views.Purge()
		v.gen = prefix
		v.epoch++
	}
	epoch := v.epoch
	held, ok := v.views.Get(key)
	v.mu.Unlock()
	if ok && now.Before(held.expiresAt) {
		v.metrics.localRead(v.name, resultHit)
		return held.value, nil
	}
	v.metrics.localRead(v.name, resultMiss)
	value, err := build(ctx)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	if v.epoch == epoch {
		v.views.Add(key, view{value: value, expiresAt: now.Add(v.ttl)})
	}
	v.mu.Unlock()
	return value, nil
}
