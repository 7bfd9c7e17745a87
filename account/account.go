// Package account is shoppers' and staff's accounts and their sessions: argon2id
// password hashes, opaque random session tokens stored only as hashes, and roles.
package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/alexedwards/argon2id"
)

// Sentinel errors of the account domain.
var (
	ErrEmailTaken      = errors.New("account: email already registered")
	ErrNotFound        = errors.New("account: not found")
	ErrBadCredentials  = errors.New("account: wrong email or password")
	ErrInvalid         = errors.New("account: invalid")
	ErrSessionNotFound = errors.New("account: session not found or expired")
)

// Password limits: at least 10 characters (API.md); at most 256 so that hashing
// cost stays bounded.
const (
	MinPasswordLen = 10
	MaxPasswordLen = 256
	MaxNameLen     = 100
	MaxEmailLen    = 254
)

// Role grants access to a door of the shop.
type Role string

// The roles of API.md.
const (
	RoleShopper   Role = "shopper"
	RoleOps       Role = "ops"
	RoleMarketing Role = "marketing"
	RoleAdmin     Role = "admin"
)

// Account is one registered person.
type Account struct {
	ID           string
	Email        string
	Name         string
	Roles        []Role
	PasswordHash string
	CreatedAt    time.Time
	// PromoEmails is the account's consent to campaign e-mail: false until they
	// opt in. Order e-mail is sent whatever it says.
	PromoEmails bool
	// EmailVerified says the owner proved the address theirs (a verification
	// link): campaign e-mail goes only to verified addresses.
	EmailVerified bool
}

// SameStored reports whether a and b agree on everything an update stores (see
// Store.UpdateAccount): an update from a to b changes nothing.
func SameStored(a, b Account) bool {
	return slices.Equal(a.Roles, b.Roles) && a.PromoEmails == b.PromoEmails && a.EmailVerified == b.EmailVerified
}

// Has reports whether the account may act in role; admin may act in every role.
func (a Account) Has(role Role) bool {
	return slices.Contains(a.Roles, role) || slices.Contains(a.Roles, RoleAdmin)
}

// Session is a login. Only the hash of its token is stored.
type Session struct {
	TokenHash string
	AccountID string
	ExpiresAt time.Time
	CreatedAt time.Time
}

// Store persists accounts and sessions. CreateAccount returns ErrEmailTaken for a
// duplicate email; lookups return ErrNotFound / ErrSessionNotFound. An account
// created with an unverified address has its first verification mail queued with
// it (an outbox event in the same transaction).
type Store interface {
	CreateAccount(ctx context.Context, a Account) error
	AccountByEmail(ctx context.Context, email string) (Account, error)
	AccountByID(ctx context.Context, id string) (Account, error)
	CreateSession(ctx context.Context, s Session) error
	SessionByTokenHash(ctx context.Context, tokenHash string) (Session, error)
	DeleteSession(ctx context.Context, tokenHash string) error
	// UpdateAccount applies update to the stored account and stores the result
	// unless update fails; it returns the account as stored. ErrNotFound for an
	// unknown id. Only roles, the e-mail preference and the verification are stored
	// from the result. An update that would leave the shop with no admin is
	// refused with ErrLastAdmin, checked in the transaction that writes it.
	UpdateAccount(ctx context.Context, id string, update func(*Account) error) (Account, error)
	// RequestVerification queues a verification mail for the account (an outbox
	// event, in one transaction with the time it was asked for), unless the last
	// one was asked for less than resendAfter before now: then it returns how long
	// is left and queues nothing. ErrAlreadyVerified, ErrNotFound.
	RequestVerification(ctx context.Context, id string, now time.Time, resendAfter time.Duration) (wait time.Duration, err error)
}

// SessionAccountStore is a Store that answers both lookups of Authenticate, a
// session and its account, in one call (persistence/cache holds them as one entry
// in process). Authenticate uses it when its store has it; its errors are those
// of SessionByTokenHash and AccountByID.
type SessionAccountStore interface {
	SessionAccount(ctx context.Context, tokenHash string) (Session, Account, error)
}

// SessionPurger deletes the sessions that expired before now, and says how many.
type SessionPurger interface {
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error)
}

// PurgeExpiredSessions deletes expired sessions every interval until ctx ends. An
// expired session already fails Authenticate; the purge only keeps the table from
// growing with every login ever made.
func PurgeExpiredSessions(ctx context.Context, p SessionPurger, interval time.Duration, now func() time.Time, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		callCtx, cancel := context.WithTimeout(ctx, time.Minute)
		n, err := p.DeleteExpiredSessions(callCtx, now())
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Warn("purging expired sessions failed; trying again later", "err", err)
		case n > 0:
			log.Info("expired sessions purged", "sessions", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Service registers accounts and runs sessions.
type Service struct {
	store      Store
	hashParams *argon2id.Params
	sessionTTL time.Duration
	now        func() time.Time
	// dummyHash is compared against when an email is unknown, so that a login
	// takes as long whether or not the account exists.
	dummyHash string
	pool      *hashPool
}

// HashParams are the argon2id cost parameters.
type HashParams struct {
	MemoryKiB   uint32
	Iterations  uint32
	Parallelism uint8
}

// NewService returns an account service. sessionTTL is how long a login lasts;
// hashing bounds the password hashing done at once.
func NewService(store Store, hp HashParams, hashing Hashing, sessionTTL time.Duration, now func() time.Time) (*Service, error) {
	params := &argon2id.Params{Memory: hp.MemoryKiB, Iterations: hp.Iterations, Parallelism: hp.Parallelism, SaltLength: 16, KeyLength: 32}
	dummy, err := argon2id.CreateHash("not a password anyone has", params)
	if err != nil {
		return nil, fmt.Errorf("account: hash params: %w", err)
	}
	return &Service{store: store, hashParams: params, sessionTTL: sessionTTL, now: now, dummyHash: dummy,
		pool: newHashPool(hashing)}, nil
}

// NormalizeEmail validates an e-mail address and returns its canonical (lower-case) form.
func NormalizeEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	addr, err := mail.ParseAddress(e)
	if err != nil || addr.Address != e || len(e) > MaxEmailLen || !strings.Contains(e[strings.LastIndexByte(e, '@')+1:], ".") {
		return "", fmt.Errorf("%w: email is not a valid address", ErrInvalid)
	}
	return e, nil
}

func validatePassword(pw string) error {
	n := utf8.RuneCountInString(pw)
	if n < MinPasswordLen {
		return fmt.Errorf("%w: password must have at least %d characters", ErrInvalid, MinPasswordLen)
	}
	if n > MaxPasswordLen {
		return fmt.Errorf("%w: password must have at most %d characters", ErrInvalid, MaxPasswordLen)
	}
	return nil
}

// NewAccount is a sign-up.
type NewAccount struct {
	Email, Password, Name string
	// PromoEmails opts in to campaign e-mail at sign-up.
	PromoEmails bool
	// Roles are given besides shopper, which every account holds.
	Roles []Role
	// Verified: the address is known to be the owner's (the admin of the
	// configuration); no verification mail is sent.
	Verified bool
}

// Register creates an account with the given roles (shopper always included).
func (s *Service) Register(ctx context.Context, email, password, name string, roles ...Role) (Account, error) {
	return s.RegisterAccount(ctx, NewAccount{Email: email, Password: password, Name: name, Roles: roles})
}

// RegisterAccount creates the account n describes.
func (s *Service) RegisterAccount(ctx context.Context, n NewAccount) (Account, error) {
	email, password, name, roles := n.Email, n.Password, n.Name, n.Roles
	email, err := NormalizeEmail(email)
	if err != nil {
		return Account{}, err
	}
	if err := validatePassword(password); err != nil {
		return Account{}, err
	}
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > MaxNameLen {
		return Account{}, fmt.Errorf("%w: name must have 1 to %d characters", ErrInvalid, MaxNameLen)
	}
	// A taken email is found without hashing: a burst of retries of one sign-up
	// costs no worker time.
	if _, err := s.store.AccountByEmail(ctx, email); err == nil {
		return Account{}, ErrEmailTaken
	} else if !errors.Is(err, ErrNotFound) {
		return Account{}, err
	}
	hash, err := s.createHash(ctx, password)
	if err != nil {
		return Account{}, err
	}
	all := []Role{RoleShopper}
	for _, r := range roles {
		if !slices.Contains(all, r) {
			all = append(all, r)
		}
	}
	a := Account{ID: "acc_" + randomHex(12), Email: email, Name: name, Roles: all, PasswordHash: hash, CreatedAt: s.now(),
		PromoEmails: n.PromoEmails, EmailVerified: n.Verified}
	if err := s.store.CreateAccount(ctx, a); err != nil {
		return Account{}, err
	}
	return a, nil
}

// EnsureAdmin creates the first admin account from configuration, unless an account
// with that email exists already. Its address is the operator's word: verified.
func (s *Service) EnsureAdmin(ctx context.Context, email, password string) error {
	_, err := s.RegisterAccount(ctx, NewAccount{Email: email, Password: password, Name: "Administrator",
		Roles: []Role{RoleAdmin}, Verified: true})
	if errors.Is(err, ErrEmailTaken) {
		return nil
	}
	return err
}

// Login checks the credentials and opens a session; the token is returned once and
// never stored.
func (s *Service) Login(ctx context.Context, email, password string) (token string, expiresAt time.Time, err error) {
	email = strings.ToLower(strings.TrimSpace(email))
	a, err := s.store.AccountByEmail(ctx, email)
	if errors.Is(err, ErrNotFound) {
		if _, err := s.comparePassword(ctx, password, s.dummyHash); err != nil {
			return "", time.Time{}, err // overloaded: the client retries, as for a known email
		}
		return "", time.Time{}, ErrBadCredentials
	}
	if err != nil {
		return "", time.Time{}, err
	}
	ok, err := s.comparePassword(ctx, password, a.PasswordHash)
	if err != nil {
		return "", time.Time{}, err
	}
	if !ok {
		return "", time.Time{}, ErrBadCredentials
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", time.Time{}, err
	}
	token = base64.RawURLEncoding.EncodeToString(raw)
	now := s.now()
	sess := Session{TokenHash: HashToken(token), AccountID: a.ID, ExpiresAt: now.Add(s.sessionTTL), CreatedAt: now}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return "", time.Time{}, err
	}
	return token, sess.ExpiresAt, nil
}

// Authenticate returns the account a live session token belongs to.
func (s *Service) Authenticate(ctx context.Context, token string) (Account, error) {
	if token == "" || len(token) > 128 {
		return Account{}, ErrSessionNotFound
	}
	if both, ok := s.store.(SessionAccountStore); ok {
		sess, a, err := both.SessionAccount(ctx, HashToken(token))
		if errors.Is(err, ErrNotFound) {
			return Account{}, ErrSessionNotFound
		}
		if err != nil {
			return Account{}, err
		}
		if !s.now().Before(sess.ExpiresAt) {
			return Account{}, ErrSessionNotFound
		}
		return a, nil
	}
	sess, err := s.store.SessionByTokenHash(ctx, HashToken(token))
	if err != nil {
		return Account{}, err
	}
	if !s.now().Before(sess.ExpiresAt) {
		return Account{}, ErrSessionNotFound
	}
	a, err := s.store.AccountByID(ctx, sess.AccountID)
	if errors.Is(err, ErrNotFound) {
		return Account{}, ErrSessionNotFound
	}
	return a, err
}

// ParseRole reads a role's name; ErrInvalid for a name that is none.
func ParseRole(name string) (Role, error) {
	switch r := Role(name); r {
	case RoleShopper, RoleOps, RoleMarketing, RoleAdmin:
		return r, nil
	}
	return "", fmt.Errorf("%w: unknown role %q (shopper, ops, marketing or admin)", ErrInvalid, name)
}

// ErrOwnAdmin refuses an admin's removal of their own admin role: the shop could be
// left with no one to give it back.
var ErrOwnAdmin = errors.New("account: an admin cannot remove their own admin role")

// ErrLastAdmin refuses a change of roles that would leave the shop with no admin
// (two admins demoting each other at once: the second is refused).
var ErrLastAdmin = errors.New("account: the shop would have no admin left")

// SetRoles replaces the staff roles of account id, as actor (an admin) asks;
// shopper is always kept.
func (s *Service) SetRoles(ctx context.Context, actor Account, id string, roles []Role) (Account, error) {
	all := []Role{RoleShopper}
	for _, r := range roles {
		if _, err := ParseRole(string(r)); err != nil {
			return Account{}, err
		}
		if !slices.Contains(all, r) {
			all = append(all, r)
		}
	}
	if id == actor.ID && actor.Has(RoleAdmin) && !slices.Contains(all, RoleAdmin) {
		return Account{}, ErrOwnAdmin
	}
	return s.store.UpdateAccount(ctx, id, func(a *Account) error {
		a.Roles = all
		return nil
	})
}

// SetPromoEmails records an account's consent to campaign e-mail.
func (s *Service) SetPromoEmails(ctx context.Context, id string, on bool) (Account, error) {
	return s.store.UpdateAccount(ctx, id, func(a *Account) error {
		a.PromoEmails = on
		return nil
	})
}

// ByID finds an account by its id.
func (s *Service) ByID(ctx context.Context, id string) (Account, error) {
	return s.store.AccountByID(ctx, id)
}

// ByEmail finds an account by its e-mail address (staff look-ups).
func (s *Service) ByEmail(ctx context.Context, email string) (Account, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return Account{}, err
	}
	return s.store.AccountByEmail(ctx, email)
}

// Logout ends the session of token.
func (s *Service) Logout(ctx context.Context, token string) error {
	return s.store.DeleteSession(ctx, HashToken(token))
}

// HashToken is how a session token is stored and looked up.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}
