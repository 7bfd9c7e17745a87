package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"time"
)

// Timeouts of the benchmark client. They are generous because a slow answer
// is a measurement, but finite so a wedged server cannot hang a run.
const (
	dialTimeout           = 5 * time.Second
	responseHeaderTimeout = 30 * time.Second
	requestTimeout        = 60 * time.Second
	idleConnTimeout       = 90 * time.Second
)

// errorBodyLimit caps how much of an error response is read to find its code.
const errorBodyLimit = 64 << 10

// NewClient returns an HTTP client for driving load with concurrency
// requests in flight: its keep-alive pool holds that many connections per
// host, so a steady run does not keep reconnecting.
func NewClient(concurrency int) *http.Client {
	concurrency = max(concurrency, 1)
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		MaxIdleConns:          concurrency,
		MaxIdleConnsPerHost:   concurrency,
		IdleConnTimeout:       idleConnTimeout,
		TLSHandshakeTimeout:   dialTimeout,
		ResponseHeaderTimeout: responseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: transport, Timeout: requestTimeout}
}

// Do sends one request and reads its response. Op names the operation in the
// outcome; token, when set, is sent as a bearer token; body, when set, is
// sent as JSON unless headers give another Content-Type. On a status of 400
// or more the API error code is taken from the body's {"error":{"code":...}};
// when there is none the code is "http_<status>". A request that got no
// response has Err set and code CodeTransport.
func Do(ctx context.Context, c *http.Client, op, method, url, token string, body []byte, headers map[string]string) Outcome {
	o, _ := send(ctx, c, op, method, url, token, body, headers, false)
	return o
}

// DoBody is Do that also returns the response body, for tasks that need what
// the server answered (an order id, a cart version).
func DoBody(ctx context.Context, c *http.Client, op, method, url, token string, body []byte, headers map[string]string) (Outcome, []byte) {
	return send(ctx, c, op, method, url, token, body, headers, true)
}

func send(ctx context.Context, c *http.Client, op, method, url, token string, body []byte, headers map[string]string, keepBody bool) (Outcome, []byte) {
	o := Outcome{Op: op}
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, reader)
	if err != nil {
		o.Err, o.Code = err, CodeTransport
		return o, nil
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}

	resp, err := c.Do(req)
	if err != nil {
		o.Err, o.Code = err, CodeTransport
		return o, nil
	}
	defer resp.Body.Close()
	o.Status = resp.StatusCode

	var data []byte
	switch {
	case keepBody:
		data, err = io.ReadAll(resp.Body)
	case resp.StatusCode >= 400:
		data, err = io.ReadAll(io.LimitReader(resp.Body, errorBodyLimit))
		if err == nil {
			// Drain the rest so the connection goes back to the pool.
			_, err = io.Copy(io.Discard, resp.Body)
		}
	default:
		_, err = io.Copy(io.Discard, resp.Body)
	}
	if err != nil {
		o.Err, o.Code = err, CodeTransport
		return o, data
	}
	if resp.StatusCode >= 400 {
		o.Code = apiErrorCode(data, resp.StatusCode)
	}
	return o, data
}

// apiErrorCode pulls the code out of the API's error body.
func apiErrorCode(body []byte, status int) string {
	var envelope struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &envelope) == nil && envelope.Error.Code != "" {
		return envelope.Error.Code
	}
	return httpStatusCode(status)
}
