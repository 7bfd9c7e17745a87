package cache

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// readThrough is what Catalog and Sessions share: keys under a generation number,
// read-through with collapsed misses, and every cache failure turned into a read
// from the store.
type readThrough struct {
	cache   Cache
	name    string // the metric's cache label and the key namespace
	genKey  string
	metrics *Metrics
	log     *slog.Logger
	flights singleflight.Group

	// The generation is read from the cache at most once per genTTL: it changes
	// only on an invalidation, which this process sees at once when it makes it,
	// at once when a Bus tells it (forgetGen), and otherwise within genTTL.
	// Without this, every hit costs two round trips to Redis instead of one.
	genMu  sync.Mutex
	gen    string
	genAt  time.Time
	genTTL time.Duration
	// genEpoch counts the generations this process learnt by itself (its own
	// invalidations, the bus's messages): a generation read from the cache before
	// one of them is not kept, since it may be the older one.
	genEpoch uint64
}

// defaultGenTTL bounds how late an invalidation made by another process is seen
// when no Bus tells this one.
const defaultGenTTL = time.Second

func (r *readThrough) localGen() (gen string, fresh bool, epoch uint64) {
	r.genMu.Lock()
	defer r.genMu.Unlock()
	return r.gen, r.gen != "" && time.Since(r.genAt) < r.genTTL, r.genEpoch
}

// setLocalGen keeps gen as the generation this process learnt ("" to read it again).
func (r *readThrough) setLocalGen(gen string) {
	r.genMu.Lock()
	r.gen, r.genAt = gen, time.Now()
	r.genEpoch++
	r.genMu.Unlock()
}

// keepReadGen keeps gen, read from the cache, unless the process learnt another
// generation since epoch.
func (r *readThrough) keepReadGen(gen string, epoch uint64) {
	r.genMu.Lock()
	if r.genEpoch == epoch {
		r.gen, r.genAt = gen, time.Now()
	}
	r.genMu.Unlock()
}

// forgetGen makes the next read ask the cache for the generation: another process
// moved it.
func (r *readThrough) forgetGen() { r.setLocalGen("") }

func newReadThrough(c Cache, name string, m *Metrics, log *slog.Logger) *readThrough {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &readThrough{cache: c, name: name, genKey: name + ":gen", metrics: m, log: log, genTTL: defaultGenTTL}
}

// prefix returns "<name>:<generation>:" for keys of the current generation.
func (r *readThrough) prefix(ctx context.Context) (string, error) {
	gen, fresh, epoch := r.localGen()
	if fresh {
		return r.name + ":" + gen + ":", nil
	}
	b, ok, err := r.cache.Get(ctx, r.genKey)
	if err != nil {
		return "", err
	}
	if !ok {
		// First use, a server restarted empty, or the key was evicted. A random
		// start keeps entries written under an earlier, equal number unreachable.
		// Readers of one process agree on it; processes racing here only orphan
		// each other's first entries.
		v, err, _ := r.flights.Do(r.genKey, func() (any, error) {
			if b, ok, err := r.cache.Get(ctx, r.genKey); err != nil || ok {
				return b, err
			}
			gen := []byte(strconv.FormatInt(rand.Int64N(1<<62)+1, 10))
			return gen, r.cache.Set(ctx, r.genKey, gen, 0)
		})
		if err != nil {
			return "", err
		}
		b = v.([]byte)
	}
	r.keepReadGen(string(b), epoch)
	return r.name + ":" + string(b) + ":", nil
}

// invalidate moves to a new generation: nothing cached before it is read again.
func (r *readThrough) invalidate(ctx context.Context) error {
	n, err := r.cache.Incr(ctx, r.genKey)
	if err != nil {
		r.setLocalGen("") // read it again next time
		return err
	}
	if n == 1 {
		// The key was missing, so 1 may have been a generation before; leave it.
		gen := strconv.FormatInt(rand.Int64N(1<<62)+2, 10)
		if err := r.cache.Set(ctx, r.genKey, []byte(gen), 0); err != nil {
			r.setLocalGen("")
			return err
		}
		r.setLocalGen(gen)
		return nil
	}
	r.setLocalGen(strconv.FormatInt(n, 10))
	return nil
}

func (r *readThrough) cacheFailed(op string, err error) {
	if errors.Is(err, ErrUnavailable) {
		return // the cache said so once already
	}
	r.log.Debug("cache failed: read served from the store", "cache", r.name, "op", op, "err", err)
}

// codec turns a cached value into bytes and back; fresh reports whether a cached
// value may still be served (a session past its expiry may not).
type codec[T any] struct {
	encode func(T) ([]byte, error)
	decode func([]byte) (T, error)
	fresh  func(T) bool
	ttl    func(T) time.Duration
	// afterFill, when set, runs after a value was cached under prefix.
	afterFill func(ctx context.Context, prefix string)
}

// cachedRead serves key from the cache, or loads it from the store once per key
// however many callers miss at the same time, and caches it. Cache errors never
// fail the read: the value comes from the store and is not cached.
func cachedRead[T any](ctx context.Context, r *readThrough, key string, c codec[T], load func(context.Context) (T, error)) (T, error) {
	prefix, err := r.prefix(ctx)
	if err != nil {
		r.metrics.request(r.name, resultError)
		r.cacheFailed("generation", err)
		return load(ctx)
	}
	key = prefix + key
	v, _, hit, err := lookup(ctx, r, key, c)
	switch {
	case err != nil:
		r.metrics.request(r.name, resultError)
		r.cacheFailed("get", err)
		return load(ctx)
	case hit:
		r.metrics.request(r.name, resultHit)
		return v, nil
	}
	r.metrics.request(r.name, resultMiss)

	flight := r.flights.DoChan(key, func() (any, error) {
		// A flight that starts just after another one filled the key finds it here.
		if _, b, hit, err := lookup(ctx, r, key, c); err == nil && hit {
			return b, nil
		}
		v, err := load(ctx)
		if err != nil {
			return nil, err
		}
		b, err := c.encode(v)
		if err != nil {
			return nil, err
		}
		if ttl := c.ttl(v); ttl > 0 {
			if err := r.cache.Set(ctx, key, b, ttl); err != nil {
				r.cacheFailed("set", err)
			} else if c.afterFill != nil {
				c.afterFill(ctx, prefix)
			}
		}
		return b, nil
	})
	var res singleflight.Result
	select {
	case res = <-flight:
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
	if res.Err != nil {
		if isContextErr(res.Err) && ctx.Err() == nil {
			// The caller that led the flight gave up; this one has not.
			return load(ctx)
		}
		var zero T
		return zero, res.Err
	}
	v, err = c.decode(res.Val.([]byte))
	if err != nil {
		// Never the store's fault: read it again rather than fail.
		r.cacheFailed("decode", err)
		return load(ctx)
	}
	return v, nil
}

// lookup reads and decodes key; an undecodable or stale value is a miss.
func lookup[T any](ctx context.Context, r *readThrough, key string, c codec[T]) (T, []byte, bool, error) {
	var zero T
	b, ok, err := r.cache.Get(ctx, key)
	if err != nil || !ok {
		return zero, nil, false, err
	}
	v, err := c.decode(b)
	if err != nil {
		r.cacheFailed("decode", err)
		return zero, nil, false, nil
	}
	if c.fresh != nil && !c.fresh(v) {
		return zero, nil, false, nil
	}
	return v, b, true, nil
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
