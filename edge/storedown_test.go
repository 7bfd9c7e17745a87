package edge_test

import (
	"io"
	"net"
	"net/http"
	"sync"
	"testing"

	driver "github.com/go-sql-driver/mysql"

	"phoneshop/config"
	"phoneshop/internal/dbtest"
	"phoneshop/internal/shoptest"
)

// cuttableProxy forwards TCP connections to a server until it is cut: then it
// closes every connection and refuses new ones, as a database that went away.
type cuttableProxy struct {
	t      *testing.T
	target string
	ln     net.Listener
	addr   string
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newCuttableProxy(t *testing.T, target string) *cuttableProxy {
	t.Helper()
	p := &cuttableProxy{t: t, target: target}
	p.listen("127.0.0.1:0")
	t.Cleanup(p.cut)
	return p
}

func (p *cuttableProxy) listen(addr string) {
	p.t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatalf("proxy listen: %v", err)
	}
	p.ln, p.addr = ln, ln.Addr().String()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", p.target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
}

// cut closes the listener and every connection.
func (p *cuttableProxy) cut() {
	if p.ln == nil {
		return
	}
	p.ln.Close()
	p.wg.Wait()
	p.ln = nil
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// heal listens again on the same address.
func (p *cuttableProxy) heal() { p.listen(p.addr) }

// TestStoreDownAnswers503: while the database does not answer, sign-up, login,
// authenticated reads and the order history answer 503 unavailable with
// Retry-After, never 500; once it is back, they work again.
func TestStoreDownAnswers503(t *testing.T) {
	dsn, err := driver.ParseDSN(dbtest.MySQLDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCuttableProxy(t, dsn.Addr)
	dsn.Addr = proxy.addr
	h := shoptest.Start(t, 1, func(c *config.Dev) { c.MySQLDSN = dsn.FormatDSN() })
	token, email := h.Shopper()

	proxy.cut()
	for _, tc := range []struct {
		name string
		req  shoptest.Request
	}{
		{"login", shoptest.Request{Method: "POST", Path: "/api/v1/sessions",
			Body: map[string]string{"email": email, "password": "a long enough password"}}},
		{"register", shoptest.Request{Method: "POST", Path: "/api/v1/accounts",
			Body: map[string]string{"email": "new-" + email, "password": "a long enough password", "name": "New"}}},
		{"order_history", shoptest.Request{Method: "GET", Path: "/api/v1/orders", Token: token}},
		{"authenticate_a_new_token", shoptest.Request{Method: "GET", Path: "/api/v1/me", Token: "not-a-cached-token"}},
	} {
		t.Run(tc.name+"_503_while_the_store_is_down", func(t *testing.T) {
			r := do(t, h, tc.req)
			wantError(t, r, http.StatusServiceUnavailable, "unavailable")
			if _, err := shoptest.RetryAfter(r); err != nil {
				t.Fatal(err)
			}
		})
	}

	proxy.heal()
	if _, err := h.TryLogin(email, "a long enough password"); err != nil {
		t.Fatalf("login once the store is back: %v", err)
	}
	if r := do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/orders", Token: token}); r.Status != http.StatusOK {
		t.Fatalf("order history once the store is back: %d %s", r.Status, r.Body)
	}
}
