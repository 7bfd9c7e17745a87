// Package shop assembles a running shop from its parts, role by role (roles.go):
// dev runs every part in one process; a node hosts the grains; an edge serves HTTP
// as a cluster client; a mailer sends the mail. cmd/phoneshop runs it; tests start
// it on a temporary directory.
package shop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"phoneshop/account"
	"phoneshop/actors/promo"
	"phoneshop/catalog"
	"phoneshop/cluster/consul"
	"phoneshop/cluster/member"
	"phoneshop/config"
	"phoneshop/edge"
	"phoneshop/grain/call"
	"phoneshop/persistence/sqlstore"
)

// sessionPurgeInterval is how often an edge deletes expired sessions (every edge
// does; the delete is idempotent).
const sessionPurgeInterval = 10 * time.Minute

// storeTimeout bounds one store operation of a grain.
const storeTimeout = 5 * time.Second

// Shop is a running shop: the parts one process runs, of whichever role.
type Shop struct {
	App     *fiber.App
	Store   *sqlstore.Store
	Members []*member.Member
	// Client is the edge's way into the cluster when it hosts no member.
	Client   *member.Client
	Accounts *account.Service
	// Unsubscribe mints and reads the tokens of unsubscribe links (edges, dev).
	Unsubscribe *account.UnsubscribeTokens
	// Verification reads the tokens of e-mail verification links (edges, dev),
	// signed with the unsubscribe secret; mailers mint them.
	Verification *account.VerificationTokens
	Catalog      *catalog.Service
	// Live are the settings that can change while the shop runs.
	Live *config.Live
	// Registry holds the process's metrics (served by /metrics): each part
	// registers the series it counts.
	Registry *prometheus.Registry
	log      *slog.Logger
	// campaigns is this process's view of the live campaigns (what prices).
	campaigns *promo.Board
	// calls is the policy of every grain call the process makes; grainCalls counts them.
	calls      call.Policy
	grainCalls *call.Metrics
	// mailerOnly: a mailer, which is ready when its store is (it is no member).
	mailerOnly bool
	// resendVerificationAfter is the least time between two verification mails.
	resendVerificationAfter time.Duration
	// closers close what was opened beside the store (cache, publisher), in reverse.
	closers []func() error
}

// Options are what the process decides beyond configuration.
type Options struct {
	// Members is how many cluster members to start in this process (dev: 1; tests
	// use several to exercise placement across members).
	Members int
	// Agent is the in-memory membership dev's members join; nil makes one. Tests
	// pass their own to put other members and clients beside the shop's.
	Agent *member.InMemoryAgent
}

// newShop is a shop with nothing open yet but its metrics registry, which holds the
// Go runtime's and the process's series from the start (never the global registry,
// which protoactor's default provider would also grab).
func newShop(log *slog.Logger) *Shop {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Shop{log: log, Registry: reg}
}

// closeOnError closes what a failed start opened.
func (s *Shop) closeOnError(err *error) {
	if *err != nil {
		_ = s.closeParts()
	}
}

// useGrainCalls sets the policy of the process's grain calls: the live timeout,
// counted by grainCalls (what the edge answers for a failed call names its outcome).
func (s *Shop) useGrainCalls() {
	s.grainCalls = call.NewMetrics(s.Registry, edge.GrainOutcome)
	s.calls = call.DefaultPolicy()
	s.calls.TimeoutFunc = s.Live.GrainCallTimeout
	s.calls.Observe = s.grainCalls.Observe
}

// consulProvider is the membership of a node or an edge.
func consulProvider(cfg config.Consul, log *slog.Logger) (*consul.Provider, error) {
	return consul.New(consul.Config{Address: cfg.ConsulAddr, TTL: cfg.ConsulTTL, DeregisterAfter: cfg.ConsulDeregisterAfter,
		WaitTime: cfg.ConsulWait, CallTimeout: cfg.ConsulCallTimeout, Logger: log})
}

// clusterTLS loads the mutual TLS of the process's cluster remote before anything
// opens, so that a certificate its peers would refuse stops the start at once. It
// returns nil when the settings leave the cluster transport in plaintext.
func clusterTLS(n config.ClusterNet) (*member.TLS, error) {
	if !n.ClusterTLS() {
		return nil, nil
	}
	t, err := member.LoadTLS(member.TLSFiles{CA: n.ClusterTLSCA, Cert: n.ClusterTLSCert, Key: n.ClusterTLSKey, Name: n.ClusterTLSName})
	if err != nil {
		return nil, fmt.Errorf("PHONESHOP_CLUSTER_TLS_CA, _CERT, _KEY and _NAME: %w", err)
	}
	return t, nil
}

func portFor(base, i int) int {
	if base == 0 {
		return 0
	}
	return base + i
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
		if len(s.Client.Members()) == 0 {
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
