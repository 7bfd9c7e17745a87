package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// sessionToken is what the fake shop hands out on login; no output may show it.
const sessionToken = "tok-session-SECRET-5f2a9c"

func loginShop(t *testing.T) *fakeShop {
	t.Helper()
	shop := newFakeShop(t)
	shop.answer("POST /api/v1/sessions", http.StatusCreated, `{"token":"`+sessionToken+`","expires_at":"2099-01-02T03:04:05Z"}`)
	shop.answer("DELETE /api/v1/sessions/current", http.StatusNoContent, "")
	shop.answer("GET /api/v1/promos/{id}", http.StatusOK, promoJSON)
	return shop
}

// loggedOutCLI is a shopctl with a password but no URL or token in its environment.
func loggedOutCLI(t *testing.T) *cli {
	t.Helper()
	c := newCLI(t, nil)
	c.env["SHOPCTL_PASSWORD"] = "a long enough password"
	return c
}

func TestLogin_saves_the_session_with_mode_0600_and_never_prints_the_token(t *testing.T) {
	for _, output := range []string{"table", "json"} {
		t.Run(output, func(t *testing.T) {
			shop := loginShop(t)
			c := loggedOutCLI(t)
			c.env["SHOPCTL_TOKEN"] = "an-old-token" // must not be sent with a login
			r := c.mustSucceed("--url", shop.URL+"/", "-o", output, "login", "--email", "ann@example.com")

			req := shop.only(t)
			if diff := cmp.Diff(map[string]any{"email": "ann@example.com", "password": "a long enough password"}, decode(t, req.Body)); diff != "" {
				t.Errorf("login body (-want +got):\n%s", diff)
			}
			if auth := req.Header.Get("Authorization"); auth != "" {
				t.Errorf("login sent Authorization %q", auth)
			}
			if strings.Contains(r.stdout+r.stderr, sessionToken) {
				t.Fatalf("the token was printed:\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, "2099-01-02T03:04:05Z") || !strings.Contains(r.stdout, shop.URL) {
				t.Errorf("stdout %q lacks the URL or the expiry", r.stdout)
			}

			path := c.env["SHOPCTL_CONFIG"]
			assertMode(t, path, 0o600)
			assertMode(t, filepath.Dir(path), 0o700|os.ModeDir)
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]any{"url": shop.URL, "token": sessionToken, "expires_at": "2099-01-02T03:04:05Z"}
			if diff := cmp.Diff(want, decode(t, string(raw))); diff != "" {
				t.Errorf("saved login (-want +got):\n%s", diff)
			}
		})
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode() & (os.ModePerm | os.ModeDir); got != want {
		t.Errorf("%s has mode %v, want %v", path, got, want)
	}
}

func TestLogin_asks_for_the_email_when_not_given(t *testing.T) {
	shop := loginShop(t)
	c := loggedOutCLI(t)
	r := c.runWithInput("bob@example.com\n", "--url", shop.URL, "login")
	if r.code != exitOK || !strings.Contains(r.stderr, "E-mail: ") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if got := decode(t, shop.only(t).Body).(map[string]any)["email"]; got != "bob@example.com" {
		t.Errorf("email sent %v", got)
	}
}

func TestLogin_without_a_terminal_or_SHOPCTL_PASSWORD_is_a_usage_error(t *testing.T) {
	shop := loginShop(t)
	r := newCLI(t, nil).run("--url", shop.URL, "login", "--email", "ann@example.com")
	if r.code != exitUsage || !strings.Contains(r.stderr, "SHOPCTL_PASSWORD") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	if n := len(shop.got()); n != 0 {
		t.Errorf("%d requests sent without a password", n)
	}
}

func TestLogin_refused_exits_1_and_saves_nothing(t *testing.T) {
	shop := newFakeShop(t)
	shop.answer("POST /api/v1/sessions", http.StatusUnauthorized, `{"error":{"code":"unauthenticated","message":"wrong e-mail or password"}}`)
	c := loggedOutCLI(t)
	r := c.run("--url", shop.URL, "login", "--email", "ann@example.com")
	if r.code != exitError || !strings.Contains(r.stderr, "error: unauthenticated: wrong e-mail or password") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(c.env["SHOPCTL_CONFIG"]); !os.IsNotExist(err) {
		t.Errorf("a refused login left a saved login: %v", err)
	}
}

func TestSavedLogin_gives_the_url_and_token_of_later_commands(t *testing.T) {
	shop := loginShop(t)
	c := loggedOutCLI(t)
	c.mustSucceed("--url", shop.URL, "login", "--email", "ann@example.com")
	r := c.mustSucceed("promo", "get", "promo_0123456789abcdef01234567") // no --url: the saved one

	got := shop.got()
	last := got[len(got)-1]
	if last.Path != "/api/v1/promos/promo_0123456789abcdef01234567" || last.Header.Get("Authorization") != "Bearer "+sessionToken {
		t.Errorf("sent %s %s with Authorization %q", last.Method, last.Path, last.Header.Get("Authorization"))
	}
	if strings.Contains(r.stdout+r.stderr, sessionToken) {
		t.Error("the token was printed")
	}
}

func TestSavedToken_never_goes_to_another_shop(t *testing.T) {
	shop, other := loginShop(t), loginShop(t)
	c := loggedOutCLI(t)
	c.mustSucceed("--url", shop.URL, "login", "--email", "ann@example.com")
	c.run("--url", other.URL, "promo", "get", "promo_1")
	if auth := other.only(t).Header.Get("Authorization"); auth != "" {
		t.Errorf("the other shop got Authorization %q", auth)
	}
}

func TestSavedToken_is_not_sent_once_expired(t *testing.T) {
	shop := loginShop(t)
	c := newCLI(t, nil)
	saved := `{"url":"` + shop.URL + `","token":"expired-token","expires_at":"` + time.Now().Add(-time.Minute).UTC().Format(time.RFC3339) + `"}`
	if err := os.MkdirAll(filepath.Dir(c.env["SHOPCTL_CONFIG"]), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.env["SHOPCTL_CONFIG"], []byte(saved), 0o600); err != nil {
		t.Fatal(err)
	}
	c.run("promo", "get", "promo_1")
	if auth := shop.only(t).Header.Get("Authorization"); auth != "" {
		t.Errorf("sent the expired token: %q", auth)
	}
}

func TestToken_flag_beats_env_beats_saved_login(t *testing.T) {
	shop := loginShop(t)
	c := loggedOutCLI(t)
	c.mustSucceed("--url", shop.URL, "login", "--email", "ann@example.com")

	c.env["SHOPCTL_TOKEN"] = "from-env"
	c.mustSucceed("promo", "get", "promo_1")
	c.mustSucceed("--token", "from-flag", "promo", "get", "promo_1")
	got := shop.got()
	if a := got[1].Header.Get("Authorization"); a != "Bearer from-env" {
		t.Errorf("with SHOPCTL_TOKEN: %q", a)
	}
	if a := got[2].Header.Get("Authorization"); a != "Bearer from-flag" {
		t.Errorf("with --token: %q", a)
	}
}

func TestURL_flag_beats_env(t *testing.T) {
	shop, other := loginShop(t), loginShop(t)
	c := newCLI(t, shop)
	c.mustSucceed("--url", other.URL, "promo", "get", "promo_1")
	if len(shop.got()) != 0 || len(other.got()) != 1 {
		t.Errorf("env shop got %d requests, flag shop %d", len(shop.got()), len(other.got()))
	}
}

func TestLogout_ends_the_session_and_deletes_the_saved_login(t *testing.T) {
	shop := loginShop(t)
	c := loggedOutCLI(t)
	c.mustSucceed("--url", shop.URL, "login", "--email", "ann@example.com")
	r := c.mustSucceed("logout")

	got := shop.got()
	last := got[len(got)-1]
	if last.Method != "DELETE" || last.Path != "/api/v1/sessions/current" || last.Header.Get("Authorization") != "Bearer "+sessionToken {
		t.Errorf("logout sent %s %s %q", last.Method, last.Path, last.Header.Get("Authorization"))
	}
	if _, err := os.Stat(c.env["SHOPCTL_CONFIG"]); !os.IsNotExist(err) {
		t.Errorf("the saved login is still there: %v", err)
	}
	if strings.Contains(r.stdout+r.stderr, sessionToken) {
		t.Error("the token was printed")
	}
}

func TestLogout_keeps_the_saved_login_when_the_shop_is_unreachable(t *testing.T) {
	shop := loginShop(t)
	c := loggedOutCLI(t)
	c.mustSucceed("--url", shop.URL, "login", "--email", "ann@example.com")
	shop.Close()
	if r := c.run("logout"); r.code != exitError {
		t.Errorf("exit %d, want 1", r.code)
	}
	if _, err := os.Stat(c.env["SHOPCTL_CONFIG"]); err != nil {
		t.Errorf("the saved login is gone: %v", err)
	}
}

func TestLogout_deletes_a_session_the_shop_already_ended(t *testing.T) {
	shop := newFakeShop(t)
	shop.answer("POST /api/v1/sessions", http.StatusCreated, `{"token":"`+sessionToken+`","expires_at":"2099-01-02T03:04:05Z"}`)
	shop.answer("DELETE /api/v1/sessions/current", http.StatusUnauthorized, `{"error":{"code":"unauthenticated","message":"session ended"}}`)
	c := loggedOutCLI(t)
	c.mustSucceed("--url", shop.URL, "login", "--email", "ann@example.com")
	c.mustSucceed("logout")
	if _, err := os.Stat(c.env["SHOPCTL_CONFIG"]); !os.IsNotExist(err) {
		t.Errorf("the saved login is still there: %v", err)
	}
}

func TestLogout_when_not_logged_in_exits_1(t *testing.T) {
	shop := loginShop(t)
	r := newCLI(t, nil).run("--url", shop.URL, "logout")
	if r.code != exitError || !strings.Contains(r.stderr, "not logged in") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestToken_never_appears_in_any_output runs every kind of command, including
// failing ones, after a login and looks for the token in all that was printed.
func TestToken_never_appears_in_any_output(t *testing.T) {
	shop := loginShop(t)
	shop.answer("GET /api/v1/ops/cluster", http.StatusForbidden, `{"error":{"code":"forbidden","message":"needs the ops role"}}`)
	c := loggedOutCLI(t)
	var all strings.Builder
	for _, args := range [][]string{
		{"--url", shop.URL, "login", "--email", "ann@example.com"},
		{"-o", "json", "--url", shop.URL, "login", "--email", "ann@example.com"},
		{"promo", "get", "promo_1"},
		{"-o", "json", "promo", "get", "promo_1"},
		{"cluster"},
		{"stock", "get", "sku-unknown-to-the-fake"},
		{"--help"},
		{"logout"},
	} {
		r := c.run(args...)
		all.WriteString(r.stdout + r.stderr)
	}
	if strings.Contains(all.String(), sessionToken) {
		t.Fatalf("the token was printed:\n%s", all.String())
	}
}

func TestLogin_replaces_a_damaged_saved_login(t *testing.T) {
	shop := loginShop(t)
	c := loggedOutCLI(t)
	path := c.env["SHOPCTL_CONFIG"]
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := c.run("promo", "get", "promo_1"); r.code != exitError || !strings.Contains(r.stderr, "damaged") {
		t.Errorf("with a damaged saved login: exit %d, stderr %q", r.code, r.stderr)
	}
	r := c.mustSucceed("--url", shop.URL, "login", "--email", "ann@example.com")
	if !strings.Contains(r.stderr, "warning:") {
		t.Errorf("stderr %q does not warn", r.stderr)
	}
	c.mustSucceed("promo", "get", "promo_1")
}
