// Package shop assembles a running shop from its parts: the store, the catalog seed,
// accounts, cluster members hosting the grains, and the HTTP edge. cmd/phoneshop
// runs it; tests start it on a temporary directory.
package shop

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/gofiber/fiber/v2"
	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"

	"phoneshop/account"
	"phoneshop/actors/cart"
	"phoneshop/actors/inventory"
	"phoneshop/actors/order"
	"phoneshop/actors/promo"
	"phoneshop/catalog"
	"phoneshop/cluster/consul"
	"phoneshop/cluster/member"
	"phoneshop/config"
	"phoneshop/config/consulkv"
	"phoneshop/edge"
	"phoneshop/grain/call"
	"phoneshop/notify/mail"
	"phoneshop/notify/mailer"
	"phoneshop/notify/memqueue"
	"phoneshop/notify/queue"
	"phoneshop/notify/rabbitmq"
	"phoneshop/notify/relay"
	"phoneshop/persistence/cache"
	"phoneshop/persistence/mysql"
	"phoneshop/persistence/ratelimit"
	"phoneshop/persistence/redis"
	"phoneshop/persistence/sqlite"
	"phoneshop/persistence/sqlstore"
	"phoneshop/protos/inventorypb"
	"phoneshop/protos/orderpb"
	"phoneshop/protos/promopb"
)

// sessionPurgeInterval is how often an edge deletes expired sessions (every edge
// does; the delete is idempotent).
const sessionPurgeInterval = 10 * time.Minute

// storeTimeout bounds one store operation of a grain.
const storeTimeout = 5 * time.Second

// Shop is a running shop.
type Shop struct {
	App     *fiber.App
	Store   *sqlstore.Store
	Members []*member.Member
	// Client is the edge's way into the cluster when it hosts no member.
	Client   *member.Client
	Accounts *account.Service
	// Unsubscribe mints and reads the tokens of unsubscribe links (edges, dev).
	Unsubscribe *account.UnsubscribeTokens
	Catalog     *catalog.Service
	// Live are the settings that can change while the shop runs.
	Live *config.Live
	// Registry holds the shop's metrics (served by /metrics).
	Registry *prometheus.Registry
	log      *slog.Logger
	// mailerOnly: a mailer, which is ready when its store is (it is no member).
	mailerOnly bool
	// closers close what was opened beside the store (cache, publisher), in reverse.
	closers []func() error
}

// Options are what the process decides beyond configuration.
type Options struct {
	// Members is how many cluster members to start in this process (dev: 1; tests
	// use several to exercise placement across members).
	Members int
}

// StartDev starts every role in one process, on the embedded defaults unless
// stores are configured: members on the in-memory membership agent, and the edge.
func StartDev(ctx context.Context, cfg config.Dev, opts Options, log *slog.Logger) (_ *Shop, err error) {
	s := &Shop{log: log}
	defer func() {
		if err != nil {
			s.closeParts()
		}
	}()
	b, err := s.openBase(ctx, cfg.DataDir, cfg.Shop, cfg.Stores, cfg.ConsulAddr)
	if err != nil {
		return nil, err
	}
	if cfg.Accounts.UnsubscribeSecret == "" {
		if cfg.Accounts.UnsubscribeSecret, err = devSecret(filepath.Join(cfg.DataDir, "unsubscribe.secret")); err != nil {
			return nil, err
		}
	}
	if err := s.openAccounts(ctx, b, cfg.Accounts); err != nil {
		return nil, err
	}
	agent := member.NewInMemoryAgent()
	for i := 0; i < max(opts.Members, 1); i++ {
		var onJoin func(context.Context, *cluster.Cluster)
		if i == 0 { // one member wakes the orders a crash interrupted
			onJoin = func(ctx context.Context, c *cluster.Cluster) {
				var wg sync.WaitGroup
				defer wg.Wait()
				wg.Go(func() { s.settleDuePromos(ctx, c, b.calls) })
				s.resumeUnfinished(ctx, c, b.calls)
			}
		}
		m, err := member.StartMember(member.Config{
			Host: cfg.ClusterHost, Port: portFor(cfg.ClusterPort, i), NewProvider: member.NewInMemoryProvider(agent),
			IdleTimeout: cfg.Shop.GrainIdleTimeout, RequestTimeout: cfg.Shop.GrainCallTimeout, Logger: log,
			OnJoin: onJoin,
		}, s.grainDeps(b, cfg.GroupCommit))
		if err != nil {
			return nil, err
		}
		s.Members = append(s.Members, m)
	}
	c := s.Members[0].Cluster()
	// The edge serves from the start: the initial stock is received first.
	if err := s.seedStock(ctx, c, b.calls); err != nil {
		return nil, fmt.Errorf("seed stock: %w", err)
	}
	if err := s.startEdge(b, c, cfg.HTTP, true); err != nil {
		return nil, err
	}
	if cfg.DevMail {
		s.startDevMail(b, cfg)
	}
	return s, nil
}

// devMailPrefetch is how many mails of one queue dev handles at once.
const devMailPrefetch = 4

// startDevMail runs dev's mail pipeline in the process: the outbox relay publishes
// to the in-process queue, and the mailer writes every mail as a .eml file under
// <data-dir>/mail/ (named by its Message-ID).
func (s *Shop) startDevMail(b *base, cfg config.Dev) {
	// A few mails at a time: dev shares its cores with the shop it serves, and the
	// mail of a sale must not take them from its checkouts.
	broker := memqueue.New(memqueue.Config{Prefetch: devMailPrefetch, Logger: s.log})
	broker.Declare(queue.MailBindings...)
	files := mail.NewFiles(filepath.Join(cfg.DataDir, "mail")).Unsynced()
	m := mailer.New(s.Store, files, mailer.Config{From: cfg.MailFrom, PublicURL: cfg.PublicURL,
		Unsubscribe: b.unsubscribe, SendPerSec: s.Live.MailSendPerSec, Logger: s.log})
	r := relay.New(s.Store, broker, relay.Config{Logger: s.log})
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(ctx) })
	wg.Go(func() { broker.Run(ctx, queue.MailBindings, m.Handle) })
	s.closers = append(s.closers, func() error { stop(); wg.Wait(); return nil })
}

// StartNode starts a cluster member hosting the grains; members find each other
// through Consul, and Consul KV overlays the live settings.
func StartNode(ctx context.Context, cfg config.Node, log *slog.Logger) (_ *Shop, err error) {
	s := &Shop{log: log}
	defer func() {
		if err != nil {
			s.closeParts()
		}
	}()
	b, err := s.openBase(ctx, "", cfg.Shop, cfg.Stores, cfg.ConsulAddr)
	if err != nil {
		return nil, err
	}
	// Nodes start together and may find a peer not answering yet: each seeds the
	// initial stock in the background until it is done (the receipts are
	// idempotent), and after every join wakes the orders a crash interrupted.
	m, err := member.StartMember(member.Config{
		Host: cfg.ClusterHost, Port: cfg.ClusterPort, Rejoin: true,
		NewProvider: func() (cluster.ClusterProvider, error) { return consulProvider(cfg.Consul, log) },
		IdleTimeout: cfg.Shop.GrainIdleTimeout, RequestTimeout: cfg.Shop.GrainCallTimeout, Logger: log,
		OnJoin: func(ctx context.Context, c *cluster.Cluster) {
			var wg sync.WaitGroup
			defer wg.Wait()
			wg.Go(func() { s.settleDuePromos(ctx, c, b.calls) })
			s.seedStockUntilDone(ctx, c, b.calls)
			s.resumeUnfinished(ctx, c, b.calls)
			s.resumeWhenMembersLeave(ctx, c, b.calls)
		},
	}, s.grainDeps(b, cfg.GroupCommit))
	if err != nil {
		return nil, err
	}
	s.Members = append(s.Members, m)
	s.startRelay(rabbitmq.NewPublisher(rabbitmq.Config{URL: cfg.RabbitMQURL, Logger: log}))
	return s, nil
}

// startRelay publishes the outbox through pub until the shop closes. Every node
// runs one; they share the outbox by leases.
func (s *Shop) startRelay(pub *rabbitmq.Publisher) {
	r := relay.New(s.Store, pub, relay.Config{Logger: s.log})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	s.closers = append(s.closers, func() error { stop(); <-done; return pub.Close() })
}

// StartMailer starts a mailer: it consumes the mail queues of RabbitMQ (campaign
// activations to fan out, campaign mail, order mail) and sends through SMTP.
func StartMailer(ctx context.Context, cfg config.Mailer, log *slog.Logger) (_ *Shop, err error) {
	s := &Shop{log: log, mailerOnly: true, Registry: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			s.closeParts()
		}
	}()
	if s.Store, err = mysql.Open(ctx, cfg.MySQLDSN); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	tokens, err := account.NewUnsubscribeTokens(cfg.UnsubscribeSecret)
	if err != nil {
		return nil, err
	}
	sender := mail.NewSMTP(mail.SMTPConfig{Host: cfg.SMTPHost, Port: cfg.SMTPPort, Username: cfg.SMTPUser,
		Password: cfg.SMTPPassword, TLSPolicy: cfg.SMTPTLSPolicy, Timeout: cfg.SMTPTimeout})
	live, err := s.followLive(cfg.Shop, cfg.ConsulAddr)
	if err != nil {
		return nil, err
	}
	m := mailer.New(s.Store, sender, mailer.Config{From: cfg.MailFrom, PublicURL: cfg.PublicURL, Unsubscribe: tokens,
		SendPerSec: live.MailSendPerSec, Logger: log})
	consumer := rabbitmq.NewConsumer(rabbitmq.ConsumerConfig{URL: cfg.RabbitMQURL, Bindings: queue.MailBindings,
		Prefetch: cfg.MailPrefetch, DeliveryLimit: cfg.MailDeliveryLimit, Logger: log})
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- consumer.Run(runCtx, m.Handle) }()
	s.closers = append(s.closers, func() error {
		stop()
		err := <-done
		return errors.Join(err, sender.Close())
	})
	return s, nil
}

// StartEdge starts the HTTP edge as a cluster client that hosts no grain.
func StartEdge(ctx context.Context, cfg config.Edge, log *slog.Logger) (_ *Shop, err error) {
	s := &Shop{log: log}
	defer func() {
		if err != nil {
			s.closeParts()
		}
	}()
	b, err := s.openBase(ctx, "", cfg.Shop, cfg.Stores, cfg.ConsulAddr)
	if err != nil {
		return nil, err
	}
	if err := s.openAccounts(ctx, b, cfg.Accounts); err != nil {
		return nil, err
	}
	newProvider := func() (cluster.ClusterProvider, error) { return consulProvider(cfg.Consul, log) }
	if s.Client, err = member.StartClient(member.Config{Host: cfg.ClusterHost, Port: cfg.ClusterPort, NewProvider: newProvider,
		RequestTimeout: cfg.Shop.GrainCallTimeout, Logger: log}); err != nil {
		return nil, err
	}
	if err := s.startEdge(b, s.Client.Cluster, cfg.HTTP, false); err != nil {
		return nil, err
	}
	return s, nil
}

// consulProvider is the membership of a node or an edge.
func consulProvider(cfg config.Consul, log *slog.Logger) (*consul.Provider, error) {
	return consul.New(consul.Config{Address: cfg.ConsulAddr, TTL: cfg.ConsulTTL, DeregisterAfter: cfg.ConsulDeregisterAfter,
		WaitTime: cfg.ConsulWait, CallTimeout: cfg.ConsulCallTimeout, Logger: log})
}

// base is what every role opens before its own parts.
type base struct {
	registry *prometheus.Registry
	metrics  *edge.Metrics
	calls    call.Policy
	sessions *cache.Sessions
	stock    *cache.StockPublisher
	redis    *redis.Cache // nil: no Redis
	// phoneViews and pageViews hold the edge's rendered catalog in process.
	phoneViews, pageViews *cache.Views
	// campaigns is this process's view of the live campaigns (what prices).
	campaigns *promo.Board
	// unsubscribe reads the tokens of unsubscribe links (edges).
	unsubscribe *account.UnsubscribeTokens
}

// campaignRefresh is how often every process reads the live campaigns: a launch,
// pause, end or exhausted cap shows in prices on every edge within it (the issue
// asks for 2 s). Campaigns also end on the clock between refreshes.
const campaignRefresh = time.Second

// openBase opens the store (MySQL/MariaDB when a DSN is set, else SQLite in
// dataDir; migrated, group commit on), seeds the catalog on first start, follows
// Consul KV when consulAddr is set, and puts the hot-read cache (Redis, else
// in-process) in front of the catalog and the session lookups.
func (s *Shop) openBase(ctx context.Context, dataDir string, shopCfg config.Shop, stores config.Stores, consulAddr string) (*base, error) {
	b := &base{registry: prometheus.NewRegistry()}
	s.Registry = b.registry
	b.metrics = edge.NewMetrics(b.registry)
	var err error
	if stores.MySQLDSN != "" {
		s.Store, err = mysql.Open(ctx, stores.MySQLDSN)
	} else {
		s.Store, err = sqlite.Open(ctx, filepath.Join(dataDir, "phoneshop.db"))
	}
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if stores.GroupCommit {
		committers := stores.GroupCommitters
		if s.Store.SingleWriter() {
			committers = 1
		}
		s.Store.EnableGroupCommit(sqlstore.GroupCommit{MaxWrites: stores.GroupCommitMaxWrites, MaxWait: stores.GroupCommitMaxWait,
			Committers: committers, Timeout: storeTimeout, Observe: func(r sqlstore.Batch) {
				b.metrics.ObserveBatch(r.Writes, r.Elapsed, r.Split, r.Err)
			}})
	}

	phones, err := catalog.Seed()
	if err != nil {
		return nil, err
	}
	if seeded, err := s.Store.SeedCatalog(ctx, phones); err != nil {
		return nil, fmt.Errorf("seed catalog: %w", err)
	} else if seeded {
		s.log.Info("catalog seeded", "phones", len(phones))
	}

	live, err := s.followLive(shopCfg, consulAddr)
	if err != nil {
		return nil, err
	}

	cacheMetrics := cache.NewMetrics(b.registry)
	var hot cache.Cache
	var catalogCache *cache.Catalog
	// The bus tells every process of an invalidation at once (Redis pub/sub).
	var bus cache.Bus = cache.NewLocalBus()
	if stores.RedisAddr != "" {
		tlsConfig, err := redisTLS(stores)
		if err != nil {
			return nil, err
		}
		rc := redis.Open(stores.RedisAddr, stores.RedisPrefix, redis.Options{Metrics: cacheMetrics, Log: s.log,
			Username: stores.RedisUser, Password: stores.RedisPassword, TLS: tlsConfig,
			// Nothing cached before or during an outage is served after it.
			OnRecover: func(ctx context.Context) {
				_ = catalogCache.Invalidate(ctx)
				_ = b.sessions.Invalidate(ctx)
			}})
		s.closers = append(s.closers, rc.Close)
		hot = rc
		b.redis = rc
		bus = rc.Bus()
	} else {
		hot = cache.NewMemory(0)
	}
	catalogCache = cache.NewCatalog(s.Store, hot, cache.CatalogOptions{Metrics: cacheMetrics, Log: s.log, Bus: bus})
	b.sessions = cache.NewSessions(s.Store, hot, cache.SessionsOptions{Metrics: cacheMetrics, Log: s.log, Bus: bus})
	b.phoneViews = cache.NewViews(catalogCache, cache.LocalPhones, cache.DefaultPhoneViews, cacheMetrics)
	b.pageViews = cache.NewViews(catalogCache, cache.LocalPages, cache.DefaultPageViews, cacheMetrics)
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
	b.stock = cache.NewStockPublisher(live.LowStockThreshold,
		func(ctx context.Context) { _ = catalogCache.Invalidate(ctx) }, s.log, cache.WithPublisherMetrics(cacheMetrics))
	s.closers = append(s.closers, func() error { b.stock.Close(); return nil })

	b.campaigns = promo.NewBoard()
	if err := b.campaigns.Refresh(ctx, s.Store, time.Now(), s.log); err != nil {
		return nil, fmt.Errorf("load live campaigns: %w", err)
	}
	boardCtx, stopBoard := context.WithCancel(context.Background())
	boardDone := make(chan struct{})
	go func() {
		defer close(boardDone)
		b.campaigns.Run(boardCtx, s.Store, campaignRefresh, time.Now, s.log)
	}()
	s.closers = append(s.closers, func() error { stopBoard(); <-boardDone; return nil })

	b.calls = call.DefaultPolicy()
	b.calls.TimeoutFunc = live.GrainCallTimeout
	b.calls.Observe = b.metrics.ObserveGrainCall
	return b, nil
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

// followLive makes the process's live settings from shopCfg and, when consulAddr is
// set, keeps them following Consul KV until the shop closes.
func (s *Shop) followLive(shopCfg config.Shop, consulAddr string) (*config.Live, error) {
	live := config.NewLive(shopCfg)
	s.Live = live
	if consulAddr == "" {
		return live, nil
	}
	client, err := api.NewClient(&api.Config{Address: consulAddr})
	if err != nil {
		return nil, fmt.Errorf("consul: %w", err)
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	w := &consulkv.Watcher{KV: client.KV(), Defaults: shopCfg, Live: live, Logger: s.log}
	done := make(chan struct{})
	go func() { defer close(done); w.Run(watchCtx) }()
	s.closers = append(s.closers, func() error { stopWatch(); <-done; return nil })
	return live, nil
}

// openAccounts starts the account service and creates the first admin.
func (s *Shop) openAccounts(ctx context.Context, b *base, cfg config.Accounts) error {
	var err error
	if b.unsubscribe, err = account.NewUnsubscribeTokens(cfg.UnsubscribeSecret); err != nil {
		return err
	}
	s.Unsubscribe = b.unsubscribe
	hp := account.HashParams{MemoryKiB: cfg.PasswordMemoryKiB, Iterations: cfg.PasswordIterations, Parallelism: cfg.PasswordParallelism}
	hashing := account.Hashing{Workers: cfg.PasswordHashers, Queue: cfg.PasswordQueue, MaxWait: cfg.PasswordMaxWait}
	if s.Accounts, err = account.NewService(b.sessions, hp, hashing, cfg.SessionTTL, time.Now); err != nil {
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

// grainDeps are the dependencies of the grains a member hosts.
func (s *Shop) grainDeps(b *base, groupCommit bool) member.Deps {
	live := s.Live
	return member.Deps{
		Inventory: inventory.Deps{Store: s.Store, ReservationTTL: live.ReservationTTL,
			Now: time.Now, StoreTimeout: storeTimeout, Calls: b.calls, GroupCommit: groupCommit, OnLevel: b.stock.Publish, Logger: s.log},
		Cart: cart.Deps{Store: s.Store, Catalog: cartCatalog{s.Catalog},
			MaxLineQuantity: live.MaxLineQuantity, Currency: catalog.Currency,
			Calls: b.calls, StoreTimeout: storeTimeout, Campaigns: b.campaigns.Live, Now: time.Now, Logger: s.log},
		Order: order.Deps{Store: s.Store, Calls: b.calls, Now: time.Now, StoreTimeout: storeTimeout, Logger: s.log,
			Placed: b.metrics.ObserveOrder},
		Promo: promo.Deps{Store: s.Store, Now: time.Now, StoreTimeout: storeTimeout, Calls: b.calls,
			GroupCommit: groupCommit, Logger: s.log},
	}
}

// startEdge builds the HTTP edge calling grains through c; serveMetrics puts
// /metrics on the API's port (dev only: nodes and edges serve it on the health
// listener, which the load balancer does not expose).
func (s *Shop) startEdge(b *base, c *cluster.Cluster, cfg config.HTTP, serveMetrics bool) error {
	limits, err := s.limits(b, cfg)
	if err != nil {
		return err
	}
	s.App = edge.New(edge.Deps{
		Accounts: s.Accounts, Unsubscribe: b.unsubscribe, Catalog: s.Catalog, Orders: s.Store, Promos: s.Store, Campaigns: b.campaigns,
		PhoneViews: b.phoneViews, PageViews: b.pageViews,
		Cluster: c, Calls: b.calls,
		Ready:             s.ready,
		MaxLineQuantity:   s.Live.MaxLineQuantity,
		LowStockThreshold: s.Live.LowStockThreshold,
		MaintenanceMode:   s.Live.MaintenanceMode,
		RequestTimeout:    cfg.RequestTimeout, BodyLimit: cfg.BodyLimit,
		Limits: limits, ServeMetrics: serveMetrics,
		Registry: b.registry, Metrics: b.metrics, Logger: s.log,
	})
	return nil
}

// limits are the edge's rate limits and login lock-outs, counted in Redis when the
// shop has one (every edge sees the same counts), else in process memory; their
// settings are live.
func (s *Shop) limits(b *base, cfg config.HTTP) (edge.Limits, error) {
	var l edge.Limits
	var err error
	if l.TrustedProxies, err = cfg.TrustedProxyPrefixes(); err != nil {
		return l, err
	}
	var rates ratelimit.Shared
	var counters ratelimit.Counters
	if b.redis != nil {
		rates, counters = b.redis.RateStore(), b.redis.Counters()
	}
	live := s.Live
	for _, r := range []struct {
		name          string
		perMin, burst string
		into          *edge.RateLimiter
	}{
		{"register", config.KeyRateRegisterPerMin, config.KeyRateRegisterBurst, &l.Register},
		{"login", config.KeyRateLoginPerMin, config.KeyRateLoginBurst, &l.Login},
		{"checkout", config.KeyRateCheckoutPerMin, config.KeyRateCheckoutBurst, &l.Checkout},
	} {
		quota := func() ratelimit.Quota {
			return ratelimit.Quota{PerMinute: live.Rate(r.perMin), Burst: live.Rate(r.burst)}
		}
		lim, err := ratelimit.NewLimiter(r.name, quota, rates, s.log)
		if err != nil {
			return l, fmt.Errorf("rate limit %s: %w", r.name, err)
		}
		*r.into = lim
	}
	l.Lockouts = ratelimit.NewLockouts(func() ratelimit.LockoutPolicy {
		failures, first, last := live.LoginLockout()
		return ratelimit.LockoutPolicy{Failures: failures, First: first, Max: last}
	}, counters, s.log)
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

func portFor(base, i int) int {
	if base == 0 {
		return 0
	}
	return base + i
}

// seedRequestID marks the receipt of a variant's initial stock.
const seedRequestID = "seed:initial-stock"

func (s *Shop) seedStock(ctx context.Context, c *cluster.Cluster, calls call.Policy) error {
	variants, err := s.Store.UnstockedVariants(ctx)
	if err != nil {
		return err
	}
	for _, v := range variants {
		client := inventorypb.GetInventoryGrainClient(c, v.SKU)
		cctx, cancel := context.WithTimeout(ctx, calls.CallTimeout())
		receive := &inventorypb.ReceiveRequest{RequestId: seedRequestID, Quantity: v.InitialStock, DeadlineUnixMs: call.Deadline(cctx)}
		_, err := call.Do(cctx, calls, "inventory", "Receive", func(o ...cluster.GrainCallOption) (*inventorypb.StockLevel, error) {
			return client.Receive(receive, o...)
		})
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", v.SKU, err)
		}
	}
	if len(variants) > 0 {
		s.log.Info("initial stock received", "skus", len(variants))
	}
	return nil
}

// seedStockUntilDone retries seedStock until it succeeds or ctx ends.
func (s *Shop) seedStockUntilDone(ctx context.Context, c *cluster.Cluster, calls call.Policy) {
	for backoff := time.Second; ; backoff = min(2*backoff, 30*time.Second) {
		err := s.seedStock(ctx, c, calls)
		if err == nil || ctx.Err() != nil {
			return
		}
		s.log.Warn("receiving the initial stock failed; retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

// resumeUnfinished wakes every order whose saga a crash interrupted. It serves no
// request: each wake-up has a deadline of its own (the grain-call timeout), and
// what one attempt cannot finish the order grain retries on its own timer.
func (s *Shop) resumeUnfinished(ctx context.Context, c *cluster.Cluster, calls call.Policy) {
	lctx, cancel := context.WithTimeout(ctx, storeTimeout)
	ids, err := s.Store.UnfinishedOrders(lctx)
	cancel()
	if err != nil {
		s.log.Error("listing unfinished orders failed", "err", err)
		return
	}
	for _, id := range ids {
		client := orderpb.GetOrderGrainClient(c, id)
		rctx, cancel := context.WithTimeout(ctx, calls.CallTimeout())
		resume := &orderpb.ResumeRequest{DeadlineUnixMs: call.Deadline(rctx)}
		_, err := call.Do(rctx, calls, "order", "Resume", func(o ...cluster.GrainCallOption) (*orderpb.OrderView, error) {
			return client.Resume(resume, o...)
		})
		cancel()
		if err != nil {
			// Woken all the same: the grain goes on retrying on its own timer.
			s.log.Warn("unfinished order woken, not finished yet", "order", id, "err", err)
			continue
		}
		s.log.Info("resumed unfinished order", "order", id)
	}
}

// settleDuePromos wakes, every campaignRefresh until ctx ends, the campaigns whose
// clock decided something no write has recorded: one that started (its activation
// is the event the launch e-mails hang on) or ended while its grain was
// passivated or its member gone. Reads never depend on it (a status follows the
// clock), and a woken grain settles on its own; several members may wake the same
// campaign, which is harmless.
func (s *Shop) settleDuePromos(ctx context.Context, c *cluster.Cluster, calls call.Policy) {
	t := time.NewTicker(campaignRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lctx, cancel := context.WithTimeout(ctx, storeTimeout)
		ids, err := s.Store.DuePromos(lctx, time.Now())
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("listing campaigns due to settle failed; trying again", "err", err)
			}
			continue
		}
		for _, id := range ids {
			client := promopb.GetPromoGrainClient(c, id)
			wctx, cancel := context.WithTimeout(ctx, calls.CallTimeout())
			get := &promopb.GetPromoRequest{DeadlineUnixMs: call.Deadline(wctx)}
			_, err := call.Do(wctx, calls, "promo", "Get", func(o ...cluster.GrainCallOption) (*promopb.PromoView, error) {
				return client.Get(get, o...)
			})
			cancel()
			if err != nil && ctx.Err() == nil {
				s.log.Warn("waking a campaign due to settle failed; trying again", "promo", id, "err", err)
			}
		}
	}
}

// resumeWhenMembersLeave wakes the unfinished orders each time members leave the
// cluster: the sagas a dead member was running would otherwise wait for their
// shopper to come back (their reservations expire meanwhile, so no stock is lost
// either way). It returns when ctx ends (the member's incarnation leaves).
func (s *Shop) resumeWhenMembersLeave(ctx context.Context, c *cluster.Cluster, calls call.Policy) {
	left := make(chan struct{}, 1)
	sub := c.ActorSystem.EventStream.Subscribe(func(ev any) {
		if t, ok := ev.(*cluster.ClusterTopology); ok && len(t.Left) > 0 {
			select {
			case left <- struct{}{}:
			default: // one wake-up pending covers this one
			}
		}
	})
	defer c.ActorSystem.EventStream.Unsubscribe(sub)
	for {
		select {
		case <-ctx.Done():
			return
		case <-left:
			s.resumeUnfinished(ctx, c, calls)
		}
	}
}

// Ready reports the parts that cannot serve now (empty when ready).
func (s *Shop) Ready(ctx context.Context) []string { return s.ready(ctx) }

func (s *Shop) ready(ctx context.Context) []string {
	var failing []string
	if err := s.Store.Ping(ctx); err != nil {
		failing = append(failing, "store")
	}
	switch {
	case s.mailerOnly:
	case s.Client != nil:
		// An edge serves once it knows a member to send grain calls to.
		if s.Client.Cluster.MemberList.Members().Len() == 0 {
			failing = append(failing, "cluster")
		}
	case len(s.Members) == 0:
		failing = append(failing, "cluster")
	default:
		for _, m := range s.Members {
			if m.Cluster() == nil { // between leaving and rejoining
				failing = append(failing, "cluster")
				break
			}
		}
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
	// Members leave together: each deregisters, which may wait up to the Consul
	// call timeout on a stalled agent.
	var wg sync.WaitGroup
	for _, m := range s.Members {
		wg.Add(1)
		go func() { defer wg.Done(); m.Stop() }()
	}
	wg.Wait()
	s.Members = nil
	if s.Client != nil {
		s.Client.Stop()
		s.Client = nil
	}
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
		out[sku] = cart.Variant{SKU: sku, PhoneID: v.PhoneID, Name: v.DisplayName(), Brand: v.Brand, PriceCents: v.PriceCents}
	}
	return out, nil
}
