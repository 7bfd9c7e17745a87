package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

func TestUsageErrors_exit_2_without_a_request(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"unknown_command", []string{"bogus"}, `unknown command "bogus" for "shopctl"`},
		{"unknown_subcommand_with_suggestion", []string{"promo", "creat"}, `did you mean "create"?`},
		{"bare_group", []string{"promo"}, "shopctl promo needs a command"},
		{"no_command", nil, "shopctl needs a command"},
		{"unknown_flag", []string{"cluster", "--bogus"}, "unknown flag: --bogus"},
		{"bad_flag_value", []string{"promo", "list", "--page-size", "many"}, `invalid argument "many"`},
		{"bad_output", []string{"-o", "yaml", "cluster"}, `invalid -o "yaml"`},
		{"bad_timeout", []string{"--timeout", "0s", "cluster"}, "invalid --timeout"},
		{"missing_argument", []string{"promo", "get"}, "missing ID"},
		{"missing_second_argument", []string{"stock", "receive", "sku-1"}, "missing N"},
		{"missing_role", []string{"account", "grant", "ann@example.com"}, "missing ROLE"},
		{"extra_argument", []string{"order", "ship", "ord_1", "ord_2"}, `unexpected argument "ord_2"`},
		{"bad_count", []string{"stock", "receive", "sku-1", "ten"}, `N must be a whole number`},
		{"zero_count", []string{"stock", "receive", "sku-1", "0"}, `N must be a whole number`},
		{"missing_required_flag", []string{"promo", "create", "--name", "X", "--brand", "Acme"}, "required flag(s)"},
		{"no_brand_or_sku", []string{"promo", "create", "--name", "X", "--percent-off", "10", "--starts-at", "now", "--ends-at", "+1h"}, "at least one of the flags"},
		{"bad_time", []string{"promo", "create", "--name", "X", "--percent-off", "10", "--brand", "Acme", "--starts-at", "tomorrow", "--ends-at", "+1h"}, `invalid --starts-at: "tomorrow" is not a time`},
		{"body_twice", []string{"promo", "edit", "promo_1", "--email-body", "x", "--email-body-file", "f"}, "none of the others can be"},
		{"edit_nothing", []string{"promo", "edit", "promo_1"}, "nothing to change"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shop := newFakeShop(t)
			r := newCLI(t, shop).run(tt.args...)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want %d\nstderr: %s", r.code, exitUsage, r.stderr)
			}
			if !strings.Contains(r.stderr, "error: ") || !strings.Contains(r.stderr, tt.wantErr) {
				t.Errorf("stderr %q does not say %q", r.stderr, tt.wantErr)
			}
			if got := shop.got(); len(got) != 0 {
				t.Errorf("a usage error sent %d requests: %+v", len(got), got)
			}
		})
	}
}

func TestAPIError_exits_1_with_code_message_and_details(t *testing.T) {
	shop := newFakeShop(t)
	shop.answer("POST /api/v1/promos", http.StatusBadRequest,
		`{"error":{"code":"invalid_request","message":"unknown brands or SKUs","details":{"unknown_brands":["Nokla"],"unknown_skus":[]}}}`)
	r := newCLI(t, shop).run("promo", "create", "--name", "X", "--percent-off", "10", "--brand", "Nokla",
		"--starts-at", "now", "--ends-at", "+1h")
	if r.code != exitError {
		t.Fatalf("exit %d, want %d", r.code, exitError)
	}
	want := "error: invalid_request: unknown brands or SKUs\ndetails: {\"unknown_brands\":[\"Nokla\"],\"unknown_skus\":[]}\n"
	if r.stderr != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", r.stderr, want)
	}
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
}

func TestAPIError_without_the_APIs_body_still_has_a_code(t *testing.T) {
	shop := newFakeShop(t)
	shop.mux.HandleFunc("GET /api/v1/ops/cluster", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html>bad gateway</html>"))
	})
	r := newCLI(t, shop).run("cluster")
	if r.code != exitError || !strings.HasPrefix(r.stderr, "error: http_502: Bad Gateway: <html>bad gateway</html>") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestRetryAfter_is_printed_for_429_and_503(t *testing.T) {
	for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			shop := newFakeShop(t)
			shop.answer("GET /api/v1/ops/cluster", status, `{"error":{"code":"rate_limited","message":"slow down"}}`, "Retry-After", "7")
			r := newCLI(t, shop).run("cluster")
			if r.code != exitError {
				t.Fatalf("exit %d, want 1", r.code)
			}
			if !strings.Contains(r.stderr, "error: rate_limited: slow down\n") || !strings.Contains(r.stderr, "retry after: 7 seconds") {
				t.Errorf("stderr %q", r.stderr)
			}
		})
	}
}

func TestUnauthenticated_suggests_login(t *testing.T) {
	shop := newFakeShop(t)
	shop.answer("GET /api/v1/promos", http.StatusUnauthorized, `{"error":{"code":"unauthenticated","message":"log in first"}}`)
	r := newCLI(t, shop).run("promo", "list")
	if r.code != exitError || !strings.Contains(r.stderr, "error: unauthenticated: log in first") || !strings.Contains(r.stderr, "shopctl login") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestNetworkError_exits_1(t *testing.T) {
	shop := newFakeShop(t)
	c := newCLI(t, shop)
	shop.Close()
	r := c.run("cluster")
	if r.code != exitError || !strings.HasPrefix(r.stderr, "error: ") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, testToken) {
		t.Errorf("the token is in stderr: %q", r.stderr)
	}
}

func TestTimeout_ends_a_request_that_hangs(t *testing.T) {
	shop := newFakeShop(t)
	release := make(chan struct{})
	shop.mux.HandleFunc("GET /api/v1/ops/cluster", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	start := time.Now()
	r := newCLI(t, shop).run("--timeout", "100ms", "cluster")
	if r.code != exitError || !strings.Contains(r.stderr, "Timeout") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v with --timeout 100ms", took)
	}
}

func TestHelp_reads_as_a_manual(t *testing.T) {
	root := (&app{}).rootCommand()
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		if cmd.Hidden || cmd.Name() == "help" || cmd.Name() == "completion" {
			return
		}
		if cmd.Long == "" || cmd.Example == "" || cmd.Short == "" {
			t.Errorf("%s lacks a Short, Long or Example", cmd.CommandPath())
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)

	r := newCLI(t, nil).run("promo", "create", "--help")
	if r.code != exitOK || !strings.Contains(r.stdout, "Examples:") || !strings.Contains(r.stdout, "+7d") {
		t.Errorf("promo create --help: exit %d\n%s", r.code, r.stdout)
	}
	r = newCLI(t, nil).run("--help")
	if r.code != exitOK || !strings.Contains(r.stdout, "SHOPCTL_CONFIG") || strings.Contains(r.stdout, "shopctl [flags]") {
		t.Errorf("--help: exit %d\n%s", r.code, r.stdout)
	}
}
