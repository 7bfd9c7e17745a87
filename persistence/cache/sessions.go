package cache

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"phoneshop/account"
)

// DefaultSessionTTL is the longest a session lookup is cached.
const DefaultSessionTTL = time.Minute

// SessionsOptions tune a Sessions; the zero value is usable.
type SessionsOptions struct {
	// TTL bounds how long a lookup is cached (DefaultSessionTTL when zero); a
	// session is never cached past its own expiry.
	TTL     time.Duration
	Metrics *Metrics // nil: no metrics
	Log     *slog.Logger
	Now     func() time.Time // time.Now when nil
}

// Sessions is an account.Store that caches the two lookups every authenticated
// request makes, SessionByTokenHash and AccountByID, and passes everything else
// through. Not-found answers are never cached, so a new login works at once.
//
// The cached account is the store's, password hash included, so that a hit is
// indistinguishable from a read of the store; the cache server must be as private
// as the database.
type Sessions struct {
	inner account.Store
	rt    *readThrough
	ttl   time.Duration
	now   func() time.Time
}

var _ account.Store = (*Sessions)(nil)

// NewSessions returns the cached account store over inner.
func NewSessions(inner account.Store, c Cache, opts SessionsOptions) *Sessions {
	if opts.TTL <= 0 {
		opts.TTL = DefaultSessionTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Sessions{inner: inner, rt: newReadThrough(c, "session", opts.Metrics, opts.Log), ttl: opts.TTL, now: opts.Now}
}

// Invalidate makes every later lookup go to the store once.
func (s *Sessions) Invalidate(ctx context.Context) error { return s.rt.invalidate(ctx) }

func tokenKey(tokenHash string) string   { return "token:" + tokenHash }
func revokedKey(tokenHash string) string { return "revoked:" + tokenHash }

// SessionByTokenHash implements account.Store. A session is cached until its own
// expiry at the latest, and a cached session past its expiry is never served.
func (s *Sessions) SessionByTokenHash(ctx context.Context, tokenHash string) (account.Session, error) {
	c := codec[account.Session]{
		encode: func(v account.Session) ([]byte, error) { return json.Marshal(v) },
		decode: func(b []byte) (account.Session, error) {
			var v account.Session
			err := json.Unmarshal(b, &v)
			return v, err
		},
		fresh: func(v account.Session) bool { return s.now().Before(v.ExpiresAt) },
		ttl:   func(v account.Session) time.Duration { return min(s.ttl, v.ExpiresAt.Sub(s.now())) },
		afterFill: func(ctx context.Context, prefix string) {
			s.dropIfRevoked(ctx, prefix, tokenHash)
		},
	}
	return cachedRead(ctx, s.rt, tokenKey(tokenHash), c, func(ctx context.Context) (account.Session, error) {
		return s.inner.SessionByTokenHash(ctx, tokenHash)
	})
}

// dropIfRevoked closes the race between a lookup that read the session before a
// logout and cached it after the logout deleted the key: DeleteSession writes a
// revocation mark before deleting the key, and a lookup checks for the mark after
// caching, so one of the two always sees the other. (The session that lookup
// returns was live when it read the store.) A cache failure here is covered by the
// breaker's recovery, which invalidates the whole generation.
func (s *Sessions) dropIfRevoked(ctx context.Context, prefix, tokenHash string) {
	_, revoked, err := s.rt.cache.Get(ctx, prefix+revokedKey(tokenHash))
	if err != nil {
		s.rt.cacheFailed("get", err)
		return
	}
	if revoked {
		if err := s.rt.cache.Delete(ctx, prefix+tokenKey(tokenHash)); err != nil {
			s.rt.cacheFailed("delete", err)
		}
	}
}

// AccountByID implements account.Store.
func (s *Sessions) AccountByID(ctx context.Context, id string) (account.Account, error) {
	return cachedRead(ctx, s.rt, "account:"+id, jsonCodec[account.Account](s.ttl), func(ctx context.Context) (account.Account, error) {
		return s.inner.AccountByID(ctx, id)
	})
}

// DeleteSession implements account.Store: the store first (that is the logout),
// then the cached lookup. A cache failure does not fail the logout: a cache that
// failed is invalidated when it recovers (persistence/redis OnRecover), and until
// then no lookup is served from it.
func (s *Sessions) DeleteSession(ctx context.Context, tokenHash string) error {
	if err := s.inner.DeleteSession(ctx, tokenHash); err != nil {
		return err
	}
	// The logout is done; the caller leaving must not leave the cache behind.
	ctx = context.WithoutCancel(ctx)
	err := s.forget(ctx, tokenHash)
	if err != nil {
		s.rt.cacheFailed("delete", err)
		if err := s.Invalidate(ctx); err != nil && !errors.Is(err, ErrUnavailable) {
			s.rt.log.Warn("session cache not cleared at logout: it is invalidated when the cache recovers", "err", err)
		}
	}
	return nil
}

func (s *Sessions) forget(ctx context.Context, tokenHash string) error {
	prefix, err := s.rt.prefix(ctx)
	if err != nil {
		return err
	}
	if err := s.rt.cache.Set(ctx, prefix+revokedKey(tokenHash), []byte("1"), s.ttl+time.Minute); err != nil {
		return err
	}
	return s.rt.cache.Delete(ctx, prefix+tokenKey(tokenHash))
}

// CreateAccount implements account.Store.
func (s *Sessions) CreateAccount(ctx context.Context, a account.Account) error {
	return s.inner.CreateAccount(ctx, a)
}

// AccountByEmail implements account.Store; logins always read the store.
func (s *Sessions) AccountByEmail(ctx context.Context, email string) (account.Account, error) {
	return s.inner.AccountByEmail(ctx, email)
}

// UpdateAccount implements account.Store: the store, then the cached account, so
// that a role taken away stops working at once on this cache (a lookup that read
// the account just before the update may cache it again, for at most the TTL).
func (s *Sessions) UpdateAccount(ctx context.Context, id string, update func(*account.Account) error) (account.Account, error) {
	a, err := s.inner.UpdateAccount(ctx, id, update)
	if err != nil {
		return a, err
	}
	ctx = context.WithoutCancel(ctx)
	prefix, err := s.rt.prefix(ctx)
	if err == nil {
		err = s.rt.cache.Delete(ctx, prefix+"account:"+id)
	}
	if err != nil {
		s.rt.cacheFailed("delete", err)
		if err := s.Invalidate(ctx); err != nil && !errors.Is(err, ErrUnavailable) {
			s.rt.log.Warn("cached account not cleared after an update: it is invalidated when the cache recovers", "err", err)
		}
	}
	return a, nil
}

// CreateSession implements account.Store.
func (s *Sessions) CreateSession(ctx context.Context, sess account.Session) error {
	return s.inner.CreateSession(ctx, sess)
}
