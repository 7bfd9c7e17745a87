package edge

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"phoneshop/account"
)

// RateLimiter limits one kind of request per client address (persistence/ratelimit).
type RateLimiter interface {
	// Allow counts one request of key; false with the wait when key is over its quota.
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration)
}

// LoginLockouts throttles password guessing per (account, client address)
// (persistence/ratelimit.Lockouts).
type LoginLockouts interface {
	Locked(ctx context.Context, account, addr string) time.Duration
	Failed(ctx context.Context, account, addr string) time.Duration
	Succeeded(ctx context.Context, account, addr string)
}

// Limits are the edge's defences against bursts and abuse; a nil field is off.
type Limits struct {
	// Register, Login, Checkout and Unsubscribe count per client address.
	Register, Login, Checkout, Unsubscribe RateLimiter
	// Account counts every request of a logged-in account, Preferences its
	// changes of preferences; both per account.
	Account, Preferences RateLimiter
	Lockouts             LoginLockouts
	// TrustedProxies are the peers whose X-Forwarded-For names the client.
	TrustedProxies []netip.Prefix
	// IPv6Prefix is the prefix length that groups IPv6 clients into one address
	// (0: 64).
	IPv6Prefix int
}

// rateLimited is the 429 of API.md, with the wait in Retry-After.
func rateLimited(retryAfter time.Duration, msg string) *apiError {
	return &apiError{Status: http.StatusTooManyRequests, Code: codeRateLimited, Message: msg,
		RetryAfter: retryAfter, Details: map[string]any{"retry_after_seconds": retrySeconds(retryAfter)}}
}

// retrySeconds rounds a wait up to whole seconds, at least 1 (Retry-After's unit).
func retrySeconds(d time.Duration) int {
	return max(int(math.Ceil(d.Seconds())), 1)
}

// limit refuses a request over its client address's quota of lim.
func (s *server) limit(lim RateLimiter) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if lim == nil {
			return c.Next()
		}
		if ok, wait := lim.Allow(c.UserContext(), s.clientKey(c)); !ok {
			return rateLimited(wait, "too many requests from this address; retry after the time in Retry-After")
		}
		return c.Next()
	}
}

// limitAccount refuses a request over the caller's quota of lim (after authenticate).
func (s *server) limitAccount(lim RateLimiter) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if lim == nil {
			return c.Next()
		}
		if ok, wait := lim.Allow(c.UserContext(), caller(c).ID); !ok {
			return rateLimited(wait, "too many requests from this account; retry after the time in Retry-After")
		}
		return c.Next()
	}
}

// clientKey is what limits and lock-outs count a client by: its address, or for
// IPv6 the prefix it is in (a /64 by default). One host or home network usually
// holds a whole /64 and can send from any address in it, so counting addresses
// would give it 2^64 quotas.
func (s *server) clientKey(c *fiber.Ctx) string {
	a := s.clientAddr(c)
	if !a.Is6() {
		return a.String()
	}
	bits := s.Limits.IPv6Prefix
	if bits == 0 {
		bits = 64
	}
	p, err := a.WithZone("").Prefix(bits)
	if err != nil {
		return a.String()
	}
	return p.String()
}

// clientAddr is the address a request comes from: the socket's peer, or, when the
// peer is a trusted proxy, the last address in X-Forwarded-For that is not one of
// ours. Entries to the left of that are the client's own words and are ignored, so
// a client cannot choose its address by sending the header itself.
func (s *server) clientAddr(c *fiber.Ctx) netip.Addr {
	peer, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	peer = peer.Unmap()
	if !s.trusted(peer) {
		return peer
	}
	xff := c.Request().Header.PeekAll(fiber.HeaderXForwardedFor)
	var hops []string
	for _, h := range xff {
		hops = append(hops, strings.Split(string(h), ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer // a mangled chain: believe nothing beyond the proxy
		}
		if a = a.Unmap(); !s.trusted(a) {
			return a
		}
	}
	return peer
}

func (s *server) trusted(a netip.Addr) bool {
	for _, p := range s.Limits.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// loginGuard is what the login handler asks before and tells after checking a
// password: a locked-out address gets 429 without any hashing.
type loginGuard struct {
	s       *server
	c       *fiber.Ctx
	account string
	addr    string
}

func (s *server) loginGuard(c *fiber.Ctx, email string) loginGuard {
	e := strings.ToLower(strings.TrimSpace(email))
	return loginGuard{s: s, c: c, account: e, addr: s.clientKey(c)}
}

func (g loginGuard) check() error {
	if g.s.Limits.Lockouts == nil {
		return nil
	}
	if wait := g.s.Limits.Lockouts.Locked(g.c.UserContext(), g.account, g.addr); wait > 0 {
		return rateLimited(wait, "too many failed logins for this account; retry after the time in Retry-After")
	}
	return nil
}

// done records the outcome of a login.
func (g loginGuard) done(err error) {
	if g.s.Limits.Lockouts == nil {
		return
	}
	switch {
	case err == nil:
		g.s.Limits.Lockouts.Succeeded(g.c.UserContext(), g.account, g.addr)
	case errors.Is(err, account.ErrBadCredentials):
		g.s.Limits.Lockouts.Failed(g.c.UserContext(), g.account, g.addr)
	}
}

// retryAfterHeader sets Retry-After in whole seconds.
func retryAfterHeader(c *fiber.Ctx, d time.Duration) {
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(retrySeconds(d)))
}
