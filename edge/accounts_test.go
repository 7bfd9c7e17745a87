package edge_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"phoneshop/internal/shoptest"
)

func TestAccounts(t *testing.T) {
	h := shoptest.Start(t, 1)
	const password = "a long enough password"
	register := func(t *testing.T, body any, headers map[string]string) shoptest.Response {
		t.Helper()
		return do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/accounts", Body: body, Headers: headers})
	}
	login := func(t *testing.T, email, pw string) shoptest.Response {
		t.Helper()
		return do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/sessions",
			Body: map[string]string{"email": email, "password": pw}})
	}

	var ann accountBody // registered by the first subtest
	t.Run("register_201_with_shopper_role", func(t *testing.T) {
		r := register(t, map[string]string{"email": "ann@example.com", "password": password, "name": "Ann"}, nil)
		wantOK(t, r, http.StatusCreated, &ann)
		if ann.ID == "" {
			t.Error("account has no id")
		}
		want := accountBody{ID: ann.ID, Email: "ann@example.com", Name: "Ann", Roles: []string{"shopper"}}
		if diff := cmp.Diff(want, ann); diff != "" {
			t.Errorf("account (-want +got):\n%s", diff)
		}
	})

	t.Run("register_201_when_password_has_10_chars", func(t *testing.T) {
		r := register(t, map[string]string{"email": "ten@example.com", "password": "0123456789", "name": "Ten"}, nil)
		var a accountBody
		wantOK(t, r, http.StatusCreated, &a)
		wantOK(t, login(t, "ten@example.com", "0123456789"), http.StatusCreated, nil)
	})

	t.Run("register_409_when_email_taken", func(t *testing.T) {
		for _, email := range []string{"ann@example.com", "ANN@Example.COM"} {
			t.Run(email, func(t *testing.T) {
				r := register(t, map[string]string{"email": email, "password": "another password", "name": "Impostor"}, nil)
				wantError(t, r, http.StatusConflict, "conflict")
				// The first account keeps its password.
				wantError(t, login(t, "ann@example.com", "another password"), http.StatusUnauthorized, "unauthenticated")
				wantOK(t, login(t, "ann@example.com", password), http.StatusCreated, nil)
			})
		}
	})

	valid := func(email string) map[string]any {
		return map[string]any{"email": email, "password": password, "name": "Bob"}
	}
	badRegistrations := []struct {
		name    string
		email   string // must not exist afterwards
		body    any
		headers map[string]string
		status  int
		code    string
	}{
		{"register_400_when_email_malformed", "not-an-email", valid("not-an-email"), nil, 400, "invalid_request"},
		{"register_400_when_email_has_no_domain", "bob@", valid("bob@"), nil, 400, "invalid_request"},
		{"register_400_when_email_has_display_name", "bob1@example.com", valid("Bob <bob1@example.com>"), nil, 400, "invalid_request"},
		{"register_400_when_password_has_9_chars", "bob2@example.com",
			map[string]any{"email": "bob2@example.com", "password": "123456789", "name": "Bob"}, nil, 400, "invalid_request"},
		{"register_400_when_email_missing", "", map[string]any{"password": password, "name": "Bob"}, nil, 400, "invalid_request"},
		{"register_400_when_password_missing", "bob3@example.com", map[string]any{"email": "bob3@example.com", "name": "Bob"}, nil, 400, "invalid_request"},
		{"register_400_when_name_missing", "bob4@example.com", map[string]any{"email": "bob4@example.com", "password": password}, nil, 400, "invalid_request"},
		{"register_400_when_name_blank", "bob5@example.com", map[string]any{"email": "bob5@example.com", "password": password, "name": "   "}, nil, 400, "invalid_request"},
		{"register_400_when_email_not_a_string", "", map[string]any{"email": 42, "password": password, "name": "Bob"}, nil, 400, "invalid_request"},
		{"register_400_when_body_has_unknown_field", "bob6@example.com",
			map[string]any{"email": "bob6@example.com", "password": password, "name": "Bob", "roles": []string{"admin"}}, nil, 400, "invalid_request"},
		{"register_400_when_json_malformed", "bob7@example.com", `{"email":"bob7@example.com","password":`, nil, 400, "invalid_request"},
		{"register_400_when_garbage_follows_json", "bob8@example.com",
			`{"email":"bob8@example.com","password":"a long enough password","name":"Bob"} x`, nil, 400, "invalid_request"},
		{"register_400_when_second_json_value_follows", "bob9@example.com",
			`{"email":"bob9@example.com","password":"a long enough password","name":"Bob"}{}`, nil, 400, "invalid_request"},
		{"register_400_when_body_empty", "", "", nil, 400, "invalid_request"},
		{"register_400_when_content_type_not_json", "bob10@example.com", valid("bob10@example.com"),
			map[string]string{"Content-Type": "text/plain"}, 400, "invalid_request"},
		{"register_413_when_body_is_over_the_limit", "big@example.com", oversizedBody(), nil, 413, "payload_too_large"},
	}
	for _, tc := range badRegistrations {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, register(t, tc.body, tc.headers), tc.status, tc.code)
			if tc.email != "" {
				// Nothing was created: the address cannot log in.
				wantError(t, login(t, tc.email, password), http.StatusUnauthorized, "unauthenticated")
			}
		})
	}

	var token string
	t.Run("login_201_with_token_and_expiry", func(t *testing.T) {
		var s sessionBody
		wantOK(t, login(t, "ann@example.com", password), http.StatusCreated, &s)
		if s.Token == "" {
			t.Fatal("no token")
		}
		exp, err := time.Parse(time.RFC3339, s.ExpiresAt)
		if err != nil {
			t.Fatalf("expires_at %q: %v", s.ExpiresAt, err)
		}
		if now := time.Now(); !exp.After(now) || exp.After(now.Add(h.Config.SessionTTL+time.Minute)) {
			t.Errorf("expires_at = %s, want within the session TTL %s from now", exp, h.Config.SessionTTL)
		}
		token = s.Token
	})

	t.Run("login_201_when_email_case_differs", func(t *testing.T) {
		wantOK(t, login(t, "Ann@EXAMPLE.com", password), http.StatusCreated, nil)
	})

	badLogins := []struct {
		name string
		body any
		want int
		code string
	}{
		{"login_401_when_password_wrong", map[string]string{"email": "ann@example.com", "password": "wrong password!"}, 401, "unauthenticated"},
		{"login_401_when_email_unknown", map[string]string{"email": "nobody@example.com", "password": password}, 401, "unauthenticated"},
		{"login_400_when_password_missing", map[string]string{"email": "ann@example.com"}, 400, "invalid_request"},
		{"login_400_when_body_has_unknown_field", map[string]string{"email": "ann@example.com", "password": password, "otp": "1"}, 400, "invalid_request"},
	}
	for _, tc := range badLogins {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/sessions", Body: tc.body})
			wantError(t, r, tc.want, tc.code)
			if strings.Contains(string(r.Body), `"token"`) {
				t.Errorf("a refused login returned a token: %s", r.Body)
			}
		})
	}

	t.Run("me_200_with_token", func(t *testing.T) {
		if token == "" {
			t.Fatal("depends on login_201_with_token_and_expiry, which gave no token")
		}
		var me accountBody
		wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/me", Token: token}), http.StatusOK, &me)
		if diff := cmp.Diff(ann, me); diff != "" {
			t.Errorf("me (-registered +me):\n%s", diff)
		}
	})

	for _, tc := range []struct {
		name   string
		header string
	}{
		{"me_401_without_token", ""},
		{"me_401_with_garbage_token", "Bearer garbage-token"},
		{"me_401_with_empty_bearer", "Bearer "},
		{"me_401_with_other_scheme", "Basic " + base64.StdEncoding.EncodeToString([]byte("ann@example.com:"+password))},
		{"me_401_with_overlong_token", "Bearer " + strings.Repeat("a", 200)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := shoptest.Request{Method: "GET", Path: "/api/v1/me"}
			if tc.header != "" {
				req.Headers = map[string]string{"Authorization": tc.header}
			}
			wantError(t, do(t, h, req), http.StatusUnauthorized, "unauthenticated")
		})
	}

	t.Run("logout_204_then_token_401", func(t *testing.T) {
		var s sessionBody
		wantOK(t, login(t, "ann@example.com", password), http.StatusCreated, &s)
		wantOK(t, do(t, h, shoptest.Request{Method: "DELETE", Path: "/api/v1/sessions/current", Token: s.Token}), http.StatusNoContent, nil)
		wantError(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/me", Token: s.Token}), http.StatusUnauthorized, "unauthenticated")
		wantError(t, do(t, h, shoptest.Request{Method: "DELETE", Path: "/api/v1/sessions/current", Token: s.Token}), http.StatusUnauthorized, "unauthenticated")
		wantError(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/cart", Token: s.Token}), http.StatusUnauthorized, "unauthenticated")
		// Only that session ended: the account's other session still works.
		if token != "" {
			wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/me", Token: token}), http.StatusOK, nil)
		}
	})

	t.Run("logout_401_without_token", func(t *testing.T) {
		wantError(t, do(t, h, shoptest.Request{Method: "DELETE", Path: "/api/v1/sessions/current"}), http.StatusUnauthorized, "unauthenticated")
	})
}
