package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/pprof/profile"

	"phoneshop/bench/loadgen"
	"phoneshop/config"
	"phoneshop/internal/dbtest"
	"phoneshop/internal/redistest"
	"phoneshop/internal/shoptest"
)

// TestShortRunOfEveryScenario runs the whole benchmark for a few seconds against a
// shop on MariaDB and Redis and checks only its correctness: every check of every
// run passes (no oversell, conservation, every 201 order readable, exactly K orders
// in the sell-out), and nothing failed with a 5xx or a transport error. It also
// checks that the report's measurements were taken (a durable Redis peer, the
// concurrency sweep, CPU per process, the CPU profile, writes and statements per
// order) and hold together. Speed is the report's business, never this test's.
func TestShortRunOfEveryScenario(t *testing.T) {
	h := shoptest.Start(t, 1, func(c *config.Dev) {
		c.MySQLDSN = dbtest.MySQLDSN(t)
		c.RedisAddr, c.RedisPrefix = dbtest.Redis(t)
	})
	if err := h.Shop.Accounts.EnsureAdmin(context.Background(), "bench-admin@example.com", "bench admin password"); err != nil {
		t.Fatal(err)
	}
	redisAddr, redisPrefix := dbtest.Redis(t)
	// The shop runs in this process: its pid and its pprof are this test's.
	debugAddr := servePprof(t)
	cfg := Config{ShopURL: h.URL, AdminEmail: "bench-admin@example.com", AdminPassword: "bench admin password",
		MySQLDSN: dbtest.MySQLDSN(t), RedisAddr: redisAddr, RedisPrefix: redisPrefix,
		Concurrency: 8, Duration: 700_000_000, FlashShoppers: 60, SellOutOf: 40, SellOutUnits: 15, OpenSeconds: 1,
		DurableRedisAddr: redistest.Durable(t), SweepLevels: []int{4, 8}, SweepOrders: 10,
		ShopPID: os.Getpid(), ShopDebugAddr: debugAddr, ProfileSeconds: 2,
		Out: filepath.Join(t.TempDir(), "report")}
	cfg.ProfileOut = cfg.Out + "-cpu.pprof"
	report, err := Run(context.Background(), cfg, shoptest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Runs) < 14 {
		t.Fatalf("%d runs, want every scenario and baseline, the durable Redis peer and 2 sweep steps of 2 designs", len(report.Runs))
	}
	for _, r := range report.Runs {
		for _, c := range r.Checks {
			if !c.OK {
				t.Errorf("%s: check %q failed: %s", r.Name, c.Name, c.Detail)
			}
		}
		for op, s := range r.Summary.Ops {
			if op == loadgen.OpDropped {
				// Tasks the open loop did not start because MaxInFlight were still
				// out: the generator's own back-pressure on a machine busy with other
				// tests, never an answer of the shop (speed is not this test's business).
				continue
			}
			for code, n := range s.ErrorsByCode {
				switch code {
				case "out_of_stock", "conflict":
					// expected answers of a sale and of the browse mix
				default:
					t.Errorf("%s: %d %s errors of %s", r.Name, n, code, op)
				}
			}
		}
	}
	// Only the memory measurement (a test of its own, below) is left out.
	if len(report.Skipped) != 1 || !strings.HasPrefix(report.Skipped[0], "memory") {
		t.Errorf("not measured: %q, want only the memory", report.Skipped)
	}
	checkSweep(t, report.Sweep, cfg)
	checkCPU(t, report.CPU)
	checkProfile(t, report.Profile, cfg.ProfileOut)
	checkCosts(t, report.Costs)
	if err := report.WriteMarkdown(cfg.Out + ".md"); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(cfg.Out + ".md")
	if err != nil {
		t.Fatal(err)
	}
	for _, section := range []string{"## Where each design bends", "## CPU per process", "## Where the shop's CPU went", "## Writes and statements per confirmed order"} {
		if !strings.Contains(string(md), section) {
			t.Errorf("the report has no %q section", section)
		}
	}
}

// checkSweep: every step of both designs ran, placed orders and passed its checks.
func checkSweep(t *testing.T, points []loadgen.SweepPoint, cfg Config) {
	t.Helper()
	got := map[string][]int{}
	for _, p := range points {
		got[p.Design] = append(got[p.Design], p.Concurrency)
		if want := int64(max(cfg.SweepOrders, 2*p.Concurrency)); p.Orders != want || !p.ChecksOK || p.OrdersPerSecond <= 0 || p.P99 <= 0 {
			t.Errorf("sweep %s at %d: %d orders (want %d), %.0f/s, p99 %s, checks ok %v", p.Design, p.Concurrency, p.Orders, want, p.OrdersPerSecond, p.P99, p.ChecksOK)
		}
	}
	want := map[string][]int{"flash sale": cfg.SweepLevels, "classic checkout": cfg.SweepLevels}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sweep steps (-want +got):\n%s", diff)
	}
}

// checkCPU: the shop (this process) and the machine were sampled over the phase.
func checkCPU(t *testing.T, u *loadgen.CPUUsage) {
	t.Helper()
	if u == nil || u.Seconds <= 0 || len(u.Processes) == 0 {
		t.Fatalf("CPU not sampled: %+v", u)
	}
	shop := u.Processes[0]
	if shop.PID != os.Getpid() || shop.Missing != "" || shop.CPUSeconds < 0 {
		t.Errorf("the shop's CPU: %+v", shop)
	}
	if u.Machine.Missing != "" || u.Machine.CPUSeconds < shop.CPUSeconds-0.05 {
		t.Errorf("the machine's CPU %+v is less than the shop's %+v", u.Machine, shop)
	}
}

// checkProfile: the raw profile was written and parses, and the summary's shares
// add up.
func checkProfile(t *testing.T, s *loadgen.ProfileSummary, path string) {
	t.Helper()
	if s == nil || len(s.ByFlat) == 0 || len(s.ByCum) == 0 || len(s.Packages) == 0 || s.CPUSeconds <= 0 {
		t.Fatalf("no profile summary: %+v", s)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if p, err := profile.Parse(f); err != nil || len(p.Sample) == 0 {
		t.Fatalf("the raw profile at %s: %v", path, err)
	}
	var flat float64
	for _, p := range s.Packages {
		flat += p.Flat
		if p.Cum < p.Flat {
			t.Errorf("package %s: cum %.3f under flat %.3f", p.Name, p.Cum, p.Flat)
		}
	}
	if flat < 0.99 || flat > 1.01 {
		t.Errorf("the packages' flat shares add up to %.3f, want 1", flat)
	}
}

// checkCosts: each design's phase counted its statements, the shop's its writes.
// The counters are server-wide, so other clients of the server can only add to
// them: the test checks floors.
func checkCosts(t *testing.T, c *loadgen.OrderCosts) {
	t.Helper()
	if c == nil || len(c.Phases) != 4 {
		t.Fatalf("costs of %d phases, want the shop, the classic checkout and both Redis ways: %+v", len(c.Phases), c)
	}
	floors := []map[string]float64{
		{"grain snapshot writes": 1, "group-commit transactions": 0.01, "Questions": 1, "Com_commit": 0.01},
		{"Questions": 3, "Com_update": 1, "Com_insert": 1, "Com_commit": 1},
		{"Questions": 1, "Com_insert": 1},
		{"Questions": 1, "Com_insert": 1},
	}
	for i, ph := range c.Phases {
		if ph.Orders <= 0 || ph.Seconds <= 0 {
			t.Errorf("%s: %d orders over %.2f s", ph.Design, ph.Orders, ph.Seconds)
		}
		for name, floor := range floors[i] {
			if v, ok := ph.PerOrder(name); !ok || v < floor {
				t.Errorf("%s: %s per order %.2f (counted: %v), want at least %.2f", ph.Design, name, v, ok, floor)
			}
		}
	}
}

// servePprof serves net/http/pprof's CPU profile on a loopback port, as the shop
// does on PHONESHOP_DEBUG_ADDR, and returns its address.
func servePprof(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// TestCartMemoryIsMeasuredAndComesBack: the memory measurement activates the carts,
// sees them all active, and sees idle ones passivate and free their heap. Its shop
// has one member, so it runs under the race detector like any other test.
func TestCartMemoryIsMeasuredAndComesBack(t *testing.T) {
	m, err := measureCartMemory(context.Background(), 3000, 2*time.Second, shoptest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	if m.Activations != 3000 || m.LeftActive != 0 {
		t.Fatalf("activations %d (want 3000), left active after idle %d (want 0)", m.Activations, m.LeftActive)
	}
	if m.BytesPerCart <= 0 || m.HeapAfterMiB >= m.HeapActiveMiB {
		t.Fatalf("memory not measured or not given back: %+v", m)
	}
}
