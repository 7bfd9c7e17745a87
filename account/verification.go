package account

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The errors of e-mail verification.
var (
	// ErrBadLink is a verification link that the shop did not sign, that was
	// altered, that expired, or whose address is no longer the account's.
	ErrBadLink = errors.New("account: verification link not valid")
	// ErrAlreadyVerified refuses to mail a verification to an address that is
	// verified already.
	ErrAlreadyVerified = errors.New("account: e-mail address already verified")
)

// DefaultVerificationTTL is how long a verification link works by default.
const DefaultVerificationTTL = 48 * time.Hour

// VerificationTokens mints and checks the tokens of e-mail verification links:
// the account id, an expiry and an HMAC-SHA256 of both and of the address, under
// the secret that signs unsubscribe links. The MAC's input starts with its purpose,
// so a token of one kind is never one of another; it covers the address, so a link
// stops working if the account's address changes. Tokens need no storage: every
// edge and mailer that shares the secret reads them.
type VerificationTokens struct {
	key []byte
	ttl time.Duration
}

// NewVerificationTokens signs with secret (at least MinUnsubscribeSecret bytes);
// a token expires ttl after it is minted.
func NewVerificationTokens(secret string, ttl time.Duration) (*VerificationTokens, error) {
	if len(secret) < MinUnsubscribeSecret {
		return nil, fmt.Errorf("%w: the link secret must have at least %d characters", ErrInvalid, MinUnsubscribeSecret)
	}
	if ttl < time.Minute {
		return nil, fmt.Errorf("%w: verification links must last at least a minute, not %s", ErrInvalid, ttl)
	}
	return &VerificationTokens{key: []byte(secret), ttl: ttl}, nil
}

// TTL is how long a token lasts from when it is minted.
func (v *VerificationTokens) TTL() time.Duration { return v.ttl }

// Token is the verification token of a's address, minted at now.
func (v *VerificationTokens) Token(a Account, now time.Time) string {
	expires := strconv.FormatInt(now.Add(v.ttl).Unix(), 36)
	return base64.RawURLEncoding.EncodeToString([]byte(a.ID)) + "." + expires + "." +
		base64.RawURLEncoding.EncodeToString(v.mac(a.ID, a.Email, expires))
}

// AccountID reads the account id a token names, unchecked: the caller looks the
// account up, then asks Valid.
func (v *VerificationTokens) AccountID(token string) (string, bool) {
	rawID, _, ok := strings.Cut(token, ".")
	if !ok || len(token) > 512 {
		return "", false
	}
	id, err := base64.RawURLEncoding.DecodeString(rawID)
	if err != nil || len(id) == 0 {
		return "", false
	}
	return string(id), true
}

// Valid reports whether token was minted by this secret for a's address and has
// not expired at now.
func (v *VerificationTokens) Valid(token string, a Account, now time.Time) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(token) > 512 {
		return false
	}
	id, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	mac, err2 := base64.RawURLEncoding.DecodeString(parts[2])
	expires, err3 := strconv.ParseInt(parts[1], 36, 64)
	if err1 != nil || err2 != nil || err3 != nil || string(id) != a.ID {
		return false
	}
	if !hmac.Equal(mac, v.mac(a.ID, a.Email, parts[1])) {
		return false
	}
	return now.Before(time.Unix(expires, 0))
}

func (v *VerificationTokens) mac(id, email, expires string) []byte {
	h := hmac.New(sha256.New, v.key)
	h.Write([]byte("phoneshop verify-email\x00" + id + "\x00" + email + "\x00" + expires))
	return h.Sum(nil)
}

// VerifyEmail marks the address of the account a verification link names as
// verified; ErrBadLink when the token is not one tokens minted for that account's
// address, or it expired. Verifying again is not an error.
func (s *Service) VerifyEmail(ctx context.Context, tokens *VerificationTokens, token string) (Account, error) {
	id, ok := tokens.AccountID(token)
	if !ok {
		return Account{}, ErrBadLink
	}
	a, err := s.store.AccountByID(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Account{}, ErrBadLink
	}
	if err != nil {
		return Account{}, err
	}
	if !tokens.Valid(token, a, s.now()) {
		return Account{}, ErrBadLink
	}
	if a.EmailVerified {
		return a, nil
	}
	return s.store.UpdateAccount(ctx, id, func(a *Account) error {
		a.EmailVerified = true
		return nil
	})
}

// RequestVerification mails the account's owner a verification link again,
// through the outbox; at most one mail per resendAfter (sign-up mails the first):
// sooner, it returns how long to wait and mails nothing. ErrAlreadyVerified when
// there is nothing to verify.
func (s *Service) RequestVerification(ctx context.Context, id string, resendAfter time.Duration) (wait time.Duration, err error) {
	return s.store.RequestVerification(ctx, id, s.now(), resendAfter)
}
