package member

import (
	"slices"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
)

// topology follows a cluster's members from the topology events protoactor
// publishes while it holds its member list's lock. MemberList.Members reads the
// list without that lock while the provider's watch replaces it, so readers
// outside the actor system (the ops view, readiness) read this copy instead. It
// subscribes before the cluster starts, so it misses no event.
type topology struct {
	members atomic.Pointer[[]*cluster.Member]
}

func followTopology(system *actor.ActorSystem) *topology {
	t := &topology{}
	t.members.Store(&[]*cluster.Member{})
	// The subscription ends with the actor system.
	system.EventStream.Subscribe(func(ev any) {
		if ct, ok := ev.(*cluster.ClusterTopology); ok {
			members := slices.Clone(ct.Members)
			t.members.Store(&members)
		}
	})
	return t
}

// list is the members of the last topology, read-only.
func (t *topology) list() []*cluster.Member { return *t.members.Load() }
