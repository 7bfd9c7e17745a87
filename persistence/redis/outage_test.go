package redis_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"phoneshop/account"
	"phoneshop/catalog"
	"phoneshop/internal/testbin"
	"phoneshop/persistence/cache"
	"phoneshop/persistence/redis"
)

// TestOutage runs the catalog and session caches on a redis-server of the test's
// own, takes the server away and brings it back: reads never fail, the breaker
// keeps them fast, and after recovery nothing from before or during the outage is
// served.
func TestOutage(t *testing.T) {
	outages := []struct {
		name    string
		fail    func(*server, *testing.T)
		restore func(*server, *testing.T)
	}{
		// An empty server comes back: nothing old can be served anyway.
		{"server_killed_and_restarted_on_the_same_port", (*server).kill, (*server).start},
		// The server comes back with its data, the logged-out session included:
		// only the recovery's invalidation keeps it from being served.
		{"server_paused_and_resumed_with_its_data", (*server).pause, (*server).resume},
	}
	for _, o := range outages {
		t.Run(o.name, func(t *testing.T) {
			if testing.Short() {
				t.Skip("starts its own redis-server; -short skips it")
			}
			srv := startServer(t)
			testOutage(t, srv, o.fail, o.restore)
		})
	}
}

func testOutage(t *testing.T, srv *server, fail, restore func(*server, *testing.T)) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	metrics := cache.NewMetrics(reg)
	logs := &testbin.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))

	var recovered atomic.Int64
	var cat *cache.Catalog
	var sessions *cache.Sessions
	rc := redis.Open(srv.addr, "outage:", redis.Options{Metrics: metrics, Log: log, OnRecover: func(ctx context.Context) {
		recovered.Add(1)
		if err := cat.Invalidate(ctx); err != nil {
			t.Logf("catalog invalidate: %v", err)
		}
		if err := sessions.Invalidate(ctx); err != nil {
			t.Logf("sessions invalidate: %v", err)
		}
	}})
	t.Cleanup(func() { _ = rc.Close() })

	phones := &countingCatalog{}
	cat = cache.NewCatalog(phones, rc, cache.CatalogOptions{Metrics: metrics, Log: log})
	accounts := newMemoryAccounts()
	sessions = cache.NewSessions(accounts, rc, cache.SessionsOptions{Metrics: metrics, Log: log})
	loggedOut := account.Session{TokenHash: "hash-logged-out", AccountID: "acc_1", ExpiresAt: time.Now().Add(time.Hour)}
	stays := account.Session{TokenHash: "hash-stays", AccountID: "acc_1", ExpiresAt: time.Now().Add(time.Hour)}
	for _, s := range []account.Session{loggedOut, stays} {
		if err := sessions.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}

	readPhone := func(t *testing.T) {
		t.Helper()
		p, err := cat.Phone(ctx, "pixel-9")
		if err != nil || p.ID != "pixel-9" {
			t.Fatalf("Phone = %+v, %v; want pixel-9", p, err)
		}
	}
	readSession := func(t *testing.T, want account.Session, wantErr error) {
		t.Helper()
		got, err := sessions.SessionByTokenHash(ctx, want.TokenHash)
		if wantErr != nil {
			if !errors.Is(err, wantErr) {
				t.Fatalf("SessionByTokenHash(%s) = %+v, %v; want %v", want.TokenHash, got, err, wantErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("SessionByTokenHash(%s): %v", want.TokenHash, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("session (-want +got):\n%s", diff)
		}
	}

	// 1. Server up: the second read of each is a hit.
	for range 2 {
		readPhone(t)
		readSession(t, loggedOut, nil)
		readSession(t, stays, nil)
	}
	if n, s := phones.phones.Load(), accounts.lookups.Load(); n != 1 || s != 2 {
		t.Fatalf("store reads with the server up: phones %d, sessions %d; want 1 and 2", n, s)
	}

	// 2. Outage: everything works from the store, and the logout sticks. The
	// first failed call opens the breaker; from then on the cache answers
	// cache.ErrUnavailable itself, without waiting for the server: that is what
	// keeps reads fast.
	fail(srv, t)
	if !eventually(10*time.Second, func() bool { readPhone(t); return rc.Degraded() }) {
		t.Fatal("the breaker did not open within 10s of the server going away")
	}
	for range 20 {
		readPhone(t)
		readSession(t, stays, nil)
		if _, _, err := rc.Get(ctx, "any-key"); !errors.Is(err, cache.ErrUnavailable) {
			t.Fatalf("Get during the outage, the breaker open: %v; want cache.ErrUnavailable, answered without the server", err)
		}
	}
	if err := sessions.DeleteSession(ctx, loggedOut.TokenHash); err != nil {
		t.Fatalf("logout during the outage: %v", err)
	}
	readSession(t, loggedOut, account.ErrSessionNotFound)
	if n := phones.phones.Load(); n < 20 {
		t.Fatalf("store read %d times during the outage, want every read (20+)", n)
	}
	if g := gauge(t, reg, "phoneshop_cache_degraded"); g != 1 {
		t.Fatalf("phoneshop_cache_degraded = %v during the outage, want 1", g)
	}

	// 3. Server back: the cache serves reads again (the breaker probes once a
	// second; 10s is only the limit of the wait).
	restore(srv, t)
	servedFromCache := func() bool {
		readPhone(t)
		before := phones.phones.Load()
		readPhone(t)
		readPhone(t)
		return phones.phones.Load() == before && gauge(t, reg, "phoneshop_cache_degraded") == 0
	}
	if !eventually(10*time.Second, servedFromCache) {
		t.Fatalf("cache not used again 10s after the server came back (degraded gauge %v, Degraded %v)",
			gauge(t, reg, "phoneshop_cache_degraded"), rc.Degraded())
	}
	if rc.Degraded() {
		t.Fatal("Degraded() after the recovery, while the gauge says 0")
	}
	if recovered.Load() < 1 {
		t.Fatal("OnRecover was not called")
	}
	readSession(t, loggedOut, account.ErrSessionNotFound)
	readSession(t, stays, nil)
	before := accounts.lookups.Load()
	readSession(t, stays, nil)
	if accounts.lookups.Load() != before {
		t.Fatal("session lookups not cached again after recovery")
	}

	text := logs.String()
	if n := strings.Count(text, `level=WARN msg="redis unreachable: reads fall back to the store"`); n != 1 {
		t.Errorf("logged %d 'redis unreachable' warnings, want exactly 1:\n%s", n, text)
	}
	if n := strings.Count(text, `level=INFO msg="redis back"`); n != 1 {
		t.Errorf("logged %d 'redis back' lines, want exactly 1:\n%s", n, text)
	}
}

// server is a redis-server of one test, on a loopback port of its own
// (testbin.Port), which it keeps across restarts.
type server struct {
	path string
	port int
	addr string
	dir  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has exited
	output *testbin.Buffer
}

func startServer(t *testing.T) *server {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		path = "/usr/bin/redis-server"
		if _, statErr := os.Stat(path); statErr != nil {
			t.Fatalf("redis-server is not on PATH nor at %s: install it (Debian: apt-get install redis-server), or run with -short", path)
		}
	}
	s := &server{path: path, dir: t.TempDir()}
	t.Cleanup(s.stop)
	err = testbin.RetryOnTakenPort(t, "redis-server", func() error {
		s.port = testbin.Port(t)
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		return s.tryStart()
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// start starts the server again on its port.
func (s *server) start(t *testing.T) {
	t.Helper()
	if err := s.tryStart(); err != nil {
		t.Fatal(err)
	}
}

// tryStart starts the server and waits until it answers PING; a server that exits
// first fails the start, with ErrPortTaken when it could not bind.
func (s *server) tryStart() error {
	s.mu.Lock()
	output := &testbin.Buffer{}
	s.output = output
	cmd := exec.Command(s.path, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = output, output
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("start %s: %w", s.path, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // "signal: killed" is the expected exit
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	gone := func() bool {
		select {
		case <-exited:
			return true
		default:
			return false
		}
	}
	if !eventually(10*time.Second, func() bool { return gone() || answersPing(s.addr) }) {
		return fmt.Errorf("redis-server on %s did not answer PING within 10s; its output:\n%s", s.addr, output)
	}
	if gone() {
		s.stop()
		err := fmt.Errorf("redis-server on %s exited (%s); its output:\n%s", s.addr, cmd.ProcessState, output)
		if testbin.PortTaken(output.String()) {
			err = fmt.Errorf("%w: %w", testbin.ErrPortTaken, err)
		}
		return err
	}
	return nil
}

func (s *server) kill(t *testing.T) {
	t.Helper()
	s.stop()
	if answersPing(s.addr) {
		t.Fatalf("redis-server on %s still answers after kill", s.addr)
	}
}

func (s *server) pause(t *testing.T) {
	t.Helper()
	s.signal(t, syscall.SIGSTOP)
}

func (s *server) resume(t *testing.T) {
	t.Helper()
	s.signal(t, syscall.SIGCONT)
}

func (s *server) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		t.Fatalf("no redis-server to send %v to", sig)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// stop kills the server (a paused one included) and waits for it to exit.
func (s *server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill() // SIGKILL ends a stopped process too
	<-s.exited
	s.cmd = nil
}

// eventually polls cond until it holds and reports whether it did within d. The
// tests wait on what must happen, never a fixed time: d is only how long they
// give up after, generous for a loaded machine.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

func answersPing(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// countingCatalog is a catalog.Store of one phone that counts Phone calls.
type countingCatalog struct{ phones atomic.Int64 }

func (c *countingCatalog) SearchPhones(context.Context, catalog.Query) ([]catalog.Summary, error) {
	return nil, nil
}

func (c *countingCatalog) Phone(_ context.Context, id string) (catalog.Phone, error) {
	c.phones.Add(1)
	if id != "pixel-9" {
		return catalog.Phone{}, catalog.ErrNotFound
	}
	return catalog.Phone{ID: id, Name: "Google Pixel 9", Variants: []catalog.Variant{{SKU: "P9-128-OBS", PhoneID: id, PriceCents: 79900, Available: 3}}}, nil
}

func (c *countingCatalog) Brands(context.Context) ([]catalog.Brand, error) { return nil, nil }

func (c *countingCatalog) VariantsBySKU(context.Context, []string) (map[string]catalog.Variant, error) {
	return nil, nil
}

// memoryAccounts is an account.Store of sessions only, counting lookups.
type memoryAccounts struct {
	lookups  atomic.Int64
	mu       sync.Mutex
	sessions map[string]account.Session
}

func newMemoryAccounts() *memoryAccounts {
	return &memoryAccounts{sessions: map[string]account.Session{}}
}

func (m *memoryAccounts) CreateAccount(context.Context, account.Account) error { return nil }
func (m *memoryAccounts) AccountByEmail(context.Context, string) (account.Account, error) {
	return account.Account{}, account.ErrNotFound
}
func (m *memoryAccounts) AccountByID(context.Context, string) (account.Account, error) {
	return account.Account{}, account.ErrNotFound
}
func (m *memoryAccounts) UpdateAccount(context.Context, string, func(*account.Account) error) (account.Account, error) {
	return account.Account{}, account.ErrNotFound
}

func (m *memoryAccounts) RequestVerification(context.Context, string, time.Time, time.Duration) (time.Duration, error) {
	return 0, errors.New("memoryAccounts: no verification")
}

func (m *memoryAccounts) CreateSession(_ context.Context, s account.Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sessions[s.TokenHash] = s
	return nil
}

func (m *memoryAccounts) SessionByTokenHash(_ context.Context, hash string) (account.Session, error) {
	m.lookups.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[hash]
	if !ok {
		return account.Session{}, account.ErrSessionNotFound
	}
	return s, nil
}

func (m *memoryAccounts) DeleteSession(_ context.Context, hash string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, hash)
	return nil
}
