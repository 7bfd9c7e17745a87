// Command loadgen benchmarks a running shop against the limits of its machine, in one
// run: the HTTP limit of Fiber, the classic one-transaction-per-order checkout and the
// Redis-then-MySQL checkout, the latter on the machine's Redis and on a durable one
// (bench/baseline, served in this process), and the shop's own scenarios
// (bench/scenario) through its HTTP API; then a concurrency sweep of the flash sale
// and the classic checkout. Of the flash sale's throughput phase it also reports the
// CPU of each process, the shop's CPU profile, and the writes and statements per
// confirmed order (the classic and Redis ways' too). It writes a JSON and a Markdown
// report with the targets of issue 12 and their ratios.
//
//	make bench    # starts phoneshop dev on MariaDB and Redis, runs this, stops it
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ardanlabs/conf/v3"

	"phoneshop/bench/baseline"
	"phoneshop/bench/loadgen"
	"phoneshop/bench/scenario"
	"phoneshop/catalog"
)

// Config is loadgen's configuration (env LOADGEN_..., flags).
type Config struct {
	ShopURL       string        `conf:"default:http://127.0.0.1:8085,flag:shop-url,help:base URL of the shop under test"`
	AdminEmail    string        `conf:"default:admin@example.com,flag:admin-email,help:an admin account of the shop (restock and stock levels)"`
	AdminPassword string        `conf:"default:bench admin password,flag:admin-password,mask"`
	MySQLDSN      string        `conf:"default:root@tcp(127.0.0.1:3306)/phoneshop_bench_baseline,flag:mysql-dsn,env:MYSQL_DSN,mask,help:database of the baseline checkouts"`
	RedisAddr     string        `conf:"default:127.0.0.1:6379,flag:redis-addr,help:Redis of the baseline checkout"`
	RedisPrefix   string        `conf:"default:phoneshop_bench_baseline:,flag:redis-prefix"`
	Concurrency   int           `conf:"default:64,flag:concurrency,help:closed-loop concurrency of every run"`
	Duration      time.Duration `conf:"default:10s,flag:duration,help:length of each timed closed-loop run"`
	FlashShoppers int           `conf:"default:3000,flag:flash-shoppers,help:shoppers in the throughput phase of the flash sale (stock never runs out)"`
	FlashMixEvery int           `conf:"default:5,flag:flash-mix-every,help:every so many shoppers of the throughput phase carry two more SKUs (a saga order of three SKUs; 0: every cart holds the hot SKU alone)"`
	SellOutOf     int           `conf:"default:400,flag:sell-out-of,help:shoppers in the sell-out phase"`
	SellOutUnits  int           `conf:"default:100,flag:sell-out-units,help:units in the sell-out phase"`
	OpenSeconds   int           `conf:"default:10,flag:open-seconds,help:length of the open-loop checkout run at half the maximum throughput"`
	Out           string        `conf:"default:docs/benchmarks/flash-sale,flag:out,help:report path without extension (.json and .md are written)"`
	MemoryCarts   int           `conf:"default:100000,flag:memory-carts,help:cart grains activated for the memory measurement (0: skip it)"`
	Progress      bool          `conf:"default:true,flag:progress,help:show progress bars on stderr"`
	Extra         []string      `conf:"flag:extra,help:key=value lines added to the machine description"`

	DurableRedisAddr string `conf:"flag:durable-redis-addr,help:a Redis with appendonly yes and appendfsync always for the durable Redis peer (empty: reported as not measured)"`
	SweepLevels      []int  `conf:"default:16;64;256;1024,flag:sweep-levels,help:concurrent shoppers of each step of the concurrency sweep, separated by ;"`
	SweepOrders      int    `conf:"default:2000,flag:sweep-orders,help:orders of each sweep step and design (at least twice its shoppers; 0: no sweep)"`
	ShopPID          int    `conf:"flag:shop-pid,help:process id of the shop, for its CPU in the flash sale (0: reported as not sampled)"`
	ShopDebugAddr    string `conf:"flag:shop-debug-addr,help:the shop's PHONESHOP_DEBUG_ADDR (net/http/pprof) for the flash sale's CPU profile (empty: reported as not taken)"`
	ShopMetricsURL   string `conf:"flag:shop-metrics-url,help:the shop's Prometheus metrics (empty: <shop-url>/metrics, where dev serves them)"`
	ProfileSeconds   int    `conf:"default:8,flag:profile-seconds,help:longest CPU profile of the flash sale's throughput phase (it ends with the phase)"`
	ProfileOut       string `conf:"default:tmp/bench/flash-cpu.pprof,flag:profile-out,help:where the raw CPU profile of the flash sale is written"`
}

// profileTop is how many functions the report lists by flat and by cumulative share.
const profileTop = 15

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg Config
	if help, err := conf.Parse("LOADGEN", &cfg); err != nil {
		if errors.Is(err, conf.ErrHelpWanted) {
			fmt.Println(help)
			return nil
		}
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	report, err := Run(ctx, cfg, log)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Out), 0o755); err != nil {
		return err
	}
	if err := report.WriteJSON(cfg.Out + ".json"); err != nil {
		return err
	}
	if err := report.WriteMarkdown(cfg.Out + ".md"); err != nil {
		return err
	}
	fmt.Println(report.Markdown())
	fmt.Printf("report written to %s.md and %s.json\n", cfg.Out, cfg.Out)
	return nil
}

// Run runs every phase against the shop at cfg.ShopURL and returns the report.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (loadgen.Report, error) {
	report := loadgen.Report{Title: "phoneshop flash-sale benchmark", Machine: loadgen.DescribeMachine()}
	if report.Machine.Extra == nil {
		report.Machine.Extra = map[string]string{}
	}
	for _, kv := range cfg.Extra {
		if k, v, ok := strings.Cut(kv, "="); ok {
			report.Machine.Extra[k] = v
		}
	}
	report.Machine.Extra["concurrency"] = fmt.Sprint(cfg.Concurrency)
	bar := func() loadgen.Progress { return loadgen.NewBar(os.Stderr, cfg.Progress) }

	// The baselines, served by Fiber in this process on a loopback port, on a
	// database of their own.
	versions, err := ensureDatabase(ctx, cfg.MySQLDSN)
	if err != nil {
		return report, err
	}
	report.Machine.Extra["database"] = versions
	base, baseURL, err := startBaseline(ctx, cfg, log)
	if err != nil {
		return report, err
	}
	defer base.Close()
	if report.Machine.Extra["redis persistence (the shop's and the Redis way's, "+cfg.RedisAddr+")"], err = redisPersistence(ctx, base, baseline.MainRedis); err != nil {
		return report, err
	}
	status, err := openStatus(cfg.MySQLDSN)
	if err != nil {
		return report, err
	}
	defer status.Close()

	client := loadgen.NewClient(cfg.Concurrency * 2)
	shop := scenario.Remote{URL: strings.TrimRight(cfg.ShopURL, "/"), Client: client}
	if shop.Admin, err = login(ctx, shop, cfg.AdminEmail, cfg.AdminPassword); err != nil {
		return report, err
	}
	metrics := meter{client: client, metricsURL: cfg.ShopMetricsURL, status: status}
	if metrics.metricsURL == "" {
		metrics.metricsURL = shop.URL + "/metrics"
	}
	processes := []loadgen.Process{loadgen.ProcessOf("the shop", cfg.ShopPID), loadgen.FindProcess("mariadbd", "mariadbd", "mysqld")}
	if pid, err := base.RedisPID(ctx, baseline.MainRedis); err != nil {
		processes = append(processes, loadgen.Process{Name: "redis-server", Missing: err.Error()})
	} else {
		processes = append(processes, loadgen.ProcessOf("redis-server ("+cfg.RedisAddr+")", pid, "redis-server"))
	}
	processes = append(processes, loadgen.Self("the load generator (and the baselines' server)"))

	closed := loadgen.Closed{Concurrency: cfg.Concurrency, Duration: cfg.Duration}
	add := func(name, scen, mode string, stats *loadgen.Stats, checks []loadgen.Check) loadgen.Summary {
		sum := stats.Summary()
		report.Runs = append(report.Runs, loadgen.Run{Name: name, Scenario: scen, Mode: mode, Concurrency: cfg.Concurrency, Summary: sum, Checks: checks})
		return sum
	}

	// 1. The HTTP limit: a Fiber handler returning a fixed small JSON body.
	httpLimit := add("http limit (Fiber, fixed JSON)", "baseline", "closed", loadgen.RunClosed(ctx, closed, func(int) loadgen.Task {
		return func(ctx context.Context) loadgen.Outcome {
			return loadgen.Do(ctx, client, "http_limit", http.MethodGet, baseURL+"/baseline/http", "", nil, nil)
		}
	}, bar()), nil)

	// 2. Shoppers, up front (not timed).
	users, err := shop.Shoppers(ctx, max(cfg.Concurrency, 64), cfg.Concurrency)
	if err != nil {
		return report, err
	}
	phones, skus, err := shop.Catalog(ctx)
	if err != nil {
		return report, err
	}

	// 3. Phone detail reads and add-to-cart alone, for their targets.
	detail := add("phone detail", "reads", "closed", loadgen.RunClosed(ctx, closed, func(w int) loadgen.Task {
		i := w
		return func(ctx context.Context) loadgen.Outcome {
			i++
			return loadgen.Do(ctx, client, "view_product", http.MethodGet, shop.URL+"/api/v1/phones/"+phones[i%len(phones)], "", nil, nil)
		}
	}, bar()), nil)
	addToCart := add("add to cart", "cart", "closed", loadgen.RunClosed(ctx, closed, func(w int) loadgen.Task {
		i := w
		return func(ctx context.Context) loadgen.Outcome {
			i++
			return shop.PutCartItem(ctx, users[w%len(users)].Token, skus[i%len(skus)], 1+i%3)
		}
	}, bar()), nil)

	// 4. Browse (Online Boutique's mix) and cart churn.
	browse, err := shop.Browse(ctx, users, closed, bar())
	if err != nil {
		return report, err
	}
	add("browse (view product 10, view cart 3, add 2, index 1, checkout 1)", "browse", "closed", browse, nil)
	add("cart churn (add/remove)", "cart", "closed", shop.CartChurn(ctx, users, skus, closed, bar()), nil)

	// 5. Flash sale, throughput phase: the hot phone in every cart, stock that lasts.
	// What the load costs is measured around the checkouts alone, before the checks
	// read every order back: the CPU of each process, the shop's CPU profile, and
	// the writes and statements per confirmed order.
	hot := skus[0]
	flashUsers, err := shop.Shoppers(ctx, cfg.FlashShoppers, cfg.Concurrency)
	if err != nil {
		return report, err
	}
	if err := shop.Restock(ctx, hot, int64(cfg.FlashShoppers)); err != nil {
		return report, err
	}
	if err := shop.PrepareFlash(ctx, flashUsers, hot, cfg.Concurrency); err != nil {
		return report, err
	}
	// The mix: every FlashMixEvery-th cart holds two plentiful SKUs besides the
	// hot one, so the saga's path (orders of several SKUs) is measured too.
	if cfg.FlashMixEvery > 0 && len(skus) >= 3 {
		var mixed []scenario.Shopper
		for i := 0; i < len(flashUsers); i += cfg.FlashMixEvery {
			mixed = append(mixed, flashUsers[i])
		}
		for _, sku := range skus[1:3] {
			if err := shop.Restock(ctx, sku, int64(len(mixed))); err != nil {
				return report, err
			}
			if err := shop.PrepareFlash(ctx, mixed, sku, cfg.Concurrency); err != nil {
				return report, err
			}
		}
		report.Notes = append(report.Notes, fmt.Sprintf("The flash sale's throughput phase: %d of its %d carts hold two more SKUs besides the hot one "+
			"(their orders run the saga); the others hold the hot SKU alone (their orders are born in the sale's write).", len(mixed), len(flashUsers)))
	}
	before, err := shop.StockLevel(ctx, hot)
	if err != nil {
		return report, err
	}
	const flashPhase = "flash sale, throughput phase"
	counted, err := metrics.read(ctx, true)
	if err != nil {
		report.Skipped = append(report.Skipped, fmt.Sprintf("the shop's grain snapshot writes: %v (dev serves /metrics on its API port; else pass --shop-metrics-url)", err))
		metrics.metricsURL = ""
		if counted, err = metrics.read(ctx, false); err != nil {
			return report, err
		}
	}
	var profiler *loadgen.Profiler
	if cfg.ShopDebugAddr != "" {
		// Stop ends it at the phase's end; this, on the way out of a failed run.
		profileCtx, stopProfiling := context.WithCancel(ctx)
		defer stopProfiling()
		profiler = loadgen.StartProfiler(profileCtx, client, "http://"+cfg.ShopDebugAddr, cfg.ProfileSeconds)
	} else {
		report.Skipped = append(report.Skipped, "the shop's CPU profile: no --shop-debug-addr (start the shop with PHONESHOP_DEBUG_ADDR)")
	}
	cpuStart := loadgen.SampleCPU(processes)
	flash := shop.FlashLoad(ctx, flashUsers, cfg.Concurrency, 0, bar())
	cpuEnd := loadgen.SampleCPU(processes)
	loadEnd := time.Now()
	cpu := loadgen.CPUBetween(flashPhase, cpuStart, cpuEnd)
	report.CPU = &cpu
	flashCost, err := metrics.cost(ctx, "flash sale (the shop)", int64(len(flash.Confirmed)), counted, loadEnd)
	if err != nil {
		return report, err
	}
	report.Costs = &loadgen.OrderCosts{Phases: []loadgen.OrderCost{flashCost}, Notes: costNotes()}
	if profiler != nil {
		if err := profileSummary(&report, profiler, loadEnd, cfg.ProfileOut, flashPhase); err != nil {
			report.Skipped = append(report.Skipped, fmt.Sprintf("the shop's CPU profile: %v", err))
		}
	}
	flash.Checks = shop.CheckSale(ctx, flashUsers, hot, before, flash.Confirmed)
	flashSum := add("flash sale, throughput (stock lasts)", "flash", "closed", flash.Stats, flash.Checks)
	shopOrders := float64(len(flash.Confirmed)) / flashSum.Elapsed.Seconds()

	// 6. The baselines' checkouts: the same number of orders at the same
	// concurrency, and what their orders cost in statements.
	classic := peer{name: "classic checkout (one MySQL transaction per order)", server: base,
		url: baseURL + "/baseline/classic/checkout", sku: "bench-baseline-classic"}
	redisWay := peer{name: "Redis Lua decrement + MySQL insert", server: base,
		url: baseURL + "/baseline/redis/checkout", sku: "bench-baseline-redis", redis: baseline.MainRedis}
	peerOrders := func(p peer) (float64, error) {
		counted, err := metrics.read(ctx, false)
		if err != nil {
			return 0, err
		}
		stats, placed, checks, err := p.checkouts(ctx, client, cfg.Concurrency, int64(cfg.FlashShoppers), bar())
		if err != nil {
			return 0, err
		}
		cost, err := metrics.cost(ctx, p.name, placed, counted, time.Now())
		if err != nil {
			return 0, err
		}
		report.Costs.Phases = append(report.Costs.Phases, cost)
		sum := add(p.name, "baseline", "closed", stats, checks)
		return float64(placed) / sum.Elapsed.Seconds(), nil
	}
	classicOrders, err := peerOrders(classic)
	if err != nil {
		return report, err
	}
	// The Redis way on the machine's Redis: in the runs, not a target (a crash
	// between its two stores loses units, whatever Redis's persistence).
	if _, err := peerOrders(redisWay); err != nil {
		return report, err
	}
	// The same Lua checkout against a Redis that fsyncs every write before it
	// answers: the Redis way made durable, as far as Redis can be.
	var durableOrders float64
	durableMeasured := cfg.DurableRedisAddr != ""
	const durableName = "Redis Lua decrement + MySQL insert, durable Redis (appendfsync always)"
	if durableMeasured {
		persistence, err := redisPersistence(ctx, base, baseline.DurableRedis)
		if err != nil {
			return report, err
		}
		report.Machine.Extra["redis persistence (the durable peer's, "+cfg.DurableRedisAddr+")"] = persistence
		if durableOrders, err = peerOrders(peer{name: durableName, server: base,
			url: baseURL + "/baseline/" + string(baseline.DurableRedis) + "/checkout", sku: "bench-baseline-redis-durable",
			redis: baseline.DurableRedis}); err != nil {
			return report, err
		}
		last := &report.Runs[len(report.Runs)-1]
		last.Checks = append(last.Checks, loadgen.Check{Name: "Redis fsyncs every write before answering",
			OK: persistence == durablePersistence, Detail: persistence})
	} else {
		report.Skipped = append(report.Skipped, "the durable Redis peer ("+durableName+"): no --durable-redis-addr (make bench starts one)")
	}

	// 7. Flash sale, sell-out phase: more shoppers than units.
	sellUsers, err := shop.Shoppers(ctx, cfg.SellOutOf, cfg.Concurrency)
	if err != nil {
		return report, err
	}
	soldOut, err := catalog.SoldOutAtSeed()
	if err != nil || len(soldOut) == 0 {
		return report, fmt.Errorf("the seed has no sold-out variant for the sell-out phase: %v", err)
	}
	sellSKU := soldOut[0] // no stock at the seed: the phase controls exactly how many units there are
	l, err := shop.StockLevel(ctx, sellSKU)
	if err != nil {
		return report, err
	}
	// Bring the SKU to exactly SellOutUnits by receiving the difference.
	if l.Available > int64(cfg.SellOutUnits) {
		return report, fmt.Errorf("sell-out SKU %s has %d available, more than %d", sellSKU, l.Available, cfg.SellOutUnits)
	}
	if d := int64(cfg.SellOutUnits) - l.Available; d > 0 {
		if err := shop.Restock(ctx, sellSKU, d); err != nil {
			return report, err
		}
	}
	if err := shop.PrepareFlash(ctx, sellUsers, sellSKU, cfg.Concurrency); err != nil {
		return report, err
	}
	before, err = shop.StockLevel(ctx, sellSKU)
	if err != nil {
		return report, err
	}
	sell := shop.Flash(ctx, sellUsers, sellSKU, before, cfg.Concurrency, 0, bar())
	sell.Checks = append(sell.Checks, loadgen.Check{Name: fmt.Sprintf("exactly %d confirmed orders", cfg.SellOutUnits),
		OK: len(sell.Confirmed) == cfg.SellOutUnits, Detail: fmt.Sprintf("%d confirmed", len(sell.Confirmed))})
	add(fmt.Sprintf("flash sale, sell-out (%d shoppers, %d units)", cfg.SellOutOf, cfg.SellOutUnits), "flash", "closed", sell.Stats, sell.Checks)

	// 8. Checkout latency at half the maximum throughput, open loop.
	rate := max(shopOrders/2, 1)
	openUsers, err := shop.Shoppers(ctx, int(rate*float64(cfg.OpenSeconds))+1, cfg.Concurrency)
	if err != nil {
		return report, err
	}
	if err := shop.Restock(ctx, hot, int64(len(openUsers))); err != nil {
		return report, err
	}
	if err := shop.PrepareFlash(ctx, openUsers, hot, cfg.Concurrency); err != nil {
		return report, err
	}
	before, err = shop.StockLevel(ctx, hot)
	if err != nil {
		return report, err
	}
	open := shop.Flash(ctx, openUsers, hot, before, cfg.Concurrency, rate, bar())
	openSum := add(fmt.Sprintf("checkout at half the maximum throughput (%.0f/s)", rate), "flash", "open", open.Stats, open.Checks)
	report.Runs[len(report.Runs)-1].Rate = rate

	// 9. The concurrency sweep of the flash sale and the classic checkout.
	if cfg.SweepOrders > 0 && len(cfg.SweepLevels) > 0 {
		points, runs, err := sweep(ctx, cfg, shop, hot, classic, bar)
		if err != nil {
			return report, err
		}
		report.Sweep = points
		report.Runs = append(report.Runs, runs...)
	} else {
		report.Skipped = append(report.Skipped, "the concurrency sweep: --sweep-orders 0")
	}

	// 10. Targets.
	allChecksOK := true
	for _, r := range report.Runs {
		allChecksOK = allChecksOK && checksOK(r.Checks)
	}
	p99 := openSum.Ops["checkout"].P99
	durableTarget := loadgen.Target{Name: "durable flash-sale confirmed orders/s vs durable Redis (appendfsync always)",
		Figure: "not measured: no --durable-redis-addr", Goal: ">= 1x"}
	if durableMeasured {
		durableTarget = ratioTarget(durableTarget.Name, shopOrders, durableOrders, 1, "orders/s")
	}
	report.Targets = []loadgen.Target{
		ratioTarget("durable flash-sale confirmed orders/s vs the classic checkout", shopOrders, classicOrders, 2, "orders/s"),
		sweepTarget(report.Sweep),
		durableTarget,
		cpuTarget(cpu, flashCost),
		roundsTarget(flashCost),
		ratioTarget("add-to-cart vs the HTTP limit", addToCart.Ops["add_to_cart"].PerSecond, httpLimit.Ops["http_limit"].PerSecond, 0.5, "req/s"),
		ratioTarget("phone detail reads vs the HTTP limit", detail.Ops["view_product"].PerSecond, httpLimit.Ops["http_limit"].PerSecond, 0.7, "req/s"),
		{Name: "checkout p99 at half the maximum throughput", Figure: fmt.Sprintf("%.1f ms at %.0f checkouts/s", ms(p99), rate),
			Goal: "<= 50 ms", Ratio: ms(p99) / 50, Met: p99 <= 50*time.Millisecond},
		{Name: "zero oversell in every run", Figure: fmt.Sprintf("all checks %s", map[bool]string{true: "passed", false: "NOT passed"}[allChecksOK]),
			Goal: "every check passes", Ratio: 1, Met: allChecksOK},
	}
	// 11. Memory per active cart grain, and passivation of idle ones.
	if cfg.MemoryCarts > 0 {
		mem, err := measureCartMemory(ctx, cfg.MemoryCarts, 15*time.Second, log)
		if err != nil {
			return report, err
		}
		report.Targets = append(report.Targets, memoryTarget(mem))
	} else {
		report.Skipped = append(report.Skipped, "memory per cart grain: --memory-carts 0")
	}

	report.Notes = append(report.Notes,
		"The shop's checkout answers 201 only after the order, its reservations and the sale are committed to MariaDB (group commit, innodb_flush_log_at_trx_commit=1); the classic checkout commits one transaction per order.",
		"The Redis way takes the stock in Redis and inserts the order row in MySQL: a crash between the two loses units whatever Redis's persistence. "+
			"On the machine's Redis an acknowledged decrement may also be lost in a crash; the durable peer's Redis fsyncs every write first (appendfsync always).",
	)
	return report, nil
}

// sweepTarget: the flash sale at least matches the classic checkout at every
// level of the concurrency sweep.
func sweepTarget(points []loadgen.SweepPoint) loadgen.Target {
	t := loadgen.Target{Name: "flash sale vs the classic checkout at every sweep level", Goal: ">= 1x at each level"}
	flash, classic := map[int]float64{}, map[int]float64{}
	var levels []int
	for _, p := range points {
		if strings.HasPrefix(p.Design, "flash") {
			flash[p.Concurrency] = p.OrdersPerSecond
			levels = append(levels, p.Concurrency)
		} else {
			classic[p.Concurrency] = p.OrdersPerSecond
		}
	}
	if len(levels) == 0 {
		t.Figure = "not measured: no sweep"
		return t
	}
	t.Ratio, t.Met = math.Inf(1), true
	var parts []string
	for _, l := range levels {
		r := flash[l] / max(classic[l], 1)
		parts = append(parts, fmt.Sprintf("%d: %.2fx", l, r))
		t.Ratio = min(t.Ratio, r)
		t.Met = t.Met && r >= 1
	}
	t.Figure = strings.Join(parts, ", ")
	return t
}

// maxCPUPerOrder is the goal of the shop's CPU per confirmed order in the flash phase.
const maxCPUPerOrder = 250 * time.Microsecond

// cpuTarget: the shop's CPU per confirmed order in the flash sale's throughput
// phase, with its heap allocations per order.
func cpuTarget(cpu loadgen.CPUUsage, cost loadgen.OrderCost) loadgen.Target {
	t := loadgen.Target{Name: "the shop's CPU per confirmed order, flash sale", Goal: "<= 250 µs"}
	var secs float64
	found := false
	for _, p := range cpu.Processes {
		if p.Name == "the shop" && p.Missing == "" {
			secs, found = p.CPUSeconds, true
		}
	}
	if !found || cost.Orders == 0 {
		t.Figure = "not measured: the shop's pid was not given"
		return t
	}
	per := time.Duration(secs / float64(cost.Orders) * float64(time.Second))
	t.Figure = fmt.Sprintf("%.0f µs", float64(per)/float64(time.Microsecond))
	if allocs, ok := cost.PerOrder("heap allocations"); ok {
		bytes, _ := cost.PerOrder("heap bytes allocated")
		t.Figure += fmt.Sprintf("; %.0f heap allocations, %.1f KiB per order", allocs, bytes/1024)
	}
	t.Ratio, t.Met = float64(per)/float64(maxCPUPerOrder), per <= maxCPUPerOrder
	return t
}

// roundsTarget: the durable rounds a confirmed checkout waits for before its
// answer, per path, from the shop's own metrics: one for an order of one SKU,
// at most two for any.
func roundsTarget(cost loadgen.OrderCost) loadgen.Target {
	t := loadgen.Target{Name: "durable rounds before the answer, per confirmed order", Goal: "1 (one SKU), <= 2 (any)"}
	total := func(name string) float64 {
		for _, k := range cost.Counters {
			if k.Name == name {
				return k.Total
			}
		}
		return 0
	}
	born, saga := total(confirmedBorn), total(confirmedSaga)
	if born+saga == 0 {
		t.Figure = "not measured: the shop's metrics were not read"
		return t
	}
	perBorn, perSaga := total(roundsBorn)/max(born, 1), total(roundsSaga)/max(saga, 1)
	t.Figure = fmt.Sprintf("%.2f for %.0f orders of one SKU, %.2f for %.0f of several", perBorn, born, perSaga, saga)
	worst := perBorn
	if saga > 0 {
		worst = max(perSaga/2, perBorn)
	}
	t.Ratio = worst
	t.Met = (born == 0 || perBorn <= 1) && (saga == 0 || perSaga <= 2)
	return t
}

// durablePersistence is what a Redis that fsyncs every write reports.
const durablePersistence = "appendonly yes, appendfsync always"

// Goals of the memory target.
const (
	maxBytesPerCart = 2048
	minGivenBack    = 0.9
)

// memoryTarget judges the memory measurement against both of its goals. Its ratio
// is the worse of the two, each as a fraction of its goal, so 1 or more meets both.
func memoryTarget(mem Memory) loadgen.Target {
	active := mem.HeapActiveMiB - mem.HeapBeforeMiB
	givenBack := (mem.HeapActiveMiB - mem.HeapAfterMiB) / max(active, 1e-9)
	sizeRatio := maxBytesPerCart / max(mem.BytesPerCart, 1e-9)
	backRatio := givenBack / minGivenBack
	return loadgen.Target{Name: fmt.Sprintf("memory per active cart grain (%d active)", mem.Activations),
		Figure: fmt.Sprintf("%.0f bytes per cart; heap %.1f -> %.1f MiB active -> %.1f MiB after %s idle (%d left active): %.0f%% given back",
			mem.BytesPerCart, mem.HeapBeforeMiB, mem.HeapActiveMiB, mem.HeapAfterMiB, mem.IdleTimeout, mem.LeftActive, 100*givenBack),
		Goal:   "at most 2 KB per active cart grain at 100,000 carts; at least 90% of the heap they took given back after they passivate",
		Ratio:  min(sizeRatio, backRatio),
		Met:    mem.LeftActive == 0 && mem.BytesPerCart <= maxBytesPerCart && givenBack >= minGivenBack,
		Detail: fmt.Sprintf("ratio: the worse of 2 KB / bytes per cart (%.2f) and share given back / 90%% (%.2f); both must be 1 or more, and every cart must passivate", sizeRatio, backRatio)}
}

// profileSummary stops the profiler at the phase's end, writes the raw profile to
// path and puts its summary in the report.
func profileSummary(report *loadgen.Report, profiler *loadgen.Profiler, phaseEnd time.Time, path, phase string) error {
	prof, covered, note, err := profiler.Stop(phaseEnd)
	if err != nil {
		return err
	}
	if err := loadgen.WriteProfile(path, prof); err != nil {
		return err
	}
	summary := loadgen.SummarizeProfile(prof, profileTop)
	summary.Phase, summary.Path, summary.Note = phase, path, note
	summary.Seconds = covered.Seconds()
	report.Profile = &summary
	return nil
}

// startBaseline starts the baselines' server and serves it on a loopback port; it
// returns the server and its base URL.
func startBaseline(ctx context.Context, cfg Config, log *slog.Logger) (*baseline.Server, string, error) {
	base, err := baseline.New(ctx, baseline.Config{MySQLDSN: cfg.MySQLDSN, RedisAddr: cfg.RedisAddr, DurableRedisAddr: cfg.DurableRedisAddr,
		RedisPrefix: cfg.RedisPrefix, Logger: log})
	if err != nil {
		return nil, "", fmt.Errorf("baseline: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		base.Close()
		return nil, "", err
	}
	// Close shuts the app down, which ends Listener.
	go func() { _ = base.App().Listener(ln) }()
	return base, "http://" + ln.Addr().String(), nil
}

func redisPersistence(ctx context.Context, base *baseline.Server, name baseline.Redis) (string, error) {
	appendOnly, appendFsync, err := base.RedisPersistence(ctx, name)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("appendonly %s, appendfsync %s", appendOnly, appendFsync), nil
}

func ratioTarget(name string, figure, base, goal float64, unit string) loadgen.Target {
	ratio := figure / max(base, 1e-9)
	return loadgen.Target{Name: name, Figure: fmt.Sprintf("%.0f vs %.0f %s", figure, base, unit),
		Goal: fmt.Sprintf(">= %gx", goal), Ratio: ratio, Met: ratio >= goal}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func login(ctx context.Context, shop scenario.Remote, email, password string) (string, error) {
	body := fmt.Sprintf(`{"email":%q,"password":%q}`, email, password)
	o, resp := loadgen.DoBody(ctx, shop.Client, "login", http.MethodPost, shop.URL+"/api/v1/sessions", "", []byte(body), nil)
	if o.Err != nil || o.Status != http.StatusCreated {
		return "", fmt.Errorf("admin login at %s: %d %s %v (start the shop with PHONESHOP_ADMIN_EMAIL/PASSWORD)", shop.URL, o.Status, o.Code, o.Err)
	}
	var sess struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(resp, &sess); err != nil || sess.Token == "" {
		return "", fmt.Errorf("admin login: no token in %s", resp)
	}
	return sess.Token, nil
}
