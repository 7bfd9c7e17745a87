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

// promoJSON is a campaign as the API returns it.
const promoJSON = `{"id":"promo_0123456789abcdef01234567","name":"Black Friday","percent_off":20,"brands":["Apple"],"skus":["samsung-galaxy-s24-128-onyx-black"],"starts_at":"2026-11-27T00:00:00Z","ends_at":"2026-11-30T00:00:00Z","max_discounted_units":50,"email_subject":"20% off","email_body":"Hello","status":"draft","created_at":"2026-11-01T09:00:00Z","updated_at":"2026-11-01T09:00:00Z","stats":{"recipients":10,"sent":9,"failed":1,"discounted_units":3,"orders":2}}`

// uncappedPromoJSON has no max_discounted_units.
const uncappedPromoJSON = `{"id":"promo_bbbbbbbbbbbbbbbbbbbbbbbb","name":"Spring","percent_off":5,"brands":[],"skus":["apple-iphone-16-128-black"],"starts_at":"2026-03-01T00:00:00Z","ends_at":"2026-03-08T00:00:00Z","email_subject":"","email_body":"","status":"active","created_at":"2026-02-01T09:00:00Z","updated_at":"2026-02-01T09:00:00Z","stats":{"recipients":0,"sent":0,"failed":0,"discounted_units":7,"orders":4}}`

func TestPromoCreate_sends_the_spec_and_shows_the_campaign(t *testing.T) {
	for _, output := range []string{"table", "json"} {
		t.Run(output, func(t *testing.T) {
			shop := newFakeShop(t)
			shop.answer("POST /api/v1/promos", http.StatusCreated, promoJSON)
			r := newCLI(t, shop).mustSucceed("-o", output, "promo", "create", "--name", "Black Friday", "--percent-off", "20",
				"--brand", "Apple", "--sku", "samsung-galaxy-s24-128-onyx-black",
				"--starts-at", "2026-11-27T01:00:00+01:00", "--ends-at", "2026-11-30T00:00:00Z",
				"--max-units", "50", "--email-subject", "20% off", "--email-body", "Hello")

			req := shop.only(t)
			want := map[string]any{
				"name": "Black Friday", "percent_off": 20.0, "brands": []any{"Apple"}, "skus": []any{"samsung-galaxy-s24-128-onyx-black"},
				"starts_at": "2026-11-27T00:00:00Z", "ends_at": "2026-11-30T00:00:00Z", "max_discounted_units": 50.0,
				"email_subject": "20% off", "email_body": "Hello",
			}
			if diff := cmp.Diff(want, decode(t, req.Body)); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			if req.Header.Get("Authorization") != "Bearer "+testToken || req.Header.Get("Content-Type") != "application/json" {
				t.Errorf("headers %v", req.Header)
			}
			if output == "json" {
				if r.stdout != pretty(t, promoJSON) {
					t.Errorf("stdout:\n%s\nwant the answer as received:\n%s", r.stdout, pretty(t, promoJSON))
				}
				return
			}
			for _, want := range []string{"promo_0123456789abcdef01234567", "Black Friday", "draft", "20%", "3/50", "9/1 of 10"} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("table lacks %q:\n%s", want, r.stdout)
				}
			}
		})
	}
}

func TestPromoCreate_sends_empty_lists_and_relative_times(t *testing.T) {
	shop := newFakeShop(t)
	shop.answer("POST /api/v1/promos", http.StatusCreated, promoJSON)
	before := time.Now().UTC().Truncate(time.Second)
	newCLI(t, shop).mustSucceed("promo", "create", "--name", "Soon", "--percent-off", "10", "--brand", "Apple",
		"--starts-at", "now", "--ends-at", "+2h")
	after := time.Now().UTC()

	body := decode(t, shop.only(t).Body).(map[string]any)
	if skus, ok := body["skus"].([]any); !ok || len(skus) != 0 {
		t.Errorf("skus %#v, want []", body["skus"])
	}
	for field, offset := range map[string]time.Duration{"starts_at": 0, "ends_at": 2 * time.Hour} {
		s, _ := body[field].(string)
		ts, err := time.Parse(time.RFC3339, s)
		if err != nil || !strings.HasSuffix(s, "Z") {
			t.Errorf("%s %q is not RFC 3339 UTC", field, s)
			continue
		}
		if ts.Before(before.Add(offset)) || ts.After(after.Add(offset)) {
			t.Errorf("%s %s not within [%s, %s] + %v", field, s, before, after, offset)
		}
	}
}

func TestPromoCreate_reads_the_email_body_from_a_file_or_stdin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mail.txt")
	if err := os.WriteFile(path, []byte("Dear shopper,\n20% off.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, source := range map[string]struct{ flag, stdin string }{
		"file":  {path, ""},
		"stdin": {"-", "Dear shopper,\n20% off.\n"},
	} {
		t.Run(name, func(t *testing.T) {
			shop := newFakeShop(t)
			shop.answer("POST /api/v1/promos", http.StatusCreated, promoJSON)
			r := newCLI(t, shop).runWithInput(source.stdin, "promo", "create", "--name", "Mail", "--percent-off", "10",
				"--sku", "apple-iphone-16-128-black", "--starts-at", "now", "--ends-at", "+1d", "--email-body-file", source.flag)
			if r.code != exitOK {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if got := decode(t, shop.only(t).Body).(map[string]any)["email_body"]; got != "Dear shopper,\n20% off.\n" {
				t.Errorf("email_body %q", got)
			}
		})
	}
}

func TestPromoEdit_patches_only_the_flags_given(t *testing.T) {
	shop := newFakeShop(t)
	shop.answer("PATCH /api/v1/promos/{id}", http.StatusOK, promoJSON)
	newCLI(t, shop).mustSucceed("promo", "edit", "promo_0123456789abcdef01234567",
		"--percent-off", "25", "--brand", "Apple", "--brand", "Samsung", "--sku=", "--email-subject", "")

	req := shop.only(t)
	if req.Method != "PATCH" || req.Path != "/api/v1/promos/promo_0123456789abcdef01234567" {
		t.Errorf("sent %s %s", req.Method, req.Path)
	}
	want := map[string]any{"percent_off": 25.0, "brands": []any{"Apple", "Samsung"}, "skus": []any{}, "email_subject": ""}
	if diff := cmp.Diff(want, decode(t, req.Body)); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

func TestPromoEdit_conflict_exits_1(t *testing.T) {
	shop := newFakeShop(t)
	shop.answer("PATCH /api/v1/promos/{id}", http.StatusConflict, `{"error":{"code":"conflict","message":"only a draft can be edited"}}`)
	r := newCLI(t, shop).run("promo", "edit", "promo_1", "--name", "New")
	if r.code != exitError || r.stderr != "error: conflict: only a draft can be edited\n" {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestPromoGet_and_moves_call_their_paths(t *testing.T) {
	tests := []struct {
		args         []string
		method, path string
	}{
		{[]string{"promo", "get", "promo_1"}, "GET", "/api/v1/promos/promo_1"},
		{[]string{"promo", "launch", "promo_1"}, "POST", "/api/v1/promos/promo_1/launch"},
		{[]string{"promo", "pause", "promo_1"}, "POST", "/api/v1/promos/promo_1/pause"},
		{[]string{"promo", "end", "promo_1"}, "POST", "/api/v1/promos/promo_1/end"},
	}
	for _, tt := range tests {
		t.Run(tt.args[1], func(t *testing.T) {
			for _, output := range []string{"table", "json"} {
				shop := newFakeShop(t)
				shop.answer(tt.method+" "+tt.path, http.StatusOK, promoJSON)
				r := newCLI(t, shop).mustSucceed(append([]string{"-o", output}, tt.args...)...)
				req := shop.only(t)
				if req.Method != tt.method || req.Path != tt.path || req.Body != "" {
					t.Errorf("sent %s %s body %q", req.Method, req.Path, req.Body)
				}
				if output == "json" && r.stdout != pretty(t, promoJSON) {
					t.Errorf("json stdout:\n%s", r.stdout)
				}
				if output == "table" && !strings.Contains(r.stdout, "STATUS") {
					t.Errorf("table stdout:\n%s", r.stdout)
				}
			}
		})
	}
}

func TestPromoGet_escapes_the_id(t *testing.T) {
	shop := newFakeShop(t)
	newCLI(t, shop).run("promo", "get", "../ops/cluster")
	if got := shop.only(t).Path; got != "/api/v1/promos/..%2Fops%2Fcluster" {
		t.Errorf("path %q", got)
	}
}

func TestPromoList_table_has_the_issues_columns(t *testing.T) {
	shop := newFakeShop(t)
	page := `{"items":[` + promoJSON + `,` + uncappedPromoJSON + `],"next_page_token":"tok2"}`
	shop.answer("GET /api/v1/promos", http.StatusOK, page)
	r := newCLI(t, shop).mustSucceed("promo", "list", "--status", "active", "--page-size", "2")

	req := shop.only(t)
	if req.Query.Get("status") != "active" || req.Query.Get("page_size") != "2" || req.Query.Has("page_token") {
		t.Errorf("query %v", req.Query)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and 2 rows:\n%s", r.stdout)
	}
	if diff := cmp.Diff([]string{"ID", "NAME", "STATUS", "PERCENT", "STARTS", "ENDS", "UNITS", "ORDERS"}, strings.Fields(lines[0])); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	wantRows := [][]string{
		{"promo_0123456789abcdef01234567", "Black", "Friday", "draft", "20%", "2026-11-27T00:00:00Z", "2026-11-30T00:00:00Z", "3/50", "2"},
		{"promo_bbbbbbbbbbbbbbbbbbbbbbbb", "Spring", "active", "5%", "2026-03-01T00:00:00Z", "2026-03-08T00:00:00Z", "7/-", "4"},
	}
	for i, want := range wantRows {
		if diff := cmp.Diff(want, strings.Fields(lines[i+1])); diff != "" {
			t.Errorf("row %d (-want +got):\n%s", i, diff)
		}
	}
	if !strings.Contains(r.stderr, "--page-token tok2") {
		t.Errorf("stderr %q does not say how to get the next page", r.stderr)
	}
}

func TestPromoList_json_is_the_page_as_received(t *testing.T) {
	shop := newFakeShop(t)
	page := `{"items":[` + promoJSON + `],"next_page_token":"tok2"}`
	shop.answer("GET /api/v1/promos", http.StatusOK, page)
	r := newCLI(t, shop).mustSucceed("-o", "json", "promo", "list", "--page-token", "tok1")
	if r.stdout != pretty(t, page) {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	if got := shop.only(t).Query.Get("page_token"); got != "tok1" {
		t.Errorf("page_token %q", got)
	}
}

func TestPromoList_all_follows_every_page(t *testing.T) {
	shop := newFakeShop(t)
	shop.mux.HandleFunc("GET /api/v1/promos", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("page_token") == "" {
			reply(w, http.StatusOK, `{"items":[`+promoJSON+`],"next_page_token":"p2"}`)
			return
		}
		reply(w, http.StatusOK, `{"items":[`+uncappedPromoJSON+`],"next_page_token":""}`)
	})
	r := newCLI(t, shop).mustSucceed("promo", "list", "--all", "--status", "draft")
	if !strings.Contains(r.stdout, "promo_0123456789abcdef01234567") || !strings.Contains(r.stdout, "promo_bbbbbbbbbbbbbbbbbbbbbbbb") {
		t.Errorf("stdout lacks a page:\n%s", r.stdout)
	}
	got := shop.got()
	if len(got) != 2 || got[1].Query.Get("page_token") != "p2" || got[1].Query.Get("status") != "draft" {
		t.Errorf("requests %+v", got)
	}

	r = newCLI(t, shop).mustSucceed("-o", "json", "promo", "list", "--all")
	want := pretty(t, `{"items":[`+promoJSON+`,`+uncappedPromoJSON+`],"next_page_token":""}`)
	if r.stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, want)
	}
}

func TestPromoList_all_stops_when_the_shop_repeats_a_page_token(t *testing.T) {
	shop := newFakeShop(t)
	shop.answer("GET /api/v1/promos", http.StatusOK, `{"items":[],"next_page_token":"same"}`)
	r := newCLI(t, shop).run("promo", "list", "--all")
	if r.code != exitError || !strings.Contains(r.stderr, "twice") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
	tests := []struct {
		in, want string
	}{
		{"now", "2026-11-27T09:00:00Z"},
		{"NOW", "2026-11-27T09:00:00Z"},
		{"+30m", "2026-11-27T09:30:00Z"},
		{"+2h", "2026-11-27T11:00:00Z"},
		{"+1h30m", "2026-11-27T10:30:00Z"},
		{"-15m", "2026-11-27T08:45:00Z"},
		{"+7d", "2026-12-04T09:00:00Z"},
		{"+1d12h", "2026-11-28T21:00:00Z"},
		{"2026-11-30T10:00:00Z", "2026-11-30T10:00:00Z"},
		{"2026-11-30T11:00:00+01:00", "2026-11-30T10:00:00Z"},
		{" 2026-11-30T10:00:00.5Z ", "2026-11-30T10:00:00Z"},
	}
	for _, tt := range tests {
		got, err := parseTime(tt.in, now)
		if err != nil || got != tt.want {
			t.Errorf("parseTime(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "tomorrow", "+", "+2", "+2x", "+-2h", "2026-11-30", "2026-11-30 10:00:00", "+99999999d"} {
		if got, err := parseTime(bad, now); err == nil {
			t.Errorf("parseTime(%q) = %q, want an error", bad, got)
		}
	}
}

// limitedPromoJSON is promoJSON with a limit of 2 units per customer.
const limitedPromoJSON = `{"id":"promo_cccccccccccccccccccccccc","name":"Flash","percent_off":35,"brands":[],"skus":["apple-iphone-16-128-black"],"starts_at":"2026-11-27T18:00:00Z","ends_at":"2026-11-27T20:00:00Z","max_discounted_units":50,"max_units_per_customer":2,"email_subject":"","email_body":"","status":"draft","created_at":"2026-11-01T09:00:00Z","updated_at":"2026-11-01T09:00:00Z","stats":{"recipients":0,"sent":0,"failed":0,"discounted_units":0,"orders":0}}`

func TestPromoMaxPerCustomer_is_sent_on_create_and_edit_and_shown_by_get(t *testing.T) {
	shop := newFakeShop(t)
	shop.answer("POST /api/v1/promos", http.StatusCreated, limitedPromoJSON)
	newCLI(t, shop).mustSucceed("promo", "create", "--name", "Flash", "--percent-off", "35", "--sku", "apple-iphone-16-128-black",
		"--starts-at", "2026-11-27T18:00:00Z", "--ends-at", "2026-11-27T20:00:00Z", "--max-per-customer", "2")
	if got := decode(t, shop.only(t).Body).(map[string]any)["max_units_per_customer"]; got != 2.0 {
		t.Errorf("create sent max_units_per_customer %v, want 2", got)
	}

	for _, tc := range []struct {
		flags []string
		want  any // nil: JSON null
	}{
		{[]string{"--max-per-customer", "5"}, 5.0},
		{[]string{"--no-max-per-customer"}, nil},
	} {
		shop := newFakeShop(t)
		shop.answer("PATCH /api/v1/promos/{id}", http.StatusOK, promoJSON)
		newCLI(t, shop).mustSucceed(append([]string{"promo", "edit", "promo_1"}, tc.flags...)...)
		body := decode(t, shop.only(t).Body).(map[string]any)
		if got, ok := body["max_units_per_customer"]; !ok || got != tc.want || len(body) != 1 {
			t.Errorf("edit %v sent %v; want only max_units_per_customer %v", tc.flags, body, tc.want)
		}
	}

	shop = newFakeShop(t)
	if r := newCLI(t, shop).run("promo", "edit", "promo_1", "--max-per-customer", "2", "--no-max-per-customer"); r.code != exitUsage {
		t.Errorf("--max-per-customer with --no-max-per-customer: exit %d, stderr %q", r.code, r.stderr)
	}

	for body, want := range map[string]string{limitedPromoJSON: "2", promoJSON: "-"} {
		shop := newFakeShop(t)
		shop.answer("GET /api/v1/promos/{id}", http.StatusOK, body)
		r := newCLI(t, shop).mustSucceed("promo", "get", "promo_1")
		var line string
		for _, l := range strings.Split(r.stdout, "\n") {
			if strings.HasPrefix(l, "MAX PER CUSTOMER") {
				line = l
			}
		}
		if got := strings.Fields(strings.TrimPrefix(line, "MAX PER CUSTOMER")); len(got) != 1 || got[0] != want {
			t.Errorf("get shows %q; want MAX PER CUSTOMER %s\n%s", line, want, r.stdout)
		}
	}
}
