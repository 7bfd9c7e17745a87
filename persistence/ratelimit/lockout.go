package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
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
	// AccountFailures failed logins of one account, from any addresses, with no
	// accountWindow between them, put the account under attack (20): from then on
	// an address that never logged in to it is admitted only as the account's
	// attack limiter allows (a few tries a minute, shared by every such address).
	// 0: no account-wide throttle.
	AccountFailures int
}

// Validate checks that p locks anyone out.
func (p LockoutPolicy) Validate() error {
	if p.Failures < 1 || p.Failures > 1000 || p.First < time.Second || p.Max < p.First || p.Max > 24*time.Hour || p.AccountFailures < 0 {
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

// accountWindow is how long an account's failures from all addresses are
// remembered after the last one: an hour without a failed login ends an attack.
const accountWindow = time.Hour

// knownFor is how long an address that logged in to an account stays known to it
// after its last success.
const knownFor = 90 * 24 * time.Hour

// Lockouts throttles password guessing at two levels.
//
// Per (account, client address): after Failures failed logins in a row, that address
// gets no answer for the account until the lock ends; each further failure doubles
// the lock up to Max; a success clears the streak. Another address is not affected,
// so a guesser cannot lock the owner out.
//
// Per account, against guessing from many addresses (a botnet, where each address
// stays under its own lock): once the account has had AccountFailures failed logins
// from anywhere, every address that never logged in to it shares the attack
// limiter's few tries a minute, so the whole botnet gets a slow trickle of guesses.
// An address that logged in to the account before (within knownFor) is not
// throttled: the owner keeps a way in (OWASP's authentication guidance). The owner
// on a new address waits between tries, but is never locked out.
//
// One counter per (account, address) holds the streak; its time to live, reset at
// every failure, tells when the last failure was, so a lock needs no second key.
// One counter per account counts its failures from all addresses, and one per
// (account, address) marks an address known.
type Lockouts struct {
	policy func() LockoutPolicy
	shared Counters // nil: memory only
	local  Counters
	// attack admits the logins of an account under attack from addresses it does
	// not know, keyed by account (nil: no account-wide throttle).
	attack *Limiter
	now    func() time.Time
	log    *slog.Logger
}

// NewLockouts returns the lockouts of policy (read at every call: a live setting),
// counted in shared (nil: process memory only). attack is the rate at which an
// account under attack admits logins from addresses it does not know (nil: none
// is throttled per account).
func NewLockouts(policy func() LockoutPolicy, shared Counters, attack *Limiter, log *slog.Logger) *Lockouts {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Lockouts{policy: policy, shared: shared, local: NewMemory(localKeys), attack: attack, now: time.Now, log: log}
}

func hashedKey(kind string, parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return kind + ":" + hex.EncodeToString(sum[:16])
}

func lockoutKey(account, addr string) string { return hashedKey("login-failures", account, addr) }

func accountFailuresKey(account string) string { return hashedKey("login-account-failures", account) }

func knownKey(account, addr string) string { return hashedKey("login-known", account, addr) }

// Locked returns how long addr must wait before it may try to log in to account
// (0: it may try now). An account under attack spends one of its tries for an
// address it does not know on every call that returns 0.
func (l *Lockouts) Locked(ctx context.Context, account, addr string) time.Duration {
	if n, ttl, err := l.get(ctx, lockoutKey(account, addr)); err == nil && n > 0 {
		lastFailure := l.now().Add(ttl - streakWindow)
		if wait := lastFailure.Add(l.policy().lockFor(n)).Sub(l.now()); wait > 0 {
			return wait
		}
	}
	threshold := l.policy().AccountFailures
	if l.attack == nil || threshold < 1 {
		return 0
	}
	if n, _, err := l.get(ctx, accountFailuresKey(account)); err != nil || n < int64(threshold) {
		return 0
	}
	if known, _, err := l.get(ctx, knownKey(account, addr)); err == nil && known > 0 {
		return 0
	}
	if ok, wait := l.attack.Allow(ctx, account); !ok {
		return max(wait, time.Second)
	}
	return 0
}

// Failed counts a failed login of addr on account; it returns the lock it started
// for addr (0: none yet).
func (l *Lockouts) Failed(ctx context.Context, account, addr string) time.Duration {
	if l.attack != nil {
		_, _ = l.incr(ctx, accountFailuresKey(account), accountWindow)
	}
	n, err := l.incr(ctx, lockoutKey(account, addr), streakWindow)
	if err != nil {
		l.log.Error("counting a failed login failed", "err", err)
		return 0
	}
	return l.policy().lockFor(n)
}

// Succeeded clears the streak of addr on account, and marks addr known to it.
func (l *Lockouts) Succeeded(ctx context.Context, account, addr string) {
	key := lockoutKey(account, addr)
	if l.shared != nil {
		if err := l.shared.Delete(ctx, key); err != nil {
			l.log.Debug("shared login-failure counter failed", "err", err)
		}
	}
	_ = l.local.Delete(ctx, key)
	if l.attack != nil {
		if _, err := l.incr(ctx, knownKey(account, addr), knownFor); err != nil {
			l.log.Error("marking an address known to an account failed", "err", err)
		}
	}
}

// incr counts in the shared counters, or in memory while they fail.
func (l *Lockouts) incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	if l.shared != nil {
		n, err := l.shared.Incr(ctx, key, ttl)
		if err == nil {
			return n, nil
		}
		l.log.Debug("shared login-failure counter failed; counting in memory", "err", err)
	}
	return l.local.Incr(ctx, key, ttl)
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
