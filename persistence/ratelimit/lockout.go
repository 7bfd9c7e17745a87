package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"
)

// Counters is where login failures are counted: atomic counters that expire. Redis
// implements it for every edge at once (persistence/redis); Memory in process.
type Counters interface {
	// Incr adds one to key, sets key to expire ttl from now, and returns the count.
	Incr(ctx context.Context, key string, ttl time.Duration) (int64, error)
	// Get returns the count of key (0 when missing) and how long key has to live.
	Get(ctx context.Context, key string) (int64, time.Duration, error)
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// LockoutPolicy says when failed logins lock an address out of an account.
type LockoutPolicy struct {
	// Failures in a row that lock (10).
	Failures int
	// First is the first lock's length (1m); each further failure doubles it ...
	First time.Duration
	// ... up to Max (15m).
	Max time.Duration
}

// Validate checks that p locks anyone out.
func (p LockoutPolicy) Validate() error {
	if p.Failures < 1 || p.Failures > 1000 || p.First < time.Second || p.Max < p.First || p.Max > 24*time.Hour {
		return fmt.Errorf("login lockout %d failures, %s up to %s: want 1..1000 failures and 1s <= first <= max <= 24h",
			p.Failures, p.First, p.Max)
	}
	return nil
}

// lockFor is how long the failures-th failure in a row locks (0: not yet).
func (p LockoutPolicy) lockFor(failures int64) time.Duration {
	if failures < int64(p.Failures) {
		return 0
	}
	d := p.First
	for i := int64(p.Failures); i < failures && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}

// streakWindow is how long a run of failures is remembered after its last one: a
// day, so that a slow guesser meets the longest lock.
const streakWindow = 24 * time.Hour

// Lockouts throttles password guessing per (account, client address): after
// Failures failed logins in a row, that address gets no answer for the account
// until the lock ends; each further failure doubles the lock up to Max; a success
// clears the streak. Another address is not affected, so a guesser cannot lock the
// owner out.
//
// One counter per (account, address) holds the streak; its time to live, reset at
// every failure, tells when the last failure was, so a lock needs no second key.
type Lockouts struct {
	policy func() LockoutPolicy
	shared Counters // nil: memory only
	local  Counters
	now    func() time.Time
	log    *slog.Logger
}

// NewLockouts returns the lockouts of policy (read at every call: a live setting),
// counted in shared (nil: process memory only).
func NewLockouts(policy func() LockoutPolicy, shared Counters, log *slog.Logger) *Lockouts {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Lockouts{policy: policy, shared: shared, local: NewMemory(localKeys), now: time.Now, log: log}
}

func lockoutKey(account, addr string) string {
	sum := sha256.Sum256([]byte(account + "\x00" + addr))
	return "login-failures:" + hex.EncodeToString(sum[:16])
}

// Locked returns how long addr stays locked out of account (0: it may try).
func (l *Lockouts) Locked(ctx context.Context, account, addr string) time.Duration {
	key := lockoutKey(account, addr)
	n, ttl, err := l.get(ctx, key)
	if err != nil || n == 0 {
		return 0
	}
	lastFailure := l.now().Add(ttl - streakWindow)
	return max(lastFailure.Add(l.policy().lockFor(n)).Sub(l.now()), 0)
}

// Failed counts a failed login of addr on account; it returns the lock it started
// (0: none yet).
func (l *Lockouts) Failed(ctx context.Context, account, addr string) time.Duration {
	key := lockoutKey(account, addr)
	var n int64
	var err error
	if l.shared != nil {
		if n, err = l.shared.Incr(ctx, key, streakWindow); err == nil {
			return l.policy().lockFor(n)
		}
		l.log.Debug("shared login-failure counter failed; counting in memory", "err", err)
	}
	if n, err = l.local.Incr(ctx, key, streakWindow); err != nil {
		l.log.Error("counting a failed login failed", "err", err)
		return 0
	}
	return l.policy().lockFor(n)
}

// Succeeded clears the streak of addr on account.
func (l *Lockouts) Succeeded(ctx context.Context, account, addr string) {
	key := lockoutKey(account, addr)
	if l.shared != nil {
		if err := l.shared.Delete(ctx, key); err != nil {
			l.log.Debug("shared login-failure counter failed", "err", err)
		}
	}
	_ = l.local.Delete(ctx, key)
}

// get reads the shared counter, or the local one when the shared store fails; the
// larger streak wins, so that failures counted during an outage still lock.
func (l *Lockouts) get(ctx context.Context, key string) (int64, time.Duration, error) {
	n, ttl, err := l.local.Get(ctx, key)
	if err != nil || l.shared == nil {
		return n, ttl, err
	}
	sn, sttl, serr := l.shared.Get(ctx, key)
	if serr != nil || sn < n {
		return n, ttl, nil
	}
	return sn, sttl, nil
}
