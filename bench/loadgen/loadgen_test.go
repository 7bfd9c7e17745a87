package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"phoneshop/internal/testbin"
)

// countingServer answers after delay and remembers how many requests it saw
// and how many it had in flight at most.
type countingServer struct {
	*httptest.Server
	hits     atomic.Int64
	inFlight atomic.Int64
	maxSeen  atomic.Int64
}

func newCountingServer(t *testing.T, delay time.Duration) *countingServer {
	t.Helper()
	s := &countingServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		n := s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		for {
			seen := s.maxSeen.Load()
			if n <= seen || s.maxSeen.CompareAndSwap(seen, n) {
				break
			}
		}
		time.Sleep(delay)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(s.Close)
	return s
}

func getTask(c *http.Client, url string) Task {
	return func(ctx context.Context) Outcome {
		return Do(ctx, c, "get", http.MethodGet, url, "", nil, nil)
	}
}

func TestRunClosed(t *testing.T) {
	tests := []struct {
		name         string
		cfg          Closed
		delay        time.Duration
		wantRequests int64 // exact; 0 means not checked
		wantMax      int64 // exact peak in flight at the server
		minElapsed   time.Duration
		maxElapsed   time.Duration
	}{
		{
			name:         "closed_loop_keeps_exactly_concurrency_requests_in_flight",
			cfg:          Closed{Concurrency: 8, Requests: 200},
			delay:        10 * time.Millisecond,
			wantRequests: 200,
			wantMax:      8,
			maxElapsed:   5 * time.Second,
		},
		{
			name:         "closed_loop_stops_at_request_limit_exactly",
			cfg:          Closed{Concurrency: 3, Requests: 7, Duration: time.Minute},
			delay:        time.Millisecond,
			wantRequests: 7,
			wantMax:      3,
			maxElapsed:   5 * time.Second,
		},
		{
			name:       "closed_loop_stops_at_duration",
			cfg:        Closed{Concurrency: 2, Duration: 200 * time.Millisecond},
			delay:      10 * time.Millisecond,
			wantMax:    2,
			minElapsed: 200 * time.Millisecond,
			maxElapsed: 600 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newCountingServer(t, tt.delay)
			client := NewClient(tt.cfg.Concurrency)
			stats := RunClosed(t.Context(), tt.cfg, func(int) Task { return getTask(client, srv.URL) }, Quiet)
			sum := stats.Summary()

			if tt.wantRequests > 0 && srv.hits.Load() != tt.wantRequests {
				t.Errorf("server saw %d requests, want %d", srv.hits.Load(), tt.wantRequests)
			}
			if sum.Total.Count != srv.hits.Load() {
				t.Errorf("recorded %d tasks, server saw %d", sum.Total.Count, srv.hits.Load())
			}
			if got := srv.maxSeen.Load(); got != tt.wantMax {
				t.Errorf("peak in flight = %d, want %d", got, tt.wantMax)
			}
			if sum.Total.Errors != 0 {
				t.Errorf("errors = %v, want none", sum.Total.ErrorsByCode)
			}
			if sum.Elapsed < tt.minElapsed || sum.Elapsed > tt.maxElapsed {
				t.Errorf("elapsed = %v, want within [%v, %v]", sum.Elapsed, tt.minElapsed, tt.maxElapsed)
			}
		})
	}
}

func TestRunClosed_panics_without_a_limit(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("RunClosed with neither Duration nor Requests did not panic")
		}
	}()
	RunClosed(t.Context(), Closed{Concurrency: 1}, nil, Quiet)
}

func TestRunOpen_issues_requests_at_the_target_rate(t *testing.T) {
	srv := newCountingServer(t, 0)
	client := NewClient(64)
	stats := RunOpen(t.Context(), Open{Rate: 200, Duration: time.Second},
		func(int64) Task { return getTask(client, srv.URL) }, Quiet)
	sum := stats.Summary()

	if got := srv.hits.Load(); got < 180 || got > 220 {
		t.Errorf("server saw %d requests at 200/s for 1s, want 200 ±10%%", got)
	}
	if sum.Total.Count != srv.hits.Load() {
		t.Errorf("recorded %d tasks, server saw %d", sum.Total.Count, srv.hits.Load())
	}
	if sum.Elapsed < 950*time.Millisecond || sum.Elapsed > 1500*time.Millisecond {
		t.Errorf("elapsed = %v, want about 1s", sum.Elapsed)
	}
}

func TestRunOpen_latency(t *testing.T) {
	tests := []struct {
		name  string
		delay time.Duration // server's answer time
		stall time.Duration // generator stall before task 0, then a burst
	}{
		{
			name:  "open_loop_latency_includes_server_time",
			delay: 50 * time.Millisecond,
		},
		{
			// The server is instant: only measuring from the scheduled
			// time shows that the first tasks went out late in a burst.
			name:  "open_loop_latency_counts_from_schedule_after_a_stall",
			stall: 700 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newCountingServer(t, tt.delay)
			client := NewClient(64)
			next := func(i int64) Task {
				if i == 0 {
					time.Sleep(tt.stall)
				}
				return getTask(client, srv.URL)
			}
			sum := RunOpen(t.Context(), Open{Rate: 200, Duration: time.Second}, next, Quiet).Summary()

			if sum.Total.Count < 180 {
				t.Fatalf("only %d tasks ran", sum.Total.Count)
			}
			if sum.Total.P50 < 50*time.Millisecond {
				t.Errorf("p50 = %v, want >= 50ms", sum.Total.P50)
			}
		})
	}
}

func TestRunOpen_counts_tasks_beyond_max_in_flight_as_overload(t *testing.T) {
	gate := make(chan struct{})
	time.AfterFunc(400*time.Millisecond, func() { close(gate) })
	next := func(int64) Task {
		return func(ctx context.Context) Outcome {
			<-gate
			return Outcome{Op: "work", Status: http.StatusOK}
		}
	}
	// 50 tasks are due within 250ms; the first 5 hold their slots until
	// 400ms, so the other 45 find no room.
	sum := RunOpen(t.Context(), Open{Rate: 200, Duration: 250 * time.Millisecond, MaxInFlight: 5}, next, Quiet).Summary()

	wantOps := map[string]OpSummary{
		"work":    {Count: 5, ErrorsByCode: map[string]int64{}},
		OpDropped: {Count: 45, Errors: 45, ErrorsByCode: map[string]int64{CodeOverload: 45}},
	}
	onlyCounts := cmpopts.IgnoreFields(OpSummary{}, "PerSecond", "P50", "P95", "P99", "Max", "Mean")
	if diff := cmp.Diff(wantOps, sum.Ops, onlyCounts); diff != "" {
		t.Errorf("ops (-want +got):\n%s", diff)
	}
	if sum.Ops[OpDropped].P50 != 0 {
		t.Errorf("dropped tasks have a latency: p50 = %v", sum.Ops[OpDropped].P50)
	}
}

func TestDo(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/sold-out", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, `{"error":{"code":"out_of_stock","message":"sold out"}}`)
	})
	mux.HandleFunc("/plain-error", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream down", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"id":"42"}`)
	})
	mux.HandleFunc("/hang-up", func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		conn.Close()
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		name       string
		url        string
		wantStatus int
		wantCode   string
		wantErr    bool
	}{
		{name: "api_error_body_gives_the_code", url: srv.URL + "/sold-out", wantStatus: 409, wantCode: "out_of_stock"},
		{name: "error_without_api_body_is_coded_by_status", url: srv.URL + "/plain-error", wantStatus: 503, wantCode: "http_503"},
		{name: "success_has_no_code", url: srv.URL + "/ok", wantStatus: 200},
		{name: "connection_closed_without_response_is_transport_error", url: srv.URL + "/hang-up", wantCode: CodeTransport, wantErr: true},
		{name: "unreachable_server_is_transport_error", url: closedURL + "/ok", wantCode: CodeTransport, wantErr: true},
	}
	client := NewClient(4)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Do(t.Context(), client, "op", http.MethodGet, tt.url, "", nil, nil)
			if o.Op != "op" || o.Status != tt.wantStatus || o.Code != tt.wantCode || (o.Err != nil) != tt.wantErr {
				t.Errorf("Do = %+v, want status %d code %q err %v", o, tt.wantStatus, tt.wantCode, tt.wantErr)
			}
			if o.Failed() != (tt.wantCode != "") {
				t.Errorf("Failed() = %v for %+v", o.Failed(), o)
			}
		})
	}
}

func TestDoBody_sends_token_body_and_headers_and_returns_the_answer(t *testing.T) {
	var got struct {
		auth, contentType, key string
		body                   []byte
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.auth = r.Header.Get("Authorization")
		got.contentType = r.Header.Get("Content-Type")
		got.key = r.Header.Get("Idempotency-Key")
		got.body, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"order_id":"o-1"}`)
	}))
	t.Cleanup(srv.Close)

	o, body := DoBody(t.Context(), NewClient(1), "checkout", http.MethodPost, srv.URL, "tok",
		[]byte(`{"cart":"c"}`), map[string]string{"Idempotency-Key": "k-1"})

	if o.Status != http.StatusCreated || o.Failed() {
		t.Errorf("outcome = %+v, want a 201 success", o)
	}
	if string(body) != `{"order_id":"o-1"}` {
		t.Errorf("body = %s", body)
	}
	if got.auth != "Bearer tok" || got.contentType != "application/json" || got.key != "k-1" || string(got.body) != `{"cart":"c"}` {
		t.Errorf("server got %+v", got)
	}
}

func TestStats_counts_errors_by_code(t *testing.T) {
	stats := NewStats()
	outcomes := []Outcome{
		{Op: "checkout", Status: 201},
		{Op: "checkout", Status: 409, Code: "out_of_stock"},
		{Op: "checkout", Status: 409, Code: "out_of_stock"},
		{Op: "checkout", Err: errors.New("connection reset")},
		{Op: "browse", Status: 200},
		{Op: "browse", Status: 502},
	}
	var wg sync.WaitGroup
	for _, o := range outcomes {
		wg.Go(func() { stats.Record(o, time.Millisecond) })
	}
	wg.Wait()
	stats.Stop()
	sum := stats.Summary()

	want := map[string]OpSummary{
		"checkout": {Count: 4, Errors: 3, ErrorsByCode: map[string]int64{"out_of_stock": 2, CodeTransport: 1}},
		"browse":   {Count: 2, Errors: 1, ErrorsByCode: map[string]int64{"http_502": 1}},
	}
	onlyCounts := cmpopts.IgnoreFields(OpSummary{}, "PerSecond", "P50", "P95", "P99", "Max", "Mean")
	if diff := cmp.Diff(want, sum.Ops, onlyCounts); diff != "" {
		t.Errorf("ops (-want +got):\n%s", diff)
	}
	wantTotal := OpSummary{Count: 6, Errors: 4, ErrorsByCode: map[string]int64{"out_of_stock": 2, CodeTransport: 1, "http_502": 1}}
	if diff := cmp.Diff(wantTotal, sum.Total, onlyCounts); diff != "" {
		t.Errorf("total (-want +got):\n%s", diff)
	}
}

func TestSummary_percentiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name      string
		latencies func() []time.Duration
		wantP50   time.Duration // checked to 2% when set
	}{
		{
			name: "uniform_latencies_have_the_middle_as_p50",
			latencies: func() []time.Duration {
				var ds []time.Duration
				for range 10_000 {
					ds = append(ds, time.Duration(1+rng.IntN(100))*time.Millisecond)
				}
				return ds
			},
			wantP50: 50 * time.Millisecond,
		},
		{
			name: "heavy_tail_beyond_histogram_range_is_clamped",
			latencies: func() []time.Duration {
				ds := []time.Duration{2 * time.Minute}
				for range 999 {
					ds = append(ds, time.Duration(rng.ExpFloat64()*float64(5*time.Millisecond)))
				}
				return ds
			},
		},
		{
			name:      "single_sample_is_every_percentile",
			latencies: func() []time.Duration { return []time.Duration{7 * time.Millisecond} },
			wantP50:   7 * time.Millisecond,
		},
		{
			name:      "sub_microsecond_latency_counts_as_one_microsecond",
			latencies: func() []time.Duration { return []time.Duration{100 * time.Nanosecond} },
			wantP50:   time.Microsecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stats := NewStats()
			ds := tt.latencies()
			for _, d := range ds {
				stats.Record(Outcome{Op: "op", Status: 200}, d)
			}
			s := stats.Summary().Total

			if s.Count != int64(len(ds)) {
				t.Errorf("count = %d, want %d", s.Count, len(ds))
			}
			if !(s.P50 <= s.P95 && s.P95 <= s.P99 && s.P99 <= s.Max) {
				t.Errorf("percentiles out of order: p50 %v p95 %v p99 %v max %v", s.P50, s.P95, s.P99, s.Max)
			}
			if s.Mean <= 0 || s.Mean > s.Max {
				t.Errorf("mean = %v, want within (0, %v]", s.Mean, s.Max)
			}
			if s.Max > 61*time.Second {
				t.Errorf("max = %v beyond the histogram's 60s", s.Max)
			}
			if tt.wantP50 > 0 {
				if diff := s.P50 - tt.wantP50; diff < -tt.wantP50/50 || diff > tt.wantP50/50 {
					t.Errorf("p50 = %v, want %v ±2%%", s.P50, tt.wantP50)
				}
			}
		})
	}
}

func sampleReport() Report {
	return Report{
		Title:   "Checkout under load",
		Machine: Machine{CPUs: 8, CPUModel: "Test CPU", MemoryGiB: 15.6, OS: "linux 6.1", GoVersion: "go1.26.8", Extra: map[string]string{"arch": "amd64"}},
		Runs: []Run{
			{
				Name: "checkout-c64", Scenario: "checkout", Mode: "closed", Concurrency: 64,
				Summary: Summary{
					Elapsed: 30 * time.Second,
					Ops: map[string]OpSummary{
						"checkout": {Count: 3000, Errors: 12, ErrorsByCode: map[string]int64{"out_of_stock": 12}, PerSecond: 100, P50: 12500 * time.Microsecond, P95: 40 * time.Millisecond, P99: 80 * time.Millisecond, Max: 210 * time.Millisecond, Mean: 15 * time.Millisecond},
						"browse":   {Count: 9000, ErrorsByCode: map[string]int64{}, PerSecond: 300, P50: 2 * time.Millisecond, P95: 5 * time.Millisecond, P99: 9 * time.Millisecond, Max: 30 * time.Millisecond, Mean: 2500 * time.Microsecond},
					},
					Total: OpSummary{Count: 12000, Errors: 12, ErrorsByCode: map[string]int64{"out_of_stock": 12}, PerSecond: 400, P50: 3 * time.Millisecond, P95: 30 * time.Millisecond, P99: 70 * time.Millisecond, Max: 210 * time.Millisecond, Mean: 5 * time.Millisecond},
				},
				Checks: []Check{{Name: "no item oversold", OK: true}, {Name: "orders match payments", OK: false, Detail: "3 orders without payment"}},
			},
			{
				Name: "browse-open", Scenario: "browse", Mode: "open", Rate: 500,
				Summary: Summary{Elapsed: 10 * time.Second, Ops: map[string]OpSummary{}, Total: OpSummary{Count: 5000, ErrorsByCode: map[string]int64{}, PerSecond: 500}},
			},
		},
		Targets: []Target{
			{Name: "checkout p99", Figure: "80 ms", Goal: "<= 100 ms", Ratio: 1.25, Met: true},
			{Name: "browse throughput", Figure: "500/s", Goal: ">= 1000/s", Ratio: 0.5, Met: false, Detail: "CPU bound on the edge"},
		},
		Notes: []string{"MySQL and Redis on the same host."},
	}
}

func TestReport_markdown_contains_the_sections_and_tables(t *testing.T) {
	md := sampleReport().Markdown()
	for _, want := range []string{
		"# Checkout under load",
		"## Machine",
		"- CPU model: Test CPU",
		"| target | figure | goal | ratio | met |",
		"| checkout p99 | 80 ms | <= 100 ms | 1.25 | ✓ |",
		"| browse throughput | 500/s | >= 1000/s | 0.50 | ✗ |",
		"| run | mode | conc/rate | ops/s | p50 | p95 | p99 | max | errors |",
		"| checkout-c64 | closed | 64 | 400.0 | 3.00 ms | 30.00 ms | 70.00 ms | 210.00 ms | 12 (0.10%) |",
		"| browse-open | open | 500/s | 500.0 |",
		"## Errors by code",
		"| checkout | out_of_stock | 12 |",
		"- ✓ no item oversold",
		"- ✗ orders match payments — 3 orders without payment",
		"## Notes",
		"- MySQL and Redis on the same host.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestReport_json_round_trips(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out", "report.json")
	want := sampleReport()
	if err := want.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	for _, key := range []string{`"p50_ms": 12.5`, `"elapsed_ms": 30000`, `"errors_by_code"`, `"memory_gib": 15.6`} {
		if !bytes.Contains(data, []byte(key)) {
			t.Errorf("JSON lacks %s:\n%s", key, data)
		}
	}
}

func TestReport_write_markdown_creates_the_file(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "report.md")
	r := sampleReport()
	if err := r.WriteMarkdown(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != r.Markdown() {
		t.Error("file differs from Markdown()")
	}
}

func TestDescribeMachine_fills_what_every_host_has(t *testing.T) {
	m := DescribeMachine()
	if m.CPUs < 1 || m.GoVersion == "" || m.OS == "" {
		t.Errorf("DescribeMachine() = %+v", m)
	}
	if _, err := os.Stat("/proc/meminfo"); err == nil && m.MemoryGiB <= 0 {
		t.Errorf("MemoryGiB = %v with /proc/meminfo present", m.MemoryGiB)
	}
}

func TestNewBar(t *testing.T) {
	tests := []struct {
		name     string
		enabled  bool
		cfg      Closed
		wantText string // "" means nothing may be drawn
	}{
		{name: "enabled_bar_shows_count_for_request_limit", enabled: true, cfg: Closed{Concurrency: 4, Requests: 50}, wantText: "50/50"},
		{name: "enabled_bar_shows_rate_for_duration_limit", enabled: true, cfg: Closed{Concurrency: 4, Duration: 400 * time.Millisecond}, wantText: "req/s"},
		{name: "disabled_bar_draws_nothing", enabled: false, cfg: Closed{Concurrency: 4, Requests: 50}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out testbin.Buffer
			task := func(context.Context) Outcome {
				time.Sleep(time.Millisecond)
				return Outcome{Op: "noop", Status: 200}
			}
			RunClosed(t.Context(), tt.cfg, func(int) Task { return task }, NewBar(&out, tt.enabled))
			got := out.String()
			if tt.wantText == "" && got != "" {
				t.Errorf("disabled bar drew %q", got)
			}
			if tt.wantText != "" && !strings.Contains(got, tt.wantText) {
				t.Errorf("bar output lacks %q: %q", tt.wantText, got)
			}
		})
	}
}

func TestRun_cancelled_context_is_not_counted_as_errors(t *testing.T) {
	srv := newCountingServer(t, time.Second)
	client := NewClient(4)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	sum := RunClosed(ctx, Closed{Concurrency: 4, Duration: time.Minute},
		func(int) Task { return getTask(client, srv.URL) }, Quiet).Summary()
	if sum.Total.Errors != 0 || sum.Elapsed > 2*time.Second {
		t.Errorf("after cancel: errors %v, elapsed %v", sum.Total.ErrorsByCode, sum.Elapsed)
	}
}
