package edge_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"phoneshop/config"
	"phoneshop/internal/shoptest"
)

func TestUnsubscribe(t *testing.T) {
	h := shoptest.Start(t, 1)
	optedIn := func(t *testing.T) (token, id, link string) {
		t.Helper()
		token, _ = h.Shopper()
		var me struct {
			ID string `json:"id"`
		}
		wantOK(t, do(t, h, shoptest.Request{Method: "PUT", Path: "/api/v1/me/preferences", Token: token,
			Body: map[string]bool{"promo_emails": true}}), http.StatusOK, nil)
		wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/me", Token: token}), http.StatusOK, &me)
		return token, me.ID, "/u/" + h.Shop.Unsubscribe.Token(me.ID)
	}
	promoEmails := func(t *testing.T, token string) bool {
		t.Helper()
		var me struct {
			PromoEmails bool `json:"promo_emails"`
		}
		wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/me", Token: token}), http.StatusOK, &me)
		return me.PromoEmails
	}

	t.Run("get_shows_a_button_and_unsubscribes_nobody", func(t *testing.T) {
		token, _, link := optedIn(t)
		r := do(t, h, shoptest.Request{Method: "GET", Path: link})
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `<form method="post">`) ||
			!strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET %s: %d %s %s", link, r.Status, r.Header.Get("Content-Type"), r.Body)
		}
		if !promoEmails(t, token) {
			t.Error("a GET unsubscribed the shopper")
		}
	})

	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	_ = mw.WriteField("List-Unsubscribe", "One-Click")
	_ = mw.Close()
	for name, req := range map[string]shoptest.Request{
		"empty_body":     {Method: "POST"},
		"one_click_form": {Method: "POST", Body: "List-Unsubscribe=One-Click", Headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
		"multipart":      {Method: "POST", Body: form.String(), Headers: map[string]string{"Content-Type": mw.FormDataContentType()}},
	} {
		t.Run("post_"+name+"_unsubscribes_with_200", func(t *testing.T) {
			token, _, link := optedIn(t)
			req.Path = link
			r := do(t, h, req)
			if r.Status != http.StatusOK || r.Header.Get("Location") != "" {
				t.Fatalf("POST %s: %d %v %s", link, r.Status, r.Header, r.Body)
			}
			if promoEmails(t, token) {
				t.Error("still opted in after the one-click POST")
			}
			// Again: still 200, still unsubscribed.
			if r := do(t, h, req); r.Status != http.StatusOK || promoEmails(t, token) {
				t.Errorf("second POST: %d", r.Status)
			}
		})
	}

	t.Run("a_forged_or_altered_token_is_404_and_changes_nothing", func(t *testing.T) {
		token, _, link := optedIn(t)
		_, otherID, _ := optedIn(t)
		tok := strings.TrimPrefix(link, "/u/")
		for _, bad := range []string{
			tok[:len(tok)-2] + "xx",
			strings.Split(tok, ".")[0],
			"not-a-token",
			strings.Replace(tok, strings.Split(tok, ".")[0], strings.Split(h.Shop.Unsubscribe.Token(otherID), ".")[0], 1),
		} {
			for _, method := range []string{"GET", "POST"} {
				wantError(t, do(t, h, shoptest.Request{Method: method, Path: "/u/" + bad}), http.StatusNotFound, "not_found")
			}
		}
		if !promoEmails(t, token) {
			t.Error("a bad token unsubscribed the shopper")
		}
	})

	t.Run("one_click_works_in_maintenance_mode", func(t *testing.T) {
		// RFC 8058: the mail client's POST is not tried again later.
		token, _, link := optedIn(t)
		if err := h.Shop.Live.Set(config.KeyMaintenanceMode, "true"); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := h.Shop.Live.Set(config.KeyMaintenanceMode, "false"); err != nil {
				t.Fatal(err)
			}
		}()
		wantError(t, do(t, h, shoptest.Request{Method: "PUT", Path: "/api/v1/me/preferences", Token: token,
			Body: map[string]bool{"promo_emails": false}}), http.StatusServiceUnavailable, "unavailable")
		if r := do(t, h, shoptest.Request{Method: "POST", Path: link}); r.Status != http.StatusOK {
			t.Fatalf("POST %s in maintenance: %d %s", link, r.Status, r.Body)
		}
		if promoEmails(t, token) {
			t.Error("still opted in after the one-click POST in maintenance mode")
		}
	})

	t.Run("dev_keeps_its_secret_across_restarts", func(t *testing.T) {
		token, _, link := optedIn(t)
		info, err := os.Stat(filepath.Join(h.DataDir, "unsubscribe.secret"))
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("secret file: %v, %v", info, err)
		}
		h.Restart()
		if r := do(t, h, shoptest.Request{Method: "POST", Path: link}); r.Status != http.StatusOK || promoEmails(t, token) {
			t.Fatalf("a link made before the restart: %d %s", r.Status, r.Body)
		}
	})
}
