package account

import (
	"strings"
	"testing"
)

func TestUnsubscribeTokens(t *testing.T) {
	secret := strings.Repeat("s", MinUnsubscribeSecret)
	u, err := NewUnsubscribeTokens(secret)
	if err != nil {
		t.Fatal(err)
	}
	token := u.Token("acc_0123456789abcdef01234567")
	if id, ok := u.AccountID(token); !ok || id != "acc_0123456789abcdef01234567" {
		t.Fatalf("AccountID(Token) = %q, %v", id, ok)
	}
	other, _ := NewUnsubscribeTokens(strings.Repeat("t", MinUnsubscribeSecret))
	forgedID := u.Token("acc_1")[:strings.Index(u.Token("acc_1"), ".")] + token[strings.Index(token, "."):]
	for name, bad := range map[string]string{
		"empty":          "",
		"no_mac":         strings.Split(token, ".")[0],
		"another_secret": other.Token("acc_0123456789abcdef01234567"),
		"id_swapped":     forgedID,
		"mac_altered":    token[:len(token)-1] + map[bool]string{true: "A", false: "B"}[token[len(token)-1] != 'A'],
		"not_base64":     "!!!.???",
		"too_long":       strings.Repeat("a", 300) + "." + strings.Repeat("b", 10),
		"two_dots":       token + ".x",
	} {
		if id, ok := u.AccountID(bad); ok {
			t.Errorf("%s: token %q read as account %q", name, bad, id)
		}
	}
	if _, err := NewUnsubscribeTokens("short"); err == nil {
		t.Error("a short secret was accepted")
	}
}
