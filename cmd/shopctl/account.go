package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"

	"github.com/spf13/cobra"
)

// account is an account as the API returns it.
type account struct {
	ID          string   `json:"id"`
	Email       string   `json:"email"`
	Name        string   `json:"name"`
	Roles       []string `json:"roles"`
	PromoEmails bool     `json:"promo_emails"`
}

func (a *app) accountCommand() *cobra.Command {
	return group("account", "Look up accounts and grant or revoke staff roles",
		`Look up accounts by e-mail and change their roles.

Roles: shopper (every account, always kept), ops (stock, orders, cluster),
marketing (campaigns) and admin (everything). Looking up needs ops or admin;
changing roles needs admin. An admin cannot remove their own admin role.`,
		`  shopctl account get ann@example.com
  shopctl account grant ann@example.com marketing
  shopctl account revoke ann@example.com marketing ops`,
		a.accountGetCommand(), a.accountRolesCommand("grant"), a.accountRolesCommand("revoke"),
	)
}

func (a *app) accountGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "get EMAIL",
		Short:   "Show an account found by e-mail",
		Long:    "Show the account with this e-mail (GET /api/v1/ops/accounts?email=): id, name, roles\nand whether it accepts campaign e-mails. An unknown e-mail is \"not_found\" (exit 1).",
		Example: "  shopctl account get ann@example.com",
		Args:    exactArgs("EMAIL"),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			raw, _, err := findAccount(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			return show(a, raw, accountTable)
		}),
	}
}

// accountRolesCommand is grant or revoke: both read the account's roles and put
// back the changed set, since the API replaces the whole set at once.
func (a *app) accountRolesCommand(verb string) *cobra.Command {
	short, long, change := "Give an account roles", "Add the roles to the account's roles", union
	if verb == "revoke" {
		short, long, change = "Take roles from an account", "Remove the roles from the account's roles", difference
	}
	return &cobra.Command{
		Use:   verb + " EMAIL ROLE...",
		Short: short,
		Long: long + `: shopctl finds the account by e-mail
(GET /api/v1/ops/accounts?email=), then sets its roles
(PUT /api/v1/ops/accounts/{id}/roles), and shows the account afterwards.

Roles: shopper, ops, marketing, admin. Needs the admin role. Two admins changing
the same account at once may overwrite each other's change: check with
'shopctl account get'.`,
		Example: "  shopctl account " + verb + " ann@example.com marketing\n  shopctl account " + verb + " bob@example.com ops marketing",
		Args:    minArgs("EMAIL", "ROLE"),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			_, acc, err := findAccount(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			raw, err := c.do(cmd.Context(), request{method: "PUT", path: "/api/v1/ops/accounts/" + escape(acc.ID) + "/roles",
				body: map[string][]string{"roles": change(acc.Roles, args[1:])}})
			if err != nil {
				return err
			}
			return show(a, raw, accountTable)
		}),
	}
}

func findAccount(ctx context.Context, c *apiClient, email string) ([]byte, account, error) {
	raw, err := c.do(ctx, request{method: "GET", path: "/api/v1/ops/accounts", query: url.Values{"email": {email}}})
	if err != nil {
		return nil, account{}, err
	}
	var acc account
	if err := json.Unmarshal(raw, &acc); err != nil || acc.ID == "" {
		return nil, account{}, fmt.Errorf("the shop's answer for %s has no account id", email)
	}
	return raw, acc, nil
}

// union is the sorted set of roles in either list.
func union(have, add []string) []string {
	out := slices.Concat(have, add)
	slices.Sort(out)
	return slices.Compact(out)
}

// difference is the sorted set of roles in have but not in remove.
func difference(have, remove []string) []string {
	out := slices.DeleteFunc(slices.Clone(have), func(r string) bool { return slices.Contains(remove, r) })
	if out == nil {
		out = []string{} // the API wants a list, not null
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func accountTable(w io.Writer, acc account) {
	row(w, "ID", "EMAIL", "NAME", "ROLES", "PROMO E-MAILS")
	row(w, acc.ID, acc.Email, acc.Name, list(acc.Roles), acc.PromoEmails)
}
