package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const accountJSON = `{"id":"acc_42","email":"ann+shop@example.com","name":"Ann","roles":["ops","shopper"],"promo_emails":true}`

func TestAccountGrant_puts_the_union_of_existing_and_new_roles(t *testing.T) {
	for _, output := range []string{"table", "json"} {
		t.Run(output, func(t *testing.T) {
			shop := newFakeShop(t)
			shop.answer("GET /api/v1/ops/accounts", http.StatusOK, accountJSON)
			updated := `{"id":"acc_42","email":"ann+shop@example.com","name":"Ann","roles":["marketing","ops","shopper"],"promo_emails":true}`
			shop.answer("PUT /api/v1/ops/accounts/{id}/roles", http.StatusOK, updated)
			r := newCLI(t, shop).mustSucceed("-o", output, "account", "grant", "ann+shop@example.com", "marketing", "ops")

			got := shop.got()
			if len(got) != 2 {
				t.Fatalf("%d requests, want 2", len(got))
			}
			if got[0].Method != "GET" || got[0].Path != "/api/v1/ops/accounts" || got[0].Query.Get("email") != "ann+shop@example.com" {
				t.Errorf("lookup %s %s %v", got[0].Method, got[0].Path, got[0].Query)
			}
			if got[1].Method != "PUT" || got[1].Path != "/api/v1/ops/accounts/acc_42/roles" {
				t.Errorf("update %s %s", got[1].Method, got[1].Path)
			}
			if diff := cmp.Diff(map[string]any{"roles": []any{"marketing", "ops", "shopper"}}, decode(t, got[1].Body)); diff != "" {
				t.Errorf("roles (-want +got):\n%s", diff)
			}
			switch output {
			case "json":
				if r.stdout != pretty(t, updated) {
					t.Errorf("stdout:\n%s", r.stdout)
				}
			case "table":
				if !strings.Contains(r.stdout, "marketing,ops,shopper") || !strings.Contains(r.stdout, "acc_42") {
					t.Errorf("stdout:\n%s", r.stdout)
				}
			}
		})
	}
}

func TestAccountRevoke_puts_the_roles_left(t *testing.T) {
	shop := newFakeShop(t)
	shop.answer("GET /api/v1/ops/accounts", http.StatusOK, accountJSON)
	shop.answer("PUT /api/v1/ops/accounts/{id}/roles", http.StatusOK, accountJSON)
	newCLI(t, shop).mustSucceed("account", "revoke", "ann+shop@example.com", "ops", "marketing")
	got := shop.got()
	if len(got) != 2 {
		t.Fatalf("%d requests, want 2", len(got))
	}
	if diff := cmp.Diff(map[string]any{"roles": []any{"shopper"}}, decode(t, got[1].Body)); diff != "" {
		t.Errorf("roles (-want +got):\n%s", diff)
	}
}

func TestAccountGrant_unknown_email_exits_1_without_a_change(t *testing.T) {
	shop := newFakeShop(t)
	shop.answer("GET /api/v1/ops/accounts", http.StatusNotFound, `{"error":{"code":"not_found","message":"account not found"}}`)
	r := newCLI(t, shop).run("account", "grant", "nobody@example.com", "marketing")
	if r.code != exitError || r.stderr != "error: not_found: account not found\n" {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	if n := len(shop.got()); n != 1 {
		t.Errorf("%d requests, want only the lookup", n)
	}
}

func TestAccountGet_shows_the_account(t *testing.T) {
	shop := newFakeShop(t)
	shop.answer("GET /api/v1/ops/accounts", http.StatusOK, accountJSON)
	r := newCLI(t, shop).mustSucceed("account", "get", "ann+shop@example.com")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("stdout:\n%s", r.stdout)
	}
	if diff := cmp.Diff([]string{"acc_42", "ann+shop@example.com", "Ann", "ops,shopper", "true"}, strings.Fields(lines[1])); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	r = newCLI(t, shop).mustSucceed("-o", "json", "account", "get", "ann+shop@example.com")
	if r.stdout != pretty(t, accountJSON) {
		t.Errorf("json stdout:\n%s", r.stdout)
	}
}
