package baseline

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"phoneshop/internal/dbtest"
	"phoneshop/internal/redistest"
)

// testServer is a baseline server listening on a loopback port, with its own
// database and Redis key prefix.
type testServer struct {
	*Server
	url    string
	dsn    string
	client *http.Client
}

func newTestServer(t *testing.T, opts ...func(*Config)) *testServer {
	t.Helper()
	dsn := dbtest.MySQLDSN(t)
	addr, prefix := dbtest.Redis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := Config{MySQLDSN: dsn, RedisAddr: addr, RedisPrefix: prefix}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.App().Listener(ln) }()
	client := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 128},
	}
	t.Cleanup(func() {
		client.CloseIdleConnections()
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Listener: %v", err)
		}
	})
	return &testServer{Server: srv, url: "http://" + ln.Addr().String(), dsn: dsn, client: client}
}

type response struct {
	status int
	body   string
}

func (ts *testServer) do(t *testing.T, method, path, contentType, body string) response {
	t.Helper()
	r, err := ts.send(method, path, contentType, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// send is do without a *testing.T, for goroutines other than the test's.
func (ts *testServer) send(method, path, contentType, body string) (response, error) {
	req, err := http.NewRequest(method, ts.url+path, strings.NewReader(body))
	if err != nil {
		return response{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return response{status: resp.StatusCode, body: string(b)}, nil
}

func checkoutBody(orderID, sku string, qty int) string {
	return fmt.Sprintf(`{"sku":%q,"account_id":"acct-%s","order_id":%q,"quantity":%d}`, sku, orderID, orderID, qty)
}

func (ts *testServer) checkout(t *testing.T, way, orderID, sku string, qty int) response {
	t.Helper()
	return ts.do(t, http.MethodPost, "/baseline/"+way+"/checkout", "application/json", checkoutBody(orderID, sku, qty))
}

func (ts *testServer) setStock(t *testing.T, sku string, qty int64) {
	t.Helper()
	if err := ts.SetStock(context.Background(), sku, qty); err != nil {
		t.Fatalf("SetStock: %v", err)
	}
}

// counts is what Counts reports, as one value for cmp.Diff.
type counts struct {
	MySQL, Redis, Orders int64
}

func (ts *testServer) counts(t *testing.T, sku string) counts {
	t.Helper()
	c, err := ts.Counts(context.Background(), sku)
	if err != nil {
		t.Fatalf("Counts: %v", err)
	}
	return counts{MySQL: c.MySQL, Redis: c.Redis[MainRedis], Orders: c.Orders}
}

// flashSale sends buyers concurrent checkouts of one unit each and counts the
// answers by status.
func (ts *testServer) flashSale(t *testing.T, way, sku string, buyers int) map[int]int {
	t.Helper()
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		wg       sync.WaitGroup
	)
	start := make(chan struct{})
	for i := range buyers {
		wg.Go(func() {
			<-start
			r, err := ts.send(http.MethodPost, "/baseline/"+way+"/checkout", "application/json",
				checkoutBody(fmt.Sprintf("flash-%03d", i), sku, 1))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			statuses[r.status]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return statuses
}

func errorCode(t *testing.T, r response) string {
	t.Helper()
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	if body.Error.Message == "" {
		t.Errorf("error body %q has no message", r.body)
	}
	return body.Error.Code
}

func TestHTTP(t *testing.T) {
	ts := newTestServer(t)
	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
		wantBody   string
	}{
		{"http_returns_200_with_fixed_body", http.MethodGet, "/baseline/http", http.StatusOK, `{"status":"ok"}`},
		{"unknown_route_returns_404_in_error_shape", http.MethodGet, "/baseline/nope", http.StatusNotFound, `{"error":{"code":"not_found","message":"Cannot GET /baseline/nope"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ts.do(t, tt.method, tt.path, "", "")
			want := response{status: tt.wantStatus, body: tt.wantBody}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(response{})); diff != "" {
				t.Errorf("%s %s (-want +got):\n%s", tt.method, tt.path, diff)
			}
		})
	}
}

// TestCheckout runs the same behaviours against both ways. The classic checkout
// never touches Redis and the Redis way never touches baseline_stock, which the
// wanted counts show.
func TestCheckout(t *testing.T) {
	const sku = "phone-x-128"
	tests := []struct {
		name string
		way  string
		run  func(t *testing.T, ts *testServer)
		want counts
	}{
		{
			name: "classic_flash_sale_sells_exactly_the_stock",
			way:  "classic",
			run: func(t *testing.T, ts *testServer) {
				ts.setStock(t, sku, 30)
				got := ts.flashSale(t, "classic", sku, 100)
				want := map[int]int{http.StatusCreated: 30, http.StatusConflict: 70}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("statuses (-want +got):\n%s", diff)
				}
			},
			want: counts{MySQL: 0, Redis: 30, Orders: 30},
		},
		{
			name: "classic_replay_of_order_id_returns_200_and_changes_nothing",
			way:  "classic",
			run: func(t *testing.T, ts *testServer) {
				ts.setStock(t, sku, 5)
				wantStatus(t, ts.checkout(t, "classic", "o-1", sku, 2), http.StatusCreated, `{"id":"o-1"}`)
				wantStatus(t, ts.checkout(t, "classic", "o-1", sku, 2), http.StatusOK, `{"id":"o-1"}`)
			},
			want: counts{MySQL: 3, Redis: 5, Orders: 1},
		},
		{
			name: "classic_replay_after_sold_out_returns_200",
			way:  "classic",
			run: func(t *testing.T, ts *testServer) {
				ts.setStock(t, sku, 1)
				wantStatus(t, ts.checkout(t, "classic", "o-1", sku, 1), http.StatusCreated, `{"id":"o-1"}`)
				wantStatus(t, ts.checkout(t, "classic", "o-1", sku, 1), http.StatusOK, `{"id":"o-1"}`)
			},
			want: counts{MySQL: 0, Redis: 1, Orders: 1},
		},
		{
			name: "classic_checkout_409_when_stock_is_short",
			way:  "classic",
			run: func(t *testing.T, ts *testServer) {
				ts.setStock(t, sku, 2)
				r := ts.checkout(t, "classic", "o-1", sku, 3)
				wantError(t, r, http.StatusConflict, "out_of_stock")
			},
			want: counts{MySQL: 2, Redis: 2, Orders: 0},
		},
		{
			name: "redis_flash_sale_sells_exactly_the_stock",
			way:  "redis",
			run: func(t *testing.T, ts *testServer) {
				ts.setStock(t, sku, 30)
				got := ts.flashSale(t, "redis", sku, 100)
				want := map[int]int{http.StatusCreated: 30, http.StatusConflict: 70}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("statuses (-want +got):\n%s", diff)
				}
			},
			want: counts{MySQL: 30, Redis: 0, Orders: 30},
		},
		{
			name: "redis_replay_of_order_id_returns_200_and_gives_units_back",
			way:  "redis",
			run: func(t *testing.T, ts *testServer) {
				ts.setStock(t, sku, 5)
				wantStatus(t, ts.checkout(t, "redis", "o-1", sku, 2), http.StatusCreated, `{"id":"o-1"}`)
				wantStatus(t, ts.checkout(t, "redis", "o-1", sku, 2), http.StatusOK, `{"id":"o-1"}`)
			},
			want: counts{MySQL: 5, Redis: 3, Orders: 1},
		},
		{
			name: "redis_checkout_409_when_stock_is_short",
			way:  "redis",
			run: func(t *testing.T, ts *testServer) {
				ts.setStock(t, sku, 2)
				r := ts.checkout(t, "redis", "o-1", sku, 3)
				wantError(t, r, http.StatusConflict, "out_of_stock")
			},
			want: counts{MySQL: 2, Redis: 2, Orders: 0},
		},
		{
			name: "redis_checkout_503_and_units_back_when_insert_fails",
			way:  "redis",
			run: func(t *testing.T, ts *testServer) {
				ts.setStock(t, sku, 5)
				ts.exec(t, `RENAME TABLE baseline_orders TO baseline_orders_away`)
				r := ts.checkout(t, "redis", "o-1", sku, 2)
				wantError(t, r, http.StatusServiceUnavailable, "unavailable")
				ts.exec(t, `RENAME TABLE baseline_orders_away TO baseline_orders`)
			},
			want: counts{MySQL: 5, Redis: 5, Orders: 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t)
			tt.run(t, ts)
			if diff := cmp.Diff(tt.want, ts.counts(t, sku)); diff != "" {
				t.Errorf("counts after %s checkout (-want +got):\n%s", tt.way, diff)
			}
		})
	}
}

// TestDurableRedisWay: with a durable Redis configured, its route runs the same
// Lua checkout against that server alone, and the server says it fsyncs every write.
func TestDurableRedisWay(t *testing.T) {
	const sku = "phone-x-128"
	durable := redistest.Durable(t)
	ts := newTestServer(t, func(c *Config) { c.DurableRedisAddr = durable })
	ts.setStock(t, sku, 30)
	got := ts.flashSale(t, string(DurableRedis), sku, 100)
	if diff := cmp.Diff(map[int]int{http.StatusCreated: 30, http.StatusConflict: 70}, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	c, err := ts.Counts(context.Background(), sku)
	if err != nil {
		t.Fatal(err)
	}
	want := Counts{MySQL: 30, Redis: map[Redis]int64{MainRedis: 30, DurableRedis: 0}, Orders: 30}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	appendOnly, appendFsync, err := ts.RedisPersistence(context.Background(), DurableRedis)
	if err != nil || appendOnly != "yes" || appendFsync != "always" {
		t.Errorf("durable Redis persistence: appendonly %q, appendfsync %q, err %v", appendOnly, appendFsync, err)
	}
	if pid, err := ts.RedisPID(context.Background(), DurableRedis); err != nil || pid <= 0 {
		t.Errorf("durable Redis pid %d, err %v", pid, err)
	}
}

// TestWithoutDurableRedis: the durable route is not served, and asking about that
// Redis is an error, not a silent answer about the other one.
func TestWithoutDurableRedis(t *testing.T) {
	ts := newTestServer(t)
	wantError(t, ts.checkout(t, string(DurableRedis), "o-1", "sku-1", 1), http.StatusNotFound, "not_found")
	if _, _, err := ts.RedisPersistence(context.Background(), DurableRedis); err == nil {
		t.Error("RedisPersistence of an unconfigured durable Redis: no error")
	}
}

func TestCheckoutRejectsBadRequests(t *testing.T) {
	ts := newTestServer(t)
	ts.setStock(t, "sku-1", 10)
	const valid = `{"sku":"sku-1","account_id":"a-1","order_id":"o-1","quantity":1}`
	tests := []struct {
		name        string
		contentType string
		body        string
	}{
		{"malformed_json_returns_400", "application/json", `{"sku":`},
		{"empty_body_returns_400", "application/json", ``},
		{"unknown_field_returns_400", "application/json", `{"sku":"sku-1","account_id":"a-1","order_id":"o-1","quantity":1,"price":1}`},
		{"data_after_json_returns_400", "application/json", valid + `{}`},
		{"wrong_type_returns_400", "application/json", `{"sku":"sku-1","account_id":"a-1","order_id":"o-1","quantity":"1"}`},
		{"non_json_content_type_returns_400", "text/plain", valid},
		{"zero_quantity_returns_400", "application/json", `{"sku":"sku-1","account_id":"a-1","order_id":"o-1","quantity":0}`},
		{"missing_sku_returns_400", "application/json", `{"account_id":"a-1","order_id":"o-1","quantity":1}`},
		{"missing_order_id_returns_400", "application/json", `{"sku":"sku-1","account_id":"a-1","quantity":1}`},
		{"too_long_order_id_returns_400", "application/json", `{"sku":"sku-1","account_id":"a-1","order_id":"` + strings.Repeat("x", 65) + `","quantity":1}`},
	}
	for _, way := range []string{"classic", "redis"} {
		for _, tt := range tests {
			t.Run(way+"_"+tt.name, func(t *testing.T) {
				r := ts.do(t, http.MethodPost, "/baseline/"+way+"/checkout", tt.contentType, tt.body)
				wantError(t, r, http.StatusBadRequest, "invalid_request")
			})
		}
	}
	if diff := cmp.Diff(counts{MySQL: 10, Redis: 10, Orders: 0}, ts.counts(t, "sku-1")); diff != "" {
		t.Errorf("bad requests changed the counts (-want +got):\n%s", diff)
	}
}

func wantStatus(t *testing.T, r response, status int, body string) {
	t.Helper()
	if r.status != status || r.body != body {
		t.Errorf("got %d %s, want %d %s", r.status, r.body, status, body)
	}
}

func wantError(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status = %d (%s), want %d", r.status, r.body, status)
	}
	if got := errorCode(t, r); got != code {
		t.Errorf("error code = %q, want %q", got, code)
	}
}

// exec runs a statement on the test database behind the server's back.
func (ts *testServer) exec(t *testing.T, stmt string) {
	t.Helper()
	db, err := sql.Open("mysql", ts.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}
