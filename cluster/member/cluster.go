// Package member assembles protoactor-go members of the shop: an actor system that
// logs through the shop's slog logger, remote on a loopback or advertised address
// (in mutual TLS when configured, tls.go),
// disthash placement (placement.go), the grain kinds (cart, inventory, order) with their
// dependencies attached, and a membership provider (in-memory for dev and tests).
package member

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"

	"phoneshop/actors/cart"
	"phoneshop/actors/inventory"
	"phoneshop/actors/order"
	"phoneshop/actors/promo"
)

// Name is the cluster name every member joins.
const Name = "phoneshop"

// Kinds lists the grain kinds a member hosts, by the names the API reports.
var Kinds = map[string]string{
	"cart":      cart.KindName,
	"inventory": inventory.KindName,
	"order":     order.KindName,
	"promo":     promo.KindName,
}

// Deps are the dependencies of the grains a member hosts.
type Deps struct {
	Cart      cart.Deps
	Inventory inventory.Deps
	Order     order.Deps
	Promo     promo.Deps
}

// Config says how a member joins.
type Config struct {
	// Host and Port the member's remote listens on; port 0 picks a free one.
	Host string
	Port int
	// TLS, when set, makes the remote speak mutual TLS with every peer (LoadTLS);
	// nil leaves the cluster transport in plaintext.
	TLS *TLS
	// NewProvider makes the provider that finds the other members, once per
	// incarnation of a member (a member that rejoins needs a fresh one).
	NewProvider func() (cluster.ClusterProvider, error)
	// IdleTimeout passivates grains that received nothing for this long.
	IdleTimeout time.Duration
	// RequestTimeout is protoactor's default for calls made without options.
	RequestTimeout time.Duration
	// Rejoin makes a member that may have been dropped by its peers leave and join
	// again under a new id (a node). Off, the member stays as it is: a process that
	// holds on to its *cluster.Cluster (dev's edge) keeps working with it.
	Rejoin bool
	// OnJoin, when set, runs in its own goroutine each time the member has joined
	// (at start and after every rejoin). Its ctx ends when that incarnation leaves
	// or the member stops, and the member waits for it to return before leaving.
	OnJoin func(ctx context.Context, c *cluster.Cluster)
	Logger *slog.Logger
}

// Evictable is a provider that can tell its member it may have been dropped by
// its peers (consul.Provider). protoactor-go never lets a dropped member id back in,
// so the member leaves and joins again under a new id. With a provider that is not
// Evictable (in-memory), the member still rejoins when it finds itself dropped.
type Evictable interface {
	Evicted() <-chan struct{}
}

// Member is one running cluster member. If its provider evicts it, it restarts its
// actor system under a new id on the same address, with the same grain kinds; the
// grains it hosted are activated again from their snapshots wherever they land.
type Member struct {
	cfg  Config
	deps Deps

	mu       sync.RWMutex
	system   *actor.ActorSystem
	cluster  *cluster.Cluster
	provider cluster.ClusterProvider
	topology *topology
	rejoins  int

	// endHooks ends the current incarnation's OnJoin; hooks waits for it.
	endHooks context.CancelFunc
	hooks    sync.WaitGroup

	stopping chan struct{}
	done     chan struct{}
	once     sync.Once
}

// StartMember starts a member hosting every grain kind.
func StartMember(cfg Config, deps Deps) (*Member, error) {
	m := &Member{cfg: cfg, deps: deps, stopping: make(chan struct{}), done: make(chan struct{})}
	if err := m.join(); err != nil {
		return nil, err
	}
	if cfg.Rejoin {
		go m.supervise()
	} else {
		close(m.done)
	}
	return m, nil
}

// join starts one incarnation of the member: a new actor system (so a new id) with
// the grain kinds, joined through a new provider.
func (m *Member) join() error {
	provider, err := m.cfg.NewProvider()
	if err != nil {
		return err
	}
	system := newSystem(m.cfg.Logger)
	inventory.Attach(system, m.deps.Inventory)
	cart.Attach(system, m.deps.Cart)
	order.Attach(system, m.deps.Order)
	promo.Attach(system, m.deps.Promo)

	remoteCfg := remote.Configure(m.cfg.Host, m.cfg.Port, m.cfg.TLS.remoteOptions(m.cfg.Logger)...)
	clusterCfg := cluster.Configure(Name, provider, newPlacementLookup(), remoteCfg,
		cluster.WithRequestTimeout(m.cfg.RequestTimeout),
		cluster.WithKinds(
			cart.Kind(m.cfg.IdleTimeout),
			inventory.Kind(m.cfg.IdleTimeout),
			order.Kind(m.cfg.IdleTimeout),
			promo.Kind(m.cfg.IdleTimeout),
		),
	)
	c := cluster.New(system, clusterCfg)
	topology := followTopology(system)
	if err := startMember(c); err != nil {
		// The remote may be listening already: release the port for the next try.
		leaveAbruptly(c)
		return err
	}
	if err := spawnMemberInfo(system, c); err != nil {
		leaveAbruptly(c)
		return err
	}
	ctx, endHooks := context.WithCancel(context.Background())
	m.mu.Lock()
	m.system, m.cluster, m.provider, m.topology, m.endHooks = system, c, provider, topology, endHooks
	m.mu.Unlock()
	if m.cfg.OnJoin != nil {
		m.hooks.Add(1)
		go func() {
			defer m.hooks.Done()
			m.cfg.OnJoin(ctx, c)
		}()
	}
	return nil
}

// stopHooks ends the current incarnation's OnJoin and waits for it.
func (m *Member) stopHooks() {
	m.mu.RLock()
	end := m.endHooks
	m.mu.RUnlock()
	if end != nil {
		end()
	}
	m.hooks.Wait()
}

// supervise rejoins under a new id whenever the provider says the member may have
// been dropped, until Stop.
func (m *Member) supervise() {
	defer close(m.done)
	for {
		m.mu.RLock()
		c, provider := m.cluster, m.provider
		m.mu.RUnlock()
		reason := m.untilDropped(c, provider)
		if reason == "" {
			return // stopping
		}
		m.cfg.Logger.Warn("member leaving the cluster to rejoin under a new id", "member", c.ActorSystem.ID, "why", reason)
		m.mu.Lock()
		m.cluster = nil
		m.mu.Unlock()
		m.stopHooks()
		leaveAbruptly(c)
		for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
			err := m.join()
			if err == nil {
				break
			}
			m.cfg.Logger.Error("rejoining the cluster failed; retrying", "err", err, "in", backoff)
			select {
			case <-m.stopping:
				return
			case <-time.After(backoff):
			}
		}
		m.mu.Lock()
		m.rejoins++
		m.mu.Unlock()
		m.cfg.Logger.Warn("member rejoined the cluster", "member", m.ID(), "address", m.Address())
	}
}

// untilDropped waits until the incarnation c may have been dropped by its peers and
// says why, or returns "" when the member stops. Dropped: the provider says so
// (Evictable), or the member finds its own id among the members that left, or a
// peer gossips that it blocks the member's id.
//
// Both are read from the events that carry them, never from protoactor's block
// list: BlockList.IsBlocked reads it without the lock its writers take, and
// gossip from peers writes it at any time (a data race the detector reported when
// this polled it).
func (m *Member) untilDropped(c *cluster.Cluster, provider cluster.ClusterProvider) string {
	var evicted <-chan struct{}
	if ev, ok := provider.(Evictable); ok {
		evicted = ev.Evicted()
	}
	self := c.ActorSystem.ID
	left, blocked := make(chan struct{}, 1), make(chan struct{}, 1)
	signal := func(ch chan struct{}) {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	sub := c.ActorSystem.EventStream.Subscribe(func(ev any) {
		switch t := ev.(type) {
		case *cluster.ClusterTopology:
			if slices.ContainsFunc(t.Left, func(l *cluster.Member) bool { return l.Id == self }) {
				signal(left)
			}
		case *cluster.GossipUpdate:
			// A peer's view of the topology, with the ids it blocks (what
			// protoactor adds to this member's own block list).
			var topology cluster.ClusterTopology
			if t.Key == cluster.TopologyKey && t.Value.UnmarshalTo(&topology) == nil && slices.Contains(topology.Blocked, self) {
				signal(blocked)
			}
		}
	})
	defer c.ActorSystem.EventStream.Unsubscribe(sub)
	select {
	case <-m.stopping:
		return ""
	case <-evicted:
		return "the membership provider says its peers may have dropped it"
	case <-left:
		return "it is among the members that left"
	case <-blocked:
		return "a peer blocks it"
	}
}

// leaveAbruptly stops an incarnation of a member without protoactor's graceful
// leave (Cluster.Shutdown(true)). Stop, a rejoin and a failed start all leave this
// way, whether the member has peers or not.
//
// The graceful leave hands nothing over: disthash has no ownership transfer, so the
// grains stop and activate again where they are next called, from snapshots made
// durable before every reply. Peers learn of the departure from the provider (the
// in-memory agent tells them at once; a Consul blocking query returns on it). What
// the graceful leave adds is a 2 s sleep, a double activation once (PROTOACTOR.md),
// and a data race: it puts the member's own id in its "gracefully left" gossip
// state, so the gossip loop's next tick reads the block list (BlockList.IsBlocked,
// without its lock) while the deregistration writes that id into it.
//
// The order below rules the race out for a member without peers. Gossip stops
// first (StopFuture returns once the gossip actor, which writes the block list on
// gossip from peers, has stopped); a loop tick still running consults the block
// list only for other members' heartbeats and for ids that announced a graceful
// leave, and there are none. The provider then deregisters without telling the
// leaving member (InMemoryAgent leaves it out; consul.Provider stops its watch
// first), so nothing writes its block list at all. Then the grains stop, and the
// remote closes its listener so the address can be reused. With peers in the same
// process, the departure still writes each peer's block list while that peer's
// gossip loop reads it: an unlocked read inside protoactor that no order on the
// leaving side can prevent, which is why those tests skip under the race detector
// (shoptest.MultiMember).
func leaveAbruptly(c *cluster.Cluster) {
	// A start that failed half-way left some parts nil inside protoactor, where
	// their Shutdown panics: each step is tried on its own.
	step := func(name string, f func()) {
		defer func() {
			if r := recover(); r != nil {
				c.Logger().Debug("leaving the cluster: step failed", "step", name, "panic", r)
			}
		}()
		f()
	}
	step("gossip", func() { c.Gossip.Shutdown() })
	step("provider", func() {
		if err := c.Config.ClusterProvider.Shutdown(false); err != nil {
			c.Logger().Warn("leaving the cluster: deregistering failed", "err", err)
		}
	})
	step("grains", func() { c.IdentityLookup.Shutdown() })
	step("remote", func() { c.Remote.Shutdown(false) })
	c.ActorSystem.Shutdown()
}

func newSystem(logger *slog.Logger) *actor.ActorSystem {
	return actor.NewActorSystemWithConfig(actor.Configure(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
			// protoactor logs every topology change and dead letter at Info;
			// the shop's own log carries what operators need.
			return slog.New(levelFloor{Handler: logger.Handler(), min: slog.LevelWarn}).With("lib", "protoactor")
		}),
	))
}

// startMember turns protoactor's panics at start (a port taken, say) into errors.
func startMember(c *cluster.Cluster) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("member: start: %v", r)
		}
	}()
	c.StartMember()
	return nil
}

// Cluster is the member's current incarnation (it changes when the member rejoins).
func (m *Member) Cluster() *cluster.Cluster {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.cluster
}

// System is the actor system of the member's current incarnation.
func (m *Member) System() *actor.ActorSystem {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.system
}

// Members are the cluster's members as the current incarnation last learned them.
func (m *Member) Members() []*cluster.Member {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.topology.list()
}

// Rejoins counts how often the member rejoined under a new id.
func (m *Member) Rejoins() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.rejoins
}

// ID is the member's id in the cluster.
func (m *Member) ID() string { return m.System().ID }

// Address is the member's remote address.
func (m *Member) Address() string { return m.System().Address() }

// Stop leaves the cluster: the provider deregisters the member and its grains
// terminate. It skips protoactor's graceful leave, for the reasons at leaveAbruptly.
func (m *Member) Stop() {
	m.once.Do(func() {
		close(m.stopping)
		<-m.done
		m.stopHooks()
		if c := m.Cluster(); c != nil {
			leaveAbruptly(c)
		}
	})
}

// ActivationCounts reports how many grains of each kind are active on this member,
// by the API's kind names.
func (m *Member) ActivationCounts() map[string]int { return activationCounts(m.Cluster()) }

// activationCounts counts the grains of each kind active on the member c is.
func activationCounts(c *cluster.Cluster) map[string]int {
	out := make(map[string]int, len(Kinds))
	if c == nil {
		return out
	}
	for name, kind := range Kinds {
		if k, ok := c.TryGetClusterKind(kind); ok {
			out[name] = int(k.Count())
		}
	}
	return out
}

// Client is a cluster client: it calls grains and hosts none (the edge).
type Client struct {
	System   *actor.ActorSystem
	Cluster  *cluster.Cluster
	topology *topology
	once     sync.Once
}

// Members are the cluster's members as the client last learned them.
func (cl *Client) Members() []*cluster.Member { return cl.topology.list() }

// StartClient joins the cluster as a client.
func StartClient(cfg Config) (*Client, error) {
	provider, err := cfg.NewProvider()
	if err != nil {
		return nil, err
	}
	system := newSystem(cfg.Logger)
	// A client's remote serves too: members send the replies to its calls there.
	remoteCfg := remote.Configure(cfg.Host, cfg.Port, cfg.TLS.remoteOptions(cfg.Logger)...)
	c := cluster.New(system, cluster.Configure(Name, provider, disthash.New(), remoteCfg,
		cluster.WithRequestTimeout(cfg.RequestTimeout)))
	topology := followTopology(system)
	if err := startClient(c); err != nil {
		return nil, err
	}
	return &Client{System: system, Cluster: c, topology: topology}, nil
}

func startClient(c *cluster.Cluster) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("member: start client: %v", r)
		}
	}()
	c.StartClient()
	return nil
}

// Stop leaves the cluster. protoactor's Cluster.Shutdown dereferences the gossiper,
// which a client does not start (nil pointer panic), so the client stops its parts
// itself: provider, remote, actor system.
func (cl *Client) Stop() {
	cl.once.Do(func() {
		_ = cl.Cluster.Config.ClusterProvider.Shutdown(true)
		cl.Cluster.Remote.Shutdown(true)
		cl.System.Shutdown()
	})
}
