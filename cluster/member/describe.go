package member

import (
	"maps"
	"runtime"
	"runtime/metrics"
	"slices"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"google.golang.org/protobuf/types/known/timestamppb"

	"phoneshop/cluster/memberinfo"
	"phoneshop/protos/opspb"
)

// spawnMemberInfo starts the memberinfo actor of one incarnation of a member (the
// actor system and cluster it just started), which tells the ops dashboard, through
// the edge, what the member hosts.
func spawnMemberInfo(system *actor.ActorSystem, c *cluster.Cluster) error {
	return memberinfo.Spawn(system, describeMember(system, c))
}

// describeMember returns the memberinfo answer of the member made of system and c.
func describeMember(system *actor.ActorSystem, c *cluster.Cluster) func() *opspb.MemberInfo {
	started := timestamppb.Now()
	return func() *opspb.MemberInfo {
		activations := make(map[string]int64, len(Kinds))
		for name, kind := range Kinds {
			if k, ok := c.TryGetClusterKind(kind); ok {
				activations[name] = int64(k.Count())
			}
		}
		return &opspb.MemberInfo{
			Id:          system.ID,
			Address:     system.Address(),
			Kinds:       slices.Sorted(maps.Keys(activations)),
			Activations: activations,
			StartedAt:   started,
			Goroutines:  int64(runtime.NumGoroutine()),
			HeapBytes:   heapBytes(),
		}
	}
}

// heapBytes is the memory of the process's live heap objects (runtime/metrics: no
// stop-the-world, unlike runtime.ReadMemStats).
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
