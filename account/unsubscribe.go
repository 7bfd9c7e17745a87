package account

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

// MinUnsubscribeSecret is the shortest secret unsubscribe tokens are signed with.
const MinUnsubscribeSecret = 32

// UnsubscribeTokens mints and checks the tokens of unsubscribe links: the account
// id and an HMAC-SHA256 of it under a secret. A token cannot be forged or altered
// without the secret, and needs no storage; every edge and mailer that shares the
// secret reads every token.
type UnsubscribeTokens struct{ key []byte }

// NewUnsubscribeTokens signs with secret (at least MinUnsubscribeSecret bytes).
func NewUnsubscribeTokens(secret string) (*UnsubscribeTokens, error) {
	if len(secret) < MinUnsubscribeSecret {
		return nil, fmt.Errorf("%w: the unsubscribe secret must have at least %d characters", ErrInvalid, MinUnsubscribeSecret)
	}
	return &UnsubscribeTokens{key: []byte(secret)}, nil
}

// Token is the unsubscribe token of accountID.
func (u *UnsubscribeTokens) Token(accountID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(accountID)) + "." + base64.RawURLEncoding.EncodeToString(u.mac(accountID))
}

// AccountID reads a token; ok is false for a token this secret did not sign.
func (u *UnsubscribeTokens) AccountID(token string) (id string, ok bool) {
	rawID, rawMAC, found := strings.Cut(token, ".")
	if !found || len(token) > 256 {
		return "", false
	}
	idBytes, err1 := base64.RawURLEncoding.DecodeString(rawID)
	mac, err2 := base64.RawURLEncoding.DecodeString(rawMAC)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, u.mac(string(idBytes))) {
		return "", false
	}
	return string(idBytes), true
}

func (u *UnsubscribeTokens) mac(accountID string) []byte {
	h := hmac.New(sha256.New, u.key)
	h.Write([]byte("phoneshop unsubscribe\x00" + accountID))
	return h.Sum(nil)
}
