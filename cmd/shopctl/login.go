package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func (a *app) loginCommand() *cobra.Command {
	var email string
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in and save the session for later commands",
		Long: `Log in to the shop (POST /api/v1/sessions) and save the session, so that later
commands need no --token.

The e-mail comes from --email, else shopctl asks for it. The password comes from
$SHOPCTL_PASSWORD, else shopctl reads it from the terminal without echoing it; with
neither (a script without a terminal) login fails.

The session is saved as {url, token, expires_at} to the saved-login file (see
'shopctl --help'), mode 0600 in a directory of mode 0700, replacing any earlier one.
The token is never printed. Log in again when it expires.`,
		Example: `  shopctl login --email ops@example.com
  shopctl --url https://shop.example.com login --email ops@example.com

  # In a script
  SHOPCTL_PASSWORD="$(cat /run/secrets/shop)" shopctl login --email ops@example.com`,
		Args: noArgs,
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			return a.login(cmd, email)
		}),
	}
	cmd.Flags().StringVar(&email, "email", "", "the account's e-mail (asked for when absent)")
	return cmd
}

func (a *app) login(cmd *cobra.Command, email string) error {
	saved, err := a.loadLogin()
	if err != nil {
		// The login about to be saved replaces it; only its URL is lost.
		fmt.Fprintf(a.stderr, "warning: %v\n", err)
	}
	t := a.resolveTarget(saved)
	t.token = "" // a new session needs none, and an old one must not leak into it
	if email == "" {
		if email, err = a.prompt("E-mail: "); err != nil {
			return err
		}
	}
	password, err := a.readPassword()
	if err != nil {
		return err
	}
	raw, err := a.clientFor(t).do(cmd.Context(), request{method: "POST", path: "/api/v1/sessions",
		body: map[string]string{"email": email, "password": password}})
	if err != nil {
		return err
	}
	var session struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal(raw, &session); err != nil || session.Token == "" {
		return fmt.Errorf("the shop's answer to the login has no session token")
	}
	if err := a.saveLogin(savedLogin{URL: t.url, Token: session.Token, ExpiresAt: session.ExpiresAt}); err != nil {
		return err
	}
	if a.output == "json" {
		// Not the API's answer: that holds the token, which shopctl never prints.
		out, err := json.Marshal(map[string]any{"url": t.url, "email": email, "expires_at": session.ExpiresAt})
		if err != nil {
			return err
		}
		return printJSON(a.stdout, out)
	}
	fmt.Fprintf(a.stdout, "Logged in to %s as %s until %s.\n", t.url, email, session.ExpiresAt.UTC().Format(time.RFC3339))
	return nil
}

// prompt asks on stderr and reads one line from stdin.
func (a *app) prompt(question string) (string, error) {
	fmt.Fprint(a.stderr, question)
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read answer: %w", err)
	}
	answer := strings.TrimSpace(line)
	if answer == "" {
		return "", usagef("no answer to %q: give it as a flag", strings.TrimSpace(question))
	}
	return answer, nil
}

// readPassword takes the password from $SHOPCTL_PASSWORD, else from the terminal
// with echo off. It never reads a piped stdin: a password in a pipe usually means
// one in a shell history, and the environment variable is the documented way.
func (a *app) readPassword() (string, error) {
	if p := a.getenv("SHOPCTL_PASSWORD"); p != "" {
		return p, nil
	}
	f, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usagef("no terminal to read the password from: set SHOPCTL_PASSWORD")
	}
	fmt.Fprint(a.stderr, "Password: ")
	p, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(a.stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return string(p), nil
}

func (a *app) logoutCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "End the session and delete the saved login",
		Long: `End the session at the shop (DELETE /api/v1/sessions/current), so its token stops
working, and delete the saved-login file. A session the shop has already ended
(401) is deleted too. When the shop cannot be reached the file is kept, so that
logout can be tried again.`,
		Example: `  shopctl logout`,
		Args:    noArgs,
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			saved, err := a.loadLogin()
			if err != nil {
				return err
			}
			t := a.resolveTarget(saved)
			if t.token == "" {
				return fmt.Errorf("not logged in to %s", t.url)
			}
			raw, err := a.clientFor(t).do(cmd.Context(), request{method: "DELETE", path: "/api/v1/sessions/current"})
			var apiErr *apiError
			ended := err == nil || (errors.As(err, &apiErr) && apiErr.Code == "unauthenticated")
			if !ended {
				return err
			}
			if saved != nil && saved.Token == t.token {
				if err := a.removeLogin(); err != nil {
					return err
				}
			}
			if a.output == "json" {
				return printJSON(a.stdout, raw)
			}
			fmt.Fprintf(a.stdout, "Logged out of %s.\n", t.url)
			return nil
		}),
	}
}
