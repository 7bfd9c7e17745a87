package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeShop is an edge stand-in: it records every request and answers with what
// the test registered, or with the API's 404 for anything else.
type fakeShop struct {
	*httptest.Server
	mux      *http.ServeMux
	mu       sync.Mutex
	requests []recorded
}

// recorded is one request as the fake shop saw it.
type recorded struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   string
}

func newFakeShop(t *testing.T) *fakeShop {
	t.Helper()
	f := &fakeShop{mux: http.NewServeMux()}
	f.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusNotFound, `{"error":{"code":"not_found","message":"no such route in the fake shop"}}`)
	})
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.requests = append(f.requests, recorded{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.Query(), Header: r.Header.Clone(), Body: string(body)})
		f.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// answer registers a canned answer for a ServeMux pattern ("GET /api/v1/promos/{id}").
// headers are name, value pairs.
func (f *fakeShop) answer(pattern string, status int, body string, headers ...string) {
	f.mux.HandleFunc(pattern, func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		reply(w, status, body)
	})
}

func reply(w http.ResponseWriter, status int, body string) {
	if body != "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// got returns the requests so far.
func (f *fakeShop) got() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.requests...)
}

// only returns the single request the shop saw, failing the test otherwise.
func (f *fakeShop) only(t *testing.T) recorded {
	t.Helper()
	got := f.got()
	if len(got) != 1 {
		t.Fatalf("the shop saw %d requests, want 1: %+v", len(got), got)
	}
	return got[0]
}

// cli runs shopctl in-process with an environment of its own.
type cli struct {
	t   *testing.T
	env map[string]string
}

// newCLI returns a shopctl pointed at shop with a token, its saved login in a
// temporary directory.
func newCLI(t *testing.T, shop *fakeShop) *cli {
	t.Helper()
	c := &cli{t: t, env: map[string]string{"SHOPCTL_CONFIG": filepath.Join(t.TempDir(), "phoneshop", "shopctl.json")}}
	if shop != nil {
		c.env["SHOPCTL_URL"] = shop.URL
		c.env["SHOPCTL_TOKEN"] = testToken
	}
	return c
}

// testToken is the token tests give with SHOPCTL_TOKEN.
const testToken = "tok-env-0123456789"

// app is shopctl's app with the cli's environment, to read what a run saved.
func (c *cli) app() *app {
	return &app{getenv: func(k string) string { return c.env[k] }, now: time.Now}
}

type result struct {
	code           int
	stdout, stderr string
}

func (c *cli) run(args ...string) result { return c.runWithInput("", args...) }

func (c *cli) runWithInput(stdin string, args ...string) result {
	c.t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, strings.NewReader(stdin), &stdout, &stderr, func(k string) string { return c.env[k] })
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// mustSucceed runs shopctl and fails the test unless it exits 0.
func (c *cli) mustSucceed(args ...string) result {
	c.t.Helper()
	r := c.run(args...)
	if r.code != exitOK {
		c.t.Fatalf("shopctl %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

// decode unmarshals a recorded JSON body into a generic value for comparison.
func decode(t *testing.T, body string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("body %q is not JSON: %v", body, err)
	}
	return v
}

// pretty is raw as -o json prints it.
func pretty(t *testing.T, raw string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(raw), "", "  "); err != nil {
		t.Fatal(err)
	}
	return b.String() + "\n"
}
