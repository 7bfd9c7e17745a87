// Package redis is the production cache.Cache, on Redis. Every key is prefixed, so
// that several shops (or tests) share one server, and every call has short
// timeouts. A circuit breaker (github.com/sony/gobreaker) keeps an unreachable
// server from slowing the shop: after a connection failure the cache answers
// cache.ErrUnavailable at once, with no network, and probes the server again
// about once a second. When the server is back, OnRecover runs before the cache
// is used again, so that nothing cached before or during the outage (a session
// logged out meanwhile, a catalog changed meanwhile) is served after it. Its Bus
// carries invalidations between the shop's processes over pub/sub, for what they
// hold in process.
package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/sony/gobreaker/v2"

	"phoneshop/persistence/cache"
)

// Defaults of Options.
const (
	DefaultTimeout     = 200 * time.Millisecond
	DefaultPoolTimeout = 500 * time.Millisecond
	DefaultRetryAfter  = time.Second
	// recoverTimeout bounds the OnRecover hook.
	recoverTimeout = 5 * time.Second
)

// Options tune a Cache; the zero value is usable.
type Options struct {
	Username string
	Password string // never logged
	DB       int
	// TLS, when set, connects over TLS with this configuration.
	TLS *tls.Config

	// DialTimeout, ReadTimeout and WriteTimeout bound each network step
	// (DefaultTimeout when zero); PoolTimeout bounds the wait for a free
	// connection (DefaultPoolTimeout when zero).
	DialTimeout, ReadTimeout, WriteTimeout, PoolTimeout time.Duration
	// PoolSize is go-redis's default (10 per CPU) when zero.
	PoolSize int

	// RetryAfter is how long the breaker skips Redis after a failure before it
	// probes again (DefaultRetryAfter when zero): gobreaker's Timeout.
	RetryAfter time.Duration

	Log     *slog.Logger
	Metrics *cache.Metrics // the degraded gauge; nil: none
	// OnRecover runs when the server answers again after an outage, before the
	// cache is used again; the shop invalidates the catalog and session caches in
	// it. Its ctx lets its cache calls through the breaker. If any of them fails,
	// the cache stays degraded and recovery is tried again later.
	OnRecover func(ctx context.Context)
}

// Cache is a cache.Cache on a Redis server.
type Cache struct {
	client *goredis.Client
	addr   string
	prefix string
	opts   Options
	log    *slog.Logger

	// breaker is github.com/sony/gobreaker (newBreaker maps its settings).
	breaker *gobreaker.CircuitBreaker[struct{}]
	// degraded is true from the breaker's opening to its closing again (kept
	// by its OnStateChange): a call reads it instead of taking the breaker's
	// lock while Redis is down, and only the probe is let through half-open.
	degraded atomic.Bool
	closed   atomic.Bool // written under mu
	probing  atomic.Bool
	// lastFailure is the last error the breaker counted, for the log line.
	lastFailure atomic.Pointer[error]
	// recoveryFailures counts failed calls of OnRecover, so that a probe can
	// tell whether one of its recovery's calls failed.
	recoveryFailures atomic.Uint64

	stopProbes context.CancelFunc
	probeCtx   context.Context
	probes     sync.WaitGroup

	mu  sync.Mutex
	bus *Bus // nil until Bus is called
}

var _ cache.Cache = (*Cache)(nil)

// Open returns a cache on the Redis server at addr whose keys all start with
// prefix. It does not connect: an unreachable server shows on first use, as a
// degraded cache, never as an error of the shop's start.
func Open(addr, prefix string, opts Options) *Cache {
	for _, d := range []*time.Duration{&opts.DialTimeout, &opts.ReadTimeout, &opts.WriteTimeout} {
		if *d <= 0 {
			*d = DefaultTimeout
		}
	}
	if opts.PoolTimeout <= 0 {
		opts.PoolTimeout = DefaultPoolTimeout
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = DefaultRetryAfter
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := goredis.NewClient(&goredis.Options{
		Addr:         addr,
		Username:     opts.Username,
		Password:     opts.Password,
		TLSConfig:    opts.TLS,
		DB:           opts.DB,
		DialTimeout:  opts.DialTimeout,
		ReadTimeout:  opts.ReadTimeout,
		WriteTimeout: opts.WriteTimeout,
		PoolTimeout:  opts.PoolTimeout,
		PoolSize:     opts.PoolSize,
		// The breaker decides when to try again; retries inside one call would
		// only make a failing read slower.
		MaxRetries:    -1,
		DialerRetries: 1,
		// A plain Redis does not know these commands; asking only adds a round trip.
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	probeCtx, stop := context.WithCancel(context.Background())
	c := &Cache{client: client, addr: addr, prefix: prefix, opts: opts, log: log,
		probeCtx: probeCtx, stopProbes: stop}
	c.breaker = c.newBreaker()
	return c
}

// Get implements cache.Cache.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	var value []byte
	err := c.do(ctx, func(ctx context.Context) error {
		b, err := c.client.Get(ctx, c.prefix+key).Bytes()
		if errors.Is(err, goredis.Nil) {
			return nil
		}
		value = b
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return value, value != nil, nil
}

// Set implements cache.Cache.
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl < 0 {
		ttl = 0 // go-redis reads -1 as KEEPTTL; the port says "no expiry"
	}
	return c.do(ctx, func(ctx context.Context) error {
		return c.client.Set(ctx, c.prefix+key, value, ttl).Err()
	})
}

// Delete implements cache.Cache.
func (c *Cache) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	prefixed := make([]string, len(keys))
	for i, k := range keys {
		prefixed[i] = c.prefix + k
	}
	return c.do(ctx, func(ctx context.Context) error {
		return c.client.Del(ctx, prefixed...).Err()
	})
}

// Incr implements cache.Cache.
func (c *Cache) Incr(ctx context.Context, key string) (int64, error) {
	var n int64
	err := c.do(ctx, func(ctx context.Context) error {
		var err error
		n, err = c.client.Incr(ctx, c.prefix+key).Result()
		return err
	})
	return n, err
}

// Degraded reports whether the breaker is open or half-open: the server failed
// and reads go to the store until a probe finds it back.
func (c *Cache) Degraded() bool { return c.degraded.Load() }

// Close stops probing and the bus, and closes the connections.
func (c *Cache) Close() error {
	c.mu.Lock()
	c.closed.Store(true)
	bus := c.bus
	c.mu.Unlock()
	if bus != nil {
		bus.close()
	}
	c.stopProbes()
	c.probes.Wait()
	return c.client.Close()
}

// Sentinels that gobreaker excludes (IsExcluded): neither a success nor a failure.
var (
	// errCallerGaveUp: the call failed after its caller's ctx ended; that says
	// nothing about the server. The caller sees the call's own error.
	errCallerGaveUp = errors.New("redis: the caller gave up")
	// errNotSent: the breaker let a call in, but the cache was degraded by then
	// (see do); it was not sent. The caller sees cache.ErrUnavailable.
	errNotSent = errors.New("redis: not sent, the cache is degraded")
)

// newBreaker maps the cache's breaker onto gobreaker:
//
//   - it opens on the first failure (ReadyToTrip at one consecutive failure;
//     Interval 0 never clears the counts, which only that one matters to);
//   - it stays open RetryAfter (Timeout), then is half-open;
//   - half-open, it lets one request through (MaxRequests 1), and that request
//     is always the cache's probe (tryRecover: PING, then OnRecover), never a
//     caller's: do answers callers from the degraded flag, kept by
//     OnStateChange, without asking the breaker, so that nothing cached before
//     or during the outage is served before OnRecover ran;
//   - a failure is what isOutage says (IsSuccessful): the server gone, or
//     answering "cannot serve you now"; a miss (redis.Nil) or an answer about one
//     key (WRONGTYPE, not an integer) is a success; a call whose caller gave up
//     is neither (IsExcluded).
func (c *Cache) newBreaker() *gobreaker.CircuitBreaker[struct{}] {
	return gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "redis " + c.addr,
		MaxRequests: 1,
		Interval:    0,
		Timeout:     c.opts.RetryAfter,
		ReadyToTrip: func(counts gobreaker.Counts) bool { return counts.ConsecutiveFailures >= 1 },
		IsSuccessful: func(err error) bool {
			if !isOutage(err) {
				return true
			}
			failure := err                // a copy, so that only a failure allocates
			c.lastFailure.Store(&failure) // for the log line of the trip, in OnStateChange
			return false
		},
		IsExcluded: func(err error) bool {
			return err == errCallerGaveUp || err == errNotSent
		},
		OnStateChange: c.stateChanged,
	})
}

// stateChanged is the breaker's OnStateChange; it runs under the breaker's lock,
// so it must not call the breaker.
func (c *Cache) stateChanged(_ string, from, to gobreaker.State) {
	switch {
	case from == gobreaker.StateClosed && to == gobreaker.StateOpen:
		c.degraded.Store(true)
		if c.closed.Load() {
			return // a call in flight when Close came
		}
		c.opts.Metrics.SetDegraded(true)
		var err error
		if last := c.lastFailure.Load(); last != nil {
			err = *last
		}
		c.log.Warn("redis unreachable: reads fall back to the store", "addr", c.addr, "err", err)
	case to == gobreaker.StateClosed:
		c.degraded.Store(false)
		c.opts.Metrics.SetDegraded(false)
		c.log.Info("redis back", "addr", c.addr)
	}
	// Open -> half-open and half-open -> open (a probe failed): still degraded.
}

// do runs one call through the breaker.
func (c *Cache) do(ctx context.Context, call func(context.Context) error) error {
	if c.degraded.Load() || c.closed.Load() {
		return c.doDegraded(ctx, call)
	}
	var err error
	_, verdict := c.breaker.Execute(func() (struct{}, error) {
		if c.degraded.Load() {
			// The breaker opened since the check above, and may even be
			// half-open already, this call being its one request: only the
			// probe may be that. Excluded, the call frees the request for it.
			err = cache.ErrUnavailable
			return struct{}{}, errNotSent
		}
		err = call(ctx)
		if err != nil && ctx.Err() != nil {
			return struct{}{}, errCallerGaveUp
		}
		return struct{}{}, err
	})
	if verdict == gobreaker.ErrOpenState || verdict == gobreaker.ErrTooManyRequests {
		return cache.ErrUnavailable
	}
	return err
}

// doDegraded answers a call while the breaker is not closed: cache.ErrUnavailable
// at once, starting a probe when one is due; but the calls of OnRecover (ctx from
// cache.WithBreakerBypass) go to the server, around the breaker, whose one
// half-open request is the probe running them, and a failure of theirs fails it.
func (c *Cache) doDegraded(ctx context.Context, call func(context.Context) error) error {
	if c.closed.Load() {
		return cache.ErrUnavailable
	}
	if !cache.BypassesBreaker(ctx) {
		c.startProbe()
		return cache.ErrUnavailable
	}
	err := call(ctx)
	if isOutage(err) { // the recovery's own deadline passing included
		c.recoveryFailures.Add(1)
	}
	return err
}

// isOutage tells a server that is gone or unfit from an answer about one key.
func isOutage(err error) bool {
	if err == nil || errors.Is(err, goredis.Nil) {
		return false // a miss is an answer
	}
	var reply goredis.Error
	if errors.As(err, &reply) {
		// The server answered. Only answers meaning "cannot serve you now" count;
		// WRONGTYPE or "not an integer" are about one key.
		for _, p := range []string{"READONLY", "LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY", "NOAUTH", "WRONGPASS", "OOM"} {
			if strings.HasPrefix(reply.Error(), p) {
				return true
			}
		}
		return false
	}
	return true
}

// startProbe starts the probe when the breaker is half-open and none runs.
func (c *Cache) startProbe() {
	if c.probing.Load() || c.breaker.State() != gobreaker.StateHalfOpen {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() || !c.probing.CompareAndSwap(false, true) {
		return
	}
	c.probes.Add(1)
	go c.probe()
}

// probe runs tryRecover as the half-open breaker's one request: its success
// closes the breaker, its failure opens it for another RetryAfter.
func (c *Cache) probe() {
	defer c.probes.Done()
	defer c.probing.Store(false)
	_, _ = c.breaker.Execute(c.tryRecover)
}

// tryRecover pings the server; when it answers, runs OnRecover, and fails if any
// of OnRecover's calls did. Its errors are formatted with %v, not wrapped: a
// reply error of PING must count as a failure whatever isOutage makes of it.
func (c *Cache) tryRecover() (struct{}, error) {
	ctx, cancel := context.WithTimeout(c.probeCtx, c.opts.DialTimeout+c.opts.ReadTimeout+c.opts.WriteTimeout)
	err := c.client.Ping(ctx).Err()
	cancel()
	if err != nil {
		return struct{}{}, fmt.Errorf("redis: probe: %v", err)
	}
	if c.opts.OnRecover != nil {
		failuresBefore := c.recoveryFailures.Load()
		ctx, cancel := context.WithTimeout(cache.WithBreakerBypass(c.probeCtx), recoverTimeout)
		defer cancel()
		c.opts.OnRecover(ctx)
		if err := ctx.Err(); err != nil {
			return struct{}{}, fmt.Errorf("redis: recovery: %v", err)
		}
		if c.recoveryFailures.Load() != failuresBefore {
			return struct{}{}, errors.New("redis: recovery: a call failed")
		}
	}
	if c.closed.Load() {
		return struct{}{}, errors.New("redis: closed")
	}
	return struct{}{}, nil
}
