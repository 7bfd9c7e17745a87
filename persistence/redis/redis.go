// Package redis is the production cache.Cache, on Redis. Every key is prefixed, so
// that several shops (or tests) share one server, and every call has short
// timeouts. A circuit breaker keeps an unreachable server from slowing the shop:
// after a connection failure the cache answers cache.ErrUnavailable at once, with
// no network, and probes the server again about once a second. When the server is
// back, OnRecover runs before the cache is used again, so that nothing cached
// before or during the outage (a session logged out meanwhile, a catalog changed
// meanwhile) is served after it. Its Bus carries invalidations between the shop's
// processes over pub/sub, for what they hold in process.
package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

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
	// probes again (DefaultRetryAfter when zero).
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
	now    func() time.Time

	stopProbes context.CancelFunc
	probeCtx   context.Context
	probes     sync.WaitGroup

	mu       sync.Mutex
	bus      *Bus // nil until Bus is called
	closed   bool
	degraded bool
	probing  bool
	retryAt  time.Time
	failures uint64 // failures seen, so that a recovery can tell whether one interrupted it
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
	return &Cache{client: client, addr: addr, prefix: prefix, opts: opts, log: log, now: time.Now,
		probeCtx: probeCtx, stopProbes: stop}
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

// Degraded reports whether the breaker is open: the server failed and reads go
// to the store.
func (c *Cache) Degraded() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.degraded
}

// Close stops probing and the bus, and closes the connections.
func (c *Cache) Close() error {
	c.mu.Lock()
	c.closed = true
	bus := c.bus
	c.mu.Unlock()
	if bus != nil {
		bus.close()
	}
	c.stopProbes()
	c.probes.Wait()
	return c.client.Close()
}

// do runs one call through the breaker.
func (c *Cache) do(ctx context.Context, call func(context.Context) error) error {
	if !c.allow(ctx) {
		return cache.ErrUnavailable
	}
	err := call(ctx)
	if err != nil && c.isOutage(ctx, err) {
		c.markDown(err)
	}
	return err
}

// allow says whether a call may go to the server, and starts a probe when one is due.
func (c *Cache) allow(ctx context.Context) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	if !c.degraded || cache.BypassesBreaker(ctx) {
		return true
	}
	if !c.probing && !c.now().Before(c.retryAt) {
		c.probing = true
		c.probes.Add(1)
		go c.probe()
	}
	return false
}

// isOutage tells a server that is gone or unfit from an answer about one key.
func (c *Cache) isOutage(ctx context.Context, err error) bool {
	if ctx.Err() != nil && !cache.BypassesBreaker(ctx) {
		return false // the caller gave up; that says nothing about the server
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

func (c *Cache) markDown(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures++
	c.retryAt = c.now().Add(c.opts.RetryAfter)
	if c.degraded || c.closed {
		return
	}
	c.degraded = true
	c.opts.Metrics.SetDegraded(true)
	c.log.Warn("redis unreachable: reads fall back to the store", "addr", c.addr, "err", err)
}

// probe pings the server; when it answers, runs OnRecover and, if nothing failed
// meanwhile, closes the breaker.
func (c *Cache) probe() {
	defer c.probes.Done()
	ctx, cancel := context.WithTimeout(c.probeCtx, c.opts.DialTimeout+c.opts.ReadTimeout+c.opts.WriteTimeout)
	err := c.client.Ping(ctx).Err()
	cancel()

	c.mu.Lock()
	failuresBefore := c.failures
	c.mu.Unlock()
	if err == nil && c.opts.OnRecover != nil {
		ctx, cancel := context.WithTimeout(cache.WithBreakerBypass(c.probeCtx), recoverTimeout)
		c.opts.OnRecover(ctx)
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		cancel()
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	c.probing = false
	if err != nil || c.failures != failuresBefore || c.closed {
		c.retryAt = c.now().Add(c.opts.RetryAfter)
		return
	}
	c.degraded = false
	c.opts.Metrics.SetDegraded(false)
	c.log.Info("redis back", "addr", c.addr)
}
