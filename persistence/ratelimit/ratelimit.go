// Package ratelimit refuses abuse: per-key request rates (GCRA) and failed-login
// lockouts. Both keep their state in Redis when the shop has one, so that every edge
// counts the same requests (Shared), and fall back to process memory (GCRA from
// github.com/throttled/throttled) when Redis is absent or down: a limit is then per
// edge, never off.
package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/throttled/throttled/v2"
	"github.com/throttled/throttled/v2/store/memstore"
)

// Quota is a request rate with a burst: Burst requests at once, then PerMinute
// spread over each minute.
type Quota struct {
	PerMinute int
	Burst     int
}

// String renders q as "PerMinute/min, burst Burst".
func (q Quota) String() string { return fmt.Sprintf("%d/min, burst %d", q.PerMinute, q.Burst) }

// Validate checks that q can limit anything.
func (q Quota) Validate() error {
	if q.PerMinute < 1 || q.PerMinute > 1_000_000 || q.Burst < 1 || q.Burst > 1_000_000 {
		return fmt.Errorf("rate %s: want per-minute and burst from 1 to 1000000", q)
	}
	return nil
}

// localKeys bounds the keys the in-process store keeps (least recently used go first).
const localKeys = 100_000

// Shared is rate-limit state every edge sees (Redis). Allow counts one request of
// key against q in one atomic step: many edges, and many requests of one key (a
// flash sale's shoppers behind one address), never race on it.
type Shared interface {
	Allow(ctx context.Context, key string, q Quota) (ok bool, retryAfter time.Duration, err error)
}

// Limiter limits the rate of one kind of request per key (a client address). Its
// quota is read at every call, so that a live setting applies at once.
type Limiter struct {
	name   string
	quota  func() Quota
	shared Shared // nil: process memory only
	local  throttled.GCRAStoreCtx
	log    *slog.Logger

	mu      sync.Mutex
	current Quota
	localRL *throttled.GCRARateLimiterCtx
}

// NewLimiter returns a limiter named name (the key prefix of its state). shared is
// the state every edge sees (Redis); nil keeps the state in process memory.
func NewLimiter(name string, quota func() Quota, shared Shared, log *slog.Logger) (*Limiter, error) {
	local, err := memstore.NewCtx(localKeys)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Limiter{name: name, quota: quota, shared: shared, local: local, log: log}
	if _, _, err := l.limiters(); err != nil {
		return nil, err
	}
	return l, nil
}

// limiters returns the current quota and the in-memory GCRA limiter of it, rebuilt
// when the quota changed.
func (l *Limiter) limiters() (Quota, *throttled.GCRARateLimiterCtx, error) {
	q := l.quota()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.localRL != nil && q == l.current {
		return q, l.localRL, nil
	}
	if err := q.Validate(); err != nil {
		return q, nil, err
	}
	// throttled counts MaxBurst on top of the first request.
	rq := throttled.RateQuota{MaxRate: throttled.PerMin(q.PerMinute), MaxBurst: q.Burst - 1}
	local, err := throttled.NewGCRARateLimiterCtx(l.local, rq)
	if err != nil {
		return q, nil, err
	}
	l.localRL, l.current = local, q
	return q, local, nil
}

// Allow counts one request of key. It returns false and how long to wait when the
// key is over its quota. It never fails: when the shared store does not answer, the
// request is counted in process memory.
func (l *Limiter) Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration) {
	q, local, err := l.limiters()
	if err != nil { // a quota that passed validation when it was set; cannot happen
		l.log.Error("rate limiter misconfigured; request allowed", "limiter", l.name, "err", err)
		return true, 0
	}
	key = l.name + ":" + key
	if l.shared != nil {
		ok, retryAfter, err := l.shared.Allow(ctx, key, q)
		if err == nil {
			return ok, retryAfter
		}
		l.log.Debug("shared rate limit store failed; counting in memory", "limiter", l.name, "err", err)
	}
	limited, res, err := local.RateLimitCtx(ctx, key, 1)
	if err != nil {
		l.log.Error("in-memory rate limit failed; request allowed", "limiter", l.name, "err", err)
		return true, 0
	}
	return !limited, res.RetryAfter
}
