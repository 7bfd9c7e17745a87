package edge_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"

	driver "github.com/go-sql-driver/mysql"

	"phoneshop/config"
	"phoneshop/internal/dbtest"
	"phoneshop/internal/shoptest"
	"phoneshop/internal/testbin"
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

// newCuttableProxy listens on a port of the test's own (testbin.Port): heal
// listens there again after a cut, while the shop keeps dialling it. On a port
// from the kernel's ephemeral range, one of those dials could have been given it
// as its local port, and connected to itself or kept the proxy from listening.
func newCuttableProxy(t *testing.T, target string) *cuttableProxy {
	t.Helper()
	p := &cuttableProxy{t: t, target: target}
	err := testbin.RetryOnTakenPort(t, "proxy", func() error {
		err := p.tryListen(testbin.Addr(t))
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("%w: %w", testbin.ErrPortTaken, err)
		}
		return err
	})
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	t.Cleanup(p.cut)
	return p
}

func (p *cuttableProxy) listen(addr string) {
	p.t.Helper()
	if err := p.tryListen(addr); err != nil {
		p.t.Fatalf("proxy listen: %v", err)
	}
}

func (p *cuttableProxy) tryListen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
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
	return nil
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
