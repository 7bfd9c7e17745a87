package cache

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"phoneshop/account"
)

// DefaultSessionTTL is the longest a session lookup is cached.
const DefaultSessionTTL = time.Minute

// DefaultLocalSessionTTL is the life of an authentication held in process. A
// logout or a role change reaches every process at once through the Bus; this
// life bounds the one case the Bus cannot cover, a revocation made by a process
// that could not publish it (it lost Redis while the others kept it): then the
// others serve the old entry for at most 2 s. 2 s is well under the minute that
// the same failure leaves a session in Redis (DefaultSessionTTL), and long enough
// that a shopper's burst of requests (a page and its cart, a checkout and its
// retries) costs one round trip to the cache, not one each.
const DefaultLocalSessionTTL = 2 * time.Second

// DefaultLocalSessions bounds the authentications held in process: about 2 KB
// each (the account's roles, name, e-mail and password hash), so 20 MB at most.
const DefaultLocalSessions = 10_000

// SessionsOptions tune a Sessions; the zero value is usable.
type SessionsOptions struct {
	// TTL bounds how long a lookup is cached (DefaultSessionTTL when zero); a
	// session is never cached past its own expiry.
	TTL time.Duration
	// Bus, when set, turns on the in-process layer of SessionAccount and carries
	// logouts and account changes to every process sharing the cache.
	Bus Bus
	// LocalTTL is the life of an entry of the in-process layer
	// (DefaultLocalSessionTTL when zero); LocalSize bounds their number
	// (DefaultLocalSessions when zero).
	LocalTTL  time.Duration
	LocalSize int
	Metrics   *Metrics // nil: no metrics
	Log       *slog.Logger
	Now       func() time.Time // time.Now when nil
}

// Sessions is an account.Store that caches the two lookups every authenticated
// request makes, SessionByTokenHash and AccountByID, and passes everything else
// through. Not-found answers are never cached, so a new login works at once.
//
// With a Bus it also holds the answer of both lookups, the session and its
// account, as one entry per token hash in process (SessionAccount), so that an
// authenticated request usually costs no round trip at all. A logout
// (DeleteSession) and an account change (UpdateAccount: roles, preferences) evict
// the entry in every process before they return, through the Bus. The entry is
// served only while the Bus is healthy: while this process could miss a
// revocation (its subscription is down, or not yet confirmed), every lookup goes
// to the cache and the store, and the entries held before are dropped. So a
// revocation is never missed for longer than the Bus takes to notice its
// subscription is gone, and never for longer than LocalTTL.
//
// The cached account is the store's, password hash included, so that a hit is
// indistinguishable from a read of the store; the cache server must be as private
// as the database.
type Sessions struct {
	inner   account.Store
	rt      *readThrough
	ttl     time.Duration
	now     func() time.Time
	metrics *Metrics

	bus      Bus                          // nil: no in-process layer
	local    *lru.Cache[string, heldAuth] // by token hash
	localTTL time.Duration
	// localMu orders fills of local against revocations: localEpoch counts the
	// revocations, and a lookup that began before one is not kept, since it may
	// have read what was revoked.
	localMu    sync.Mutex
	localEpoch uint64
}

// heldAuth is one authentication held in process.
type heldAuth struct {
	session account.Session
	account account.Account
	until   time.Time
}

var (
	_ account.Store               = (*Sessions)(nil)
	_ account.SessionAccountStore = (*Sessions)(nil)
)

// NewSessions returns the cached account store over inner.
func NewSessions(inner account.Store, c Cache, opts SessionsOptions) *Sessions {
	if opts.TTL <= 0 {
		opts.TTL = DefaultSessionTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Sessions{inner: inner, rt: newReadThrough(c, "session", opts.Metrics, opts.Log), ttl: opts.TTL, now: opts.Now,
		metrics: opts.Metrics}
	if opts.Bus != nil {
		if opts.LocalTTL <= 0 {
			opts.LocalTTL = DefaultLocalSessionTTL
		}
		if opts.LocalSize <= 0 {
			opts.LocalSize = DefaultLocalSessions
		}
		// Not golang-lru's expirable LRU: its cleanup goroutine never ends (one
		// per shop a test starts); an entry checks its own life when read.
		local, err := lru.New[string, heldAuth](opts.LocalSize)
		if err != nil {
			panic(err) // only for a size <= 0
		}
		s.bus, s.local, s.localTTL = opts.Bus, local, opts.LocalTTL
		opts.Bus.Subscribe(TopicSession, s.forgetSession)
		opts.Bus.Subscribe(TopicAccount, s.forgetAccount)
	}
	return s
}

// Invalidate makes every later lookup go to the store once, and drops what every
// process holds in process (without waiting for the others: it runs when the
// cache recovers, and each process forgets what it held across its own outage
// anyway).
func (s *Sessions) Invalidate(ctx context.Context) error {
	err := s.rt.invalidate(ctx)
	if s.bus != nil {
		if err := s.bus.Announce(ctx, TopicSession, ""); err != nil {
			s.rt.cacheFailed("publish", err)
		}
	}
	return err
}

// SessionAccount implements account.SessionAccountStore: the session of a token
// hash and its account, from the in-process layer while it can be trusted, else
// from SessionByTokenHash and AccountByID.
func (s *Sessions) SessionAccount(ctx context.Context, tokenHash string) (account.Session, account.Account, error) {
	if s.local == nil {
		return s.lookupBoth(ctx, tokenHash)
	}
	if !s.bus.Healthy() {
		s.metrics.localRead(LocalSession, resultBypass)
		return s.lookupBoth(ctx, tokenHash)
	}
	now := s.now()
	if held, ok := s.local.Get(tokenHash); ok && now.Before(held.until) && now.Before(held.session.ExpiresAt) {
		s.metrics.localRead(LocalSession, resultHit)
		return held.session, held.account, nil
	}
	s.metrics.localRead(LocalSession, resultMiss)
	s.localMu.Lock()
	epoch := s.localEpoch
	s.localMu.Unlock()
	sess, a, err := s.lookupBoth(ctx, tokenHash)
	if err != nil {
		return sess, a, err
	}
	s.localMu.Lock()
	// Healthy again: a bus that lost its subscription since the check above has
	// bumped the epoch too, but say it where it matters.
	if s.localEpoch == epoch && s.bus.Healthy() {
		s.local.Add(tokenHash, heldAuth{session: sess, account: a, until: now.Add(s.localTTL)})
	}
	s.localMu.Unlock()
	return sess, a, nil
}

func (s *Sessions) lookupBoth(ctx context.Context, tokenHash string) (account.Session, account.Account, error) {
	sess, err := s.SessionByTokenHash(ctx, tokenHash)
	if err != nil {
		return account.Session{}, account.Account{}, err
	}
	a, err := s.AccountByID(ctx, sess.AccountID)
	if err != nil {
		return account.Session{}, account.Account{}, err
	}
	return sess, a, nil
}

// forgetSession drops the entry of a token hash (every entry for "", and the
// cache's generation is read again: another process may have moved it).
func (s *Sessions) forgetSession(tokenHash string) {
	s.localMu.Lock()
	defer s.localMu.Unlock()
	s.localEpoch++
	if tokenHash == "" {
		s.local.Purge()
		s.rt.forgetGen()
		return
	}
	s.local.Remove(tokenHash)
}

// forgetAccount drops the entries of an account's sessions (every entry for ""):
// a scan of at most LocalSize entries, for a change as rare as a role's.
func (s *Sessions) forgetAccount(id string) {
	s.localMu.Lock()
	defer s.localMu.Unlock()
	s.localEpoch++
	if id == "" {
		s.local.Purge()
		return
	}
	for _, tokenHash := range s.local.Keys() {
		if held, ok := s.local.Peek(tokenHash); ok && held.session.AccountID == id {
			s.local.Remove(tokenHash)
		}
	}
}

// revoke drops key of topic from every process's in-process layer, this one's
// first. A process that does not hear it stops serving it within LocalTTL.
func (s *Sessions) revoke(ctx context.Context, topic, key string) {
	if s.bus == nil {
		return
	}
	if err := s.bus.Publish(ctx, topic, key); err != nil {
		if errors.Is(err, ErrUnavailable) {
			return // the cache said so once already
		}
		s.rt.log.Warn("revocation not pushed to the other processes: they stop serving it within their local life",
			"topic", topic, "life", s.localTTL, "err", err)
	}
}

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
// then the cached lookup, then the in-process entry in every process. A cache failure does not fail the logout: a cache that
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
		if err := s.rt.invalidate(ctx); err != nil && !errors.Is(err, ErrUnavailable) {
			s.rt.log.Warn("session cache not cleared at logout: it is invalidated when the cache recovers", "err", err)
		}
	}
	s.revoke(ctx, TopicSession, tokenHash)
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
// the account just before the update may cache it again, for at most the TTL),
// then the in-process entries of its sessions in every process.
//
// An update that changes nothing the store keeps (the same preference set again)
// evicts and revokes nothing: a revocation reaches every edge and waits for their
// acknowledgements, which a client repeating a no-op must not be able to cause.
func (s *Sessions) UpdateAccount(ctx context.Context, id string, update func(*account.Account) error) (account.Account, error) {
	changed := false
	a, err := s.inner.UpdateAccount(ctx, id, func(a *account.Account) error {
		before := *a
		before.Roles = slices.Clone(a.Roles)
		if err := update(a); err != nil {
			return err
		}
		// The store may run update more than once (compare-and-set): the last
		// run is the one stored.
		changed = !account.SameStored(before, *a)
		return nil
	})
	if err != nil || !changed {
		return a, err
	}
	ctx = context.WithoutCancel(ctx)
	prefix, err := s.rt.prefix(ctx)
	if err == nil {
		err = s.rt.cache.Delete(ctx, prefix+"account:"+id)
	}
	if err != nil {
		s.rt.cacheFailed("delete", err)
		if err := s.rt.invalidate(ctx); err != nil && !errors.Is(err, ErrUnavailable) {
			s.rt.log.Warn("cached account not cleared after an update: it is invalidated when the cache recovers", "err", err)
		}
	}
	s.revoke(ctx, TopicAccount, id)
	return a, nil
}

// RequestVerification implements account.Store: it changes nothing a session or an
// account entry holds.
func (s *Sessions) RequestVerification(ctx context.Context, id string, now time.Time, resendAfter time.Duration) (time.Duration, error) {
	return s.inner.RequestVerification(ctx, id, now, resendAfter)
}

// CreateSession implements account.Store.
func (s *Sessions) CreateSession(ctx context.Context, sess account.Session) error {
	return s.inner.CreateSession(ctx, sess)
}
