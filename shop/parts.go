package shop

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/hashicorp/consul/api"

	"phoneshop/account"
	"phoneshop/actors/cart"
	"phoneshop/actors/inventory"
	"phoneshop/actors/order"
	"phoneshop/actors/promo"
	"phoneshop/catalog"
	"phoneshop/cluster/member"
	"phoneshop/config"
	"phoneshop/config/consulkv"
	"phoneshop/edge"
	"phoneshop/persistence/cache"
	"phoneshop/persistence/mysql"
	"phoneshop/persistence/ratelimit"
	"phoneshop/persistence/redis"
	"phoneshop/persistence/sqlite"
	"phoneshop/persistence/sqlstore"
)

// shared says how a role opens the parts that dev, nodes and edges share.
type shared struct {
	dataDir    string // SQLite's folder, when stores name no MySQL
	stores     config.Stores
	settings   config.Settings
	consulAddr string // Consul KV overlays the live settings ("": none)
	// hostsGrains: the role hosts grains, so it seeds the catalog (and commits the
	// grains' writes in groups when groupCommit); otherwise it waits for the
	// catalog a node seeds.
	hostsGrains, groupCommit bool
}

// openShared opens, in order, the store, the catalog seed (or the wait for it), the
// live settings, the grain-call policy, the hot reads, the catalog and the live
// campaigns.
func (s *Shop) openShared(ctx context.Context, o shared) (*hotReads, error) {
	if err := s.openStore(ctx, o.dataDir, o.stores, o.hostsGrains && o.groupCommit); err != nil {
		return nil, err
	}
	phones, err := catalog.Seed()
	if err != nil {
		return nil, err
	}
	skus := skusOf(phones)
	if o.hostsGrains {
		err = s.seedCatalog(ctx, phones)
	} else {
		err = s.waitForCatalog(ctx, skus)
	}
	if err != nil {
		return nil, err
	}
	if err := s.followLive(o.settings, o.consulAddr); err != nil {
		return nil, err
	}
	s.useGrainCalls()
	hot, err := s.openHotReads(ctx, o.stores)
	if err != nil {
		return nil, err
	}
	if err := s.openCatalog(ctx, hot, skus); err != nil {
		return nil, err
	}
	if err := s.openCampaigns(ctx); err != nil {
		return nil, err
	}
	return hot, nil
}

// openStore opens the store: MySQL/MariaDB when a DSN is set (migrated, or checked
// to be when phoneshop migrate does that), else SQLite in dataDir, migrated. groupCommit batches the grains' durable writes (a role that
// hosts grains, when configured).
func (s *Shop) openStore(ctx context.Context, dataDir string, stores config.Stores, groupCommit bool) error {
	var err error
	switch {
	case stores.MySQLDSN != "" && stores.MySQLMigrate:
		s.Store, err = mysql.Open(ctx, stores.MySQLDSN)
	case stores.MySQLDSN != "":
		s.Store, err = mysql.OpenMigrated(ctx, stores.MySQLDSN)
	default:
		s.Store, err = sqlite.Open(ctx, filepath.Join(dataDir, "phoneshop.db"))
	}
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	if groupCommit {
		committers := stores.GroupCommitters
		if s.Store.SingleWriter() {
			committers = 1
		}
		s.Store.EnableGroupCommit(sqlstore.GroupCommit{MaxWrites: stores.GroupCommitMaxWrites, MaxWait: stores.GroupCommitMaxWait,
			Committers: committers, Timeout: storeTimeout, Observe: sqlstore.NewBatchMetrics(s.Registry).Observe})
	}
	return nil
}

// seedCatalog writes the embedded catalog on the store's first start (dev, nodes).
func (s *Shop) seedCatalog(ctx context.Context, phones []catalog.Phone) error {
	seeded, err := s.Store.SeedCatalog(ctx, phones)
	if err != nil {
		return fmt.Errorf("seed catalog: %w", err)
	}
	if seeded {
		s.log.Info("catalog seeded", "phones", len(phones))
	}
	return nil
}

// catalogPoll is how often an edge looks for the catalog the nodes seed.
const catalogPoll = 500 * time.Millisecond

// waitForCatalog returns once the store holds the catalog (an edge: the nodes
// seed it, and an edge may start before the first node has).
func (s *Shop) waitForCatalog(ctx context.Context, skus []string) error {
	for logged := false; ; {
		vs, err := s.Store.VariantsBySKU(ctx, skus[:1])
		if err != nil {
			return fmt.Errorf("read catalog: %w", err)
		}
		if len(vs) > 0 {
			return nil
		}
		if !logged {
			s.log.Info("waiting for a node to seed the catalog")
			logged = true
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the catalog: %w", ctx.Err())
		case <-time.After(catalogPoll):
		}
	}
}

// skusOf are the SKUs of phones.
func skusOf(phones []catalog.Phone) []string {
	var skus []string
	for _, p := range phones {
		for _, v := range p.Variants {
			skus = append(skus, v.SKU)
		}
	}
	return skus
}

// followLive makes the process's live settings from shopCfg and, when consulAddr is
// set, keeps them following Consul KV until the shop closes.
func (s *Shop) followLive(shopCfg config.Settings, consulAddr string) error {
	s.Live = config.NewLive(shopCfg)
	if consulAddr == "" {
		return nil
	}
	client, err := api.NewClient(&api.Config{Address: consulAddr})
	if err != nil {
		return fmt.Errorf("consul: %w", err)
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	w := &consulkv.Watcher{KV: client.KV(), Defaults: shopCfg, Live: s.Live, Logger: s.log}
	done := make(chan struct{})
	go func() { defer close(done); w.Run(watchCtx) }()
	s.closers = append(s.closers, func() error { stopWatch(); <-done; return nil })
	return nil
}

// hotReads is the cache in front of the store's hot reads: Redis when configured
// (shared by every process of the shop), else in process.
type hotReads struct {
	cache   cache.Cache
	catalog *cache.Catalog
	// bus tells every process of an invalidation at once (Redis pub/sub).
	bus     cache.Bus
	metrics *cache.Metrics
	redis   *redis.Cache // nil: no Redis
	// sessions is the authentication cache (roles with accounts; nil otherwise).
	sessions *cache.Sessions
}

// degraded says whether hot reads go to the store because Redis is unreachable.
func (h *hotReads) degraded() bool { return h.redis != nil && h.redis.Degraded() }

// openHotReads puts the cache in front of the catalog.
func (s *Shop) openHotReads(ctx context.Context, stores config.Stores) (*hotReads, error) {
	h := &hotReads{metrics: cache.NewMetrics(s.Registry), bus: cache.NewLocalBus()}
	if stores.RedisAddr != "" {
		tlsConfig, err := redisTLS(stores)
		if err != nil {
			return nil, err
		}
		h.redis = redis.Open(stores.RedisAddr, stores.RedisPrefix, redis.Options{Metrics: h.metrics, Log: s.log,
			Username: stores.RedisUser, Password: stores.RedisPassword, TLS: tlsConfig,
			// Nothing cached before or during an outage is served after it.
			OnRecover: func(ctx context.Context) {
				_ = h.catalog.Invalidate(ctx)
				if h.sessions != nil {
					_ = h.sessions.Invalidate(ctx)
				}
			}})
		s.closers = append(s.closers, h.redis.Close)
		h.cache, h.bus = h.redis, h.redis.Bus()
	} else {
		h.cache = cache.NewMemory(0)
	}
	h.catalog = cache.NewCatalog(s.Store, h.cache, cache.CatalogOptions{Metrics: h.metrics, Log: s.log, Bus: h.bus})
	return h, nil
}

// openCatalog is the catalog service over the cached catalog, with every variant
// of the seed loaded (the prices campaigns apply to).
func (s *Shop) openCatalog(ctx context.Context, hot *hotReads, skus []string) error {
	s.Catalog = catalog.NewService(hot.catalog)
	if err := s.Catalog.LoadVariants(ctx, skus); err != nil {
		return fmt.Errorf("load catalog variants: %w", err)
	}
	return nil
}

// campaignRefresh is how often every process reads the live campaigns: a launch,
// pause, end or exhausted cap shows in prices on every edge within it (the issue
// asks for 2 s). Campaigns also end on the clock between refreshes.
const campaignRefresh = time.Second

// openCampaigns reads the live campaigns (what prices the catalog and carts), and
// reads them again every campaignRefresh until the shop closes.
func (s *Shop) openCampaigns(ctx context.Context) error {
	s.campaigns = promo.NewBoard()
	if err := s.campaigns.Refresh(ctx, s.Store, time.Now(), s.log); err != nil {
		return fmt.Errorf("load live campaigns: %w", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.campaigns.Run(runCtx, s.Store, campaignRefresh, time.Now, s.log)
	}()
	s.closers = append(s.closers, func() error { stop(); <-done; return nil })
	return nil
}

// devSecret reads the secret kept at path, or makes one (random, 0600) on first
// start: dev signs its unsubscribe links with it across restarts.
func devSecret(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("unsubscribe secret: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	secret := hex.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("unsubscribe secret: %w", err)
	}
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("unsubscribe secret: %w", err)
	}
	return secret, nil
}

// openAccounts starts the account service over the session cache, purges expired
// sessions until the shop closes, and creates the first admin.
func (s *Shop) openAccounts(ctx context.Context, hot *hotReads, cfg config.Accounts) error {
	var err error
	if s.Unsubscribe, err = account.NewUnsubscribeTokens(cfg.UnsubscribeSecret); err != nil {
		return err
	}
	if s.Verification, err = account.NewVerificationTokens(cfg.UnsubscribeSecret, account.DefaultVerificationTTL); err != nil {
		return err
	}
	s.resendVerificationAfter = cfg.VerificationResendAfter
	hot.sessions = cache.NewSessions(s.Store, hot.cache, cache.SessionsOptions{Metrics: hot.metrics, Log: s.log, Bus: hot.bus})
	hp := account.HashParams{MemoryKiB: cfg.PasswordMemoryKiB, Iterations: cfg.PasswordIterations, Parallelism: cfg.PasswordParallelism}
	hashing := account.Hashing{Workers: cfg.PasswordHashers, Queue: cfg.PasswordQueue, MaxWait: cfg.PasswordMaxWait}
	if s.Accounts, err = account.NewService(hot.sessions, hp, hashing, cfg.SessionTTL, time.Now); err != nil {
		return err
	}
	purgeCtx, stopPurge := context.WithCancel(context.Background())
	purged := make(chan struct{})
	go func() {
		defer close(purged)
		account.PurgeExpiredSessions(purgeCtx, s.Store, sessionPurgeInterval, time.Now, s.log)
	}()
	s.closers = append(s.closers, func() error { stopPurge(); <-purged; return nil })
	if cfg.AdminEmail != "" {
		if err := s.Accounts.EnsureAdmin(ctx, cfg.AdminEmail, cfg.AdminPassword); err != nil {
			return fmt.Errorf("admin account: %w", err)
		}
	}
	return nil
}

// grainDeps are the dependencies of the grains a member hosts. Inventory grains
// publish every committed level; a change of stock state (in stock, low, out)
// invalidates the cached catalog.
func (s *Shop) grainDeps(hot *hotReads, groupCommit bool) member.Deps {
	live := s.Live
	stock := cache.NewStockPublisher(live.LowStockThreshold,
		func(ctx context.Context) { _ = hot.catalog.Invalidate(ctx) }, s.log, cache.WithPublisherMetrics(hot.metrics))
	s.closers = append(s.closers, func() error { stock.Close(); return nil })
	orders := order.NewMetrics(s.Registry)
	return member.Deps{
		Inventory: inventory.Deps{Store: s.Store, ReservationTTL: live.ReservationTTL,
			Now: time.Now, StoreTimeout: storeTimeout, Calls: s.calls, GroupCommit: groupCommit, OnLevel: stock.Publish, Logger: s.log},
		Cart: cart.Deps{Store: s.Store, Catalog: cartCatalog{s.Catalog},
			MaxLineQuantity: live.MaxLineQuantity, Currency: catalog.Currency,
			Calls: s.calls, StoreTimeout: storeTimeout, Campaigns: s.campaigns.Live, Now: time.Now, Logger: s.log,
			BornInSale: true, Placed: orders.Placed, Rounds: orders.Rounds},
		Order: order.Deps{Store: s.Store, Calls: s.calls, Now: time.Now, StoreTimeout: storeTimeout, Logger: s.log,
			Placed: orders.Placed, Parked: orders.Parked, Rounds: orders.Rounds},
		Promo: promo.Deps{Store: s.Store, Now: time.Now, StoreTimeout: storeTimeout, Calls: s.calls,
			GroupCommit: groupCommit, Logger: s.log},
	}
}

// startEdge builds the HTTP edge calling grains through c, whose members are
// members(). serveMetrics puts /metrics on the API's port (dev only: nodes and
// edges serve it on the health listener, which the load balancer does not expose).
// mailQueues are what the ops view counts and redrives (nil: none here).
func (s *Shop) startEdge(hot *hotReads, c *cluster.Cluster, members func() []*cluster.Member, cfg config.HTTP, serveMetrics bool, mailQueues edge.MailQueues) error {
	limits, err := s.limits(hot, cfg)
	if err != nil {
		return err
	}
	views := func(local string, capacity int) *cache.Views {
		return cache.NewViews(hot.catalog, local, capacity, hot.metrics)
	}
	s.App = edge.New(edge.Deps{
		Accounts: s.Accounts, Unsubscribe: s.Unsubscribe, Verification: s.Verification,
		ResendVerificationAfter: s.resendVerificationAfter, Catalog: s.Catalog, Orders: s.Store, Promos: s.Store, Campaigns: s.campaigns,
		MailQueues: mailQueues, Outbox: s.Store,
		PhoneViews: views(cache.LocalPhones, cache.DefaultPhoneViews), PageViews: views(cache.LocalPages, cache.DefaultPageViews),
		Cluster: c, Members: members, Calls: s.calls,
		Ready:             s.ready,
		MaxLineQuantity:   s.Live.MaxLineQuantity,
		LowStockThreshold: s.Live.LowStockThreshold,
		MaintenanceMode:   s.Live.MaintenanceMode,
		RequestTimeout:    cfg.RequestTimeout, BodyLimit: cfg.BodyLimit,
		Limits: limits, ServeMetrics: serveMetrics, Registry: s.Registry,
		Metrics: edge.NewMetrics(s.Registry), GrainCalls: s.grainCalls, CacheDegraded: hot.degraded,
		Logger: s.log,
	})
	return nil
}

// limits are the edge's rate limits and login lock-outs, counted in Redis when the
// shop has one (every edge sees the same counts), else in process memory; their
// settings are live.
func (s *Shop) limits(hot *hotReads, cfg config.HTTP) (edge.Limits, error) {
	var l edge.Limits
	var err error
	if l.TrustedProxies, err = cfg.TrustedProxyPrefixes(); err != nil {
		return l, err
	}
	var rates ratelimit.Shared
	var counters ratelimit.Counters
	if hot.redis != nil {
		rates, counters = hot.redis.RateStore(), hot.redis.Counters()
	}
	live := s.Live
	quota := func(perMin, burst string) func() ratelimit.Quota {
		return func() ratelimit.Quota { return ratelimit.Quota{PerMinute: live.Rate(perMin), Burst: live.Rate(burst)} }
	}
	one := func(perMin string) func() ratelimit.Quota {
		return func() ratelimit.Quota { return ratelimit.Quota{PerMinute: live.Rate(perMin), Burst: 1} }
	}
	var loginAccount *ratelimit.Limiter
	for _, r := range []struct {
		name  string
		quota func() ratelimit.Quota
		// local counts in this process only: a check on every logged-in request
		// must not cost a round trip to Redis.
		local bool
		into  *edge.RateLimiter
		typed **ratelimit.Limiter
	}{
		{name: "register", quota: quota(config.KeyRateRegisterPerMin, config.KeyRateRegisterBurst), into: &l.Register},
		{name: "login", quota: quota(config.KeyRateLoginPerMin, config.KeyRateLoginBurst), into: &l.Login},
		{name: "checkout", quota: quota(config.KeyRateCheckoutPerMin, config.KeyRateCheckoutBurst), into: &l.Checkout},
		{name: "account", quota: quota(config.KeyRateAccountPerMin, config.KeyRateAccountBurst), local: true, into: &l.Account},
		{name: "preferences", quota: quota(config.KeyRatePreferencesPerMin, config.KeyRatePreferencesBurst), into: &l.Preferences},
		{name: "unsubscribe", quota: quota(config.KeyRateUnsubscribePerMin, config.KeyRateUnsubscribeBurst), into: &l.Unsubscribe},
		{name: "login-account", quota: one(config.KeyRateLoginAccountPerMin), typed: &loginAccount},
	} {
		shared := rates
		if r.local {
			shared = nil
		}
		lim, err := ratelimit.NewLimiter(r.name, r.quota, shared, s.log)
		if err != nil {
			return l, fmt.Errorf("rate limit %s: %w", r.name, err)
		}
		if r.into != nil {
			*r.into = lim
		}
		if r.typed != nil {
			*r.typed = lim
		}
	}
	l.Lockouts = ratelimit.NewLockouts(func() ratelimit.LockoutPolicy {
		failures, first, last := live.LoginLockout()
		return ratelimit.LockoutPolicy{Failures: failures, First: first, Max: last, AccountFailures: live.LoginAccountFailures()}
	}, counters, loginAccount, s.log)
	l.IPv6Prefix = cfg.ClientIPv6Prefix
	return l, nil
}

// redisTLS is the TLS configuration of the Redis connection (nil: plain TCP).
func redisTLS(stores config.Stores) (*tls.Config, error) {
	if !stores.RedisTLS {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if stores.RedisTLSCAFile != "" {
		pem, err := os.ReadFile(stores.RedisTLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("redis TLS CA: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redis TLS CA %s: no certificate in it", stores.RedisTLSCAFile)
		}
	}
	return cfg, nil
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
		out[sku] = cart.Variant{SKU: sku, PhoneID: v.PhoneID, Name: v.DisplayName(), Brand: v.Brand, PriceCents: v.PriceCents}
	}
	return out, nil
}
