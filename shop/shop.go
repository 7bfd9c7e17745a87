// Package shop assembles a running shop from its parts: the store, the catalog seed,
// accounts, cluster members hosting the grains, and the HTTP edge. cmd/phoneshop
// runs it; tests start it on a temporary directory.
package shop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	pcluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/gofiber/fiber/v2"
	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"

	"phoneshop/account"
	"phoneshop/actors/cart"
	"phoneshop/actors/inventory"
	"phoneshop/actors/order"
	"phoneshop/catalog"
	"phoneshop/cluster"
	"phoneshop/cluster/call"
	"phoneshop/config"
	"phoneshop/config/consulkv"
	"phoneshop/edge"
	"phoneshop/persistence/cache"
	"phoneshop/persistence/mysql"
	"phoneshop/persistence/redis"
	"phoneshop/persistence/sqlite"
	"phoneshop/persistence/sqlstore"
	"phoneshop/protos/inventorypb"
	"phoneshop/protos/orderpb"
)

// storeTimeout bounds one store operation of a grain.
const storeTimeout = 5 * time.Second

// Shop is a running shop.
type Shop struct {
	App      *fiber.App
	Store    *sqlstore.Store
	Members  []*cluster.Member
	Accounts *account.Service
	Catalog  *catalog.Service
	// Live are the settings that can change while the shop runs.
	Live *config.Live
	log  *slog.Logger
	// closers close what was opened beside the store (cache, publisher), in reverse.
	closers []func() error
}

// Options are what the process decides beyond configuration.
type Options struct {
	// Members is how many cluster members to start in this process (dev: 1; tests
	// use several to exercise placement across members).
	Members int
}

// StartDev starts every role in one process on the embedded defaults.
func StartDev(ctx context.Context, cfg config.Dev, opts Options, log *slog.Logger) (_ *Shop, err error) {
	s := &Shop{log: log}
	// Metrics on the shop's own registry.
	registry := prometheus.NewRegistry()
	metrics := edge.NewMetrics(registry)
	defer func() {
		if err != nil {
			s.closeParts()
		}
	}()

	// 1. Store: MySQL/MariaDB when a DSN is set, else SQLite in the data directory;
	// migrated, with group commit of grain snapshots.
	if cfg.MySQLDSN != "" {
		s.Store, err = mysql.Open(ctx, cfg.MySQLDSN)
	} else {
		s.Store, err = sqlite.Open(ctx, filepath.Join(cfg.DataDir, "phoneshop.db"))
	}
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if cfg.GroupCommit {
		committers := cfg.GroupCommitters
		if s.Store.SingleWriter() {
			committers = 1
		}
		s.Store.EnableGroupCommit(sqlstore.GroupCommit{MaxWrites: cfg.GroupCommitMaxWrites, MaxWait: cfg.GroupCommitMaxWait,
			Committers: committers, Timeout: storeTimeout, Observe: metrics.ObserveBatch})
	}

	// 2. Catalog, seeded on first start.
	phones, err := catalog.Seed()
	if err != nil {
		return nil, err
	}
	if seeded, err := s.Store.SeedCatalog(ctx, phones); err != nil {
		return nil, fmt.Errorf("seed catalog: %w", err)
	} else if seeded {
		log.Info("catalog seeded", "phones", len(phones))
	}

	// 3. Hot reads: Redis when an address is set, else the in-process cache, in front
	// of the catalog and of session lookups. Redis down only means slower.
	live := config.NewLive(cfg.Shop)
	s.Live = live
	if cfg.ConsulAddr != "" {
		// The central configuration: Consul KV overlays the live settings.
		client, err := api.NewClient(&api.Config{Address: cfg.ConsulAddr})
		if err != nil {
			return nil, fmt.Errorf("consul: %w", err)
		}
		watchCtx, stopWatch := context.WithCancel(context.Background())
		w := &consulkv.Watcher{KV: client.KV(), Defaults: cfg.Shop, Live: live, Logger: log}
		done := make(chan struct{})
		go func() { defer close(done); w.Run(watchCtx) }()
		s.closers = append(s.closers, func() error { stopWatch(); <-done; return nil })
	}
	cacheMetrics := cache.NewMetrics(registry)
	var hot cache.Cache
	var catalogCache *cache.Catalog
	var sessionCache *cache.Sessions
	if cfg.RedisAddr != "" {
		rc := redis.Open(cfg.RedisAddr, cfg.RedisPrefix, redis.Options{Metrics: cacheMetrics, Log: log,
			// Nothing cached before or during an outage is served after it.
			OnRecover: func(ctx context.Context) {
				_ = catalogCache.Invalidate(ctx)
				_ = sessionCache.Invalidate(ctx)
			}})
		s.closers = append(s.closers, rc.Close)
		hot = rc
	} else {
		hot = cache.NewMemory(0)
	}
	catalogCache = cache.NewCatalog(s.Store, hot, cache.CatalogOptions{Metrics: cacheMetrics, Log: log})
	sessionCache = cache.NewSessions(s.Store, hot, cache.SessionsOptions{Metrics: cacheMetrics, Log: log})
	s.Catalog = catalog.NewService(catalogCache)
	var allSKUs []string
	for _, p := range phones {
		for _, v := range p.Variants {
			allSKUs = append(allSKUs, v.SKU)
		}
	}
	if err := s.Catalog.LoadVariants(ctx, allSKUs); err != nil {
		return nil, fmt.Errorf("load catalog variants: %w", err)
	}
	// Inventory grains publish every committed level; a change of stock state
	// (in stock, low, out) invalidates the cached catalog.
	stock := cache.NewStockPublisher(hot, live.LowStockThreshold,
		func(ctx context.Context) { _ = catalogCache.Invalidate(ctx) }, log, cache.WithPublisherMetrics(cacheMetrics))
	s.closers = append(s.closers, func() error { stock.Close(); return nil })

	// 4. Accounts, and the first admin from configuration.
	hp := account.HashParams{MemoryKiB: cfg.PasswordMemoryKiB, Iterations: cfg.PasswordIterations, Parallelism: cfg.PasswordParallelism}
	if s.Accounts, err = account.NewService(sessionCache, hp, cfg.SessionTTL, time.Now); err != nil {
		return nil, err
	}
	if cfg.AdminEmail != "" {
		if err := s.Accounts.EnsureAdmin(ctx, cfg.AdminEmail, cfg.AdminPassword); err != nil {
			return nil, fmt.Errorf("admin account: %w", err)
		}
	}

	// 5. Grain-call policy.
	calls := call.DefaultPolicy()
	calls.TimeoutFunc = live.GrainCallTimeout
	calls.Observe = metrics.ObserveGrainCall

	// 6. Cluster members hosting the grains, on the in-memory membership agent.
	deps := cluster.Deps{
		Inventory: inventory.Deps{Store: s.Store, ReservationTTL: live.ReservationTTL,
			Now: time.Now, StoreTimeout: storeTimeout, GroupCommit: cfg.GroupCommit, OnLevel: stock.Publish, Logger: log},
		Cart: cart.Deps{Store: s.Store, Catalog: cartCatalog{s.Catalog},
			MaxLineQuantity: live.MaxLineQuantity, Currency: catalog.Currency,
			Calls: calls, StoreTimeout: storeTimeout, Logger: log},
		Order: order.Deps{Store: s.Store, Calls: calls, Now: time.Now, StoreTimeout: storeTimeout, Logger: log,
			Placed: metrics.ObserveOrder},
	}
	agent := cluster.NewInMemoryAgent()
	for i := 0; i < max(opts.Members, 1); i++ {
		m, err := cluster.StartMember(cluster.Config{
			Host: cfg.ClusterHost, Port: portFor(cfg.ClusterPort, i), Provider: cluster.NewInMemoryProvider(agent),
			IdleTimeout: cfg.Shop.GrainIdleTimeout, RequestTimeout: cfg.Shop.GrainCallTimeout, Logger: log,
		}, deps)
		if err != nil {
			return nil, err
		}
		s.Members = append(s.Members, m)
	}
	c := s.Members[0].Cluster

	// 7. Initial stock, through the inventory grains so that snapshots and levels agree.
	if err := s.seedStock(ctx, c, calls); err != nil {
		return nil, fmt.Errorf("seed stock: %w", err)
	}

	// 8. Orders whose saga a crash interrupted: wake them so they finish.
	go s.resumeUnfinished(c, calls)

	// 9. The edge.
	s.App = edge.New(edge.Deps{
		Accounts: s.Accounts, Catalog: s.Catalog, Orders: s.Store, Cluster: c, Calls: calls,
		Ready:             s.ready,
		MaxLineQuantity:   live.MaxLineQuantity,
		LowStockThreshold: live.LowStockThreshold,
		MaintenanceMode:   live.MaintenanceMode,
		RequestTimeout:    cfg.RequestTimeout, BodyLimit: cfg.BodyLimit,
		Registry: registry, Metrics: metrics, Logger: log,
	})
	return s, nil
}

func portFor(base, i int) int {
	if base == 0 {
		return 0
	}
	return base + i
}

// seedRequestID marks the receipt of a variant's initial stock.
const seedRequestID = "seed:initial-stock"

func (s *Shop) seedStock(ctx context.Context, c *pcluster.Cluster, calls call.Policy) error {
	variants, err := s.Store.UnstockedVariants(ctx)
	if err != nil {
		return err
	}
	for _, v := range variants {
		client := inventorypb.GetInventoryGrainClient(c, v.SKU)
		if _, err := call.Do(ctx, calls, "inventory", "Receive", func(o ...pcluster.GrainCallOption) (*inventorypb.StockLevel, error) {
			return client.Receive(&inventorypb.ReceiveRequest{RequestId: seedRequestID, Quantity: v.InitialStock}, o...)
		}); err != nil {
			return fmt.Errorf("%s: %w", v.SKU, err)
		}
	}
	if len(variants) > 0 {
		s.log.Info("initial stock received", "skus", len(variants))
	}
	return nil
}

func (s *Shop) resumeUnfinished(c *pcluster.Cluster, calls call.Policy) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ids, err := s.Store.UnfinishedOrders(ctx)
	if err != nil {
		s.log.Error("listing unfinished orders failed", "err", err)
		return
	}
	for _, id := range ids {
		client := orderpb.GetOrderGrainClient(c, id)
		_, err := call.Do(ctx, calls, "order", "Get", func(o ...pcluster.GrainCallOption) (*orderpb.OrderView, error) {
			return client.Get(&orderpb.GetOrderRequest{}, o...)
		})
		s.log.Info("resumed unfinished order", "order", id, "err", err)
	}
}

func (s *Shop) ready(ctx context.Context) []string {
	var failing []string
	if err := s.Store.Ping(ctx); err != nil {
		failing = append(failing, "store")
	}
	if len(s.Members) == 0 {
		failing = append(failing, "cluster")
	}
	return failing
}

// Close stops the shop in reverse order of start: drain the edge, leave the cluster,
// close the store.
func (s *Shop) Close(ctx context.Context) error {
	var errs []error
	if s.App != nil {
		errs = append(errs, s.App.ShutdownWithContext(ctx))
	}
	errs = append(errs, s.closeParts())
	return errors.Join(errs...)
}

func (s *Shop) closeParts() error {
	// protoactor's graceful leave waits for ownership hand-over; members leave together.
	var wg sync.WaitGroup
	for _, m := range s.Members {
		wg.Add(1)
		go func() { defer wg.Done(); m.Stop() }()
	}
	wg.Wait()
	s.Members = nil
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	if s.Store != nil {
		errs = append(errs, s.Store.Close())
		s.Store = nil
	}
	return errors.Join(errs...)
}

// cartCatalog adapts the catalog to the cart grain's Catalog port.
type cartCatalog struct{ catalog *catalog.Service }

func (a cartCatalog) Variants(ctx context.Context, skus []string) (map[string]cart.Variant, error) {
	vs, err := a.catalog.Variants(ctx, skus)
	if err != nil {
		return nil, err
	}
	out := make(map[string]cart.Variant, len(vs))
	for sku, v := range vs {
		out[sku] = cart.Variant{SKU: sku, PhoneID: v.PhoneID, Name: v.DisplayName(), PriceCents: v.PriceCents}
	}
	return out, nil
}
