package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxResponseBytes bounds what shopctl reads of one answer: every API answer is
// far smaller, and a misconfigured --url must not fill the memory.
const maxResponseBytes = 16 << 20

// apiClient sends API requests to one shop with one (possibly empty) token.
type apiClient struct {
	http    *http.Client
	baseURL string
	token   string
}

// apiError is an error answer of the API: {"error":{"code","message","details"}}.
type apiError struct {
	Status  int
	Code    string
	Message string
	Details json.RawMessage
	// RetryAfter is the Retry-After header of a 429 or 503, as sent.
	RetryAfter string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// request is one API call.
type request struct {
	method string
	path   string     // from /api/v1/..., already escaped
	query  url.Values // may be nil
	body   any        // marshalled to JSON when not nil
	header map[string]string
}

// do sends req and returns the body of a 2xx answer; any other answer is an *apiError.
func (c *apiClient) do(ctx context.Context, req request) ([]byte, error) {
	var body io.Reader
	if req.body != nil {
		raw, err := json.Marshal(req.body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(raw)
	}
	u := c.baseURL + req.path
	if len(req.query) > 0 {
		u += "?" + req.query.Encode()
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, u, body)
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("User-Agent", "shopctl")
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		hr.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range req.header {
		hr.Header.Set(k, v)
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, err // names the method and URL, never the token
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", req.method, u, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return raw, nil
	}
	return nil, toAPIError(resp, raw)
}

// toAPIError decodes an error answer. One that is not the API's JSON (a proxy's
// HTML page, say) still gets a code, from its status, so the output keeps its form.
func toAPIError(resp *http.Response, raw []byte) *apiError {
	e := &apiError{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
	var body struct {
		Error struct {
			Code    string          `json:"code"`
			Message string          `json:"message"`
			Details json.RawMessage `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message, e.Details = body.Error.Code, body.Error.Message, body.Error.Details
		return e
	}
	e.Code = fmt.Sprintf("http_%d", resp.StatusCode)
	e.Message = http.StatusText(resp.StatusCode)
	if text := strings.TrimSpace(string(raw)); text != "" {
		const maxShown = 200
		if len(text) > maxShown {
			text = text[:maxShown] + "..."
		}
		e.Message += ": " + text
	}
	return e
}

// printAPIError writes an API error the way scripts and people read it:
// "error: <code>: <message>", then the details and the wait, when there are any.
func printAPIError(w io.Writer, e *apiError) {
	fmt.Fprintf(w, "error: %s: %s\n", e.Code, e.Message)
	if len(e.Details) > 0 && string(e.Details) != "null" {
		var compact bytes.Buffer
		if json.Compact(&compact, e.Details) == nil {
			fmt.Fprintf(w, "details: %s\n", compact.String())
		}
	}
	if e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable {
		if e.RetryAfter != "" {
			fmt.Fprintf(w, "retry after: %s seconds\n", e.RetryAfter)
		} else {
			fmt.Fprintln(w, "retry after: not given; wait a moment before trying again")
		}
	}
	if e.Code == "unauthenticated" {
		fmt.Fprintln(w, "hint: log in with 'shopctl login' (or give --token)")
	}
}

// escape makes one path segment of a URL from an id, SKU or the like.
func escape(segment string) string { return url.PathEscape(segment) }
