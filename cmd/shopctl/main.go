// Package main is shopctl, the command-line client that marketing and ops use to run
// campaigns, grant staff roles, receive stock, ship orders, look at the cluster and
// watch the mail pipeline (and send its dead letters back).
// It speaks only the shop's HTTP API (described at GET /api/v1/openapi.json) to an edge, so it works
// against any deployment the way a browser does.
//
//	shopctl login --email ann@example.com
//	shopctl promo create --name "Black Friday" --percent-off 20 --brand Apple --starts-at now --ends-at +48h
//	shopctl promo list
//
// Exit status: 0 on success, 1 when the API answered with an error or could not be
// reached, 2 on a usage error (unknown command, bad flag or argument).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Exit statuses; scripts rely on them, so they are part of the interface.
const (
	exitOK    = 0
	exitError = 1 // the API said no, or could not be reached
	exitUsage = 2 // the command line itself is wrong
)

// Defaults of the global flags.
const (
	defaultURL     = "http://localhost:8080"
	defaultTimeout = 30 * time.Second
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// run executes one shopctl command line and returns the exit status. Everything
// it touches from the outside comes in as an argument, so tests run it in-process.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv, now: time.Now}
	root := a.rootCommand()
	if args == nil {
		args = []string{} // a nil slice makes cobra read os.Args
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)

	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	var apiErr *apiError
	var usage *usageError
	switch {
	case errors.As(err, &usage) || !a.started:
		// Cobra rejects flags, arguments and required flags before any action
		// starts, with plain errors: whatever fails before then is usage.
		fmt.Fprintf(stderr, "error: %v\n", err)
		if cmd != nil {
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
		return exitUsage
	case errors.As(err, &apiErr):
		printAPIError(stderr, apiErr)
		return exitError
	default:
		fmt.Fprintf(stderr, "error: %v\n", err)
		return exitError
	}
}

// usageError is a mistake in the command line found by shopctl itself (a bad time,
// a count that is not a number); it exits 2 like cobra's own usage errors.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// app holds what one run of shopctl shares between its commands: its streams,
// its environment and the global flags.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time

	url, token, output, configPath string
	timeout                        time.Duration

	// started is set when a command's action begins: an error before that is
	// cobra rejecting the command line.
	started bool
}

// action wraps a command's RunE so that run can tell usage errors (before it)
// from failures of the command itself.
func (a *app) action(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		a.started = true
		return fn(cmd, args)
	}
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "shopctl",
		Short: "Run campaigns, staff roles, stock, orders, the cluster and the mail of a phoneshop",
		Long: `shopctl is the phoneshop command line for marketing and operations. It speaks
only the shop's HTTP API, to the edge named by --url.

Log in once with 'shopctl login'; the session (URL, token and expiry) is saved to
$XDG_CONFIG_HOME/phoneshop/shopctl.json (on macOS ~/Library/Application Support/...)
with mode 0600, and later commands use it. The token is never printed.

Where the shop and the token come from, first match wins:
  URL:    --url, then $SHOPCTL_URL, then the saved login's URL, then ` + defaultURL + `
  token:  --token, then $SHOPCTL_TOKEN, then the saved login's token (only when the
          URL is the one it was saved for, so a token never goes to another shop)

Environment:
  SHOPCTL_URL       the shop's URL
  SHOPCTL_TOKEN     a session token (for scripts; prefer 'shopctl login')
  SHOPCTL_PASSWORD  the password 'shopctl login' uses instead of asking
  SHOPCTL_CONFIG    the saved-login file, instead of the default path (as --config)

Output (-o): 'table' (the default) is for people; 'json' prints the API's JSON as
received, pretty-printed, for scripts (e.g. with jq).

Exit status: 0 success; 1 the API answered with an error (printed as
"error: <code>: <message>") or could not be reached; 2 a usage error.
A 429 or 503 answer also prints how long to wait (Retry-After) before trying again.`,
		Example: `  # Log in, then start a 20% campaign on Apple phones for the next two days
  shopctl login --email marketing@example.com
  shopctl promo create --name "Apple week" --percent-off 20 --brand Apple \
      --starts-at now --ends-at +48h
  shopctl promo launch promo_0123456789abcdef01234567

  # The same against another shop, as JSON for a script
  shopctl --url https://shop.example.com -o json promo list --all | jq '.items[].id'`,
		SilenceErrors: true, // run prints errors itself, with the exit status they map to
		SilenceUsage:  true,
		Args:          cobra.ArbitraryArgs,
		RunE:          groupRunE,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if a.output != "table" && a.output != "json" {
				return usagef("invalid -o %q: want table or json", a.output)
			}
			if a.timeout <= 0 {
				return usagef("invalid --timeout %v: want a positive duration such as 30s", a.timeout)
			}
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{msg: err.Error()} })
	// Groups are runnable only to turn a missing or unknown subcommand into a usage
	// error; their help should not offer them as commands of their own.
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(),
		"{{if .Runnable}}", "{{if and .Runnable (not .HasAvailableSubCommands)}}", 1))
	root.CompletionOptions.HiddenDefaultCmd = true

	pf := root.PersistentFlags()
	pf.StringVar(&a.url, "url", "", "the shop's URL (env SHOPCTL_URL; default: the saved login's, else "+defaultURL+")")
	pf.StringVar(&a.token, "token", "", "session token (env SHOPCTL_TOKEN; default: the saved login's)")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	pf.DurationVar(&a.timeout, "timeout", defaultTimeout, "time limit of each HTTP request")
	pf.StringVar(&a.configPath, "config", "", "saved-login file (env SHOPCTL_CONFIG; default: <user config dir>/phoneshop/shopctl.json)")

	root.AddCommand(
		a.loginCommand(), a.logoutCommand(),
		a.promoCommand(), a.accountCommand(),
		a.stockCommand(), a.orderCommand(), a.clusterCommand(), a.mailCommand(),
	)
	return root
}

// groupRunE runs a command that only groups others: given no subcommand it shows
// its help, given an unknown one it says so; both are usage errors.
func groupRunE(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf(" (did you mean %q?)", s[0])
		}
		return &usageError{msg: msg}
	}
	cmd.SetOut(cmd.ErrOrStderr())
	_ = cmd.Help() // writing help to stderr cannot fail in a way worth reporting
	return usagef("%s needs a command", cmd.CommandPath())
}

// group returns a command that holds subcommands.
func group(use, short, long, example string, subs ...*cobra.Command) *cobra.Command {
	g := &cobra.Command{Use: use, Short: short, Long: long, Example: example, Args: cobra.ArbitraryArgs, RunE: groupRunE}
	g.AddCommand(subs...)
	return g
}

// exactArgs is cobra.ExactArgs with the arguments named in the message.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < len(names):
			return usagef("missing %s (usage: %s)", strings.Join(names[len(args):], " "), cmd.UseLine())
		case len(args) > len(names):
			return usagef("unexpected argument %q (usage: %s)", args[len(names)], cmd.UseLine())
		}
		return nil
	}
}

// minArgs requires at least the named arguments.
func minArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < len(names) {
			return usagef("missing %s (usage: %s)", strings.Join(names[len(args):], " "), cmd.UseLine())
		}
		return nil
	}
}

// noArgs rejects positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q (usage: %s)", args[0], cmd.UseLine())
	}
	return nil
}
