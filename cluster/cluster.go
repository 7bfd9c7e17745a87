// Package cluster assembles protoactor-go members of the shop: an actor system that
// logs through the shop's slog logger, remote on a loopback or advertised address,
// disthash identity lookup, the grain kinds (cart, inventory, order) with their
// dependencies attached, and a membership provider (in-memory for dev and tests).
package cluster

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"

	"phoneshop/actors/cart"
	"phoneshop/actors/inventory"
	"phoneshop/actors/order"
)

// Name is the cluster name every member joins.
const Name = "phoneshop"

// Kinds lists the grain kinds a member hosts, by the names the API reports.
var Kinds = map[string]string{
	"cart":      cart.KindName,
	"inventory": inventory.KindName,
	"order":     order.KindName,
}

// Deps are the dependencies of the grains a member hosts.
type Deps struct {
	Cart      cart.Deps
	Inventory inventory.Deps
	Order     order.Deps
}

// Config says how a member joins.
type Config struct {
	// Host and Port the member's remote listens on; port 0 picks a free one.
	Host string
	Port int
	// Provider finds the other members.
	Provider pcluster.ClusterProvider
	// IdleTimeout passivates grains that received nothing for this long.
	IdleTimeout time.Duration
	// RequestTimeout is protoactor's default for calls made without options.
	RequestTimeout time.Duration
	Logger         *slog.Logger
}

// Member is one running cluster member.
type Member struct {
	System  *actor.ActorSystem
	Cluster *pcluster.Cluster
	once    sync.Once
}

// StartMember starts a member hosting every grain kind.
func StartMember(cfg Config, deps Deps) (*Member, error) {
	logger := cfg.Logger
	system := actor.NewActorSystemWithConfig(actor.Configure(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
			// protoactor logs every topology change and dead letter at Info;
			// the shop's own log carries what operators need.
			return slog.New(levelFloor{Handler: logger.Handler(), min: slog.LevelWarn}).With("lib", "protoactor")
		}),
	))
	inventory.Attach(system, deps.Inventory)
	cart.Attach(system, deps.Cart)
	order.Attach(system, deps.Order)

	remoteCfg := remote.Configure(cfg.Host, cfg.Port)
	clusterCfg := pcluster.Configure(Name, cfg.Provider, disthash.New(), remoteCfg,
		pcluster.WithRequestTimeout(cfg.RequestTimeout),
		pcluster.WithKinds(
			cart.Kind(cfg.IdleTimeout),
			inventory.Kind(cfg.IdleTimeout),
			order.Kind(cfg.IdleTimeout),
		),
	)
	c := pcluster.New(system, clusterCfg)
	if err := startMember(c); err != nil {
		return nil, err
	}
	return &Member{System: system, Cluster: c}, nil
}

// startMember turns protoactor's panics at start (a port taken, say) into errors.
func startMember(c *pcluster.Cluster) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cluster: start member: %v", r)
		}
	}()
	c.StartMember()
	return nil
}

// ID is the member's id in the cluster.
func (m *Member) ID() string { return m.System.ID }

// Address is the member's remote address.
func (m *Member) Address() string { return m.System.Address() }

// Stop leaves the cluster gracefully: grains terminate, the provider deregisters.
func (m *Member) Stop() {
	m.once.Do(func() { m.Cluster.Shutdown(true) })
}

// NewInMemoryAgent returns the membership agent that in-process members share (dev,
// tests): protoactor's test provider, no network discovery.
func NewInMemoryAgent() *test.InMemAgent { return test.NewInMemAgent() }

// NewInMemoryProvider returns a provider for one member on agent.
func NewInMemoryProvider(agent *test.InMemAgent) pcluster.ClusterProvider {
	return test.NewTestProvider(agent)
}

// ActivationCounts reports how many grains of each kind are active on this member,
// by the API's kind names.
func (m *Member) ActivationCounts() map[string]int {
	out := make(map[string]int, len(Kinds))
	for name, kind := range Kinds {
		if k, ok := m.Cluster.TryGetClusterKind(kind); ok {
			out[name] = int(k.Count())
		}
	}
	return out
}

// Client is a cluster client: it calls grains and hosts none (the edge).
type Client struct {
	System  *actor.ActorSystem
	Cluster *pcluster.Cluster
	once    sync.Once
}

// StartClient joins the cluster as a client.
func StartClient(cfg Config) (*Client, error) {
	logger := cfg.Logger
	system := actor.NewActorSystemWithConfig(actor.Configure(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
			return slog.New(levelFloor{Handler: logger.Handler(), min: slog.LevelWarn}).With("lib", "protoactor")
		}),
	))
	c := pcluster.New(system, pcluster.Configure(Name, cfg.Provider, disthash.New(), remote.Configure(cfg.Host, cfg.Port),
		pcluster.WithRequestTimeout(cfg.RequestTimeout)))
	if err := startClient(c); err != nil {
		return nil, err
	}
	return &Client{System: system, Cluster: c}, nil
}

func startClient(c *pcluster.Cluster) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cluster: start client: %v", r)
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
