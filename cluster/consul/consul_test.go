package consul_test

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/hashicorp/consul/api"

	"phoneshop/cluster/consul"
	"phoneshop/cluster/member"
	"phoneshop/internal/consultest"
	"phoneshop/internal/shoptest"
	"phoneshop/internal/testbin"
)

func provider(t *testing.T, agent *consultest.Agent) *consul.Provider {
	t.Helper()
	p, err := consul.New(consul.Config{Address: agent.HTTP, TTL: 2 * time.Second, WaitTime: time.Second, Logger: shoptest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startMember starts a member on a port its remote chooses (0).
func startMember(t *testing.T, agent *consultest.Agent) *member.Member {
	t.Helper()
	m, err := tryMemberOn(t, agent, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// passing lists the ids of the members Consul reports healthy.
func passing(t *testing.T, agent *consultest.Agent) []string {
	t.Helper()
	client, err := api.NewClient(&api.Config{Address: agent.HTTP})
	if err != nil {
		t.Fatal(err)
	}
	entries, _, err := client.Health().Service(member.Name, "", true, nil)
	if err != nil {
		return nil
	}
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.Service.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestMemberRegistersWithItsKinds(t *testing.T) {
	agent := consultest.Start(t)
	m := startMember(t, agent)
	consultest.Eventually(t, "the member is registered and passing", func() bool {
		return slices.Equal(passing(t, agent), []string{m.ID()})
	})
	client, _ := api.NewClient(&api.Config{Address: agent.HTTP})
	entries, _, err := client.Health().Service(member.Name, "", true, nil)
	if err != nil || len(entries) != 1 {
		t.Fatalf("entries = %v, %v", entries, err)
	}
	tags := entries[0].Service.Tags
	for _, kind := range []string{"Cart", "Inventory", "Order"} {
		if !slices.Contains(tags, kind) {
			t.Fatalf("tags = %v, want every kind the member hosts, %s among them", tags, kind)
		}
	}
}

func TestMemberRegistersAgainAfterTheAgentLostItsState(t *testing.T) {
	agent := consultest.Start(t)
	m := startMember(t, agent)
	consultest.Eventually(t, "registered", func() bool { return slices.Equal(passing(t, agent), []string{m.ID()}) })
	agent.Restart() // a dev agent keeps nothing: the member is unknown to it now
	consultest.Eventually(t, "registered again after the agent restarted", func() bool {
		return slices.Equal(passing(t, agent), []string{m.ID()})
	})
}

func TestMemberLeavesOnStop(t *testing.T) {
	agent := consultest.Start(t)
	m := startMember(t, agent)
	consultest.Eventually(t, "registered", func() bool { return len(passing(t, agent)) == 1 })
	m.Stop()
	consultest.Eventually(t, "deregistered on stop", func() bool { return len(passing(t, agent)) == 0 })
}

// TestClientStartsAndStopsCleanly: a cluster client (the edge) registers nothing,
// watches the members, and stops without panicking (protoactor's Cluster.Shutdown
// panics on a client).
func TestClientStartsAndStopsCleanly(t *testing.T) {
	agent := consultest.Start(t)
	c, err := member.StartClient(member.Config{Host: "127.0.0.1", NewProvider: func() (cluster.ClusterProvider, error) { return provider(t, agent), nil },
		RequestTimeout: 5 * time.Second, Logger: shoptest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	if got := passing(t, agent); len(got) != 0 {
		t.Fatalf("a client registered as a member: %v", got)
	}
	c.Stop()
}

// TestClusterTwoMembersSeeEachOther: members find each other through Consul, and
// a member that stops is dropped from the others' view.
func TestClusterTwoMembersSeeEachOther(t *testing.T) {
	shoptest.MultiMember(t)
	agent := consultest.Start(t)
	a, b := startMember(t, agent), startMember(t, agent)
	sees := func(m *member.Member, n int) func() bool {
		return func() bool { return len(m.Members()) == n }
	}
	consultest.Eventually(t, "both members see two members", func() bool { return sees(a, 2)() && sees(b, 2)() })
	b.Stop()
	consultest.Eventually(t, "the remaining member sees one member", sees(a, 1))
}

// TestClusterDroppedMemberRejoinsUnderANewID: a member that Consul stops reporting
// healthy (here: deregistered from outside) has been dropped by its peers, whose
// protoactor member list never lets that id back in. It leaves and joins again under
// a new id, on the same fixed port, and the peer takes the new id in.
func TestClusterDroppedMemberRejoinsUnderANewID(t *testing.T) {
	shoptest.MultiMember(t)
	agent := consultest.Start(t)
	a, port := memberOnReservedPort(t, agent)
	b := startMember(t, agent)
	consultest.Eventually(t, "both registered", func() bool { return len(passing(t, agent)) == 2 })
	oldID := a.ID()

	client, _ := api.NewClient(&api.Config{Address: agent.HTTP})
	if err := client.Agent().ServiceDeregister(oldID); err != nil {
		t.Fatal(err)
	}
	consultest.Eventually(t, "the dropped member registered again under a new id", func() bool {
		ids := passing(t, agent)
		return len(ids) == 2 && !slices.Contains(ids, oldID) && slices.Contains(ids, a.ID()) && slices.Contains(ids, b.ID())
	})
	if a.Rejoins() != 1 {
		t.Fatalf("rejoins = %d, want 1", a.Rejoins())
	}
	if got := a.Address(); got != fmt.Sprintf("127.0.0.1:%d", port) {
		t.Fatalf("rejoined on %s, want the same port %d", got, port)
	}
	consultest.Eventually(t, "the peer sees the rejoined member", func() bool {
		return slices.ContainsFunc(b.Members(), func(m *cluster.Member) bool { return m.Id == a.ID() })
	})
}

func tryMemberOn(t *testing.T, agent *consultest.Agent, port int) (*member.Member, error) {
	t.Helper()
	m, err := member.StartMember(member.Config{Host: "127.0.0.1", Port: port, Rejoin: true,
		NewProvider: func() (cluster.ClusterProvider, error) { return provider(t, agent), nil },
		IdleTimeout: time.Minute, RequestTimeout: 5 * time.Second, Logger: shoptest.Logger()}, member.Deps{})
	if err != nil {
		return nil, err
	}
	t.Cleanup(m.Stop)
	return m, nil
}

// memberOnReservedPort starts a member on a fixed port of the test's own
// (testbin.Port), which it keeps when it rejoins; on new ports again while the
// port it was given turns out taken.
func memberOnReservedPort(t *testing.T, agent *consultest.Agent) (m *member.Member, port int) {
	t.Helper()
	err := testbin.RetryOnTakenPort(t, "member", func() error {
		port = testbin.Port(t)
		var err error
		if m, err = tryMemberOn(t, agent, port); err != nil && testbin.PortTaken(err.Error()) {
			return fmt.Errorf("%w: %w", testbin.ErrPortTaken, err)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, port
}

// TestMemberStopReturnsWhileTheAgentIsStalled: stopping a member deregisters it from
// Consul. With the agent frozen (SIGSTOP: connections stay open, nothing answers),
// the stop must still return, bounded by the provider's call timeout, rather than
// wait for an answer that never comes.
func TestMemberStopReturnsWhileTheAgentIsStalled(t *testing.T) {
	agent := consultest.Start(t)
	m := startMember(t, agent)
	consultest.Eventually(t, "registered", func() bool { return len(passing(t, agent)) == 1 })
	agent.Pause()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		m.Stop()
	}()
	select {
	case <-stopped:
	case <-time.After(consultest.Patience):
		t.Fatalf("the member did not stop within %s of a stop with the Consul agent stalled", consultest.Patience)
	}
}

// TestMemberGivesUpOnAStalledAgent: a frozen agent does not hold the member's check
// refresh or its watch of the members for ever: each call gives up and says so.
func TestMemberGivesUpOnAStalledAgent(t *testing.T) {
	agent := consultest.Start(t)
	logged := &consultest.LogRecorder{}
	m, err := member.StartMember(member.Config{Host: "127.0.0.1", Rejoin: true,
		NewProvider: func() (cluster.ClusterProvider, error) {
			return consul.New(consul.Config{Address: agent.HTTP, TTL: 2 * time.Second, WaitTime: time.Second,
				Logger: slog.New(slog.NewTextHandler(io.MultiWriter(logged, os.Stderr), nil))})
		},
		IdleTimeout: time.Minute, RequestTimeout: 5 * time.Second, Logger: shoptest.Logger()}, member.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	consultest.Eventually(t, "registered", func() bool { return len(passing(t, agent)) == 1 })
	agent.Pause()
	for _, msg := range []string{"consul: refreshing the member's check failed", "consul: watching members failed"} {
		consultest.Eventually(t, "with the agent stalled, the member logs "+msg, func() bool { return logged.Has(msg) })
	}
}
