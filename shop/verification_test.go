package shop_test

import (
	"io"
	"net/http"
	"net/mail"
	"regexp"
	"strings"
	"testing"
	"time"

	"phoneshop/config"
	"phoneshop/internal/shoptest"
)

// verificationLink is the path of a verification link in a mail's text.
var verificationLink = regexp.MustCompile(`/verify/[A-Za-z0-9_.-]+`)

// verificationMails waits until dev has written want verification mails to email,
// and returns their links' paths.
func verificationMails(t *testing.T, h *shoptest.Harness, email string, want int) []string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var links []string
		for id, m := range devMails(t, h) {
			if !strings.HasPrefix(id, "verify.") || !strings.Contains(m.Header.Get("To"), email) {
				continue
			}
			links = append(links, linkOf(t, m))
		}
		if len(links) >= want || time.Now().After(deadline) {
			if len(links) != want {
				t.Fatalf("%d verification mails to %s, want %d", len(links), email, want)
			}
			return links
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// linkOf reads the verification link of a mail (its text part comes first).
func linkOf(t *testing.T, m *mail.Message) string {
	t.Helper()
	body, err := io.ReadAll(m.Body)
	if err != nil {
		t.Fatal(err)
	}
	link := verificationLink.FindString(strings.ReplaceAll(string(body), "=\r\n", ""))
	if link == "" {
		t.Fatalf("no verification link in:\n%s", body)
	}
	return link
}

// verifyByMail follows the verification mail sent to email as its owner does.
func verifyByMail(t *testing.T, h *shoptest.Harness, email string) {
	t.Helper()
	link := verificationMails(t, h, email, 1)[0]
	if r := h.Do(shoptest.Request{Method: "POST", Path: link}); r.Status != http.StatusOK {
		t.Fatalf("POST %s: %d %s", link, r.Status, r.Body)
	}
}

func me(t *testing.T, h *shoptest.Harness, token string) map[string]any {
	t.Helper()
	r := h.Do(shoptest.Request{Method: "GET", Path: "/api/v1/me", Token: token})
	if r.Status != http.StatusOK {
		t.Fatalf("GET /api/v1/me: %d %s", r.Status, r.Body)
	}
	return r.Map(t)
}

// TestEmailVerification: sign-up mails a link (and nothing the sign-up wrote); a
// GET of the link verifies nobody, its button's POST does; a resend waits its time;
// a link that was altered, expired, or names another address does not exist.
func TestEmailVerification(t *testing.T) {
	h := shoptest.Start(t, 1, func(c *config.Dev) { c.Accounts.VerificationResendAfter = time.Second })
	const spam = "Cheap pills at http://spam.example"
	email := "verify-me@example.com"
	r := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/accounts", Body: map[string]any{
		"email": email, "password": "a long enough password", "name": spam, "promo_emails": true}})
	if r.Status != http.StatusCreated || r.Map(t)["email_verified"] != false {
		t.Fatalf("sign-up: %d %s; want 201 with email_verified false", r.Status, r.Body)
	}
	token, err := h.TryLogin(email, "a long enough password")
	if err != nil {
		t.Fatal(err)
	}

	var mailed *mail.Message
	link := verificationMails(t, h, email, 1)[0]
	for id, m := range devMails(t, h) {
		if strings.HasPrefix(id, "verify.") {
			mailed = m
		}
	}
	raw, _ := io.ReadAll(mailed.Body)
	if strings.Contains(string(raw), "spam.example") || strings.Contains(mailed.Header.Get("Subject"), "spam") {
		t.Errorf("the verification mail carries the sign-up's own words:\n%s", raw)
	}

	t.Run("get_shows_a_button_and_verifies_nobody", func(t *testing.T) {
		r := h.Do(shoptest.Request{Method: "GET", Path: link})
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `<form method="post">`) {
			t.Fatalf("GET %s: %d %s", link, r.Status, r.Body)
		}
		if me(t, h, token)["email_verified"] != false {
			t.Fatal("a GET verified the address")
		}
	})
	t.Run("bad_links_404", func(t *testing.T) {
		tok := strings.TrimPrefix(link, "/verify/")
		parts := strings.Split(tok, ".")
		for _, bad := range []string{
			parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])),
			parts[0] + ".zzzzzzz." + parts[2],
			"not-a-token",
			h.Shop.Unsubscribe.Token(strings.TrimSpace(me(t, h, token)["id"].(string))),
		} {
			for _, method := range []string{"GET", "POST"} {
				if r := h.Do(shoptest.Request{Method: method, Path: "/verify/" + bad}); r.Status != http.StatusNotFound {
					t.Errorf("%s /verify/%s: %d, want 404", method, bad, r.Status)
				}
			}
		}
		if me(t, h, token)["email_verified"] != false {
			t.Fatal("a bad link verified the address")
		}
	})
	t.Run("a_resend_waits_its_time", func(t *testing.T) {
		r := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/me/verification", Token: token})
		if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
			t.Fatalf("resend right after sign-up: %d %s; want 429 with Retry-After", r.Status, r.Body)
		}
		time.Sleep(1100 * time.Millisecond) // the test's resend interval: 1s
		if r := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/me/verification", Token: token}); r.Status != http.StatusAccepted {
			t.Fatalf("resend after the wait: %d %s; want 202", r.Status, r.Body)
		}
		links := verificationMails(t, h, email, 2)
		if links[0] == links[1] {
			t.Error("the second mail carries the first one's link")
		}
	})
	t.Run("post_verifies_and_again_is_fine", func(t *testing.T) {
		for range 2 {
			if r := h.Do(shoptest.Request{Method: "POST", Path: link}); r.Status != http.StatusOK {
				t.Fatalf("POST %s: %d %s", link, r.Status, r.Body)
			}
		}
		if me(t, h, token)["email_verified"] != true {
			t.Fatal("the address is not verified after the link's POST")
		}
		if r := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/me/verification", Token: token}); r.Status != http.StatusConflict {
			t.Fatalf("resend to a verified address: %d %s; want 409", r.Status, r.Body)
		}
	})
	t.Run("an_expired_link_404", func(t *testing.T) {
		other := "expired-link@example.com"
		h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/accounts", Body: map[string]any{
			"email": other, "password": "a long enough password", "name": "E"}})
		otherToken, err := h.TryLogin(other, "a long enough password")
		if err != nil {
			t.Fatal(err)
		}
		a, err := h.Shop.Accounts.ByID(t.Context(), me(t, h, otherToken)["id"].(string))
		if err != nil {
			t.Fatal(err)
		}
		old := h.Shop.Verification.Token(a, time.Now().Add(-49*time.Hour))
		if r := h.Do(shoptest.Request{Method: "POST", Path: "/verify/" + old}); r.Status != http.StatusNotFound {
			t.Fatalf("a link minted 49 hours ago: %d; want 404", r.Status)
		}
	})
}
