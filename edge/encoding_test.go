package edge_test

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"

	"phoneshop/internal/shoptest"
)

// inflated is how much every encoded body below inflates to: enough that decoding it
// at all would show, small enough to compress in a moment.
const inflated = 64 << 20

// compressed returns inflated spaces encoded with each coding in turn.
func compressed(t *testing.T, codings ...string) []byte {
	t.Helper()
	body := bytes.Repeat([]byte(" "), inflated)
	for _, coding := range codings {
		var buf bytes.Buffer
		var w io.WriteCloser
		switch coding {
		case "gzip":
			w = gzip.NewWriter(&buf)
		case "deflate": // HTTP's deflate is the zlib format (RFC 9110, 8.4.1.2)
			w = zlib.NewWriter(&buf)
		case "br":
			w = brotli.NewWriter(&buf)
		default:
			t.Fatalf("no encoder for %q", coding)
		}
		if _, err := w.Write(body); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		body = buf.Bytes()
	}
	return body
}

// allocatedDuring returns the bytes the process allocated while f ran: the test and
// the shop share the process, so whatever the server decodes or buffers shows.
func allocatedDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestEncodedBodies(t *testing.T) {
	h := shoptest.Start(t, 1)
	shopper, _ := h.Shopper()

	// A small request that would inflate to 64 MiB: refused for its header, before
	// anything reads (and so decodes) the body.
	for _, tc := range []struct {
		name    string
		header  string
		codings []string
	}{
		{"gzip", "gzip", []string{"gzip"}},
		{"gzip_gzip", "gzip, gzip", []string{"gzip", "gzip"}},
		{"br", "br", []string{"br"}},
		{"deflate", "deflate", []string{"deflate"}},
		{"identity_then_gzip", "identity, gzip", []string{"gzip"}},
	} {
		body := compressed(t, tc.codings...)
		for _, route := range []struct{ method, path, token string }{
			{"POST", "/api/v1/accounts", ""},
			{"POST", "/api/v1/sessions", ""},
			{"PUT", "/api/v1/cart/items/google-pixel-8-128-obsidian", shopper},
		} {
			t.Run("415_"+tc.name+"_"+strings.ReplaceAll(strings.Trim(route.path, "/"), "/", "_"), func(t *testing.T) {
				var r shoptest.Response
				grew := allocatedDuring(func() {
					r = do(t, h, shoptest.Request{Method: route.method, Path: route.path, Token: route.token, Body: body,
						Headers: map[string]string{"Content-Encoding": tc.header}})
				})
				wantError(t, r, http.StatusUnsupportedMediaType, "unsupported_encoding")
				if grew > 10<<20 {
					t.Errorf("the request of %d bytes made the process allocate %d MiB: its body was decoded", len(body), grew>>20)
				}
			})
		}
	}

	t.Run("identity_is_a_plain_body", func(t *testing.T) {
		r := do(t, h, shoptest.Request{Method: "PUT", Path: "/api/v1/cart/items/google-pixel-8-128-obsidian", Token: shopper,
			Body: `{"quantity":1}`, Headers: map[string]string{"Content-Encoding": "identity"}})
		wantOK(t, r, http.StatusOK, nil)
	})

	t.Run("refused_request_changes_nothing", func(t *testing.T) {
		email := "encoded-signup@example.com"
		plain := `{"email":"` + email + `","password":"a password of length","name":"Encoded"}`
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		_, _ = w.Write([]byte(plain))
		_ = w.Close()
		wantError(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/accounts", Body: buf.Bytes(),
			Headers: map[string]string{"Content-Encoding": "gzip"}}), http.StatusUnsupportedMediaType, "unsupported_encoding")
		// The account was not created: the same sign-up sent plainly succeeds.
		wantOK(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/accounts", Body: plain}), http.StatusCreated, nil)
	})
}

// The server reads at most twice the body limit of any request: a body a little over
// the limit gets the API's 413, a larger one is cut off without being buffered.
func TestBodyBufferIsBounded(t *testing.T) {
	h := shoptest.Start(t, 1)
	limit := h.Config.BodyLimit

	t.Run("just_over_the_limit_413_payload_too_large", func(t *testing.T) {
		body := `{"name":"` + strings.Repeat("a", limit) + `"}`
		wantError(t, do(t, h, shoptest.Request{Method: "POST", Path: "/api/v1/accounts", Body: body}),
			http.StatusRequestEntityTooLarge, "payload_too_large")
	})

	for _, chunked := range []bool{false, true} {
		name := "content_length"
		if chunked {
			name = "chunked"
		}
		t.Run("far_over_the_limit_not_buffered_"+name, func(t *testing.T) {
			big := bytes.Repeat([]byte("a"), 48*limit) // 3 MiB at the shipped 64 KiB
			var status int
			grew := allocatedDuring(func() {
				var body io.Reader = bytes.NewReader(big)
				if chunked {
					body = io.MultiReader(body) // hides the length: the client sends it chunked
				}
				req, err := http.NewRequest("POST", h.URL+"/api/v1/accounts", body)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := h.Client.Do(req)
				if err != nil {
					return // the server may close the connection while the client still sends
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				status = resp.StatusCode
			})
			if status != 0 && status != http.StatusRequestEntityTooLarge {
				t.Errorf("status = %d, want 413 or a closed connection", status)
			}
			if max := uint64(len(big)) / 3; grew > max {
				t.Errorf("a body of %d KiB made the process allocate %d KiB (want under %d KiB): the server buffered it",
					len(big)>>10, grew>>10, max>>10)
			}
		})
	}
}
