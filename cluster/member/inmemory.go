package member

import (
	"slices"
	"sync"

	"github.com/asynkron/protoactor-go/cluster"
)

// InMemoryAgent is the membership that in-process members share (dev, tests): no
// network discovery, every member and client on the agent is told each change at
// once.
//
// It replaces protoactor's test provider (clusterproviders/test), whose agent keeps
// calling a member that has left (handlers are never removed), tells a leaving member
// about its own departure, leaks a TTL goroutine per member, and hands out snapshots
// that concurrent changes can deliver out of order. The first two matter at
// shutdown: the departure is written into the leaving member's block list while its
// gossip loop reads that list without the lock (see leaveAbruptly).
type InMemoryAgent struct {
	mu       sync.Mutex
	members  []*cluster.Member // registered, in order of joining
	watchers []*inMemoryProvider
}

// NewInMemoryAgent returns an agent with no member.
func NewInMemoryAgent() *InMemoryAgent { return &InMemoryAgent{} }

// NewInMemoryProvider returns a provider for one member or client on agent, once per
// incarnation.
func NewInMemoryProvider(agent *InMemoryAgent) func() (cluster.ClusterProvider, error) {
	return func() (cluster.ClusterProvider, error) { return &inMemoryProvider{agent: agent}, nil }
}

// inMemoryProvider is the cluster.ClusterProvider of one member or client.
type inMemoryProvider struct {
	agent   *InMemoryAgent
	cluster *cluster.Cluster
	id      string // set for a member; empty for a client
}

// StartMember registers the member; every member on the agent, this one included,
// learns the new topology before it returns.
func (p *inMemoryProvider) StartMember(c *cluster.Cluster) error {
	host, port, err := c.ActorSystem.GetHostPort()
	if err != nil {
		return err
	}
	p.cluster, p.id = c, c.ActorSystem.ID
	p.agent.join(p, &cluster.Member{Id: p.id, Host: host, Port: int32(port), Kinds: c.GetClusterKinds()})
	return nil
}

// StartClient follows the members without registering: a client hosts no grain.
func (p *inMemoryProvider) StartClient(c *cluster.Cluster) error {
	p.cluster = c
	p.agent.join(p, nil)
	return nil
}

// Shutdown deregisters the member and tells the members that stay. The leaving
// member itself is told nothing, so its own member list and block list are not
// written while it stops.
func (p *inMemoryProvider) Shutdown(bool) error {
	p.agent.leave(p)
	return nil
}

func (a *InMemoryAgent) join(p *inMemoryProvider, m *cluster.Member) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.watchers = append(a.watchers, p)
	if m != nil {
		a.members = append(a.members, m)
	}
	a.notifyLocked()
}

func (a *InMemoryAgent) leave(p *inMemoryProvider) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := len(a.watchers)
	a.watchers = slices.DeleteFunc(a.watchers, func(w *inMemoryProvider) bool { return w == p })
	if len(a.watchers) == n {
		return // left already, or never started
	}
	if p.id != "" {
		a.members = slices.DeleteFunc(a.members, func(m *cluster.Member) bool { return m.Id == p.id })
	}
	a.notifyLocked()
}

// notifyLocked hands the members to every watcher. It runs under the agent's lock so
// that two changes cannot reach a member list in the wrong order: protoactor blocks a
// member for good once it leaves a member list, so a stale snapshot applied last
// would drop a live member.
func (a *InMemoryAgent) notifyLocked() {
	for _, w := range a.watchers {
		members := make([]*cluster.Member, len(a.members))
		for i, m := range a.members {
			// Each member list gets its own copies, as from a real provider.
			members[i] = &cluster.Member{Id: m.Id, Host: m.Host, Port: m.Port, Kinds: slices.Clone(m.Kinds)}
		}
		w.cluster.MemberList.UpdateClusterTopology(members)
	}
}
