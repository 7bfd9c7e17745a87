// Package consul is the shop's Consul cluster provider for protoactor-go: members
// register with their kinds as tags and a TTL check, and every member and client
// watches the healthy members with blocking queries. It replaces protoactor's bundled
// provider (see PROTOACTOR.md): that one never registers again after the agent
// restarts with its state lost, and panics on Shutdown of a client.
package consul

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/hashicorp/consul/api"

	"phoneshop/cluster/consul/blocking"
)

// Config says how the provider talks to Consul.
type Config struct {
	// Address is the agent's HTTP address (host:port).
	Address string
	// TTL is how long a member stays healthy without refreshing its check.
	TTL time.Duration
	// Refresh is how often a member refreshes its check (default TTL/3).
	Refresh time.Duration
	// DeregisterAfter removes a member whose check stayed critical this long
	// (Consul's minimum is 1 minute).
	DeregisterAfter time.Duration
	// WaitTime bounds one blocking query.
	WaitTime time.Duration
	// CallTimeout bounds each call to the agent that answers at once (register,
	// refresh, deregister), and is how much longer than its WaitTime a blocking
	// query may go unanswered. A stalled agent (frozen process, dead host behind a
	// half-open connection) never answers: without it, a member's shutdown would
	// wait on its deregistration for ever. Default 5 s.
	CallTimeout time.Duration
	Logger      *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.TTL <= 0 {
		c.TTL = 3 * time.Second
	}
	if c.Refresh <= 0 {
		c.Refresh = c.TTL / 3
	}
	if c.DeregisterAfter < time.Minute {
		c.DeregisterAfter = time.Minute
	}
	if c.WaitTime <= 0 {
		c.WaitTime = 5 * time.Second
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Provider implements cluster.ClusterProvider on Consul.
//
// protoactor-go blocks for good every member that leaves its member list, so a
// member that its peers saw unhealthy cannot come back under the same id. The
// provider tells the member so (Evicted) whenever that may have happened: its check
// may have expired (two successful refreshes further apart than the TTL: the process
// stalled, or could not reach Consul), or the healthy members Consul reports no
// longer include it. The member then rejoins under a new id (cluster.Member).
//
// The other way round, an agent that restarts with its state lost reports no member
// at all until each has refreshed and found its check unknown (within TTL/3). So
// after the watch was interrupted or Consul's index went backwards, a member that
// disappears is kept for one TTL (the grace) before the topology drops it.
type Provider struct {
	cfg    Config
	client *api.Client

	cluster *cluster.Cluster
	name    string
	id      string // set for a member; empty for a client
	host    string
	port    int
	kinds   []string

	evicted     chan struct{}
	evictedOnce sync.Once

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a provider for one member or client.
func New(cfg Config) (*Provider, error) {
	cfg = cfg.withDefaults()
	client, err := api.NewClient(&api.Config{Address: cfg.Address})
	if err != nil {
		return nil, fmt.Errorf("consul: %w", err)
	}
	return &Provider{cfg: cfg, client: client, evicted: make(chan struct{})}, nil
}

// Evicted is closed once the member may have been dropped by its peers: it must
// leave and join again under a new id. A client is never evicted.
func (p *Provider) Evicted() <-chan struct{} { return p.evicted }

func (p *Provider) evict(reason string, attrs ...any) {
	p.evictedOnce.Do(func() {
		p.cfg.Logger.Warn("consul: this member may have been dropped by its peers: "+reason,
			append([]any{"member", p.id}, attrs...)...)
		close(p.evicted)
	})
}

// StartMember registers the member and starts refreshing its check and watching
// the members.
func (p *Provider) StartMember(c *cluster.Cluster) error {
	host, port, err := c.ActorSystem.GetHostPort()
	if err != nil {
		return err
	}
	p.cluster, p.name, p.id = c, c.Config.Name, c.ActorSystem.ID
	p.host, p.port, p.kinds = host, port, c.GetClusterKinds()
	sent := time.Now()
	if err := p.register(context.Background()); err != nil {
		return err
	}
	ctx := p.start()
	p.wg.Add(2)
	go p.refreshLoop(ctx, sent)
	go p.watchLoop(ctx)
	return nil
}

// StartClient only watches the members: a client hosts no grain.
func (p *Provider) StartClient(c *cluster.Cluster) error {
	p.cluster, p.name = c, c.Config.Name
	ctx := p.start()
	p.wg.Add(1)
	go p.watchLoop(ctx)
	return nil
}

func (p *Provider) start() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	return ctx
}

// Shutdown stops the loops and, for a member, deregisters it. It returns within
// about CallTimeout even if the agent does not answer: the loops' calls end with
// their context, and the deregistration has its own deadline. A member whose
// deregistration failed drops out once its check expires (TTL) and is removed after
// DeregisterAfter.
func (p *Provider) Shutdown(bool) error {
	if p.cancel != nil {
		p.cancel()
	}
	p.wg.Wait()
	if p.id == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.CallTimeout)
	defer cancel()
	if err := p.client.Agent().ServiceDeregisterOpts(p.id, (&api.QueryOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("consul: deregister %s: %w", p.id, err)
	}
	return nil
}

func (p *Provider) checkID() string { return "service:" + p.id }

// register registers the member and marks its check passing, each call bounded by
// CallTimeout.
func (p *Provider) register(ctx context.Context) error {
	callCtx, cancel := context.WithTimeout(ctx, p.cfg.CallTimeout)
	defer cancel()
	err := p.client.Agent().ServiceRegisterOpts(&api.AgentServiceRegistration{
		ID: p.id, Name: p.name, Tags: p.kinds, Address: p.host, Port: p.port,
		Meta: map[string]string{"id": p.id},
		Check: &api.AgentServiceCheck{
			CheckID:                        p.checkID(),
			TTL:                            p.cfg.TTL.String(),
			DeregisterCriticalServiceAfter: p.cfg.DeregisterAfter.String(),
		},
	}, api.ServiceRegisterOpts{}.WithContext(callCtx))
	if err != nil {
		return fmt.Errorf("consul: register %s: %w", p.id, err)
	}
	return p.pass(ctx)
}

// pass marks the member's check passing, bounded by CallTimeout.
func (p *Provider) pass(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.CallTimeout)
	defer cancel()
	return p.client.Agent().UpdateTTLOpts(p.checkID(), "", api.HealthPassing, (&api.QueryOptions{}).WithContext(ctx))
}

// refreshLoop keeps the member's check passing. When the agent no longer knows the
// check (it restarted and lost its state), the member registers again.
//
// lastSent is when the last successful refresh was sent: Consul restarted the TTL
// somewhere between then and its answer. If the next successful refresh is answered
// more than a TTL after that, the check may have expired in between, and peers that
// saw it critical have blocked this member's id.
func (p *Provider) refreshLoop(ctx context.Context, lastSent time.Time) {
	defer p.wg.Done()
	tick := time.NewTicker(p.cfg.Refresh)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		sent := time.Now()
		err := p.pass(ctx)
		if err != nil && isUnknownCheck(err) {
			p.cfg.Logger.Warn("consul forgot this member; registering again", "member", p.id)
			err = p.register(ctx)
		}
		if ctx.Err() != nil {
			return // stopping: the call was cut short, not failed
		}
		if err == nil {
			if gap := time.Since(lastSent); gap > p.cfg.TTL {
				p.evict("its check was not refreshed for longer than the TTL", "gap", gap.Round(time.Millisecond), "ttl", p.cfg.TTL)
				return
			}
			lastSent = sent
		}
		switch {
		case err != nil && !failing:
			p.cfg.Logger.Error("consul: refreshing the member's check failed", "member", p.id, "err", err)
			failing = true
		case err == nil && failing:
			p.cfg.Logger.Info("consul: member's check passing again", "member", p.id)
			failing = false
		}
	}
}

func isUnknownCheck(err error) bool {
	var se api.StatusError
	if errors.As(err, &se) && se.Code == 404 {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "Unknown check") || strings.Contains(s, "does not have associated TTL") ||
		strings.Contains(s, "CheckID") && strings.Contains(s, "not found")
}

// watchLoop follows the healthy members with blocking queries and hands every
// change to protoactor's member list (through a topology that applies the grace).
func (p *Provider) watchLoop(ctx context.Context) {
	defer p.wg.Done()
	t := topology{grace: p.cfg.TTL}
	blocking.Loop[[]*api.ServiceEntry]{
		Query: func(opts *api.QueryOptions) ([]*api.ServiceEntry, *api.QueryMeta, error) {
			return p.client.Health().Service(p.name, "", true, opts)
		},
		Answer: func(entries []*api.ServiceEntry) bool {
			members, changed := t.observe(toMembers(entries), time.Now())
			if !changed {
				return true
			}
			if p.id != "" && !slices.ContainsFunc(members, func(m *cluster.Member) bool { return m.Id == p.id }) {
				p.evict("Consul no longer reports it healthy")
				return false
			}
			p.cluster.MemberList.UpdateClusterTopology(members)
			return true
		},
		Failed: func(err error) { p.cfg.Logger.Warn("consul: watching members failed; retrying", "err", err) },
		// An interrupted watch, or an index that went backwards (an agent that
		// restarted), may mean an agent that has not heard from every member again yet.
		Reset: t.interrupted,
		Wait:  p.cfg.WaitTime,
		Wake: func() time.Duration {
			if left := t.graceLeft(time.Now()); left > 0 {
				// Wake when the grace ends, even if nothing changes in Consul.
				return left + 10*time.Millisecond
			}
			return 0
		},
		Slack: p.cfg.CallTimeout,
	}.Run(ctx)
}

// topology decides which members to hand to protoactor from what Consul reports.
type topology struct {
	grace      time.Duration
	graceUntil time.Time         // after an interruption, members that vanish are kept until then
	applied    []*cluster.Member // last handed over, nil before the first
}

func (t *topology) interrupted() {
	if t.applied != nil {
		t.graceUntil = time.Now().Add(t.grace)
	}
}

func (t *topology) graceLeft(now time.Time) time.Duration { return t.graceUntil.Sub(now) }

// observe returns the members to apply and whether they differ from the last
// applied. Within the grace, a member that vanished is kept.
func (t *topology) observe(reported []*cluster.Member, now time.Time) ([]*cluster.Member, bool) {
	next := reported
	if now.Before(t.graceUntil) {
		for _, m := range t.applied {
			if !slices.ContainsFunc(next, func(r *cluster.Member) bool { return r.Id == m.Id }) {
				next = append(next, m)
			}
		}
	}
	slices.SortFunc(next, func(a, b *cluster.Member) int { return strings.Compare(a.Id, b.Id) })
	if t.applied != nil && slices.EqualFunc(next, t.applied, func(a, b *cluster.Member) bool {
		return a.Id == b.Id && a.Host == b.Host && a.Port == b.Port
	}) {
		return next, false
	}
	t.applied = next
	return next, true
}

func toMembers(entries []*api.ServiceEntry) []*cluster.Member {
	members := make([]*cluster.Member, 0, len(entries))
	for _, e := range entries {
		id := e.Service.Meta["id"]
		if id == "" {
			id = e.Service.ID
		}
		members = append(members, &cluster.Member{
			Id: id, Host: e.Service.Address, Port: int32(e.Service.Port), Kinds: append([]string(nil), e.Service.Tags...),
		})
	}
	return members
}
