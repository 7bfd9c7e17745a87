// Command loadgen benchmarks a running shop against the limits of its machine, in one
// run: the HTTP limit of Fiber, the classic one-transaction-per-order checkout and the
// Redis-then-MySQL checkout (bench/baseline, served in this process), and the shop's
// own scenarios (bench/scenario) through its HTTP API. It writes a JSON and a Markdown
// report with the targets of issue "Flash-sale benchmark" and their ratios.
//
//	make bench    # starts phoneshop dev on MariaDB and Redis, runs this, stops it
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
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
	SellOutOf     int           `conf:"default:400,flag:sell-out-of,help:shoppers in the sell-out phase"`
	SellOutUnits  int           `conf:"default:100,flag:sell-out-units,help:units in the sell-out phase"`
	OpenSeconds   int           `conf:"default:10,flag:open-seconds,help:length of the open-loop checkout run at half the maximum throughput"`
	Out           string        `conf:"default:docs/benchmarks/flash-sale,flag:out,help:report path without extension (.json and .md are written)"`
	MemoryCarts   int           `conf:"default:100000,flag:memory-carts,help:cart grains activated for the memory measurement (0: skip it)"`
	Progress      bool          `conf:"default:true,flag:progress,help:show progress bars on stderr"`
	Extra         []string      `conf:"flag:extra,help:key=value lines added to the machine description"`
}

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
	base, err := baseline.New(ctx, baseline.Config{MySQLDSN: cfg.MySQLDSN, RedisAddr: cfg.RedisAddr, RedisPrefix: cfg.RedisPrefix, Logger: log})
	if err != nil {
		return report, fmt.Errorf("baseline: %w", err)
	}
	defer base.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return report, err
	}
	go func() { _ = base.App().Listener(ln) }()
	defer func() { _ = base.App().Shutdown() }()
	baseURL := "http://" + ln.Addr().String()

	client := loadgen.NewClient(cfg.Concurrency * 2)
	shop := scenario.Shop{URL: strings.TrimRight(cfg.ShopURL, "/"), Client: client}
	if shop.Admin, err = login(ctx, shop, cfg.AdminEmail, cfg.AdminPassword); err != nil {
		return report, err
	}
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
	before, err := shop.StockLevel(ctx, hot)
	if err != nil {
		return report, err
	}
	flash := shop.Flash(ctx, flashUsers, hot, before, cfg.Concurrency, 0, bar())
	flashSum := add("flash sale, throughput (stock lasts)", "flash", "closed", flash.Stats, flash.Checks)
	shopOrders := float64(len(flash.Confirmed)) / flashSum.Elapsed.Seconds()

	// 6. The baselines' checkouts: the same number of orders at the same concurrency.
	baseOrders := func(name, path string) (loadgen.Summary, float64, error) {
		sku := "bench-baseline-" + strings.Trim(path, "/")
		sku = strings.ReplaceAll(sku, "/", "-")
		if err := base.SetStock(ctx, sku, int64(cfg.FlashShoppers)); err != nil {
			return loadgen.Summary{}, 0, err
		}
		var next atomic.Int64
		stats := loadgen.RunClosed(ctx, loadgen.Closed{Concurrency: cfg.Concurrency, Requests: int64(cfg.FlashShoppers)}, func(int) loadgen.Task {
			return func(ctx context.Context) loadgen.Outcome {
				n := next.Add(1)
				body := fmt.Sprintf(`{"sku":%q,"account_id":"acc_%d","order_id":"ord_%d","quantity":1}`, sku, n, n)
				return loadgen.Do(ctx, client, "checkout", http.MethodPost, baseURL+path, "", []byte(body), nil)
			}
		}, bar())
		mysqlQty, redisQty, orders, err := base.Counts(ctx, sku)
		left := mysqlQty // the classic checkout takes stock in MySQL, the Redis way in Redis
		if strings.Contains(path, "redis") {
			left = redisQty
		}
		checks := []loadgen.Check{{Name: "orders = units taken, no oversell", OK: err == nil && orders == int64(cfg.FlashShoppers)-left && left >= 0,
			Detail: fmt.Sprintf("%d orders, %d units left, err %v", orders, left, err)}}
		sum := add(name, "baseline", "closed", stats, checks)
		return sum, float64(orders) / sum.Elapsed.Seconds(), nil
	}
	_, classicOrders, err := baseOrders("classic checkout (one MySQL transaction per order)", "/baseline/classic/checkout")
	if err != nil {
		return report, err
	}
	_, redisOrders, err := baseOrders("Redis Lua decrement + MySQL insert", "/baseline/redis/checkout")
	if err != nil {
		return report, err
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

	// 9. Targets.
	allChecksOK := true
	for _, r := range report.Runs {
		for _, c := range r.Checks {
			allChecksOK = allChecksOK && c.OK
		}
	}
	p99 := openSum.Ops["checkout"].P99
	report.Targets = []loadgen.Target{
		ratioTarget("durable flash-sale confirmed orders/s vs the classic checkout", shopOrders, classicOrders, 10, "orders/s"),
		ratioTarget("add-to-cart vs the HTTP limit", addToCart.Ops["add_to_cart"].PerSecond, httpLimit.Ops["http_limit"].PerSecond, 0.5, "req/s"),
		ratioTarget("phone detail reads vs the HTTP limit", detail.Ops["view_product"].PerSecond, httpLimit.Ops["http_limit"].PerSecond, 0.7, "req/s"),
		{Name: "checkout p99 at half the maximum throughput", Figure: fmt.Sprintf("%.1f ms at %.0f checkouts/s", ms(p99), rate),
			Goal: "<= 50 ms", Ratio: ms(p99) / 50, Met: p99 <= 50*time.Millisecond},
		{Name: "zero oversell in every run", Figure: fmt.Sprintf("all checks %s", map[bool]string{true: "passed", false: "NOT passed"}[allChecksOK]),
			Goal: "every check passes", Ratio: 1, Met: allChecksOK},
	}
	// 10. Memory per active cart grain, and passivation of idle ones.
	if cfg.MemoryCarts > 0 {
		mem, err := measureCartMemory(ctx, cfg.MemoryCarts, 15*time.Second, log)
		if err != nil {
			return report, err
		}
		returned := mem.HeapActiveMiB - mem.HeapAfterMiB
		active := mem.HeapActiveMiB - mem.HeapBeforeMiB
		ok := mem.LeftActive == 0 && returned >= 0.8*active
		report.Targets = append(report.Targets, loadgen.Target{Name: fmt.Sprintf("memory per active cart grain (%d active)", mem.Activations),
			Figure: fmt.Sprintf("%.0f bytes per cart; heap %.1f -> %.1f MiB active -> %.1f MiB after %s idle (%d left active)",
				mem.BytesPerCart, mem.HeapBeforeMiB, mem.HeapActiveMiB, mem.HeapAfterMiB, mem.IdleTimeout, mem.LeftActive),
			Goal: "reported; idle carts passivate and their memory comes back", Ratio: returned / max(active, 1e-9), Met: ok})
	}

	report.Notes = append(report.Notes,
		fmt.Sprintf("Redis-then-MySQL checkout: %.0f orders/s (the shop: %.1fx). It is fast because Redis is not durable: a crash between the decrement and the insert loses units.", redisOrders, shopOrders/max(redisOrders, 1)),
		"The shop's checkout answers 201 only after the order, its reservations and the sale are committed to MariaDB (group commit); the classic checkout commits one transaction per order.",
	)
	return report, nil
}

func ratioTarget(name string, figure, base, goal float64, unit string) loadgen.Target {
	ratio := figure / max(base, 1e-9)
	return loadgen.Target{Name: name, Figure: fmt.Sprintf("%.0f vs %.0f %s", figure, base, unit),
		Goal: fmt.Sprintf(">= %gx", goal), Ratio: ratio, Met: ratio >= goal}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func login(ctx context.Context, shop scenario.Shop, email, password string) (string, error) {
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
