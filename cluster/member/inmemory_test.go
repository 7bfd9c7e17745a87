package member_test

import (
	"slices"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster"

	"phoneshop/cluster/member"
	"phoneshop/internal/shoptest"
)

func inMemoryMember(t *testing.T, agent *member.InMemoryAgent) *member.Member {
	t.Helper()
	m, err := member.StartMember(member.Config{Host: "127.0.0.1", NewProvider: member.NewInMemoryProvider(agent),
		IdleTimeout: time.Minute, RequestTimeout: 5 * time.Second, Logger: shoptest.Logger()}, member.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

func memberIDs(members []*cluster.Member) []string {
	var ids []string
	for _, m := range members {
		ids = append(ids, m.Id)
	}
	slices.Sort(ids)
	return ids
}

// TestMemberStopLeavesItsOwnBlockListAlone: a member that stops is not told of its
// own departure, so nothing writes its block list while its gossip loop may still
// read it without the lock (the data race protoactor's graceful leave ran into).
// Run under -race, the detector also watches the stops themselves.
func TestMemberStopLeavesItsOwnBlockListAlone(t *testing.T) {
	for range 3 {
		m := inMemoryMember(t, member.NewInMemoryAgent())
		c := m.Cluster()
		m.Stop()
		if n := c.Remote.BlockList().Len(); n != 0 {
			t.Fatalf("the stopped member's block list holds %d ids, want none", n)
		}
		if got := memberIDs(m.Members()); !slices.Equal(got, []string{c.ActorSystem.ID}) {
			t.Fatalf("the stopped member's own view changed to %v", got)
		}
	}
}

// TestClusterInMemoryMembersLearnOfADeparture: the members that stay learn at once
// that a member left; the member that left hears of no later change.
func TestClusterInMemoryMembersLearnOfADeparture(t *testing.T) {
	shoptest.MultiMember(t)
	agent := member.NewInMemoryAgent()
	a, b := inMemoryMember(t, agent), inMemoryMember(t, agent)
	both := []string{a.ID(), b.ID()}
	slices.Sort(both)
	if got := memberIDs(a.Members()); !slices.Equal(got, both) {
		t.Fatalf("a sees %v, want %v", got, both)
	}
	a.Stop()
	if got := memberIDs(b.Members()); !slices.Equal(got, []string{b.ID()}) {
		t.Fatalf("after a left, b sees %v, want only itself", got)
	}
	c := inMemoryMember(t, agent)
	if got := memberIDs(a.Members()); !slices.Equal(got, both) {
		t.Fatalf("after c joined, the stopped a sees %v; want its view as it left, %v", got, both)
	}
	if got := memberIDs(c.Members()); len(got) != 2 || slices.Contains(got, a.ID()) {
		t.Fatalf("c sees %v, want b and itself", got)
	}
}
