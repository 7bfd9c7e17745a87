package account

import (
	"strings"
	"testing"
	"time"
)

func TestVerificationTokens(t *testing.T) {
	secret := strings.Repeat("k", MinUnsubscribeSecret)
	v, err := NewVerificationTokens(secret, 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewVerificationTokens(strings.Repeat("o", MinUnsubscribeSecret), 48*time.Hour)
	unsubscribe, _ := NewUnsubscribeTokens(secret)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	ann := Account{ID: "acc_0123456789abcdef01234567", Email: "ann@example.com"}
	bob := Account{ID: "acc_76543210fedcba9876543210", Email: "bob@example.com"}
	token := v.Token(ann, now)

	if id, ok := v.AccountID(token); !ok || id != ann.ID {
		t.Fatalf("AccountID = %q, %v; want %s", id, ok, ann.ID)
	}
	if !v.Valid(token, ann, now.Add(47*time.Hour)) {
		t.Fatal("a fresh token is not valid")
	}
	parts := strings.Split(token, ".")
	for _, tc := range []struct {
		name    string
		token   string
		account Account
		at      time.Time
	}{
		{"expired", token, ann, now.Add(48 * time.Hour)},
		{"another_account", token, bob, now},
		{"the_address_changed", token, Account{ID: ann.ID, Email: "mallory@example.com"}, now},
		{"signed_with_another_secret", other.Token(ann, now), ann, now},
		{"expiry_pushed_out", parts[0] + "." + "zzzzzz" + "." + parts[2], ann, now},
		{"mac_altered", parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])), ann, now},
		{"another_accounts_id_in_front", strings.Replace(token, parts[0], strings.Split(v.Token(bob, now), ".")[0], 1), bob, now},
		{"an_unsubscribe_token", unsubscribe.Token(ann.ID), ann, now},
		{"two_parts", parts[0] + "." + parts[2], ann, now},
		{"empty", "", ann, now},
		{"too_long", token + strings.Repeat("A", 600), ann, now},
	} {
		t.Run(tc.name+"_is_refused", func(t *testing.T) {
			if v.Valid(tc.token, tc.account, tc.at) {
				t.Errorf("token %q was taken for %s", tc.token, tc.account.Email)
			}
		})
	}
	if _, err := NewVerificationTokens("short", time.Hour); err == nil {
		t.Error("a short secret was taken")
	}
}
