package shop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/cluster"

	"phoneshop/account"
	"phoneshop/cluster/member"
	"phoneshop/config"
	"phoneshop/edge"
	"phoneshop/notify/mail"
	"phoneshop/notify/mailer"
	"phoneshop/notify/memqueue"
	"phoneshop/notify/queue"
	"phoneshop/notify/rabbitmq"
	"phoneshop/notify/relay"
	"phoneshop/persistence/mysql"
)

// Each role assembles the parts it runs (parts.go), in the order they depend on
// each other:
//
//	            store  catalog seed  live  hot reads  campaigns  grains  accounts  HTTP  mail
//	dev           x        x          x       x          x         x        x       x     x (files)
//	node          x        x          x       x          x         x                      relay
//	edge          x      waits        x       x          x                  x       x
//	mailer        x                   x                                                   x (SMTP)
//
// The first five columns are openShared (parts.go), which dev, nodes and edges
// run alike. Nodes own the data their grains write: they seed the catalog and the
// initial stock, and commit in groups. An edge serves the catalog the nodes
// seeded, and hosts no grain.

// StartDev starts every role in one process, on the embedded defaults unless
// stores are configured: members on the in-memory membership agent, and the edge.
func StartDev(ctx context.Context, cfg config.Dev, opts Options, log *slog.Logger) (_ *Shop, err error) {
	transport, err := clusterTLS(cfg.ClusterNet)
	if err != nil {
		return nil, err
	}
	s := newShop(log)
	defer s.closeOnError(&err)
	hot, err := s.openShared(ctx, shared{dataDir: cfg.DataDir, stores: cfg.Stores, settings: cfg.Settings,
		consulAddr: cfg.ConsulAddr, hostsGrains: true, groupCommit: cfg.GroupCommit})
	if err != nil {
		return nil, err
	}
	if cfg.Accounts.UnsubscribeSecret == "" {
		if cfg.Accounts.UnsubscribeSecret, err = devSecret(filepath.Join(cfg.DataDir, "unsubscribe.secret")); err != nil {
			return nil, err
		}
	}
	if err := s.openAccounts(ctx, hot, cfg.Accounts); err != nil {
		return nil, err
	}
	deps := s.grainDeps(hot, cfg.GroupCommit)
	agent := opts.Agent
	if agent == nil {
		agent = member.NewInMemoryAgent()
	}
	for i := 0; i < max(opts.Members, 1); i++ {
		var onJoin func(context.Context, *cluster.Cluster)
		if i == 0 { // one member wakes the orders a crash interrupted
			onJoin = func(ctx context.Context, c *cluster.Cluster) {
				var wg sync.WaitGroup
				defer wg.Wait()
				wg.Go(func() { s.settleDuePromos(ctx, c) })
				s.resumeUnfinished(ctx, c)
			}
		}
		m, err := member.StartMember(member.Config{
			Host: cfg.ClusterHost, Port: portFor(cfg.ClusterPort, i), TLS: transport, NewProvider: member.NewInMemoryProvider(agent),
			IdleTimeout: cfg.Settings.GrainIdleTimeout, RequestTimeout: cfg.Settings.GrainCallTimeout, Logger: log,
			OnJoin: onJoin,
		}, deps)
		if err != nil {
			return nil, err
		}
		s.Members = append(s.Members, m)
	}
	c := s.Members[0].Cluster()
	// The edge serves from the start: the initial stock is received first.
	if err := s.seedStock(ctx, c); err != nil {
		return nil, fmt.Errorf("seed stock: %w", err)
	}
	var mailQueues edge.MailQueues
	if cfg.DevMail {
		broker, err := s.startDevMail(cfg)
		if err != nil {
			return nil, err
		}
		mailQueues = broker
	}
	if err := s.startEdge(hot, c, s.Members[0].Members, cfg.HTTP, true, mailQueues); err != nil {
		return nil, err
	}
	return s, nil
}

// devMailPrefetch is how many mails of one queue dev handles at once.
const devMailPrefetch = 4

// startDevMail runs dev's mail pipeline in the process: the outbox relay publishes
// to the in-process queue, and the mailer writes every mail as a .eml file under
// <data-dir>/mail/ (named by its Message-ID). It returns the queue, which the ops
// view counts and redrives.
func (s *Shop) startDevMail(cfg config.Dev) (*memqueue.Broker, error) {
	// A few mails at a time: dev shares its cores with the shop it serves, and the
	// mail of a sale must not take them from its checkouts.
	broker := memqueue.New(memqueue.Config{Prefetch: devMailPrefetch, MaxHold: cfg.MailMaxHold, Logger: s.log})
	broker.Declare(queue.MailBindings...)
	files := mail.NewFiles(filepath.Join(cfg.DataDir, "mail")).Unsynced()
	verification, err := account.NewVerificationTokens(cfg.Accounts.UnsubscribeSecret, cfg.VerificationTTL)
	if err != nil {
		return nil, err
	}
	m := mailer.New(s.Store, files, mailer.Config{From: cfg.MailFrom, PublicURL: cfg.PublicURL,
		Unsubscribe: s.Unsubscribe, Verification: verification, SendPerSec: s.Live.MailSendPerSec,
		RetryFirst: cfg.MailRetryFirst, RetryMax: cfg.MailRetryMax, RetryFor: cfg.MailRetryFor, Logger: s.log})
	r := relay.New(s.Store, broker, relay.Config{Retention: cfg.OutboxRetention, Logger: s.log})
	gauges := newMailGauges(s.Registry)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(ctx) })
	wg.Go(func() { broker.Run(ctx, queue.MailBindings, m.Handle) })
	wg.Go(func() { watchMailQueues(ctx, broker, gauges, nil, s.log) })
	s.closers = append(s.closers, func() error { stop(); wg.Wait(); return nil })
	return broker, nil
}

// StartNode starts a cluster member hosting the grains; members find each other
// through Consul, and Consul KV overlays the live settings.
func StartNode(ctx context.Context, cfg config.Node, log *slog.Logger) (_ *Shop, err error) {
	transport, err := clusterTLS(cfg.ClusterNet)
	if err != nil {
		return nil, err
	}
	s := newShop(log)
	defer s.closeOnError(&err)
	hot, err := s.openShared(ctx, shared{stores: cfg.Stores, settings: cfg.Settings, consulAddr: cfg.ConsulAddr,
		hostsGrains: true, groupCommit: cfg.GroupCommit})
	if err != nil {
		return nil, err
	}
	// Nodes start together and may find a peer not answering yet: each seeds the
	// initial stock in the background until it is done (the receipts are
	// idempotent), and after every join wakes the orders a crash interrupted.
	m, err := member.StartMember(member.Config{
		Host: cfg.ClusterHost, Port: cfg.ClusterPort, TLS: transport, Rejoin: true,
		NewProvider: func() (cluster.ClusterProvider, error) { return consulProvider(cfg.Consul, log) },
		IdleTimeout: cfg.Settings.GrainIdleTimeout, RequestTimeout: cfg.Settings.GrainCallTimeout, Logger: log,
		OnJoin: func(ctx context.Context, c *cluster.Cluster) {
			var wg sync.WaitGroup
			defer wg.Wait()
			wg.Go(func() { s.settleDuePromos(ctx, c) })
			s.seedStockUntilDone(ctx, c)
			s.resumeUnfinished(ctx, c)
			s.resumeWhenMembersLeave(ctx, c)
		},
	}, s.grainDeps(hot, cfg.GroupCommit))
	if err != nil {
		return nil, err
	}
	s.Members = append(s.Members, m)
	s.startRelay(rabbitmq.NewPublisher(rabbitmq.Config{URL: cfg.RabbitMQURL, Logger: log}), cfg.OutboxRetention)
	return s, nil
}

// startRelay publishes the outbox through pub until the shop closes, and purges
// what was published longer ago than retention. Every node runs one; they share
// the outbox by leases.
func (s *Shop) startRelay(pub *rabbitmq.Publisher, retention time.Duration) {
	r := relay.New(s.Store, pub, relay.Config{Retention: retention, Logger: s.log})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	s.closers = append(s.closers, func() error { stop(); <-done; return pub.Close() })
}

// StartEdge starts the HTTP edge as a cluster client that hosts no grain.
func StartEdge(ctx context.Context, cfg config.Edge, log *slog.Logger) (_ *Shop, err error) {
	transport, err := clusterTLS(cfg.ClusterNet)
	if err != nil {
		return nil, err
	}
	s := newShop(log)
	defer s.closeOnError(&err)
	hot, err := s.openShared(ctx, shared{stores: cfg.Stores, settings: cfg.Settings, consulAddr: cfg.ConsulAddr})
	if err != nil {
		return nil, err
	}
	if err := s.openAccounts(ctx, hot, cfg.Accounts); err != nil {
		return nil, err
	}
	newProvider := func() (cluster.ClusterProvider, error) { return consulProvider(cfg.Consul, log) }
	if s.Client, err = member.StartClient(member.Config{Host: cfg.ClusterHost, Port: cfg.ClusterPort, TLS: transport, NewProvider: newProvider,
		RequestTimeout: cfg.Settings.GrainCallTimeout, Logger: log}); err != nil {
		return nil, err
	}
	// The edge reads the mail queues on RabbitMQ itself (ready and dead counts,
	// and redrives with confirms), so that ops see the backlog even while no
	// mailer runs; what the mailers hold unacknowledged, which AMQP does not tell,
	// comes from the reports they write to the store.
	store := s.Store
	inspector := rabbitmq.NewInspector(rabbitmq.InspectorConfig{URL: cfg.RabbitMQURL, Queues: queue.Names(queue.MailBindings),
		Unacked: func(ctx context.Context) (map[string]int64, error) {
			return store.InFlight(ctx, time.Now().Add(-mailStatusFresh))
		}, Logger: log})
	if err := s.startEdge(hot, s.Client.Cluster, s.Client.Members, cfg.HTTP, false, inspector); err != nil {
		return nil, err
	}
	return s, nil
}

// StartMailer starts a mailer: it consumes the mail queues of RabbitMQ (campaign
// activations to fan out, campaign mail, order mail) and sends through SMTP.
func StartMailer(ctx context.Context, cfg config.Mailer, log *slog.Logger) (_ *Shop, err error) {
	s := newShop(log)
	s.mailerOnly = true
	defer s.closeOnError(&err)
	open := mysql.Open
	if !cfg.MySQLMigrate {
		open = mysql.OpenMigrated
	}
	if s.Store, err = open(ctx, cfg.MySQLDSN); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	tokens, err := account.NewUnsubscribeTokens(cfg.UnsubscribeSecret)
	if err != nil {
		return nil, err
	}
	verification, err := account.NewVerificationTokens(cfg.UnsubscribeSecret, cfg.VerificationTTL)
	if err != nil {
		return nil, err
	}
	sender := mail.NewSMTP(mail.SMTPConfig{Host: cfg.SMTPHost, Port: cfg.SMTPPort, Username: cfg.SMTPUser,
		Password: cfg.SMTPPassword, TLSPolicy: cfg.SMTPTLSPolicy, Timeout: cfg.SMTPTimeout})
	if cfg.SMTPTLSPolicy == "none" {
		log.Warn("SMTP without TLS (PHONESHOP_SMTP_TLS=none): meant for a local test server such as Mailpit only")
	}
	if err := s.followLive(cfg.Settings, cfg.ConsulAddr); err != nil {
		return nil, err
	}
	id := mailer.DefaultID()
	m := mailer.New(s.Store, sender, mailer.Config{From: cfg.MailFrom, PublicURL: cfg.PublicURL, Unsubscribe: tokens,
		Verification: verification, SendPerSec: s.Live.MailSendPerSec,
		RetryFirst: cfg.MailRetryFirst, RetryMax: cfg.MailRetryMax, RetryFor: cfg.MailRetryFor,
		// A claim outlasts one attempt: an SMTP conversation (its timeout) and
		// reading the mail's account and campaign, with room to spare.
		ClaimLease: 2*cfg.SMTPTimeout + 30*time.Second, ID: id, Logger: log})
	consumer := rabbitmq.NewConsumer(rabbitmq.ConsumerConfig{URL: cfg.RabbitMQURL, Bindings: queue.MailBindings,
		Prefetch: cfg.MailPrefetch, DeliveryLimit: cfg.MailDeliveryLimit, MaxHold: cfg.MailMaxHold, Logger: log})
	inspector := rabbitmq.NewInspector(rabbitmq.InspectorConfig{URL: cfg.RabbitMQURL, Queues: queue.Names(queue.MailBindings), Logger: log})
	gauges := newMailGauges(s.Registry)
	store := s.Store
	report := func(ctx context.Context) {
		rctx, cancel := context.WithTimeout(ctx, mailStatusInterval)
		defer cancel()
		now := time.Now()
		if err := store.ReportInFlight(rctx, id, consumer.InFlight(), now, now.Add(-mailStatusForget)); err != nil && ctx.Err() == nil {
			log.Warn("mailer status not written", "err", err)
		}
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- consumer.Run(runCtx, m.Handle) }()
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() { defer close(watched); watchMailQueues(watchCtx, inspector, gauges, report, log) }()
	s.closers = append(s.closers, func() error {
		stop()
		err := <-done
		stopWatch()
		<-watched
		fctx, cancel := context.WithTimeout(context.Background(), mailStatusInterval)
		defer cancel()
		return errors.Join(err, sender.Close(), store.ForgetMailer(fctx, id))
	})
	return s, nil
}

// Migrate creates the shop's MySQL/MariaDB database if needed and applies the
// schema migrations, for processes that start with PHONESHOP_MYSQL_MIGRATE=false.
func Migrate(ctx context.Context, cfg config.Migrate, log *slog.Logger) error {
	if err := mysql.Migrate(ctx, cfg.MySQLDSN); err != nil {
		return err
	}
	log.Info("the schema is migrated")
	return nil
}
